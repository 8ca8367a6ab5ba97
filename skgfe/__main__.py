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
import platform
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from . import AutoencoderBaseline, GradientFlowEncoder, __version__, load
from ._utils import resolve_device
from .exceptions import ConvergenceWarning

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
        "--n-components", type=_positive_int, default=8, metavar="N",
        help="dimension of the codes of every method (default: %(default)s)",
    )
    demo.add_argument(
        "--max-iter", type=_positive_int, default=None, metavar="EPOCHS",
        help="training epochs of the autoencoder and of GFE (default: "
        f"{DEFAULT_MAX_ITER}, about a minute in all on 2 CPU cores; "
        f"{QUICK_MAX_ITER} with --quick)",
    )
    demo.add_argument(
        "--n-train", type=_positive_int, default=None, metavar="N",
        help="fit on a stratified subsample of N training samples, to show data "
        f"efficiency; at least {N_CLASSES} (default: the whole training part; "
        f"{QUICK_N_TRAIN} with --quick)",
    )
    demo.add_argument(
        "--device", default="auto",
        help="torch device of the neural estimators: 'auto' (CUDA when "
        "available), 'cpu', 'cuda' or 'cuda:N' (default: %(default)s)",
    )
    demo.add_argument(
        "--random-state", type=int, default=0, metavar="SEED",
        help="seed of the split, the subsample and the estimators "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--quick", action="store_true",
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
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND",
                                       required=True)
    _add_demo_parser(subparsers)
    _add_fit_parser(subparsers)
    _add_transform_parser(subparsers)
    return parser


ESTIMATORS = {"gfe": GradientFlowEncoder, "ae": AutoencoderBaseline}


def _add_fit_parser(subparsers):
    fit = subparsers.add_parser(
        "fit", help="fit an encoder to a CSV/NPY matrix and save it",
        description="Fit GradientFlowEncoder (or AutoencoderBaseline) to a matrix "
        "whose rows are samples, read from a .npy file or a CSV file of numbers "
        "(comma-separated, no header unless --skip-header), and save the model.",
    )
    fit.add_argument("data", help="input matrix, .npy or .csv")
    fit.add_argument("--model", required=True, help="file to save the model to")
    fit.add_argument("--estimator", choices=sorted(ESTIMATORS), default="gfe",
                     help="gfe: GradientFlowEncoder; ae: AutoencoderBaseline "
                     "(default: %(default)s)")
    fit.add_argument("--n-components", type=_positive_int, default=2, metavar="N",
                     help="dimension of the codes (default: %(default)s)")
    fit.add_argument("--hidden-layer-sizes", type=_int_tuple, default=(64,),
                     metavar="W1,W2,...", help="decoder hidden widths, code side "
                     "first (default: 64)")
    fit.add_argument("--loss", choices=["mse", "bce"], default="mse",
                     help="reconstruction loss; bce needs data in [0, 1] "
                     "(default: %(default)s)")
    fit.add_argument("--max-iter", type=_positive_int, default=200, metavar="EPOCHS",
                     help="maximum training epochs (default: %(default)s)")
    fit.add_argument("--skip-header", action="store_true",
                     help="skip the first line of a CSV file")
    fit.add_argument("--device", default="auto",
                     help="'auto', 'cpu', 'cuda' or 'cuda:N' (default: %(default)s)")
    fit.add_argument("--random-state", type=int, default=0, metavar="SEED",
                     help="seed (default: %(default)s)")
    fit.set_defaults(run=lambda args: _run_fit(args, fit))


def _add_transform_parser(subparsers):
    transform = subparsers.add_parser(
        "transform", help="encode a CSV/NPY matrix with a saved model",
        description="Encode the rows of a .npy or CSV matrix with a model saved "
        "by 'fit' and write the codes as .npy or CSV (by the output's suffix).",
    )
    transform.add_argument("data", help="input matrix, .npy or .csv")
    transform.add_argument("--model", required=True, help="model saved by 'fit'")
    transform.add_argument("--output", required=True,
                           help="where to write the codes, .npy or .csv")
    transform.add_argument("--skip-header", action="store_true",
                           help="skip the first line of a CSV file")
    transform.add_argument("--device", default=None,
                           help="device to load the model on (default: as saved, "
                           "or the CPU when that device is absent)")
    transform.set_defaults(run=lambda args: _run_transform(args, transform))


