"""Tests of the command line, ``python -m skgfe``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler, StandardScaler

import skgfe.__main__ as cli
from skgfe import load
from skgfe.__main__ import main

# The fits here are one or two epochs long on purpose.
pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)

METHODS = ("PCA", "AutoencoderBaseline", "GradientFlowEncoder")
DEMO_OPTIONS = (
    "--n-components",
    "--max-iter",
    "--n-train",
    "--device",
    "--random-state",
    "--quick",
)


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
    main(
        [
            "demo",
            "--quick",
            "--device",
            "cpu",
            "--n-train",
            "50",
            "--max-iter",
            "1",
            "--n-components",
            "3",
        ]
    )
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
    X = np.random.default_rng(0).uniform(size=(30, 4))
    data = tmp_path / f"data{suffix}"
    if suffix == ".npy":
        np.save(data, X)
    else:
        np.savetxt(data, X, delimiter=",")
    model, codes = tmp_path / "model.skgfe", tmp_path / f"codes{suffix}"
    assert (
        main(
            [
                "fit",
                str(data),
                "--model",
                str(model),
                "--estimator",
                estimator,
                "--max-iter",
                "2",
                "--hidden-layer-sizes",
                "8,4",
            ]
        )
        == 0
    )
    assert "saved to" in capsys.readouterr().out
    assert (
        main(["transform", str(data), "--model", str(model), "--output", str(codes)])
        == 0
    )
    written = np.load(codes) if suffix == ".npy" else np.loadtxt(codes, delimiter=",")
    np.testing.assert_allclose(written, load(model).transform(X), rtol=1e-12)
    assert written.shape == (30, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("scale", ["none", "standard"])
def test_gfe_fits_and_encodes_a_csv_with_missing_values(tmp_path, scale):
    X = np.random.default_rng(0).uniform(size=(30, 4))
    lines = [",".join(str(float(value)) for value in row) for row in X]
    lines[3] = lines[3].replace(lines[3].split(",")[1], "", 1)  # an empty field
    lines[7] = "nan," + lines[7].split(",", 1)[1]
    data, model = tmp_path / "data.csv", tmp_path / "model.skgfe"
    data.write_text("\n".join(lines) + "\n")
    codes = tmp_path / "codes.npy"
    fit = ["fit", str(data), "--model", str(model), "--max-iter", "2"]
    assert main([*fit, "--scale", scale]) == 0
    assert (
        main(["transform", str(data), "--model", str(model), "--output", str(codes)])
        == 0
    )
    written = np.load(codes)
    assert written.shape == (30, 2) and np.isfinite(written).all()


def test_fit_rejects_unreadable_data(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nc,d\n")
    with pytest.raises(SystemExit) as info:
        main(["fit", str(bad), "--model", str(tmp_path / "m")])
    assert info.value.code == 2


# ---------------------------------------------------------------- fit/transform
# Issues 17 and 21: the commands never write over an input or, without
# --overwrite, over an existing file; pick formats by suffix in any case; and
# report bad files and options in one line with status 2, never a traceback.


# The quickest model that saves: an autoencoder, one epoch, a small decoder.
QUICK_FIT = ["--estimator", "ae", "--max-iter", "1", "--hidden-layer-sizes", "4"]


def _save_matrix(path, X, delimiter=","):
    path = Path(path)
    if path.suffix.lower() == ".npy":
        with open(path, "wb") as file:  # np.save(path) would add '.npy'
            np.save(file, X)
    else:
        np.savetxt(path, X, delimiter=delimiter)
    return path


def _read_back(path, delimiter=","):
    if Path(path).suffix.lower() == ".npy":
        with open(path, "rb") as file:
            return np.load(file)
    return np.loadtxt(path, delimiter=delimiter, ndmin=2)


def _quick_argv(command, data, fitted, *, model, codes):
    """A quick ``fit`` of data saving ``model``, or a ``transform`` of data by
    the ``fitted`` fixture's model writing ``codes``."""
    if command == "fit":
        return [command, data, "--model", model, *QUICK_FIT]
    return [command, data, "--model", fitted / "model.skgfe", "--output", codes]


