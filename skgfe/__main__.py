"""Command line of skgfe: ``python -m skgfe COMMAND`` (or the ``skgfe`` script).

Commands
--------
demo
    Compare PCA, :class:`~skgfe.AutoencoderBaseline` and
    :class:`~skgfe.GradientFlowEncoder` on scikit-learn's digits: each encoder
    feeds a logistic regression in a Pipeline, and one table row per method
    gives the test accuracy, the held-out reconstruction error and the timings.

fit
    Fit an encoder to a CSV or NPY matrix (rows are samples) and save it with
    :meth:`save` (read back by :func:`skgfe.load`).
transform
    Encode a CSV or NPY matrix with a saved model and write the codes.

Run ``python -m skgfe COMMAND --help`` for a command's options.
"""

import argparse
import contextlib
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from . import AutoencoderBaseline, GradientFlowEncoder, __version__, load
from ._utils import resolve_device
from .exceptions import ConvergenceWarning, FlowSolverError

# Epochs of both neural estimators: the whole demo takes about a minute on 2
# idle CPU cores. Measured (CPU seconds, one thread): GFE's epochs grow from
# ~1.4 s to ~2.7 s as its decoder learns (its flows take more steps), ~46 s in
# all for 20 epochs; the autoencoder ~0.15 s per epoch; start-up ~5 s.
DEFAULT_MAX_ITER = 20
# --quick: a few seconds, for tests and smoke checks.
QUICK_MAX_ITER = 2
QUICK_N_TRAIN = 100
# Decoder hidden widths (code side first), shared by both neural estimators.
HIDDEN_LAYER_SIZES = (64,)
TEST_SIZE = 0.25
N_CLASSES = 10

DEMO_DESCRIPTION = """\
Compare PCA, AutoencoderBaseline and GradientFlowEncoder on scikit-learn's
digits (8x8 images scaled to [0, 1], 10 classes; 25% held out for testing).
Each encoder feeds a LogisticRegression in a Pipeline fitted on the training
part. One row per method: test accuracy, held-out reconstruction MSE (mean over
samples and pixels of (inverse_transform(transform(X_test)) - X_test)^2), fit
seconds (encoder, encoding of the training set and classifier) and transform
seconds per 1,000 test samples.
"""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_demo_parser(subparsers):
    demo = subparsers.add_parser(
        "demo",
        help="compare PCA, an autoencoder and GFE on the digits data set",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--n-components",
        type=_positive_int,
        default=8,
        metavar="N",
        help="dimension of the codes of every method (default: %(default)s)",
    )
    demo.add_argument(
        "--max-iter",
        type=_positive_int,
        default=None,
        metavar="EPOCHS",
        help="training epochs of the autoencoder and of GFE (default: "
        f"{DEFAULT_MAX_ITER}, about a minute in all on 2 CPU cores; "
        f"{QUICK_MAX_ITER} with --quick)",
    )
    demo.add_argument(
        "--n-train",
        type=_positive_int,
        default=None,
        metavar="N",
        help="fit on a stratified subsample of N training samples, to show data "
        f"efficiency; at least {N_CLASSES} (default: the whole training part; "
        f"{QUICK_N_TRAIN} with --quick)",
    )
    demo.add_argument(
        "--device",
        default="auto",
        help="torch device of the neural estimators: 'auto' (CUDA when "
        "available), 'cpu', 'cuda' or 'cuda:N' (default: %(default)s)",
    )
    demo.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed of the split, the subsample and the estimators "
        "(default: %(default)s)",
    )
    _add_threads_option(demo)
    demo.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny configuration finishing in seconds ({QUICK_MAX_ITER} epochs, "
        f"{QUICK_N_TRAIN} training samples unless given), for tests",
    )
    demo.set_defaults(run=lambda args: _run_demo(args, demo))


def build_parser():
    """The argument parser of ``python -m skgfe``."""
    parser = argparse.ArgumentParser(
        prog="python -m skgfe",
        description="Gradient Flow Encoding (skgfe) command line.",
    )
    parser.add_argument("--version", action="version", version=f"skgfe {__version__}")
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True
    )
    _add_demo_parser(subparsers)
    _add_fit_parser(subparsers)
    _add_transform_parser(subparsers)
    return parser


