"""Sphinx configuration of the skgfe documentation.

Build (from the repository root; no network needed)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

or ``make -C docs html``. Every build executes every gallery example
(``examples/plot_*.py``), so that the gallery shows their figures and output;
each takes under a minute on one CPU thread. The examples that read
Fashion-MNIST are executed only when its files are installed (see
:func:`skgfe.datasets.load_fashion_mnist`); without them their pages show the
code alone. Two environment variables change the build:

``SKGFE_DOCS_EXECUTE``
    A regular expression; only the examples whose path matches it are
    executed. Unset, all are; ``SKGFE_DOCS_EXECUTE='(?!)'``, which never
    matches, gives a quick build that shows the examples' code only.
``SKGFE_DOCS_INTERSPHINX``
    ``1`` links to the scikit-learn, torch, numpy and Python documentation
    through intersphinx, which downloads their inventories (network needed).
    Unset, there are no intersphinx mappings and the build stays offline.
"""

import os
import re
import shutil
import sys
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
ROOT_DIR = DOCS_DIR.parent
EXAMPLES_DIR = ROOT_DIR / "examples"
GALLERY_DIR = DOCS_DIR / "auto_examples"

# Import the package from this checkout even when it is not installed.
sys.path.insert(0, str(ROOT_DIR))

import torch  # noqa: E402

# sphinx-gallery resolves the names an example imports by getattr on their
# module; sklearn.impute.IterativeImputer raises ImportError there unless the
# experimental estimator is enabled in this process (scikit-learn's own
# conf.py does the same).
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401

import skgfe  # noqa: E402

# Executed examples fit small torch models, whose tiny tensor operations only
# lose time to intra-op threads, badly so on a busy machine (measured on 2
# shared cores: one gallery example took 20 s with one thread and 9.5 min with
# torch's default of two). Set OMP_NUM_THREADS to choose another count.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)

# -- Project -----------------------------------------------------------------

project = "skgfe"
author = "skgfe developers"
copyright = "skgfe developers"
release = skgfe.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"
# Unresolved cross-references (e.g. to torch without intersphinx) stay plain
# text; with nitpicky they would be warnings, and -W would fail offline.
nitpicky = False

# -- autodoc / autosummary ---------------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"
autodoc_member_order = "groupwise"

# Members that estimators inherit from scikit-learn and whose docstrings link
# to labels of scikit-learn's own documentation (unresolvable here).
_SKIPPED_INHERITED = {"set_output", "get_metadata_routing"}


def _skip_member(app, what, name, obj, skip, options):
    if name in _SKIPPED_INHERITED or (
        name.startswith("set_") and name.endswith("_request")
    ):
        return True
    return skip


# -- numpydoc ----------------------------------------------------------------

# Members are documented by the autosummary class template; numpydoc's own
# member tables would list them a second time.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Linked parameter types only with intersphinx: numpydoc's default aliases
# (array-like, sequence, bool, ...) are references into the numpy and Python
# documentation, which warn, and fail the -W build, when they cannot resolve.
numpydoc_xref_param_type = os.environ.get("SKGFE_DOCS_INTERSPHINX") == "1"
numpydoc_xref_ignore = "all"
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "RandomState": "numpy.random.RandomState",
    "Bunch": "sklearn.utils.Bunch",
    "torch.nn.Module": "torch.nn.Module",
    "torch.nn.Sequential": "torch.nn.Sequential",
    "torch.device": "torch.device",
    "torch.Generator": "torch.Generator",
    "Tensor": "torch.Tensor",
    "dict": "dict",
    "list": "list",
    "tuple": "tuple",
    "float": "float",
    "int": "int",
    "str": "str",
    "bool": "bool",
}

# -- intersphinx (network only on request) -------------------------------------

_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
}
intersphinx_mapping = (
    _INTERSPHINX if os.environ.get("SKGFE_DOCS_INTERSPHINX") == "1" else {}
)

# -- sphinx-gallery ------------------------------------------------------------


def _fashion_mnist_available():
    from skgfe.datasets import load_fashion_mnist

    try:
        load_fashion_mnist(subset="all", n_samples=1)
    except FileNotFoundError:
        return False
    return True


def _examples_to_execute():
    """Names of the examples this build executes.

    An example that reads Fashion-MNIST stops with ``SystemExit`` when the
    files are missing, which would end the whole Sphinx build, silently and
    with exit status 0; such examples are left out when the data are absent.
    """
    wanted = re.compile(os.environ.get("SKGFE_DOCS_EXECUTE", ""))
    examples = [
        path
        for path in sorted(EXAMPLES_DIR.glob("plot_*.py"))
        if wanted.search(str(path))
    ]
    needs_data = [
        path for path in examples if "load_fashion_mnist(" in path.read_text()
    ]
    if needs_data and not _fashion_mnist_available():
        print(
            "skgfe docs: Fashion-MNIST is not installed, so these examples are "
            "shown but not executed: " + ", ".join(path.name for path in needs_data),
            file=sys.stderr,
        )
        examples = [path for path in examples if path not in needs_data]
    return [path.name for path in examples]


EXECUTED_EXAMPLES = _examples_to_execute()
# sphinx-gallery executes the examples whose path this pattern matches.
EXECUTE_PATTERN = (
    r"[\\/](" + "|".join(re.escape(name) for name in EXECUTED_EXAMPLES) + r")$"
    if EXECUTED_EXAMPLES
    else "(?!)"
)

_GALLERY_HEADERS = (
    "GALLERY_HEADER.rst",
    "GALLERY_HEADER.txt",
    "README.rst",
    "README.txt",
)
HAS_GALLERY = EXAMPLES_DIR.is_dir() and any(
    (EXAMPLES_DIR / name).is_file() for name in _GALLERY_HEADERS
)

if HAS_GALLERY:
    extensions.append("sphinx_gallery.gen_gallery")
    sphinx_gallery_conf = {
        "examples_dirs": os.path.relpath(EXAMPLES_DIR, DOCS_DIR),
        "gallery_dirs": os.path.relpath(GALLERY_DIR, DOCS_DIR),
        "filename_pattern": EXECUTE_PATTERN,
        "ignore_pattern": r"__init__\.py",
        "download_all_examples": False,
        "remove_config_comments": True,
        "within_subsection_order": "sphinx_gallery.sorting.FileNameSortKey",
        # Execute the examples in every build, not only after they change: a
        # change to the package changes their figures.
        "run_stale_examples": True,
        # Show a block's last value only when it has an HTML form (DataFrames);
        # the text repr of what plotting calls return is noise.
        "capture_repr": ("_repr_html_",),
    }
else:
    # No gallery header in examples/: sphinx-gallery would stop the build, so
    # the gallery is replaced by a page saying why.
    shutil.rmtree(GALLERY_DIR, ignore_errors=True)
    GALLERY_DIR.mkdir()
    (GALLERY_DIR / "index.rst").write_text(
        "Examples\n========\n\n"
        "The example gallery is not part of this build: ``examples/`` has no\n"
        "gallery header (``examples/GALLERY_HEADER.rst`` or\n"
        "``examples/README.txt``), which sphinx-gallery needs.\n"
    )

# -- HTML ----------------------------------------------------------------------

try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:
    html_theme = "alabaster"
    html_theme_options = {"description": "Gradient Flow Encoding, scikit-learn API"}
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc"],
    }
html_title = f"skgfe {release}"
html_static_path = []
html_show_sourcelink = False


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
