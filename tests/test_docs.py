"""The documentation builds without warnings and its gallery shows figures.

The build executes every gallery example (those that read Fashion-MNIST only
when its files are installed), so this test is also the one that runs the
examples in the default test run; ``tests/test_examples.py`` runs them alone,
outside Sphinx, under ``-m slow``.
"""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("numpydoc")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("matplotlib")

from skgfe.datasets import load_fashion_mnist  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))


def _fashion_mnist_available():
    try:
        load_fashion_mnist(subset="all", n_samples=1)
    except FileNotFoundError:
        return False
    return True


def _needs_fashion_mnist(path):
    return "load_fashion_mnist(" in path.read_text()


def _build_docs(out, **env):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **env}
    env.pop("SKGFE_DOCS_EXECUTE", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        # Each example takes under a minute on one thread; a busy machine
        # may double that.
        timeout=600 + 120 * len(EXAMPLES),
    )


def test_docs_build_with_warnings_as_errors_and_gallery_figures(tmp_path):
    result = _build_docs(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    html = tmp_path / "html"
    for page in ("index", "user_guide", "choosing", "api"):
        assert (html / f"{page}.html").is_file(), page
    executed = [
        path
        for path in EXAMPLES
        if not _needs_fashion_mnist(path) or _fashion_mnist_available()
    ]
    assert executed
    for path in EXAMPLES:
        page = (html / "auto_examples" / f"{path.stem}.html").read_text()
        figure = f"sphx_glr_{path.stem}_001.png"
        if path in executed:
            assert figure in page, f"{path.name}: no figure in its gallery page"
            assert (html / "_images" / figure).is_file(), path.name
        else:
            assert figure not in page, path.name


def test_docs_config_leaves_out_fashion_mnist_examples_without_the_data(tmp_path):
    """Without the data, those examples (which stop with SystemExit, ending a
    Sphinx build) are not executed; the others still are."""
    env = {**os.environ, "SKGFE_FASHION_MNIST": str(tmp_path)}
    env.pop("SKGFE_DOCS_EXECUTE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import runpy, sys; "
            "print('\\n'.join(runpy.run_path(sys.argv[1])['EXECUTED_EXAMPLES']))",
            str(DOCS / "conf.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    executed = set(result.stdout.split())
    assert executed == {
        path.name for path in EXAMPLES if not _needs_fashion_mnist(path)
    }
    assert any(_needs_fashion_mnist(path) for path in EXAMPLES)


@pytest.mark.parametrize(
    "module",
    [
        "skgfe",
        "skgfe.datasets",
        "skgfe.decoders",
        "skgfe.exceptions",
        "skgfe.metrics",
        "skgfe.plotting",
    ],
)
def test_api_reference_names_every_public_name(module):
    text = (DOCS / "api.rst").read_text()
    public = set(importlib.import_module(module).__all__) - {"__version__"}
    missing = {name for name in public if not re.search(rf"\b{name}\b", text)}
    assert not missing, f"docs/api.rst does not mention {module}.{sorted(missing)}"
