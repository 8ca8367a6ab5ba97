"""The estimator base that every skgfe estimator uses whole.

It owns everything that is not specific to one way of encoding: validation of
inputs and parameters, seeding, device and dtype resolution, the mini-batched
training loop with early stopping, batched inference, reconstruction scores,
pickling and the fitted state that :func:`skgfe.load` restores. A subclass
builds its modules and says how to train on a batch and how to encode a batch
(the hooks ``_build_modules``, ``_train_batch``, ``_encode_batch``); the
optional hooks ``_check_fit_data``, ``_make_auxiliary_step`` and ``_after_fit``
let a subclass add training terms (see :mod:`skgfe._differentiable`).
"""

import contextlib
import copy
import functools
import os
import threading
import time
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted

from ._compat import Interval, StrOptions, _fit_context, validate_data
from ._losses import reconstruction_link, sample_loss
from ._persistence import save as save_estimator
from ._threads import available_cores, torch_threads
from ._utils import (
    batch_slices,
    draw_seed,
    host_array,
    make_generator,
    map_location,
    resolve_device,
    to_numpy,
    to_tensor,
    torch_dtype,
    warn_at_caller,
)
from ._version import API_PAGES
from .decoders import ACTIVATIONS, make_mlp
from .exceptions import ConvergenceWarning

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}

# Rows per inference batch. Rows are encoded independently, so this bounds
# memory without changing any result.
INFERENCE_BATCH_SIZE = 1024

_FLOAT_DTYPES = [np.float64, np.float32]

# With n_threads='auto', work on batches of rows x decoder parameters below
# this runs on one torch thread, above it on every available core
# (benchmarks/bench_threads.py, docs/performance.rst). On 2 cores, a second
# thread gained 1.45-1.72x on one decoder pass from 2.2e7 (the paper's decoder
# at 32 rows) up, and nothing below 5e6 (the README demo's decoder at 1,024
# rows: 1.57x, the one exception); beside a busy process it cost 0.8-0.95x
# above the threshold, but 4x on a Fashion-MNIST fit at batch 8 and over 5x on
# the demo, which stay below it.
AUTO_THREADS_MIN_WORK = 2**24

# Inputs beyond this magnitude are rejected: their squared losses approach
# float32's range, and a decoder initialised at unit scale cannot fit them.
MAX_ABS_VALUE = 1e15


def _seed_from_random_state(random_state) -> int:
    """An int seed from a scikit-learn ``random_state``.

    None draws a fresh seed from the operating system's entropy, leaving
    NumPy's global generator untouched (``check_random_state(None)`` would
    draw from it and advance it); an int or a RandomState gives its draw.
    """
    if random_state is None:
        return int(np.random.default_rng().integers(np.iinfo(np.int32).max))
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


# An epoch whose mean loss exceeds the loss of the fit's first batch by this
# factor has diverged: the loss of the untrained model bounds what training
# should reach, and a learning rate far too high grows it by many orders of
# magnitude (GFE, SGD at learning_rate_init=1e3: from 0.2 to 9e60 in the second
# epoch and 1.7e182 by the fifth, with finite codes).
_EXPLOSION_FACTOR = 1e4


def _diverged(epoch_loss: float, start_loss: float) -> bool:
    if not np.isfinite(epoch_loss):
        return True
    return epoch_loss > _EXPLOSION_FACTOR * max(abs(start_loss), 1e-3)


def _to_cpu(value):
    """A copy of a (nested) optimizer state dict with its tensors on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value


def _inference_threads(method):
    """Run an inference method with the estimator's torch thread count."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        check_is_fitted(self)
        with torch_threads(self._thread_count(INFERENCE_BATCH_SIZE)):
            return method(self, *args, **kwargs)

    return call


