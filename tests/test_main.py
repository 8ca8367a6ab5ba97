"""Tests of the command line, ``python -m skgfe``."""

import numpy as np
import pytest
import torch

from skgfe.__main__ import main

METHODS = ("PCA", "AutoencoderBaseline", "GradientFlowEncoder")
DEMO_OPTIONS = ("--n-components", "--max-iter", "--n-train", "--device",
                "--random-state", "--quick")


def _row(output, method):
    rows = [line for line in output.splitlines() if line.startswith(method + " ")]
    assert len(rows) == 1, output
    return rows[0].split()


def test_demo_quick_prints_a_row_per_method(capsys):
    assert main(["demo", "--quick", "--device", "cpu"]) == 0
    output = capsys.readouterr().out
    assert "torch" in output and "device: cpu" in output and "threads" in output
    for method in METHODS:
        name, *numbers = _row(output, method)
        assert name == method
        accuracy, mse, fit_seconds, transform_seconds = map(float, numbers)
        assert 0 <= accuracy <= 1
        assert mse >= 0 and fit_seconds >= 0 and transform_seconds >= 0


def test_demo_n_train_subsamples(capsys):
    main(["demo", "--quick", "--device", "cpu", "--n-train", "50",
          "--max-iter", "1", "--n-components", "3"])
    assert "50 train" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]])
def test_help_exits_0(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_demo_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    output = capsys.readouterr().out
    for option in DEMO_OPTIONS:
        assert option in output


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-command"],
        ["demo", "--no-such-option"],
        ["demo", "--max-iter", "0"],
        ["demo", "--n-components", "two"],
        ["demo", "--n-train", "5"],
    ],
)
def test_bad_arguments_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_demo_cuda_without_cuda_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--quick", "--device", "cuda"])
    assert exit_info.value.code == 2
    assert "CUDA" in capsys.readouterr().err


@pytest.mark.parametrize("estimator", ["gfe", "ae"])
@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_fit_then_transform_round_trip(tmp_path, capsys, estimator, suffix):
    from skgfe import load

    X = np.random.default_rng(0).uniform(size=(30, 4))
    data = tmp_path / f"data{suffix}"
    if suffix == ".npy":
        np.save(data, X)
    else:
        np.savetxt(data, X, delimiter=",")
    model, codes = tmp_path / "model.skgfe", tmp_path / f"codes{suffix}"
    assert main(["fit", str(data), "--model", str(model), "--estimator", estimator,
                 "--max-iter", "2", "--hidden-layer-sizes", "8,4"]) == 0
    assert "saved to" in capsys.readouterr().out
    assert main(["transform", str(data), "--model", str(model), "--output",
                 str(codes)]) == 0
    written = np.load(codes) if suffix == ".npy" else np.loadtxt(codes, delimiter=",")
    np.testing.assert_allclose(written, load(model).transform(X), rtol=1e-12)
    assert written.shape == (30, 2)


def test_fit_rejects_unreadable_data(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nc,d\n")
    with pytest.raises(SystemExit) as info:
        main(["fit", str(bad), "--model", str(tmp_path / "m")])
    assert info.value.code == 2