ESTIMATORS = {"gfe": GradientFlowEncoder, "ae": AutoencoderBaseline}
SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler}
# Matrix files, by lower-case suffix: .NPY and .Csv are read and written too.
MATRIX_SUFFIXES = (".npy", ".csv")
# The scaling that 'fit --scale' applied lives next to the model, in
# MODEL + SCALING_SUFFIX, as JSON (the model file format is the estimators').
SCALING_SUFFIX = ".scaling.json"
SCALING_FORMAT = "skgfe-cli-scaling"
SCALING_FORMAT_VERSION = 1
# What the estimators raise on bad data or parameters: reported in one line.
ESTIMATOR_ERRORS = (ValueError, TypeError, FloatingPointError, FlowSolverError)

CSV_EPILOG = """\
CSV files hold numbers only, one sample per line, separated by --delimiter
(default ','); --skip-header skips a first line of column names. Empty
fields and 'nan' are missing values, which --estimator gfe skips (a code from
the observed entries of its row). Files are
read and written by their suffix, in any case: .npy (NumPy) or .csv (text).
Existing files are never replaced without --overwrite, and never an input.
"""


class CommandError(Exception):
    """A problem with the user's files or options: one line on stderr, status 2."""


def _add_csv_options(parser, output):
    parser.add_argument(
        "--skip-header",
        action="store_true",
        help="skip the first line of a CSV file (column names)",
    )
    parser.add_argument(
        "--delimiter",
        type=_delimiter,
        default=",",
        metavar="CHAR",
        help="field separator of CSV files"
        + (", read and written" if output else "")
        + r"; '\t' for tabs (default: ',')",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace output files that exist (never an input)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="print the model and the time taken"
        if output
        else "print the loss of every epoch; -vv: a progress bar "
        "(the estimator's verbose parameter)",
    )
    _add_threads_option(parser)


def _threads(text):
    return text if text == "auto" else _positive_int(text)


def _add_threads_option(parser):
    parser.add_argument(
        "--n-threads",
        type=_threads,
        default="auto",
        metavar="N",
        help="CPU threads of torch: a number or 'auto' (one for "
        "small models; the estimators' n_threads; default: auto)",
    )