def _int_tuple(text):
    try:
        return tuple(_positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}") from exc


def _read_matrix(path, skip_header, parser):
    try:
        if str(path).endswith(".npy"):
            return np.load(path, allow_pickle=False)
        return np.loadtxt(path, delimiter=",", skiprows=int(skip_header), ndmin=2)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read a numeric matrix from {path!r}: {exc}")


def _write_matrix(path, array):
    if str(path).endswith(".npy"):
        np.save(path, array)
    else:
        np.savetxt(path, array, delimiter=",")


def _run_fit(args, parser):
    X = _read_matrix(args.data, args.skip_header, parser)
    estimator = ESTIMATORS[args.estimator](
        n_components=args.n_components, hidden_layer_sizes=args.hidden_layer_sizes,
        loss=args.loss, max_iter=args.max_iter, device=args.device,
        random_state=args.random_state,
    )
    start = time.perf_counter()
    estimator.fit(X)
    estimator.save(args.model)
    print(f"fitted {type(estimator).__name__} on {X.shape[0]} x {X.shape[1]} in "
          f"{time.perf_counter() - start:.2f} s ({estimator.n_iter_} epochs, final "
          f"loss {estimator.loss_curve_[-1]:.6g}); saved to {args.model}")


def _run_transform(args, parser):
    X = _read_matrix(args.data, args.skip_header, parser)
    estimator = load(args.model, device=args.device)
    codes = estimator.transform(X)
    _write_matrix(args.output, codes)
    print(f"wrote {codes.shape[0]} x {codes.shape[1]} codes to {args.output}")


def _load_split(args, parser):
    """Digits in [0, 1] as float32, split into train/test and maybe subsampled."""
    digits = load_digits()
    X = (digits.data / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, digits.target, test_size=TEST_SIZE, stratify=digits.target,
        random_state=args.random_state,
    )
    n_train = args.n_train or (QUICK_N_TRAIN if args.quick else len(X_train))
    if not N_CLASSES <= n_train <= len(X_train):
        parser.error(f"--n-train must be between {N_CLASSES} and {len(X_train)}, "
                     f"got {n_train}")
    if n_train < len(X_train):
        X_train, _, y_train, _ = train_test_split(
            X_train, y_train, train_size=n_train, stratify=y_train,
            random_state=args.random_state,
        )
    return X_train, X_test, y_train, y_test


def _max_iter(args):
    return args.max_iter or (QUICK_MAX_ITER if args.quick else DEFAULT_MAX_ITER)


def _encoders(args, device):
    """The three encoders of the demo, by name."""
    common = dict(
        n_components=args.n_components, hidden_layer_sizes=HIDDEN_LAYER_SIZES,
        loss="mse", max_iter=_max_iter(args), device=device,
        random_state=args.random_state,
    )
    return {
        "PCA": PCA(n_components=args.n_components, random_state=args.random_state),
        "AutoencoderBaseline": AutoencoderBaseline(**common),
        "GradientFlowEncoder": GradientFlowEncoder(**common),
    }


def _evaluate(encoder, X_train, X_test, y_train, y_test):
    """Fit the encoder+classifier pipeline; return the row's numbers."""
    pipeline = Pipeline([("encode", encoder),
                         ("classify", LogisticRegression(max_iter=1000))])
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
    print(f"skgfe {__version__} | torch {torch.__version__} | "
          f"python {platform.python_version()}")
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device}{name} | torch threads: {torch.get_num_threads()}")
    print(f"digits: {len(X_train)} train, {len(X_test)} test, "
          f"{X_train.shape[1]} features | n_components={args.n_components}, "
          f"epochs={_max_iter(args)}")
    print()
    print(f"{'method':<20} {'accuracy':>9} {'recon MSE':>10} {'fit s':>8} "
          f"{'transform s/1k':>15}")


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
                encoder, X_train, X_test, y_train, y_test)
            print(f"{name:<20} {accuracy:>9.4f} {mse:>10.5f} {fit_s:>8.2f} "
                  f"{transform_s:>15.4f}", flush=True)


def main(argv=None):
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