def _mlp_parameters(n_in: int, hidden_layer_sizes, n_out: int) -> int:
    """Weights and biases of the MLP n_in -> hidden_layer_sizes -> n_out."""
    widths = [n_in, *np.atleast_1d(hidden_layer_sizes).tolist(), n_out]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def _available_memory(device: torch.device):
    """Free memory in bytes where the modules will live; None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on Linux
        return None


_fitting = set()
_fitting_lock = threading.Lock()


@contextlib.contextmanager
def _exclusive_fit(estimator):
    """Refuse a second fit of the same estimator while one runs (another thread)."""
    with _fitting_lock:
        if id(estimator) in _fitting:
            raise RuntimeError(
                f"{type(estimator).__name__}.fit is already running on this estimator "
                "in another thread; fit one estimator per thread (clone it with "
                "sklearn.base.clone)"
            )
        _fitting.add(id(estimator))
    try:
        yield
    finally:
        with _fitting_lock:
            _fitting.discard(id(estimator))


def _check_magnitude(X, input_name) -> None:
    # max and min, not np.abs(X).max(): no temporary copy of a large X; the
    # NaN-ignoring ones, as missing entries are NaN.
    largest = max(np.nanmax(X, initial=0.0), -np.nanmin(X, initial=0.0))
    if largest > MAX_ABS_VALUE:
        raise ValueError(
            f"{input_name} has values up to {largest:.3g} in magnitude; skgfe accepts "
            f"at most {MAX_ABS_VALUE:.0e}. Rescale {input_name} (e.g. with "
            "StandardScaler or MinMaxScaler) before fitting"
        )


class BaseDecoderEstimator(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base of the skgfe estimators: a torch decoder fitted with mini-batches.

    Not to be used directly; see :class:`~skgfe.GradientFlowEncoder`,
    :class:`~skgfe.AutoencoderBaseline` and :class:`~skgfe.OneBitAutoencoder`.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "decoder": [callable, None],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), callable],
        "optimizer_params": [dict, None],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_threads": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    }

    # Names of the fitted torch modules; pickling moves exactly these to the CPU.
    _module_names: tuple = ("decoder_",)

    # The HTML repr (notebooks) links each estimator to its page of skgfe's API
    # reference, as scikit-learn's do to theirs; the address is the
    # Documentation URL of pyproject.toml.
    _doc_link_module = "skgfe"
    _doc_link_template = API_PAGES + "{estimator_module}.{estimator_name}.html"

    # Fitted attributes besides the modules that save() writes and load()
    # restores, as JSON values; load() sets no other attribute.
    _saved_attributes: tuple = (
        "n_features_in_",
        "feature_names_in_",
        "n_iter_",
        "loss_curve_",
        "best_loss_",
        "validation_scores_",
        "best_validation_score_",
    )

    # Whether a batch takes long enough (a flow solve) for verbose=2 to show a
    # progress bar over the batches of an epoch or of an inference call.
    _slow_batches: bool = False

    # Name in skgfe._losses.LOSSES of the reconstruction loss; estimators with
    # a ``loss`` parameter return it instead.
    _loss_name: str = "mse"

    # Whether X may have missing entries (NaN), which the losses then skip;
    # the other estimators point the user to one that does.
    _allows_missing: bool = False

    @abstractmethod
    def __init__(
        self,
        n_components,
        *,
        decoder,
        hidden_layer_sizes,
        activation,
        optimizer,
        optimizer_params,
        learning_rate_init,
        batch_size,
        max_iter,
        shuffle,
        tol,
        early_stopping,
        validation_fraction,
        n_iter_no_change,
        warm_start,
        device,
        random_state,
        verbose,
        n_threads,
    ):
        self.n_components = n_components
        self.decoder = decoder
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    @abstractmethod
    def _build_modules(self, n_features: int, generator: torch.Generator) -> None:
        """Create the fitted modules (at least ``decoder_``) on the CPU."""

    @abstractmethod
    def _train_batch(self, X: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Compute the batch's mean loss and its parameter gradients (backward)."""

    @abstractmethod
    def _encode_batch(self, X: torch.Tensor) -> torch.Tensor:
        """Codes (n, n_components) of a batch, a pure function of the fitted state."""

    def _check_params(self, n_features: int) -> None:
        """Check what the constraints cannot express; subclasses extend it.

        :func:`skgfe.load` runs it too, so it checks the parameters alone, not
        the training data (see :meth:`_check_training_data`).
        """
        self._reject_bools()
        sizes = self.hidden_layer_sizes
        # Elements as given: an array would turn (8, True) into (8, 1).
        values = list(sizes) if np.ndim(sizes) == 1 else [sizes]
        if np.ndim(sizes) > 1 or not all(
            isinstance(s, Integral) and not isinstance(s, (bool, np.bool_)) and s >= 1
            for s in values
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive int or a sequence of positive "
                f"ints, got {self.hidden_layer_sizes!r}"
            )

    def _reject_bools(self) -> None:
        # bool is an int to Python and to the constraints: n_components=True
        # would fit one component.
        for name, constraints in self._parameter_constraints.items():
            numeric = any(isinstance(c, Interval) for c in constraints)
            value = getattr(self, name)
            if numeric and isinstance(value, (bool, np.bool_)):
                raise ValueError(
                    f"{name} must be a number, got the bool {value!r}; pass "
                    f"{name}={int(value)} if that is meant"
                )

    def _check_fit_data(self, X, **fit_data):
        """Validate the keyword data of ``fit`` besides X; None when there is none."""
        return None

    def _make_auxiliary_step(self, X_t, fit_data, seed):
        """A callable ``step(generator) -> loss`` run with every mini-batch, or None.

        The step backpropagates an extra training term (the caller has zeroed
        the gradients and steps the optimizer) and returns its detached value,
        which is added to the batch's loss.
        """
        return None

    def _after_fit(self, X_train: torch.Tensor, generator: torch.Generator) -> None:
        """Fit what depends on the trained modules (e.g. a density of the codes)."""

    # -------------------------------------------------------------- public API

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Update the model with one pass of mini-batch updates over X.

        The first call initialises the model as ``fit`` does; later calls go on
        from the fitted state, optimizer state included, whatever
        ``warm_start`` says. ``n_iter_`` counts the calls and ``loss_curve_``
        holds each call's mean training loss. ``shuffle`` shuffles the rows of
        each call's X; ``max_iter``, ``tol``, ``n_iter_no_change`` and early
        stopping do not apply (there is no held-out set and no stopping
        decision for one pass), and the pair loss (``distortion_weight``,
        ``bending_weight``) needs the pairs of ``fit``. With
        ``scoring='likelihood'``, the density of the codes is fitted on the
        last call's X.

        With ``shuffle=False``, calls on consecutive parts of a data set give
        the decoder that ``fit`` with ``max_iter=1`` gives on the whole of it
        when every part but the last holds a multiple of ``batch_size`` rows
        (the same mini-batches, updates and random draws, bit for bit); a
        first call equals such a ``fit`` on its X whatever its size. (A
        OneBitAutoencoder with a learned encoder or denoiser takes its
        closed-form start from the first call's rows only; see
        :ref:`scaling`.)

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; after the first call, with the same number of
            features.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated estimator.
        """
        return self._fit(X, incremental=True)

    def _fit(self, X, incremental=False, **fit_data):
        """The fit skeleton; ``fit_data`` go to :meth:`_check_fit_data`.

        Everything that can fail on the input is checked before the first
        fitted attribute is set. ``incremental`` makes it one pass of
        :meth:`partial_fit`.
        """
        with _exclusive_fit(self):
            continuing = (self.warm_start or incremental) and hasattr(self, "decoder_")
            try:
                self._fit_checked(X, continuing, fit_data, incremental)
            except BaseException:
                if not continuing:
                    # A fresh fit that raises (bad input, an interrupt before the
                    # first epoch ended, divergence in it) leaves the estimator
                    # unfitted, not half built nor half refitted.
                    self._discard_fitted_state()
                raise
        return self

    def _fit_checked(self, X, continuing, fit_data, incremental=False) -> None:
        X = validate_data(
            self,
            host_array(X),
            dtype=_FLOAT_DTYPES,
            ensure_all_finite="allow-nan",
            reset=not continuing,
        )
        self._check_missing(X, fitting=True)
        _check_magnitude(X, "X")
        self._check_params(X.shape[1])
        resolve_device(self.device)
        self._check_training_data(X)
        if incremental:
            self._check_incremental()
            fit_data = None
        else:
            fit_data = self._check_fit_data(X, **fit_data)
        seed = _seed_from_random_state(self.random_state)
        generator = make_generator(seed)
        if incremental and continuing:
            generator = self._resume_generator(generator)
        if not continuing:
            self._initialize(X, generator)
        elif getattr(self, "_optimizer", None) is None:
            # Models loaded from a file carry no optimizer state.
            self._optimizer = self._make_optimizer()
        X_t = to_tensor(X, self.device_, self._dtype)
        if incremental:
            X_train, X_val = X_t, None
        else:
            X_train, X_val = self._split_validation(X_t, generator)
        auxiliary_step = self._make_auxiliary_step(X_t, fit_data, seed)
        with torch_threads(self._thread_count(self.batch_size)):
            self._fit_epochs(X_train, X_val, generator, auxiliary_step, incremental)
            self._after_fit(X_train, generator)
        # The next partial_fit draws on from here, as one fit over the
        # concatenated data would; fit starts afresh from random_state.
        self._partial_fit_generator_ = generator if incremental else None

    def _check_incremental(self) -> None:
        """Refuse in partial_fit what needs the whole data set at once."""
        if getattr(self, "_uses_pair_loss", False):
            raise ValueError(
                f"{type(self).__name__}.partial_fit does not train the pair loss, "
                "which draws its pairs from the whole training set; set "
                "distortion_weight=0 and bending_weight=0, or use fit"
            )

    def _resume_generator(self, fresh: torch.Generator) -> torch.Generator:
        """The generator left by the previous partial_fit, else ``fresh``."""
        previous = getattr(self, "_partial_fit_generator_", None)
        if previous is None:
            return fresh
        resumed = torch.Generator(device=previous.device)
        resumed.set_state(previous.get_state())
        return resumed

    def _discard_fitted_state(self) -> None:
        """Remove every fitted attribute, so the estimator reads as unfitted."""
        for name in list(vars(self)):
            fitted = name.endswith("_") and not name.startswith("__")
            if fitted or name in ("_dtype", "_optimizer"):
                delattr(self, name)

    @_inference_threads
    def transform(self, X):
        """Encode X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            The codes, in the dtype of X (float32 or float64).
        """
        X, X_t = self._validate_for_inference(X)
        codes = self._map_batches(self._encode_batch, X_t)
        return to_numpy(codes, X.dtype)

    @_inference_threads
    def inverse_transform(self, X):
        """Decode codes back to data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructions (probabilities for ``loss='bce'``), in the dtype of X.
        """
        check_is_fitted(self)
        X = check_array(host_array(X), dtype=_FLOAT_DTYPES, input_name="X")
        _check_magnitude(X, "X")
        if X.shape[1] != self.n_components:
            raise ValueError(
                f"X has {X.shape[1]} features, but inverse_transform expects codes "
                f"with n_components={self.n_components} features"
            )
        link = reconstruction_link(
            self._loss_name, self._binary_column_mask(self.device_)
        )
        Z_t = to_tensor(X, "cpu", torch_dtype(X.dtype))
        with torch.no_grad():
            output = self._map_batches(lambda z: link(self.decoder_(z)), Z_t)
        return to_numpy(output, X.dtype)

    @_inference_threads
    def score_samples(self, X):
        """Return minus the reconstruction loss of each sample (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-loss(x, decoder(encode(x)))``, the loss being the mean over
            features of the squared error (``loss='mse'``) or of the binary
            cross-entropy (``loss='bce'``).
        """
        X, X_t = self._validate_for_inference(X)
        losses = self._map_batches(self._reconstruction_loss, X_t)
        return -to_numpy(losses, np.float64)

    def score(self, X, y=None):
        """Return the mean of :meth:`score_samples` (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.

        Returns
        -------
        score : float
            The mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def save(self, path):
        """Save the fitted estimator to a versioned file, read by :func:`skgfe.load`.

        The file holds the modules' state dicts and the parameters as JSON, and is
        read back without unpickling code. Estimators whose parameters include a
        module or a callable (a custom decoder) must be pickled instead.

        Parameters
        ----------
        path : str or path-like
            Destination file.
        """
        check_is_fitted(self)
        save_estimator(self, path)

    @property
    def _n_features_out(self):
        return self.n_components

    def _check_missing(self, X, fitting: bool) -> None:
        """Refuse NaN where the estimator cannot skip it, and rows with nothing
        observed where it can."""
        missing = np.isnan(X)
        if not missing.any():
            return
        if not self._allows_missing:
            raise ValueError(
                f"Input X contains NaN. {type(self).__name__} needs complete rows: "
                "GradientFlowEncoder encodes rows with missing entries (NaN) as "
                "they are, or impute them first (skgfe.impute.GradientFlowImputer, "
                "sklearn.impute.SimpleImputer)"
            )
        unsupported = self._settings_without_missing(fitting)
        if unsupported is not None:
            raise ValueError(
                f"Input X contains NaN, which {unsupported} cannot skip; impute "
                "X first or change that setting"
            )
        empty = np.flatnonzero(missing.all(axis=1))
        if empty.size:
            raise ValueError(
                f"X has {empty.size} row(s) with no observed entry (all NaN), "
                f"rows {empty[:10].tolist()}; a code needs at least one observed "
                "value: drop those rows"
            )

    def _settings_without_missing(self, fitting: bool) -> str | None:
        """The settings that need complete rows even where the estimator can
        skip missing entries, in words, or None; ``fitting``: in ``fit``."""
        return None

    def _check_training_data(self, X) -> None:
        if self.early_stopping and X.shape[0] < 2:
            raise ValueError(
                "early_stopping=True needs at least 2 samples, got "
                f"n_samples={X.shape[0]}"
            )
        if self._loss_name == "bce":
            low, high = np.nanmin(X), np.nanmax(X)
            if low < 0 or high > 1:
                raise ValueError(
                    "loss='bce' needs data in [0, 1], got values in "
                    f"[{low:.3g}, {high:.3g}]; scale X (e.g. MinMaxScaler) or "
                    "use loss='mse'"
                )

    def _initialize(self, X, generator) -> None:
        self.device_ = resolve_device(self.device)
        self._dtype = torch_dtype(X.dtype)
        self._check_module_memory(X.shape[1], X.dtype.itemsize)
        self._build_modules(X.shape[1], generator)
        for name in self._module_names:
            getattr(self, name).to(device=self.device_, dtype=self._dtype)
        self._check_decoder_output(X.shape[1])
        self._optimizer = self._make_optimizer()
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _n_parameters_estimate(self, n_features: int) -> int:
        """Parameters of the modules that fit would build (0 if unknown)."""
        if self.decoder is not None:
            return 0  # a user's module: its size is known only once built
        return _mlp_parameters(self.n_components, self.hidden_layer_sizes, n_features)

    def _floats_per_row(self, n_features: int) -> int:
        """Floats a batch row holds while training or encoding (activations)."""
        hidden = int(np.sum(np.atleast_1d(self.hidden_layer_sizes)))
        return self.n_components + hidden + n_features

    def _check_module_memory(self, n_features: int, itemsize: int) -> None:
        """Refuse a model that cannot fit in memory, before allocating it.

        Training holds each parameter four times (value, gradient and two
        optimizer moments for Adam), and a batch (of training, or of 1,024
        rows in inference) holds its rows' activations and codes.
        """
        rows = max(self.batch_size, INFERENCE_BATCH_SIZE)
        needed = itemsize * (
            4 * self._n_parameters_estimate(n_features)
            + rows * self._floats_per_row(n_features)
        )
        available = _available_memory(self.device_)
        if available is not None and needed > available:
            raise ValueError(
                f"n_components={self.n_components} and hidden_layer_sizes="
                f"{self.hidden_layer_sizes!r} with {n_features} features need about "
                f"{needed / 2**30:.3g} GiB for the modules, their training state and "
                f"a batch, but {available / 2**30:.3g} GiB are available on "
                f"{self.device_}; use fewer components or smaller hidden layers"
            )

    def _thread_count(self, batch_rows: int):
        """Torch threads for work on batches of ``batch_rows``; None on a GPU."""
        if self.device_.type != "cpu":
            return None
        if self.n_threads != "auto":
            return self.n_threads
        n_parameters = sum(p.numel() for p in self.decoder_.parameters())
        if batch_rows * n_parameters < AUTO_THREADS_MIN_WORK:
            return 1
        return available_cores()

    def _check_decoder_output(self, n_features) -> None:
        """Decode two zero codes once: a decoder must give (2, n_features) finite rows.

        A wrong width would broadcast in the loss and pass unnoticed until
        ``inverse_transform``.
        """
        decoder = self.decoder_
        codes = torch.zeros(
            2, self.n_components, dtype=self._dtype, device=self.device_
        )
        was_training = decoder.training
        decoder.eval()
        try:
            with torch.no_grad():
                output = decoder(codes)
        except Exception as exc:
            raise ValueError(
                f"decoder={self.decoder!r} failed on codes of shape (2, n_components="
                f"{self.n_components}): {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            decoder.train(was_training)
        expected = (2, n_features)
        if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
            got = (
                tuple(output.shape)
                if isinstance(output, torch.Tensor)
                else type(output).__name__
            )
            raise ValueError(
                f"decoder={self.decoder!r} must map codes of shape (n, n_components) "
                f"to a tensor of shape (n, n_features); for (2, {self.n_components}) "
                f"it returned {got}, expected {expected}"
            )
        if output.dtype != self._dtype:
            raise ValueError(
                f"decoder={self.decoder!r} returned {output.dtype} for {self._dtype} "
                "codes; it must compute in the dtype of X"
            )
        if not bool(torch.isfinite(output).all()):
            raise ValueError(
                f"decoder={self.decoder!r} returned non-finite values for zero codes; "
                "check its initialisation"
            )

    def _make_decoder(self, n_features, generator) -> torch.nn.Module:
        """The user's decoder (copied or built), or the default MLP."""
        if self.decoder is None:
            sizes = np.atleast_1d(self.hidden_layer_sizes).tolist()
            return make_mlp(
                self.n_components, sizes, n_features, self.activation, generator
            )
        return self._user_module(
            self.decoder, (self.n_components, n_features), generator, "decoder"
        )

    @staticmethod
    def _user_module(spec, factory_args, generator, name) -> torch.nn.Module:
        if isinstance(spec, torch.nn.Module):
            # Fit trains a copy: the user's module is never trained in place.
            return copy.deepcopy(spec)
        seed = draw_seed(generator)
        # fork_rng restores the global RNG, so a factory's own initialisation is
        # seeded by random_state without touching the user's random state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            module = spec(*factory_args)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(
                f"{name} must be a torch.nn.Module or a callable returning one, but "
                f"{name}{factory_args} returned {type(module).__name__}"
            )
        return module

    def _trainable_parameters(self):
        return [
            p for name in self._module_names for p in getattr(self, name).parameters()
        ]

    def _make_optimizer(self) -> torch.optim.Optimizer:
        optimizer = self.optimizer
        if isinstance(optimizer, str):
            optimizer = _OPTIMIZERS[optimizer]
        if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.LBFGS):
            raise ValueError(
                f"optimizer={self.optimizer!r} needs a closure that re-evaluates the "
                "loss at every step, which skgfe's mini-batch training does not "
                "provide; use 'adam', 'rmsprop', 'sgd' or another optimizer whose "
                "step() takes no closure"
            )
        params = {"lr": self.learning_rate_init, **(self.optimizer_params or {})}
        try:
            built = optimizer(self._trainable_parameters(), **params)
        except TypeError as exc:
            raise TypeError(
                f"optimizer={self.optimizer!r} could not be built with "
                f"optimizer_params={self.optimizer_params!r}: {exc}"
            ) from exc
        if not (
            callable(getattr(built, "step", None))
            and callable(getattr(built, "zero_grad", None))
        ):
            raise TypeError(
                f"optimizer={self.optimizer!r} must be a torch optimizer class (or a "
                "callable returning a torch.optim.Optimizer), but it returned "
                f"{type(built).__name__}"
            )
        return built

    def _split_validation(self, X_t, generator):
        if not self.early_stopping:
            return X_t, None
        n = X_t.shape[0]
        n_val = min(n - 1, max(1, round(self.validation_fraction * n)))
        order = torch.randperm(n, generator=generator).to(X_t.device)
        return X_t[order[n_val:]], X_t[order[:n_val]]

    def _fit_epochs(
        self, X_train, X_val, generator, auxiliary_step=None, incremental=False
    ) -> None:
        """``max_iter`` epochs with early stopping; one epoch if ``incremental``."""
        epochs = range(1 if incremental else self.max_iter)
        if self.verbose >= 2:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc=type(self).__name__, unit="epoch")
        # The state after the last completed epoch, modules and bookkeeping
        # together: it changes in one assignment, so an interrupt restores a
        # consistent pair. Snapshots are cloned, never mutated, so best and
        # last may share one.
        completed = (self._module_states(), self._progress())
        # A partial_fit that diverges falls back to the state before it.
        best_state = completed[0] if incremental and self.n_iter_ else None
        no_improvement, stopped = 0, False
        # The loss of the first batch of this fit, before any update.
        start_loss = None
        try:
            for _ in epochs:
                start = time.perf_counter()
                epoch_loss, first_loss = self._fit_epoch(
                    X_train, generator, auxiliary_step
                )
                start_loss = first_loss if start_loss is None else start_loss
                if _diverged(epoch_loss, start_loss):
                    self._recover_from_divergence(best_state, epoch_loss, start_loss)
                    return
                self.n_iter_ += 1
                self.loss_curve_.append(epoch_loss)
                improved = self._record_progress(epoch_loss, X_val)
                completed = (self._module_states(), self._progress())
                if improved or best_state is None:
                    best_state = completed[0]
                no_improvement = 0 if improved else no_improvement + 1
                self._report(epochs, epoch_loss, time.perf_counter() - start)
                if no_improvement >= self.n_iter_no_change:
                    stopped = True
                    break
        except KeyboardInterrupt:
            if completed[1][0] == 0:
                raise  # nothing to keep: _fit leaves the estimator unfitted
            self._recover_from_interrupt(*completed)
            return
        if incremental:
            return
        if self.early_stopping:
            self._load_module_states(best_state)
        if not stopped:
            warn_at_caller(
                f"{type(self).__name__}: max_iter={self.max_iter} epochs reached "
                "before "
                f"the loss stopped improving by tol={self.tol} for "
                f"n_iter_no_change={self.n_iter_no_change} epochs; increase max_iter",
                ConvergenceWarning,
            )

    def _progress(self) -> tuple:
        """The training bookkeeping, as an immutable snapshot."""
        return (
            self.n_iter_,
            tuple(self.loss_curve_),
            self.best_loss_,
            None if self.validation_scores_ is None else tuple(self.validation_scores_),
            self.best_validation_score_,
        )

    def _restore_progress(self, progress) -> None:
        n_iter, losses, best_loss, scores, best_score = progress
        self.n_iter_ = n_iter
        self.loss_curve_ = list(losses)
        self.best_loss_ = best_loss
        self.validation_scores_ = None if scores is None else list(scores)
        self.best_validation_score_ = best_score

    def _fit_epoch(self, X, generator, auxiliary_step=None) -> tuple[float, float]:
        """One pass over X in shuffled mini-batches.

        Returns the mean loss and the loss of the first batch, before its
        update (the first epoch's is the reference of :func:`_diverged`).

        With ``auxiliary_step`` (see :meth:`_make_auxiliary_step`), every
        mini-batch also adds its term to the gradient and the loss.
        """
        for name in self._module_names:
            getattr(self, name).train()
        n = X.shape[0]
        order = (
            torch.randperm(n, generator=generator).to(X.device)
            if self.shuffle
            else torch.arange(n, device=X.device)
        )
        total = torch.zeros((), dtype=X.dtype, device=X.device)
        first = None
        batch_size = min(self.batch_size, n)
        for rows in self._batch_progress(
            batch_slices(n, batch_size), n, batch_size, f"epoch {self.n_iter_ + 1}"
        ):
            batch = X[order[rows]]
            self._optimizer.zero_grad(set_to_none=True)
            loss = self._train_batch(batch, generator)
            if auxiliary_step is not None:
                loss = loss + auxiliary_step(generator)
            self._optimizer.step()
            total += loss.detach() * batch.shape[0]
            if first is None:
                first = loss.detach()
        for name in self._module_names:
            getattr(self, name).eval()
        # One host sync per epoch, not per batch.
        return float(total) / n, float(first)

    def _batch_progress(self, slices, n_rows, batch_size, description):
        """``slices`` behind a progress bar when verbose=2 and batches are slow."""
        if self.verbose < 2 or not self._slow_batches:
            return slices
        from tqdm.auto import tqdm

        return tqdm(
            slices,
            total=-(-n_rows // batch_size),
            desc=description,
            unit="batch",
            leave=False,
        )

    def _record_progress(self, epoch_loss, X_val) -> bool:
        """Append the epoch's scores; return whether the tracked score improved."""
        if X_val is None:
            improved = epoch_loss < self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, epoch_loss)
            return improved
        score = -float(self._map_batches(self._reconstruction_loss, X_val).mean())
        self.validation_scores_.append(score)
        improved = score > self.best_validation_score_ + self.tol
        self.best_validation_score_ = max(self.best_validation_score_, score)
        return improved

    def _report(self, epochs, epoch_loss, seconds) -> None:
        if self.verbose >= 2:
            epochs.set_postfix(loss=f"{epoch_loss:.5g}")
        elif self.verbose:
            line = f"Epoch {self.n_iter_}: loss={epoch_loss:.6g}"
            if self.validation_scores_:
                line += f", validation score={self.validation_scores_[-1]:.6g}"
            print(f"{line} ({seconds:.2f} s)")

    def _recover_from_divergence(self, best_state, epoch_loss, start_loss) -> None:
        what = (
            f"became non-finite ({epoch_loss})"
            if not np.isfinite(epoch_loss)
            else f"exploded to {epoch_loss:.3g} from {start_loss:.3g} at the "
            "start of fit"
        )
        if best_state is None:
            raise FloatingPointError(
                f"{type(self).__name__}: the training loss {what} in the first "
                f"epoch; lower learning_rate_init (now {self.learning_rate_init}) "
                "or check X for extreme values"
            )
        self._load_module_states(best_state)
        self._optimizer = self._make_optimizer()
        warn_at_caller(
            f"{type(self).__name__}: the training loss {what} after "
            f"{self.n_iter_} epochs; the best parameters seen were restored. Lower "
            f"learning_rate_init (now {self.learning_rate_init})",
            ConvergenceWarning,
        )

    def _recover_from_interrupt(self, module_states, progress) -> None:
        # A partly applied epoch is discarded, and with it the optimizer state
        # that saw it.
        self._load_module_states(module_states)
        self._restore_progress(progress)
        self._optimizer = self._make_optimizer()
        warn_at_caller(
            f"{type(self).__name__}: training was interrupted; the model holds "
            "the parameters after its last completed epoch or partial_fit call "
            f"(n_iter_={self.n_iter_}). Continue with fit and warm_start=True, "
            "or with partial_fit",
            UserWarning,
        )

    def _module_states(self) -> dict:
        return {
            name: {
                k: v.detach().clone()
                for k, v in getattr(self, name).state_dict().items()
            }
            for name in self._module_names
        }

    def _load_module_states(self, states) -> None:
        for name, state in states.items():
            getattr(self, name).load_state_dict(state)

    def _validate_for_inference(self, X):
        """Validated X and a CPU tensor view of it; batches move to the device
        one at a time (see :meth:`_map_batches`), so device memory stays bounded."""
        check_is_fitted(self)
        X = validate_data(
            self,
            host_array(X),
            dtype=_FLOAT_DTYPES,
            ensure_all_finite="allow-nan",
            reset=False,
        )
        self._check_missing(X, fitting=False)
        _check_magnitude(X, "X")
        # In X's own dtype: batches are cast to the model's dtype one at a time,
        # never the whole of X at once.
        return X, to_tensor(X, "cpu", torch_dtype(X.dtype))

    def _reconstruction_loss(self, X_batch) -> torch.Tensor:
        codes = self._encode_batch(X_batch)
        with torch.no_grad():
            return self._sample_loss(X_batch)(self.decoder_(codes), X_batch)

    def _sample_loss(self, X_batch: torch.Tensor):
        """The per-sample loss of this batch: the mean over its observed
        entries when it has missing ones (one check per batch, not per step)."""
        missing = self._allows_missing and bool(torch.isnan(X_batch).any())
        return sample_loss(
            self._loss_name, self._binary_column_mask(X_batch.device), missing
        )

    def _binary_column_mask(self, device=None) -> torch.Tensor | None:
        """Columns reconstructed by cross-entropy under a squared-error loss
        (a bool tensor over the features), or None for one loss throughout."""
        return None

    def _map_batches(self, function, X_t) -> torch.Tensor:
        """Apply ``function`` batch by batch on the device; the result is on the CPU.

        Each batch is moved to the model's device and cast to its dtype there.

        Each batch's result is copied into one preallocated output: keeping
        the many small per-batch tensors alive until a final concatenation
        fragmented the heap (peak memory grew by 9 times the output's size on
        a million rows).
        """
        n_samples = X_t.shape[0]
        output = None
        slices = batch_slices(n_samples, INFERENCE_BATCH_SIZE)
        for rows in self._batch_progress(
            slices, n_samples, INFERENCE_BATCH_SIZE, "rows"
        ):
            result = function(X_t[rows].to(self.device_, self._dtype))
            if result.shape[0] != rows.stop - rows.start:
                # Assignment would broadcast a per-batch result over the rows.
                raise ValueError(
                    f"{function!r} must return one row per input row, got "
                    f"{result.shape[0]} for {rows.stop - rows.start}"
                )
            if output is None:
                output = torch.empty((n_samples, *result.shape[1:]), dtype=result.dtype)
            output[rows] = result
        return output

    def _export_fitted_state(self) -> dict:
        """The fitted state as plain data, for :func:`skgfe._persistence.save`.

        ``attributes`` holds the fitted attributes of ``_saved_attributes``
        that exist, as JSON values; ``modules`` the modules' state dicts on
        the CPU; ``dtype`` and ``device`` their names.
        """
        attributes = {}
        for name in self._saved_attributes:
            if hasattr(self, name):
                value = getattr(self, name)
                attributes[name] = (
                    value.tolist() if isinstance(value, np.ndarray) else value
                )
        return {
            "attributes": attributes,
            "dtype": str(self._dtype).removeprefix("torch."),
            "device": str(self.device_),
            "modules": {
                name: {
                    k: v.detach().cpu()
                    for k, v in getattr(self, name).state_dict().items()
                }
                for name in self._module_names
            },
        }

    def _restore_fitted_state(self, state: dict, device=None) -> None:
        """Make this unfitted estimator the one :meth:`_export_fitted_state` described.

        ``device`` None keeps the saved device when it exists here and falls
        back to the CPU (with a DeviceWarning) when it does not.
        """
        unknown = sorted(set(state["attributes"]) - set(self._saved_attributes))
        if unknown:
            raise ValueError(
                f"fitted attribute(s) {unknown} are not fitted attributes of "
                f"{type(self).__name__}"
            )
        for name, value in state["attributes"].items():
            setattr(self, name, self._restored_attribute(name, value))
        self._dtype = torch_dtype(np.dtype(state["dtype"]))
        self.device_ = (
            map_location(state["device"]) if device is None else resolve_device(device)
        )
        self._build_modules(self.n_features_in_, torch.Generator())
        for name in self._module_names:
            # Cast before loading: load_state_dict copies into the existing dtype.
            module = getattr(self, name).to(dtype=self._dtype)
            module.load_state_dict(state["modules"][name])
            module.to(self.device_).eval()
        self._optimizer = None

    def _restored_attribute(self, name: str, value):
        """A saved attribute's JSON value as the type the estimator holds."""
        if name == "feature_names_in_":
            return np.asarray(value, dtype=object)
        return value

    def __getstate__(self):
        # A copy: object.__getstate__ returns the instance's own __dict__, and
        # the edits below must not change the estimator being pickled.
        state = dict(super().__getstate__())
        # Torch state travels on the CPU so any machine can load it. The
        # optimizer travels as its state dict and is rebuilt around the
        # unpickled modules, so partial_fit goes on where it stopped when dask
        # moves the estimator between processes.
        optimizer = state.pop("_optimizer", None)
        if optimizer is not None:
            state["_optimizer_state"] = _to_cpu(optimizer.state_dict())
        for name in self._module_names:
            if name in state:
                state[name] = copy.deepcopy(state[name]).to("cpu")
        if "device_" in state:
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        optimizer_state = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if "device_" in state:
            self.device_ = map_location(state["device_"])
            for name in self._module_names:
                getattr(self, name).to(self.device_)
        if optimizer_state is not None:
            # load_state_dict moves the state to its parameters' device.
            self._optimizer = self._make_optimizer()
            self._optimizer.load_state_dict(optimizer_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = self._allows_missing
        return tags
