"""Run the gallery examples (examples/plot_*.py) under matplotlib's Agg backend.

Each example runs in its own Python process through runpy, from a temporary
folder, and must exit cleanly. Examples that take longer than about 20 s on 2
CPU cores are marked slow (run them with ``pytest -m slow``).
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))

# Each takes 40 s to a minute on 2 CPU cores; the others take under 20 s.
SLOW_EXAMPLES = {
    "plot_diabetes_regression.py",
    "plot_digits_clustering.py",
    "plot_fashion_mnist_small_data.py",
    "plot_isometric_codes.py",
    "plot_manifolds.py",
    "plot_ood_likelihood.py",
    "plot_swiss_roll_unrolling.py",
}

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


def _example_params():
    return [
        pytest.param(
            path,
            id=path.stem,
            marks=[pytest.mark.slow] if path.name in SLOW_EXAMPLES else [],
        )
        for path in EXAMPLES
    ]


def test_examples_found():
    assert {path.name for path in EXAMPLES} >= SLOW_EXAMPLES | {
        "plot_pandas_columntransformer.py"
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


@pytest.mark.parametrize("path", _example_params())
def test_example_runs(path, tmp_path):
    result = _run_example(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
    # Figures are shown (a no-op under Agg), not written to the folder.
    assert list(tmp_path.iterdir()) == []


def test_fashion_mnist_example_without_data(tmp_path):
    """Without the data the example says so and exits with status 0."""
    result = _run_example(
        EXAMPLES_DIR / "plot_fashion_mnist_small_data.py",
        tmp_path,
        SKGFE_FASHION_MNIST=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Fashion-MNIST is not available" in result.stdout
    assert "Fashion-MNIST not found" in result.stdout