def _error(argv, capsys):
    """Run main, expect status 2 and one 'skgfe: error:' line; return it."""
    with pytest.raises(SystemExit) as info:
        main([str(arg) for arg in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("skgfe: error: "), err
    return err


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A folder with data.npy (30 x 4) and model.skgfe fitted to it."""
    folder = tmp_path_factory.mktemp("fitted")
    _save_matrix(folder / "data.npy", np.random.default_rng(0).uniform(size=(30, 4)))
    main(
        [
            "fit",
            str(folder / "data.npy"),
            "--model",
            str(folder / "model.skgfe"),
            *QUICK_FIT,
        ]
    )
    return folder


@pytest.fixture
def data(tmp_path):
    """data.npy in tmp_path, 30 x 4 in [0, 1]."""
    return _save_matrix(
        tmp_path / "data.npy", np.random.default_rng(1).uniform(size=(30, 4))
    )


def _contents(folder):
    return {
        path.name: path.read_bytes()
        for path in Path(folder).iterdir()
        if path.is_file()
    }


# 1. Outputs -------------------------------------------------------------------


def _link(kind, source, link):
    if kind == "hardlink":
        os.link(source, link)
    else:
        os.symlink(source, link)


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
@pytest.mark.parametrize(
    "case",
    [
        "fit --model DATA",
        "transform --output DATA",
        "transform --output MODEL",
        "transform --output sub/../data.npy",
        "transform --output hardlink of DATA",
        "transform --output symlink of DATA",
        "fit --model symlink of DATA",
    ],
)
def test_never_writes_over_an_input(tmp_path, fitted, capsys, case, overwrite):
    data = _save_matrix(tmp_path / "data.npy", np.ones((5, 4)))
    (tmp_path / "sub").mkdir()
    model = tmp_path / "model.npy"  # a model may have any name, even *.npy
    model.write_bytes((fitted / "model.skgfe").read_bytes())
    command, option, target = case.split(" ", 2)
    if target.startswith(("hardlink", "symlink")):
        _link(target.split()[0], data, tmp_path / "link.npy")
        target = tmp_path / "link.npy"
    else:
        target = {"DATA": data, "MODEL": model}.get(target, tmp_path / target)
    argv = [command, data, option, target, *overwrite]
    if command == "transform":
        argv += ["--model", model]
    else:
        argv += QUICK_FIT
    before = _contents(tmp_path)
    err = _error(argv, capsys)
    assert "is the input" in err and option in err
    assert _contents(tmp_path) == before


@pytest.mark.parametrize("command", ["fit", "transform"])
def test_existing_output_needs_overwrite(tmp_path, fitted, capsys, command, data):
    output = tmp_path / ("model.skgfe" if command == "fit" else "codes.npy")
    output.write_bytes(b"precious")
    argv = _quick_argv(command, data, fitted, model=output, codes=output)
    assert "--overwrite" in _error(argv, capsys)
    assert output.read_bytes() == b"precious"
    assert main([str(arg) for arg in [*argv, "--overwrite"]]) == 0
    assert output.read_bytes() != b"precious"
    if command == "transform":
        assert _read_back(output).shape == (30, 2)
    else:
        assert load(output).n_features_in_ == 4
    assert sorted(_contents(tmp_path)) == sorted(["data.npy", output.name])


class _MustNotRun:
    """Stands for the estimator and load: the work must not start."""

    def __init__(self, *args, **kwargs):
        raise AssertionError("the work started before the outputs were checked")


@pytest.mark.parametrize("command", ["fit", "transform"])
@pytest.mark.parametrize("target", ["missing/out.npy", "afile/out.npy", "afolder"])
def test_outputs_are_checked_before_the_work(
    tmp_path, fitted, capsys, monkeypatch, command, target, data
):
    monkeypatch.setitem(cli.ESTIMATORS, "ae", _MustNotRun)
    monkeypatch.setattr(cli, "load", _MustNotRun)
    (tmp_path / "afile").write_text("")
    (tmp_path / "afolder").mkdir()
    output = tmp_path / target
    argv = _quick_argv(command, data, fitted, model=output, codes=output)
    if command == "transform":
        argv.append("--overwrite")
    if command == "transform" and target == "afolder":
        output = tmp_path / "afolder.npy"
        output.mkdir()
        argv[-2] = output
    err = _error(argv, capsys)
    assert "folder" in err


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="needs POSIX permissions that apply (not root)",
)
@pytest.mark.parametrize("command", ["fit", "transform"])
def test_read_only_folder_fails_before_the_work(
    tmp_path, fitted, capsys, monkeypatch, command, data
):
    monkeypatch.setitem(cli.ESTIMATORS, "ae", _MustNotRun)
    monkeypatch.setattr(cli, "load", _MustNotRun)
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o555)
    argv = _quick_argv(
        command, data, fitted, model=folder / "m.skgfe", codes=folder / "codes.npy"
    )
    assert "cannot write" in _error(argv, capsys)


def _fail_midway(path, *args, **kwargs):
    """Write half a file, then fail as a full disk would."""
    target = path if isinstance(path, (str, os.PathLike)) else path.name
    with open(target, "wb") as file:
        file.write(b"half")
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("command", ["fit", "transform"])
def test_failed_write_leaves_the_old_file(
    tmp_path, fitted, capsys, monkeypatch, command, data
):
    if command == "fit":
        output = tmp_path / "model.skgfe"
        argv = [command, data, "--model", output, "--scale", "standard", *QUICK_FIT]
        monkeypatch.setattr(
            cli.AutoencoderBaseline, "save", lambda self, path: _fail_midway(path)
        )
    else:
        output = tmp_path / "codes.csv"
        argv = [command, data, "--model", fitted / "model.skgfe", "--output", output]
        monkeypatch.setattr(np, "savetxt", _fail_midway)
    output.write_bytes(b"old")
    before = _contents(tmp_path)
    assert "No space left" in _error([*argv, "--overwrite"], capsys)
    assert _contents(tmp_path) == before  # no half file, no temporary file


def test_written_files_get_the_usual_mode(tmp_path, fitted, data):
    codes = tmp_path / "codes.npy"
    main(
        [
            "transform",
            str(data),
            "--model",
            str(fitted / "model.skgfe"),
            "--output",
            str(codes),
        ]
    )
    umask = os.umask(0)
    os.umask(umask)
    assert codes.stat().st_mode & 0o777 == 0o666 & ~umask


# 2. Formats -------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".NPY", ".Npy", ".csv", ".CSV"])
def test_formats_follow_the_suffix_in_any_case(tmp_path, fitted, suffix):
    X = np.random.default_rng(2).uniform(size=(10, 4))
    data = _save_matrix(tmp_path / f"data{suffix}", X)
    codes = tmp_path / f"codes{suffix}"
    assert (
        main(
            [
                "transform",
                str(data),
                "--model",
                str(fitted / "model.skgfe"),
                "--output",
                str(codes),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(
        _read_back(codes), load(fitted / "model.skgfe").transform(X), rtol=1e-12
    )
    model = tmp_path / "refit.skgfe"
    assert main(["fit", str(data), "--model", str(model), *QUICK_FIT]) == 0
    assert load(model).n_features_in_ == 4


@pytest.mark.parametrize(
    ("command", "name", "option"),
    [
        ("transform", "codes", "--output"),
        ("transform", "codes.txt", "--output"),
        ("transform", "codes.npz", "--output"),
        ("fit", "data", "DATA"),
        ("fit", "data.txt", "DATA"),
        ("transform", "data.tsv", "DATA"),
    ],
)
def test_unknown_or_missing_suffix_is_refused(
    tmp_path, fitted, capsys, command, name, option
):
    path = tmp_path / name
    data = (
        path
        if option == "DATA"
        else _save_matrix(tmp_path / "data.csv", np.ones((3, 4)))
    )
    if option == "DATA":
        np.savetxt(path, np.ones((3, 4)), delimiter=",")
    argv = _quick_argv(command, data, fitted, model=tmp_path / "m.skgfe", codes=path)
    err = _error(argv, capsys)
    assert option in err and ".npy or .csv" in err
    assert not (tmp_path / "m.skgfe").exists()


# 3. One-line errors -----------------------------------------------------------

BAD_DATA = [
    ("nan.csv", "1,2,3,4\nnan,2,3,4\n", "NaN"),
    ("inf.csv", "1,2,3,4\ninf,2,3,4\n", "infinite"),
    ("blank.csv", "1,2,3,4\n1,,3,4\n", "NaN. AutoencoderBaseline needs complete"),
    ("word.csv", "1,2,3,4\n1,x,3,4\n", "could not convert"),
    ("ragged.csv", "1,2,3,4\n1,2,3\n", "number of columns"),
    ("header.csv", "a,b,c,d\n1,2,3,4\n", "--skip-header"),
    ("empty.csv", "", "no data"),
    ("text.csv", "\n", "no data"),
    ("cube.npy", np.zeros((2, 3, 4)), "2-D"),
    ("vector.npy", np.zeros(4), "2-D"),
    ("nan.npy", np.array([[1.0, np.nan, 2.0, 3.0]]), "NaN"),
    ("strings.npy", np.array([["a", "b", "c", "d"]]), "numbers"),
    ("notnumpy.npy", "1,2,3,4\n", "cannot read"),
    ("missing.csv", None, "no such file"),
]


@pytest.mark.parametrize("command", ["fit", "transform"])
@pytest.mark.parametrize(
    ("name", "content", "expected"), BAD_DATA, ids=[case[0] for case in BAD_DATA]
)
def test_bad_data_is_one_line(
    tmp_path, fitted, capsys, command, name, content, expected
):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        _save_matrix(path, content)
    argv = _quick_argv(
        command, path, fitted, model=tmp_path / "m.skgfe", codes=tmp_path / "codes.npy"
    )
    assert expected in _error(argv, capsys)
    assert not (tmp_path / "m.skgfe").exists() and not (tmp_path / "codes.npy").exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("missing.skgfe", None),
        ("data.csv", b"1,2,3,4\n"),
        ("empty.skgfe", b""),
        ("data.npy", "npy"),
        ("garbage.skgfe", bytes(range(256))),
        ("folder", "dir"),
        ("weights.pt", "torch"),
    ],
)
def test_bad_model_is_one_line(tmp_path, capsys, data, name, content):
    model = tmp_path / name
    if content == "npy":
        _save_matrix(model, np.ones((2, 4)))
    elif content == "dir":
        model.mkdir()
    elif content == "torch":
        torch.save({"weight": torch.ones(2)}, model)
    elif content is not None:
        model.write_bytes(content)
    err = _error(
        ["transform", data, "--model", model, "--output", tmp_path / "codes.npy"],
        capsys,
    )
    assert "--model" in err
    assert not (tmp_path / "codes.npy").exists()


@pytest.mark.parametrize("command", ["fit", "transform"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1", "tpu", "nonsense"])
def test_absent_device_is_one_line(
    tmp_path, fitted, capsys, monkeypatch, command, device, data
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = _quick_argv(
        command, data, fitted, model=tmp_path / "m.skgfe", codes=tmp_path / "codes.npy"
    )
    err = _error([*argv, "--device", device], capsys)
    assert "--device" in err
    if device.startswith("cuda"):
        assert "CUDA" in err
    assert not (tmp_path / "m.skgfe").exists() and not (tmp_path / "codes.npy").exists()


class _Failing:
    """An estimator (and its load) whose fit and transform raise ``error``."""

    error = ValueError("bad\nthing")
    n_features_in_ = 4
    n_components = 2

    def __init__(self, *args, **kwargs):
        pass

    def set_params(self, **params):
        return self

    def fit(self, X):
        raise self.error

    transform = fit


@pytest.mark.parametrize("command", ["fit", "transform"])
@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad\n  thing"),
        TypeError("bad thing"),
        FloatingPointError("bad thing"),
    ],
)
def test_estimator_errors_are_one_line(
    tmp_path, fitted, capsys, monkeypatch, command, error, data
):
    monkeypatch.setattr(_Failing, "error", error)
    monkeypatch.setitem(cli.ESTIMATORS, "ae", _Failing)
    monkeypatch.setattr(cli, "load", lambda path, device=None: _Failing())
    argv = _quick_argv(
        command, data, fitted, model=tmp_path / "m.skgfe", codes=tmp_path / "codes.npy"
    )
    assert f"{command} failed: bad thing" in _error(argv, capsys)
    assert sorted(_contents(tmp_path)) == ["data.npy"]


def test_bce_on_unscaled_data_is_one_line(tmp_path, capsys):
    data = _save_matrix(tmp_path / "data.csv", np.full((5, 3), 7.0))
    err = _error(
        ["fit", data, "--model", tmp_path / "m.skgfe", "--loss", "bce", *QUICK_FIT],
        capsys,
    )
    assert "fit failed" in err and "bce" in err


def test_wrong_number_of_columns_is_one_line(tmp_path, fitted, capsys):
    data = _save_matrix(tmp_path / "data.npy", np.ones((5, 3)))
    err = _error(
        [
            "transform",
            data,
            "--model",
            fitted / "model.skgfe",
            "--output",
            tmp_path / "codes.npy",
        ],
        capsys,
    )
    assert "3 columns" in err and "fitted on 4" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["fit", "{tmp}/nan.csv", "--model", "{tmp}/m.skgfe", *QUICK_FIT], "NaN"),
        (
            ["fit", "{tmp}/nan.csv", "--model", "{tmp}/m.skgfe", "--device", "cuda"],
            "CUDA",
        ),
    ],
)
def test_python_m_skgfe_prints_one_line(tmp_path, argv, expected):
    (tmp_path / "nan.csv").write_text("1,2\nnan,3\n")
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join(
            filter(
                None,
                [
                    str(Path(__file__).resolve().parents[1]),
                    os.environ.get("PYTHONPATH"),
                ],
            )
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", "skgfe", *[arg.format(tmp=tmp_path) for arg in argv]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("skgfe: error: ") and expected in result.stderr


# 4. CSV options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "options", "delimiter"),
    [
        ("a,b,c,d\n{rows}", ["--skip-header"], ","),
        ("a;b;c;d\n{rows}", ["--skip-header", "--delimiter", ";"], ";"),
        ("{rows}", ["--delimiter", r"\t"], "\t"),
        ("x y z w\n{rows}", ["--skip-header", "--delimiter", " "], " "),
    ],
)
def test_csv_header_and_delimiter(tmp_path, capsys, text, options, delimiter):
    X = np.random.default_rng(3).uniform(size=(12, 4))
    rows = "".join(delimiter.join(repr(float(v)) for v in row) + "\n" for row in X)
    data = tmp_path / "data.csv"
    data.write_text(text.format(rows=rows))
    model, codes = tmp_path / "m.skgfe", tmp_path / "codes.csv"
    assert main(["fit", str(data), "--model", str(model), *QUICK_FIT, *options]) == 0
    assert (
        main(
            [
                "transform",
                str(data),
                "--model",
                str(model),
                "--output",
                str(codes),
                *options,
            ]
        )
        == 0
    )
    np.testing.assert_allclose(
        _read_back(codes, delimiter), load(model).transform(X), rtol=1e-12
    )
    assert delimiter in codes.read_text().splitlines()[0]


@pytest.mark.parametrize("delimiter", ["", "1", "."])
def test_unusable_delimiter_is_refused(tmp_path, capsys, delimiter, data):
    with pytest.raises(SystemExit) as info:
        main(
            ["fit", str(data), "--model", str(tmp_path / "m"), "--delimiter", delimiter]
        )
    assert info.value.code == 2
    assert "--delimiter: not a usable CSV delimiter" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "fit",
            [
                "--skip-header",
                "--delimiter",
                "--overwrite",
                "--verbose",
                "--scale",
                "standard",
                "minmax",
                ".npy",
                ".csv",
            ],
        ),
        (
            "transform",
            [
                "--skip-header",
                "--delimiter",
                "--overwrite",
                "--verbose",
                ".npy",
                ".csv",
                "scaling",
            ],
        ),
    ],
)
def test_help_documents_the_options(capsys, command, options):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    output = " ".join(capsys.readouterr().out.split())
    for option in options:
        assert option in output, option


# 5. Verbosity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "verbose"),
    [([], 0), (["-v"], 1), (["--verbose"], 1), (["-vv"], 2), (["-v", "--verbose"], 2)],
)
def test_fit_verbose_sets_the_estimators_verbose(
    tmp_path, capsys, options, verbose, data
):
    model = tmp_path / "m.skgfe"
    assert main(["fit", str(data), "--model", str(model), *QUICK_FIT, *options]) == 0
    assert load(model).get_params()["verbose"] == verbose
    output = capsys.readouterr().out
    assert ("Epoch 1:" in output) == (verbose == 1)


@pytest.mark.parametrize("options", [[], ["-v"]])
def test_transform_verbose_describes_the_model(tmp_path, fitted, capsys, options, data):
    assert (
        main(
            [
                "transform",
                str(data),
                "--model",
                str(fitted / "model.skgfe"),
                "--output",
                str(tmp_path / "codes.npy"),
                *options,
            ]
        )
        == 0
    )
    output = capsys.readouterr().out
    assert ("AutoencoderBaseline, 4 features -> 2 components" in output) == bool(
        options
    )


# 6. Scaling -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "scaler", "keys"),
    [
        ("standard", StandardScaler, ["mean", "scale"]),
        ("minmax", MinMaxScaler, ["min", "scale"]),
    ],
)
def test_scaling_is_saved_next_to_the_model_and_applied(
    tmp_path, capsys, kind, scaler, keys
):
    X = np.random.default_rng(4).normal(50, 10, size=(30, 4))
    data = _save_matrix(tmp_path / "data.csv", X)
    model, codes = tmp_path / "m.skgfe", tmp_path / "codes.npy"
    assert (
        main(["fit", str(data), "--model", str(model), "--scale", kind, *QUICK_FIT])
        == 0
    )
    record = json.loads((tmp_path / "m.skgfe.scaling.json").read_text())
    assert record["kind"] == kind and record["n_features"] == 4
    for key in keys:
        assert len(record[key]) == 4 and all(isinstance(v, float) for v in record[key])
    assert (
        main(["transform", str(data), "--model", str(model), "--output", str(codes)])
        == 0
    )
    expected = load(model).transform(scaler().fit_transform(X))
    np.testing.assert_allclose(_read_back(codes), expected, rtol=1e-10, atol=1e-12)


def test_standard_scaling_gives_wine_codes_of_order_one(tmp_path):
    """Raw wine features (up to ~1,700) gave codes in the hundreds or thousands."""
    data = _save_matrix(tmp_path / "wine.npy", load_wine().data)
    fit = [
        "--estimator",
        "gfe",
        "--loss",
        "mse",
        "--max-iter",
        "1",
        "--hidden-layer-sizes",
        "8",
    ]
    medians = {}
    for scale in ["none", "standard"]:
        model, codes = tmp_path / f"{scale}.skgfe", tmp_path / f"{scale}.npy"
        main(["fit", str(data), "--model", str(model), "--scale", scale, *fit])
        main(["transform", str(data), "--model", str(model), "--output", str(codes)])
        medians[scale] = np.median(np.abs(_read_back(codes)))
    assert medians["none"] > 50
    assert 0.05 < medians["standard"] < 5


def test_scale_none_replaces_the_scaling_of_an_earlier_fit(tmp_path, capsys, data):
    model = tmp_path / "m.skgfe"
    scaling = tmp_path / "m.skgfe.scaling.json"
    main(["fit", str(data), "--model", str(model), "--scale", "minmax", *QUICK_FIT])
    assert scaling.exists()
    model.unlink()  # the scaling file is left: a new model must not take it
    err = _error(["fit", data, "--model", model, "--scale", "none", *QUICK_FIT], capsys)
    assert "--overwrite" in err and "scaling" in err
    main(["fit", str(data), "--model", str(model), "--overwrite", *QUICK_FIT])
    assert not scaling.exists()


def test_scaling_of_another_model_is_refused(tmp_path, capsys, data):
    scaled, other = tmp_path / "scaled.skgfe", tmp_path / "other.skgfe"
    main(["fit", str(data), "--model", str(scaled), "--scale", "standard", *QUICK_FIT])
    main(["fit", str(data), "--model", str(other), "--random-state", "1", *QUICK_FIT])
    scaled.write_bytes(other.read_bytes())  # the model changed, not its scaling
    err = _error(
        ["transform", data, "--model", scaled, "--output", tmp_path / "codes.npy"],
        capsys,
    )
    assert "scaling" in err and "another model" in err
