"""The gallery examples (examples/plot_*.py): their form, and runs outside Sphinx.

The documentation build in ``tests/test_docs.py`` executes every example in the
default test run. Here each one also runs in its own Python process through
runpy, from a temporary folder, under matplotlib's Agg backend, and must exit
cleanly; these standalone runs would repeat the documentation build's, so they
are marked slow (``pytest -m slow``). Only the runs without Fashion-MNIST,
which stop at once, are in the default run.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))

# The examples that read Fashion-MNIST; without its files they say so and stop.
FASHION_MNIST_EXAMPLES = [
    path for path in EXAMPLES if "load_fashion_mnist(" in path.read_text()
]

RUNPY = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


def _run_example(path, cwd, **env):
    pytest.importorskip("matplotlib")
    # OpenMP threads that spin while they wait make torch several times slower
    # when other processes share the CPU cores; passive waiting avoids that and
    # changes no result.
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "MPLBACKEND": "Agg", **env}
    return subprocess.run(
        [sys.executable, "-c", RUNPY, str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_examples_found():
    names = {path.name for path in EXAMPLES}
    assert {"plot_pandas_columntransformer.py", "plot_diabetes_regression.py"} <= names
    assert "plot_fashion_mnist_small_data.py" in {
        path.name for path in FASHION_MNIST_EXAMPLES
    }


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_has_gallery_header(path):
    """sphinx-gallery needs a docstring whose first line is an underlined title."""
    source = path.read_text()
    docstring = ast.get_docstring(ast.parse(source), clean=False)
    assert docstring is not None and source.startswith('"""\n')
    title, underline, blank, text = docstring.lstrip("\n").split("\n", 3)
    assert title.strip() and underline == "=" * len(title)
    assert blank == "" and text.strip()
    assert "\n# %%\n" in source


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(path, tmp_path):
    result = _run_example(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
    # Figures are shown (a no-op under Agg), not written to the folder.
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "path", FASHION_MNIST_EXAMPLES, ids=[path.stem for path in FASHION_MNIST_EXAMPLES]
)
def test_fashion_mnist_example_without_data(path, tmp_path):
    """Without the data the example says so and exits with status 0."""
    result = _run_example(path, tmp_path, SKGFE_FASHION_MNIST=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Fashion-MNIST is not available" in result.stdout
    assert "Fashion-MNIST not found" in result.stdout
