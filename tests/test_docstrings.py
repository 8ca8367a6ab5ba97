"""numpydoc validation of every public docstring (the API reference's contract)."""

import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

import skgfe  # noqa: E402
import skgfe.datasets  # noqa: E402
import skgfe.decoders  # noqa: E402
import skgfe.exceptions  # noqa: E402
import skgfe.impute  # noqa: E402
import skgfe.metrics  # noqa: E402
import skgfe.plotting  # noqa: E402

# Checks left out, as scikit-learn leaves them out of its own validation:
# named return values (RT02: 'codes : ndarray of shape ...' is the house
# style), and the optional sections (extended summary, See Also, Examples on
# every method).
IGNORED = {"RT02", "ES01", "SA01", "EX01", "GL01", "GL02"}
# Methods scikit-learn's mixins document.
INHERITED = {
    "get_params",
    "set_params",
    "set_output",
    "fit_transform",
    "get_feature_names_out",
    "get_metadata_routing",
}
MODULES = [
    skgfe,
    skgfe.datasets,
    skgfe.decoders,
    skgfe.exceptions,
    skgfe.impute,
    skgfe.metrics,
    skgfe.plotting,
]


def _public_names():
    names = set()
    for module in MODULES:
        for name in getattr(module, "__all__", [n for n in dir(module) if n[0] != "_"]):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith("skgfe"):
                continue
            qualified = f"{obj.__module__}.{obj.__qualname__}"
            names.add(qualified)
            if inspect.isclass(obj) and not issubclass(obj, Warning | Exception):
                names.update(
                    f"{qualified}.{member}"
                    for member in dir(obj)
                    if member[0] != "_"
                    and member not in INHERITED
                    and callable(getattr(obj, member))
                )
    return sorted(names)


@pytest.mark.parametrize("name", _public_names())
def test_public_docstring_is_valid_numpydoc(name):
    errors = [
        (code, message)
        for code, message in numpydoc_validate.validate(name)["errors"]
        if code not in IGNORED
    ]
    assert not errors, errors