def _add_fit_parser(subparsers):
    fit = subparsers.add_parser(
        "fit",
        help="fit an encoder to a CSV/NPY matrix and save it",
        description="Fit GradientFlowEncoder (or AutoencoderBaseline) to a matrix "
        "whose rows are samples and save the model. With --scale, the features "
        "are scaled before fitting and the scaling is saved next to the model, in "
        f"MODEL{SCALING_SUFFIX}, which 'transform' applies.",
        epilog=CSV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument("data", metavar="DATA", help="input matrix, .npy or .csv")
    fit.add_argument("--model", required=True, help="file to save the model to")
    fit.add_argument(
        "--estimator",
        choices=sorted(ESTIMATORS),
        default="gfe",
        help="gfe: GradientFlowEncoder; ae: AutoencoderBaseline (default: %(default)s)",
    )
    fit.add_argument(
        "--n-components",
        type=_positive_int,
        default=2,
        metavar="N",
        help="dimension of the codes (default: %(default)s)",
    )
    fit.add_argument(
        "--hidden-layer-sizes",
        type=_int_tuple,
        default=(64,),
        metavar="W1,W2,...",
        help="decoder hidden widths, code side first (default: 64)",
    )
    fit.add_argument(
        "--loss",
        choices=["mse", "bce"],
        default="mse",
        help="reconstruction loss; bce needs data in [0, 1] (default: %(default)s)",
    )
    fit.add_argument(
        "--scale",
        choices=["none", *SCALERS],
        default="none",
        help="scale the features before fitting: standard "
        "(StandardScaler: zero mean, unit variance) or minmax "
        "(MinMaxScaler: [0, 1], for --loss bce); saved for 'transform' "
        "(default: %(default)s)",
    )
    fit.add_argument(
        "--max-iter",
        type=_positive_int,
        default=200,
        metavar="EPOCHS",
        help="maximum training epochs (default: %(default)s)",
    )
    fit.add_argument(
        "--device",
        default="auto",
        help="'auto', 'cpu', 'cuda' or 'cuda:N' (default: %(default)s)",
    )
    fit.add_argument(
        "--random-state",
        type=int,
        default=0,
        metavar="SEED",
        help="seed (default: %(default)s)",
    )
    _add_csv_options(fit, output=False)
    fit.set_defaults(run=_run_fit)


def _add_transform_parser(subparsers):
    transform = subparsers.add_parser(
        "transform",
        help="encode a CSV/NPY matrix with a saved model",
        description="Encode the rows of a .npy or CSV matrix with a model saved "
        "by 'fit' (scaled first as 'fit --scale' saved, when "
        f"MODEL{SCALING_SUFFIX} exists) and write the codes as .npy or CSV, by "
        "the output's suffix.",
        epilog=CSV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    transform.add_argument("data", metavar="DATA", help="input matrix, .npy or .csv")
    transform.add_argument("--model", required=True, help="model saved by 'fit'")
    transform.add_argument(
        "--output", required=True, help="where to write the codes, .npy or .csv"
    )
    transform.add_argument(
        "--device",
        default=None,
        help="device to load the model on: 'auto', 'cpu', "
        "'cuda' or 'cuda:N' (default: as saved, or the CPU when "
        "that device is absent)",
    )
    _add_csv_options(transform, output=True)
    transform.set_defaults(run=_run_transform)


def _int_tuple(text):
    try:
        return tuple(_positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        ) from exc


def _delimiter(text):
    text = {r"\t": "\t", "tab": "\t"}.get(text, text)
    if not text or text in "\r\n" or any(c in text for c in "0123456789.-+"):
        raise argparse.ArgumentTypeError(f"not a usable CSV delimiter: {text!r}")
    return text


def _one_line(exc):
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _matrix_suffix(path, option):
    """'.npy' or '.csv' from ``path``'s suffix in any case; an error otherwise."""
    suffix = Path(path).suffix
    if suffix.lower() not in MATRIX_SUFFIXES:
        found = f"the suffix {suffix!r}" if suffix else "no suffix"
        raise CommandError(
            f"{option} {str(path)!r} has {found}; expected .npy or .csv (in any case)"
        )
    return suffix.lower()


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file (also through links)."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_input(path, option):
    if not os.path.exists(path):
        raise CommandError(f"{option} {str(path)!r}: no such file")
    if os.path.isdir(path):
        raise CommandError(f"{option} {str(path)!r} is a folder, not a file")


def _scaling_path(model):
    return Path(str(model) + SCALING_SUFFIX)


class _Outputs:
    """Output files, each written to a temporary file in its folder first.

    :meth:`reserve` checks a target and creates its temporary file before any
    work starts (so a missing or read-only folder fails early); :meth:`commit`
    moves the finished temporary file over the target with os.replace, so an
    output is either the old file or the complete new one. Leaving the ``with``
    block removes the temporary files not committed.
    """

    def __init__(self, overwrite, inputs):
        self.overwrite = overwrite
        self.inputs = inputs  # (option, path) pairs never to write over
        self.temporary = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for temporary in self.temporary.values():
            with contextlib.suppress(OSError):
                os.remove(temporary)

    def check(self, path, option):
        """Raise a CommandError unless ``path`` may be written (or removed)."""
        for input_option, input_path in self.inputs:
            if _same_file(path, input_path):
                raise CommandError(
                    f"{option} {str(path)!r} is the input {input_option} "
                    f"{str(input_path)!r}; refusing to write over it, choose "
                    "another file"
                )
        if os.path.isdir(path):
            raise CommandError(f"{option} {str(path)!r} is a folder")
        folder = Path(path).parent
        if not folder.is_dir():
            raise CommandError(
                f"{option} {str(path)!r}: the folder {str(folder)!r} does not exist"
            )
        if os.path.lexists(path) and not self.overwrite:
            raise CommandError(
                f"{option} {str(path)!r} exists; pass --overwrite to replace it"
            )

    def reserve(self, path, option):
        """Check ``path`` and create its temporary file; return the latter's path."""
        self.check(path, option)
        target = Path(path)
        try:
            handle, temporary = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise CommandError(
                f"{option} {str(path)!r}: cannot write to the folder "
                f"{str(target.parent)!r}: {_one_line(exc)}"
            ) from exc
        os.close(handle)
        self.temporary[target] = temporary
        return temporary

    def commit(self, path, option):
        """Move the finished temporary file of ``path`` over ``path``."""
        target = Path(path)
        if os.path.lexists(target) and not self.overwrite:  # appeared meanwhile
            raise CommandError(
                f"{option} {str(path)!r} appeared while working; "
                "pass --overwrite to replace it"
            )
        temporary = self.temporary.pop(target)
        try:
            os.chmod(temporary, _file_mode())
            os.replace(temporary, target)
        except OSError as exc:
            self.temporary[target] = temporary  # removed on exit
            raise CommandError(
                f"cannot write {option} {str(path)!r}: {_one_line(exc)}"
            ) from exc


def _file_mode():
    """The mode of a new file, as open() would make it (mkstemp makes 0o600)."""
    umask = os.umask(0o22)
    os.umask(umask)
    return 0o666 & ~umask


def _first_line(path):
    with (
        contextlib.suppress(OSError, UnicodeDecodeError),
        open(path, encoding="utf-8") as file,
    ):
        return file.readline().strip()
    return ""


def _looks_like_header(line, delimiter):
    """Whether no field of a CSV line is a number, as in a line of column names."""
    if not line:
        return False
    for field in line.split(delimiter):
        try:
            float(field)
        except ValueError:
            continue
        return False
    return True


def _read_matrix(path, args):
    """The 2-D finite numeric matrix in ``path`` (.npy or CSV, by its suffix)."""
    suffix = _matrix_suffix(path, "DATA")
    _check_input(path, "DATA")
    try:
        if suffix == ".npy":
            X = np.load(path, allow_pickle=False)
        else:
            with warnings.catch_warnings():
                # "input contained no data": reported below in one line.
                warnings.simplefilter("ignore", UserWarning)
                X = _load_csv(path, args)
    except (OSError, ValueError, EOFError) as exc:
        line = _first_line(path) if suffix == ".csv" else ""
        if not args.skip_header and _looks_like_header(line, args.delimiter):
            raise CommandError(
                f"DATA {str(path)!r}: the first line {line[:60]!r} is not numbers; "
                "if it names the columns, pass --skip-header to skip it"
            ) from exc
        raise CommandError(
            f"cannot read a numeric matrix from DATA {str(path)!r}: {_one_line(exc)}"
        ) from exc
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        shape = getattr(X, "shape", "?")
        raise CommandError(
            f"DATA {str(path)!r} holds an array of shape {shape}; "
            "expected a 2-D matrix, one row per sample"
        )
    if X.dtype.kind not in "biuf":
        raise CommandError(
            f"DATA {str(path)!r} holds {X.dtype} values; expected numbers"
        )
    if X.size == 0:
        raise CommandError(f"DATA {str(path)!r} holds no data (shape {X.shape})")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    infinite = np.isinf(X)
    if infinite.any():
        row, column = np.argwhere(infinite)[0]
        raise CommandError(
            f"DATA {str(path)!r} has {np.count_nonzero(infinite)} infinite "
            f"value(s), the first in data row {row + 1}, column {column + 1}; "
            "remove them or mark them missing (nan)"
        )
    return X


def _load_csv(path, args):
    """The CSV's numbers; empty fields and 'nan' are missing values (NaN)."""
    options = dict(delimiter=args.delimiter, skiprows=int(args.skip_header), ndmin=2)
    try:
        return np.loadtxt(path, **options)
    except ValueError:
        # A per-field converter is slow: only for files the fast path refuses,
        # such as those with empty fields.
        return np.loadtxt(path, converters=_float_or_missing, **options)


def _float_or_missing(field: str) -> float:
    return float(field) if field.strip() else np.nan


def _write_matrix(temporary, suffix, array, delimiter):
    if suffix == ".npy":
        with open(temporary, "wb") as file:
            np.save(file, array)  # a file object: np.save adds no suffix
    else:
        with open(temporary, "w", encoding="utf-8") as file:
            np.savetxt(file, array, delimiter=delimiter)


def _check_device(device):
    """``device`` as a torch.device ('auto' resolved); a CommandError when absent."""
    try:
        return resolve_device(device)
    except ValueError as exc:
        raise CommandError(f"--device: {_one_line(exc)}") from exc


def _model_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _scaling_record(kind, scaler, model_digest):
    """The JSON record of a fitted scaler: ``kind`` and float lists per feature."""
    record = {
        "format": SCALING_FORMAT,
        "format_version": SCALING_FORMAT_VERSION,
        "kind": kind,
        "n_features": int(scaler.n_features_in_),
        "model_sha256": model_digest,
    }
    if kind == "standard":
        record["formula"] = "(x - mean) / scale"
        record["mean"] = np.asarray(scaler.mean_, dtype=np.float64).tolist()
    else:
        record["formula"] = "x * scale + min"
        record["min"] = np.asarray(scaler.min_, dtype=np.float64).tolist()
    record["scale"] = np.asarray(scaler.scale_, dtype=np.float64).tolist()
    return record


def _read_scaling(path, model_path, n_features):
    """The scaling record at ``path`` as arrays; a CommandError when unusable."""
    where = f"the scaling file {str(path)!r}"
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {where}: {_one_line(exc)}") from exc
    keys = {"standard": ("mean", "scale"), "minmax": ("min", "scale")}
    if (
        not isinstance(record, dict)
        or record.get("format") != SCALING_FORMAT
        or record.get("kind") not in keys
    ):
        raise CommandError(
            f"{where} was not written by 'python -m skgfe fit --scale'; move it away"
        )
    if record.get("format_version", 0) > SCALING_FORMAT_VERSION:
        raise CommandError(f"{where} comes from a newer skgfe; upgrade skgfe")
    if record.get("model_sha256") != _model_digest(model_path):
        raise CommandError(
            f"{where} belongs to another model than --model {str(model_path)!r} "
            "(the model changed since 'fit --scale' saved it); refit, or delete the "
            "scaling file if the model takes unscaled data"
        )
    try:
        statistics = {
            key: np.asarray(record[key], dtype=np.float64)
            for key in keys[record["kind"]]
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise CommandError(f"{where} is damaged: {_one_line(exc)}") from exc
    if any(values.shape != (n_features,) for values in statistics.values()):
        raise CommandError(
            f"{where} has statistics of another shape than the "
            f"model's {n_features} features"
        )
    return record["kind"], statistics


def _apply_scaling(X, kind, statistics):
    """Scale X as the saved StandardScaler / MinMaxScaler did, keeping its dtype."""
    if kind == "standard":
        scaled = (X - statistics["mean"]) / statistics["scale"]
    else:
        scaled = X * statistics["scale"] + statistics["min"]
    return scaled.astype(X.dtype, copy=False)


def _run_fit(args):
    with _Outputs(args.overwrite, [("DATA", args.data)]) as outputs:
        _matrix_suffix(args.data, "DATA")
        _check_input(args.data, "DATA")
        scaling_path = _scaling_path(args.model)
        model_temporary = outputs.reserve(args.model, "--model")
        if args.scale != "none":
            scaling_temporary = outputs.reserve(scaling_path, "the scaling file")
        elif os.path.lexists(scaling_path):
            # A scaling file of an earlier fit would be applied to this model.
            outputs.check(scaling_path, "the scaling file of an earlier fit")
        _check_device(args.device)
        X = _read_matrix(args.data, args)
        estimator = ESTIMATORS[args.estimator](
            n_components=args.n_components,
            hidden_layer_sizes=args.hidden_layer_sizes,
            loss=args.loss,
            max_iter=args.max_iter,
            device=args.device,
            random_state=args.random_state,
            verbose=args.verbose,
            n_threads=args.n_threads,
        )
        start = time.perf_counter()
        try:
            scaler = None
            if args.scale != "none":
                scaler = SCALERS[args.scale]().fit(X)
                X = scaler.transform(X)
            estimator.fit(X)
        except ESTIMATOR_ERRORS as exc:
            raise CommandError(f"fit failed: {_one_line(exc)}") from exc
        try:
            estimator.save(model_temporary)
            digest = _model_digest(model_temporary)
        except (*ESTIMATOR_ERRORS, OSError) as exc:
            raise CommandError(
                f"cannot save the model to --model {args.model!r}: {_one_line(exc)}"
            ) from exc
        outputs.commit(args.model, "--model")
        print(
            f"fitted {type(estimator).__name__} on {X.shape[0]} x {X.shape[1]} in "
            f"{time.perf_counter() - start:.2f} s ({estimator.n_iter_} epochs, "
            f"final loss {estimator.loss_curve_[-1]:.6g}); saved to {args.model}"
        )
        if scaler is not None:
            record = _scaling_record(args.scale, scaler, digest)
            try:
                with open(scaling_temporary, "w", encoding="utf-8") as file:
                    json.dump(record, file, indent=1)
            except OSError as exc:
                raise CommandError(
                    f"cannot write {scaling_path}: {_one_line(exc)}; "
                    f"the model {args.model} is saved, but "
                    "'transform' would not scale its input: refit "
                    "with --overwrite"
                ) from exc
            outputs.commit(scaling_path, "the scaling file")
            print(f"{args.scale} scaling saved to {scaling_path}")
        elif os.path.lexists(scaling_path):
            os.remove(scaling_path)
            print(f"removed {scaling_path}, the scaling of the model replaced")


def _run_transform(args):
    scaling_path = _scaling_path(args.model)
    inputs = [("DATA", args.data), ("--model", args.model)]
    if os.path.exists(scaling_path):
        inputs.append(("the scaling file", scaling_path))
    with _Outputs(args.overwrite, inputs) as outputs:
        _matrix_suffix(args.data, "DATA")
        suffix = _matrix_suffix(args.output, "--output")
        _check_input(args.data, "DATA")
        _check_input(args.model, "--model")
        temporary = outputs.reserve(args.output, "--output")
        device = None if args.device is None else str(_check_device(args.device))
        start = time.perf_counter()
        try:
            estimator = load(args.model, device=device)
        except Exception as exc:  # torch.load raises many kinds on a non-model
            # skgfe's own and the system's messages are short and to the point;
            # torch's unpickling errors run over many lines.
            known = isinstance(exc, (ValueError, OSError))
            detail = _one_line(exc) if known else type(exc).__name__
            raise CommandError(
                f"--model {args.model!r} is not a model saved by "
                f"'python -m skgfe fit' ({detail})"
            ) from exc
        n_features = estimator.n_features_in_
        scaling = None
        if os.path.exists(scaling_path):
            scaling = _read_scaling(scaling_path, args.model, n_features)
        X = _read_matrix(args.data, args)
        if X.shape[1] != n_features:
            raise CommandError(
                f"DATA {args.data!r} has {X.shape[1]} columns; the "
                f"model was fitted on {n_features}"
            )
        if args.verbose:
            how = f", {scaling[0]} scaling from {scaling_path}" if scaling else ""
            print(
                f"model: {type(estimator).__name__}, {n_features} features -> "
                f"{estimator.n_components} components, on {estimator.device_}"
                f"{how}"
            )
        try:
            estimator.set_params(verbose=args.verbose, n_threads=args.n_threads)
            if scaling is not None:
                X = _apply_scaling(X, *scaling)
            codes = estimator.transform(X)
        except ESTIMATOR_ERRORS as exc:
            raise CommandError(f"transform failed: {_one_line(exc)}") from exc
        try:
            _write_matrix(temporary, suffix, codes, args.delimiter)
        except OSError as exc:
            raise CommandError(
                f"cannot write --output {args.output!r}: {_one_line(exc)}"
            ) from exc
        outputs.commit(args.output, "--output")
    seconds = f" in {time.perf_counter() - start:.2f} s" if args.verbose else ""
    print(f"wrote {codes.shape[0]} x {codes.shape[1]} codes to {args.output}{seconds}")


def _load_split(args, parser):
    """Digits in [0, 1] as float32, split into train/test and maybe subsampled."""
    digits = load_digits()
    X = (digits.data / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        digits.target,
        test_size=TEST_SIZE,
        stratify=digits.target,
        random_state=args.random_state,
    )
    n_train = args.n_train or (QUICK_N_TRAIN if args.quick else len(X_train))
    if not N_CLASSES <= n_train <= len(X_train):
        parser.error(
            f"--n-train must be between {N_CLASSES} and {len(X_train)}, got {n_train}"
        )
    if n_train < len(X_train):
        X_train, _, y_train, _ = train_test_split(
            X_train,
            y_train,
            train_size=n_train,
            stratify=y_train,
            random_state=args.random_state,
        )
    return X_train, X_test, y_train, y_test


def _max_iter(args):
    return args.max_iter or (QUICK_MAX_ITER if args.quick else DEFAULT_MAX_ITER)


def _encoders(args, device):
    """The three encoders of the demo, by name."""
    common = {
        "n_components": args.n_components,
        "hidden_layer_sizes": HIDDEN_LAYER_SIZES,
        "loss": "mse",
        "max_iter": _max_iter(args),
        "device": device,
        "random_state": args.random_state,
        "n_threads": args.n_threads,
    }
    return {
        "PCA": PCA(n_components=args.n_components, random_state=args.random_state),
        "AutoencoderBaseline": AutoencoderBaseline(**common),
        "GradientFlowEncoder": GradientFlowEncoder(**common),
    }


def _evaluate(encoder, X_train, X_test, y_train, y_test):
    """Fit the encoder+classifier pipeline; return the row's numbers."""
    pipeline = Pipeline(
        [("encode", encoder), ("classify", LogisticRegression(max_iter=1000))]
    )
    start = time.perf_counter()
    pipeline.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    codes = pipeline["encode"].transform(X_test)
    transform_seconds = time.perf_counter() - start
    reconstruction = pipeline["encode"].inverse_transform(codes)
    return (
        pipeline["classify"].score(codes, y_test),
        float(np.mean((reconstruction - X_test) ** 2)),
        fit_seconds,
        transform_seconds * 1000 / len(X_test),
    )


def _print_header(device, X_train, X_test, args):
    print(
        f"skgfe {__version__} | torch {torch.__version__} | "
        f"python {platform.python_version()}"
    )
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device}{name} | torch threads: {torch.get_num_threads()}")
    print(
        f"digits: {len(X_train)} train, {len(X_test)} test, "
        f"{X_train.shape[1]} features | n_components={args.n_components}, "
        f"epochs={_max_iter(args)}"
    )
    print()
    print(
        f"{'method':<20} {'accuracy':>9} {'recon MSE':>10} {'fit s':>8} "
        f"{'transform s/1k':>15}"
    )


def _warm_up(device):
    """Create a torch optimizer once, before the timings.

    The first one imports torch's compiler stack (seconds of start-up), which
    would otherwise be charged to the first timed fit.
    """
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1, device=device))])


def _run_demo(args, parser):
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    X_train, X_test, y_train, y_test = _load_split(args, parser)
    _print_header(device, X_train, X_test, args)
    _warm_up(device)
    with warnings.catch_warnings():
        # The short epoch budget is deliberate; the table shows what it gives.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, encoder in _encoders(args, str(device)).items():
            accuracy, mse, fit_s, transform_s = _evaluate(
                encoder, X_train, X_test, y_train, y_test
            )
            print(
                f"{name:<20} {accuracy:>9.4f} {mse:>10.5f} {fit_s:>8.2f} "
                f"{transform_s:>15.4f}",
                flush=True,
            )


def main(argv=None):
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CommandError as exc:
        # The user's files or options, not a bug: no traceback.
        print(f"skgfe: error: {_one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
