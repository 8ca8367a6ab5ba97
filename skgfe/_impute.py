"""GradientFlowImputer: missing entries filled in by a gradient flow encoder.

A decoder-only encoder finds a row's code from its observed entries alone (the
code minimises the reconstruction loss, which skips the holes); the decoder at
that code then fills the holes. The imputer composes a
:class:`~skgfe.GradientFlowEncoder` (the ``encoder_`` attribute) with what an
imputer adds: scales, ``missing_values``, the missing indicator and early
stopping on held-out observed entries.
"""

import copy
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import MissingIndicator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._compat import Interval, StrOptions, _fit_context, validate_data
from ._gradient_flow import GradientFlowEncoder
from ._utils import column_flags, warn_at_caller
from ._version import API_PAGES
from .exceptions import FlowSolverWarning

# The encoder parameters that a user of the imputer may set, passed as given.
_ENCODER_PARAMETERS = (
    "activation",
    "learning_rate_init",
    "batch_size",
    "device",
    "verbose",
    "n_threads",
)


def auto_n_components(n_samples: int, n_features: int) -> int:
    """``n_components='auto'``: a code of a third of the features.

    From benchmarks/results/impute_defaults.md: on wine, diabetes and
    breast_cancer with 30 % of the entries missing, codes of a third of the
    features reconstructed held-out observed entries as well as or better than
    a sixth or a half. ``n_samples`` does not enter: the flow time chosen on
    held-out entries (``tau='auto'``) is what adapts to few rows. At least
    2 where there are 3 features or more: a surface (the Swiss roll) needs two.
    """
    return int(max(1, min(n_features - 1, max(2, round(n_features / 3)))))


# tau='auto': the flow time of training, and the encoding flow times among
# which the held-out entries choose. A flow from z0 = 0 stopped at time tau
# shrinks the code towards 0, as a ridge penalty of about 1 / tau would: the
# shorter the flow, the less a code fits the noise of a few observed entries.
TRAINING_TAU = 3.0
# The shortest flows leave the code near 0, where the decoder gives about the
# column means: where the observed entries say little about the missing ones
# (the Swiss roll), the held-out entries pick them.
ENCODING_TAUS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _principal_axes_decoder(X, n_components, binary) -> torch.nn.Linear:
    """A linear decoder started at the principal axes of X (standardised, NaN
    read as the column mean 0), scaled so that codes have unit variance.

    From a small random start, short flows (small tau) give codes near 0 and
    the decoder learns slowly; early stopping then gives up on a plateau. The
    principal axes start it where a linear model of the table is already good.
    """
    filled = np.nan_to_num(X)
    _, singular_values, axes = np.linalg.svd(filled, full_matrices=False)
    weight = np.zeros((X.shape[1], n_components))
    k = min(n_components, axes.shape[0])
    weight[:, :k] = axes[:k].T * singular_values[:k] / np.sqrt(X.shape[0])
    # Binary columns: logits of their frequencies, as sigmoid reads the output.
    frequency = np.clip(np.nanmean(X, axis=0), 0.01, 0.99)
    bias = np.where(binary, np.log(frequency / (1 - frequency)), 0.0)
    decoder = torch.nn.Linear(n_components, X.shape[1], dtype=torch.float64)
    with torch.no_grad():
        decoder.weight.copy_(torch.from_numpy(weight))
        decoder.bias.copy_(torch.from_numpy(bias))
    return decoder


def _is_nan(value) -> bool:
    return isinstance(value, Real) and bool(np.isnan(value))


class GradientFlowImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing entries with a gradient flow encoder's reconstructions.

    A :class:`~skgfe.GradientFlowEncoder` is trained on the table with its
    holes: each row's loss is the mean over its observed entries, so no
    complete row is needed. A row with missing entries is encoded from its
    observed entries alone (the flow skips the holes) and the decoder's
    reconstruction at that code fills the holes. Observed entries are returned
    unchanged.

    Real-valued columns are standardised with the mean and standard deviation
    of their observed training entries (the encoder's loss weighs every column
    alike) and the imputations are brought back to the original units.
    Columns in ``binary_columns`` keep their [0, 1] values, take a
    cross-entropy loss and are imputed with probabilities (not thresholded:
    a probability is the imputation with the smallest expected squared error,
    and a later step can threshold it).

    A row with no observed entry has no code: it is imputed with the training
    means of the columns (the frequencies, for binary columns), as
    :class:`~sklearn.impute.SimpleImputer` would.

    Parameters
    ----------
    missing_values : int, float or np.nan, default=np.nan
        The placeholder of the missing entries. With a value other than NaN,
        X must not hold NaN.
    n_components : int or 'auto', default='auto'
        Dimension of the codes. 'auto': a third of the features, at least 2
        (1 for two features) and below ``n_features``; see
        :ref:`missing_values`.
    hidden_layer_sizes : int or tuple of int, default=()
        Hidden widths of the decoder. ``()``: a linear decoder, started at the
        principal axes of the training entries; it imputed held-out entries
        better than a hidden layer of 64 on every table measured, digits and
        the Swiss roll included (see :ref:`missing_values`).
    activation : str, default='elu'
        Activation of the decoder's hidden layers (see
        :class:`~skgfe.GradientFlowEncoder`).
    tau : float or 'auto', default='auto'
        Flow time of the encoder: a flow from the zero code stopped early
        shrinks the code towards 0 (much as a ridge penalty of about ``1 /
        tau`` would), so that it fits the noise of a few observed entries less.
        A number: the flow time of training and of imputation. 'auto': training
        flows of time 3, and the imputation's flow time chosen among 0.01 to
        100 by the error of the held-out observed entries (with
        ``early_stopping``; 3 without).
    binary_columns : array-like of int, str or bool, default=None
        Columns of binary (or [0, 1]) data, by index, by name (when X has
        string column names) or as a boolean mask: they take a cross-entropy
        loss and are imputed with probabilities.
    max_iter : int, default=200
        Largest number of training epochs.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the observed training entries
        (every row keeps at least one), train on the rest, score the held-out
        entries' squared error (in standardised units) after every epoch, keep
        the best decoder and stop when it has not improved by ``tol`` for
        ``n_iter_no_change`` epochs. Held-out entries, not rows: a row's code
        is found from its remaining entries, as at imputation time. When no
        entry can be held out (e.g. a single column) training runs
        ``max_iter`` epochs.
    validation_fraction : float, default=0.1
        Fraction of the observed training entries held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    tol : float, default=1e-4
        Improvement of the held-out error (or, without early stopping, of the
        training loss) that counts as one.
    learning_rate_init : float, default=1e-2
        Adam's learning rate.
    batch_size : int, default=32
        Rows per training mini-batch.
    device : {'auto', 'cpu', 'cuda'} or torch.device, default='auto'
        Where the encoder runs.
    add_indicator : bool, default=False
        Append the output of a :class:`~sklearn.impute.MissingIndicator`
        (the columns with missing entries in fit) to the imputed table.
    random_state : int, RandomState instance or None, default=None
        Seeds the decoder's initialisation, the held-out entries and the
        training order.
    verbose : int, default=0
        Print the held-out error after every epoch (and the encoder's
        progress) when positive.
    n_threads : int or 'auto', default='auto'
        CPU threads of the encoder (see :class:`~skgfe.GradientFlowEncoder`).

    Attributes
    ----------
    encoder_ : GradientFlowEncoder
        The fitted encoder (on standardised columns), the best one seen by
        early stopping; ``encoder_.tau`` is the flow time of imputation.
    mean_ : ndarray of shape (n_features,)
        Mean of each column's observed training entries; 0 for binary
        columns. Also the imputation of rows with nothing observed, after
        :attr:`statistics_`.
    scale_ : ndarray of shape (n_features,)
        Standard deviation of each column's observed training entries (1 where
        it is 0, and for binary columns).
    statistics_ : ndarray of shape (n_features,)
        Mean of each column's observed training entries, binary ones included:
        the imputation of a row with no observed entry.
    n_components_ : int
        The code dimension used.
    n_iter_ : int
        Training epochs run.
    validation_scores_ : list of float or None
        Minus the mean squared error of the held-out entries after every epoch
        (standardised units), None without early stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    indicator_ : MissingIndicator or None
        The missing indicator when ``add_indicator=True``.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen in fit, when they are all strings.

    See Also
    --------
    sklearn.impute.IterativeImputer : Imputes each column by a regression on
        the others.
    sklearn.impute.KNNImputer : Imputes with the nearest rows' values.
    skgfe.GradientFlowEncoder : The encoder, which takes rows with missing
        entries as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from skgfe.impute import GradientFlowImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 2)) @ rng.normal(size=(2, 5))
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> imputer = GradientFlowImputer(max_iter=5, random_state=0)
    >>> X_imputed = imputer.fit_transform(X)
    >>> bool(np.isnan(X_imputed).any())
    False
    """

    # The HTML repr links to this page of the API reference (see _base.py).
    _doc_link_module = "skgfe"
    _doc_link_template = API_PAGES + "skgfe.impute.{estimator_name}.html"

    _parameter_constraints: dict = {
        "missing_values": [Real],
        "n_components": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        # The encoder's fit checks the widths.
        "hidden_layer_sizes": [Integral, tuple, list],
        "tau": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "binary_columns": ["array-like", None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "add_indicator": ["boolean"],
        "random_state": ["random_state"],
        # The encoder's own constraints: the imputer's fit validates the
        # parameters it passes on (nested validation is skipped).
        **{
            name: GradientFlowEncoder._parameter_constraints[name]
            for name in _ENCODER_PARAMETERS
        },
    }

    def __init__(
        self,
        *,
        missing_values=np.nan,
        n_components="auto",
        hidden_layer_sizes=(),
        activation="elu",
        tau="auto",
        binary_columns=None,
        max_iter=200,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        learning_rate_init=1e-2,
        batch_size=32,
        device="auto",
        add_indicator=False,
        random_state=None,
        verbose=0,
        n_threads="auto",
    ):
        self.missing_values = missing_values
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.tau = tau
        self.binary_columns = binary_columns
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.device = device
        self.add_indicator = add_indicator
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads

    # ----------------------------------------------------------------- helpers

    def _validate(self, X, reset):
        return validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan" if _is_nan(self.missing_values) else True,
            copy=not reset,
        )

    def _missing_mask(self, X):
        if _is_nan(self.missing_values):
            return np.isnan(X)
        return X == self.missing_values

    def _standardised(self, X, missing):
        """X in standardised units, NaN in its holes (the encoder's input)."""
        standardised = (X - self.mean_) / self.scale_
        standardised[missing] = np.nan
        return standardised

    # ---------------------------------------------------------------------- fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the encoder on the observed entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, with missing entries marked by ``missing_values``.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted imputer.
        """
        X = self._validate(X, reset=True)
        missing = self._missing_mask(X)
        empty = np.flatnonzero(missing.all(axis=0))
        if empty.size:
            raise ValueError(
                f"X has {empty.size} column(s) with no observed entry in fit, "
                f"columns {empty[:10].tolist()}; an imputer needs at least one "
                "observed value per column: drop those columns"
            )
        binary = self._binary_flags(X.shape[1])
        observed = np.where(missing, np.nan, X).astype(np.float64)
        self.statistics_ = np.nanmean(observed, axis=0)
        self.mean_ = np.where(binary, 0.0, self.statistics_)
        scale = np.nanstd(observed, axis=0)
        self.scale_ = np.where(binary | (scale == 0), 1.0, scale)
        rows = ~missing.all(axis=1)
        X_train = self._standardised(X, missing)[rows]

        n_samples, n_features = X_train.shape
        self.n_components_ = (
            auto_n_components(n_samples, n_features)
            if self.n_components == "auto"
            else self.n_components
        )
        random_state = check_random_state(self.random_state)
        seeds = random_state.randint(np.iinfo(np.int32).max, size=self.max_iter + 1)
        held_out = (
            self._held_out_entries(~np.isnan(X_train), random_state)
            if self.early_stopping
            else None
        )
        without_held_out = (
            X_train if held_out is None else np.where(held_out, np.nan, X_train)
        )
        self.encoder_ = GradientFlowEncoder(
            n_components=self.n_components_,
            decoder=(
                None
                if np.size(self.hidden_layer_sizes)
                else _principal_axes_decoder(
                    without_held_out, self.n_components_, binary
                )
            ),
            hidden_layer_sizes=self.hidden_layer_sizes,
            binary_columns=binary if binary.any() else None,
            tau=TRAINING_TAU if self.tau == "auto" else self.tau,
            tol=self.tol,
            random_state=int(seeds[0]),
            **{name: getattr(self, name) for name in _ENCODER_PARAMETERS},
        )
        if held_out is None or not held_out.any():
            self.validation_scores_ = self.best_validation_score_ = None
            self.encoder_.set_params(max_iter=self.max_iter).fit(X_train)
            self.n_iter_ = self.encoder_.n_iter_
        else:
            self._fit_with_held_out_entries(X_train, held_out, seeds)
        if self.add_indicator:
            self.indicator_ = MissingIndicator(
                missing_values=self.missing_values, error_on_new=False
            ).fit(X)
        else:
            self.indicator_ = None
        return self

    def _binary_flags(self, n_features):
        if self.binary_columns is None:
            return np.zeros(n_features, dtype=bool)
        return column_flags(
            self.binary_columns,
            n_features,
            getattr(self, "feature_names_in_", None),
            "binary_columns",
        )

    def _held_out_entries(self, observed, random_state):
        """A mask of ``validation_fraction`` of the observed entries; every row
        keeps at least one observed entry for its code."""
        held_out = observed & (
            random_state.random_sample(observed.shape) < (self.validation_fraction)
        )
        # Rows left with nothing give back the held-out entry drawn first.
        emptied = np.flatnonzero(held_out.sum(axis=1) == observed.sum(axis=1))
        held_out[emptied, np.argmax(held_out[emptied], axis=1)] = False
        return held_out

    def _fit_with_held_out_entries(self, X, held_out, seeds):
        """Train epoch by epoch on X without the held-out entries; keep the
        encoder that reconstructs them best."""
        X_train = np.where(held_out, np.nan, X)
        rows = held_out.any(axis=1)
        targets = X[rows][held_out[rows]]
        X_scored = X_train[rows]
        self.encoder_.set_params(max_iter=1, warm_start=True)
        self.validation_scores_ = []
        self.best_validation_score_ = -np.inf
        best, no_improvement = None, 0
        for epoch in range(self.max_iter):
            # warm_start continues from the last epoch; a seed per epoch gives
            # each epoch its own shuffle and its own random training starts.
            self.encoder_.set_params(random_state=int(seeds[epoch]))
            with warnings.catch_warnings():
                # One epoch per fit: the encoder's max_iter always "ends" it.
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.encoder_.fit(X_train)
            score = -self._held_out_error(X_scored, held_out[rows], targets)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Epoch {epoch + 1}: held-out entries' MSE={-score:.6g}")
            if score > self.best_validation_score_ + self.tol or best is None:
                best, no_improvement = copy.deepcopy(self.encoder_), 0
            else:
                no_improvement += 1
            self.best_validation_score_ = max(self.best_validation_score_, score)
            if no_improvement >= self.n_iter_no_change:
                break
        else:
            warn_at_caller(
                f"GradientFlowImputer: max_iter={self.max_iter} epochs reached "
                "before the held-out entries' error stopped improving by "
                f"tol={self.tol} for n_iter_no_change={self.n_iter_no_change} "
                "epochs; increase max_iter",
                ConvergenceWarning,
            )
        self.n_iter_ = epoch + 1
        self.encoder_ = best.set_params(warm_start=False, max_iter=self.max_iter)
        if self.tau == "auto":
            self._choose_encoding_tau(X_scored, held_out[rows], targets)

    def _held_out_error(self, X_scored, held_out, targets) -> float:
        reconstructions = self.encoder_.inverse_transform(
            self.encoder_.transform(X_scored)
        )
        return float(np.mean((reconstructions[held_out] - targets) ** 2))

    def _choose_encoding_tau(self, X_scored, held_out, targets) -> None:
        """Set the encoder's flow time to the one of ``ENCODING_TAUS`` that
        reconstructs the held-out entries best (the decoder stays as trained)."""
        errors = {}
        for tau in ENCODING_TAUS:
            self.encoder_.set_params(tau=tau)
            with warnings.catch_warnings():
                # A long flow that runs out of steps is judged by its error.
                warnings.simplefilter("ignore", FlowSolverWarning)
                errors[tau] = self._held_out_error(X_scored, held_out, targets)
        self.encoder_.set_params(tau=min(errors, key=errors.get))

    # ---------------------------------------------------------------- transform

    def transform(self, X):
        """Impute the missing entries of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with missing entries marked by ``missing_values``.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features_out)
            X with its missing entries imputed (observed entries unchanged),
            followed by the missing indicator's columns when
            ``add_indicator=True``.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        missing = self._missing_mask(X)
        indicator = None if self.indicator_ is None else self.indicator_.transform(X)
        X[missing.all(axis=1)] = self.statistics_.astype(X.dtype)
        partial = np.flatnonzero(missing.any(axis=1) & ~missing.all(axis=1))
        if partial.size:
            standardised = self._standardised(X[partial], missing[partial])
            reconstructions = self.encoder_.inverse_transform(
                self.encoder_.transform(standardised)
            )
            imputed = reconstructions * self.scale_ + self.mean_
            X[partial] = np.where(missing[partial], imputed, X[partial])
        if indicator is None:
            return X
        return np.hstack([X, indicator.astype(X.dtype)])

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; None uses ``feature_names_in_`` (or
            ``x0, x1, ...``).

        Returns
        -------
        feature_names_out : ndarray of str
            The input names, then the missing indicator's when
            ``add_indicator=True``.
        """
        check_is_fitted(self)
        names = super().get_feature_names_out(input_features)
        if self.indicator_ is None:
            return names
        # The indicator saw the validated array, without column names.
        return np.concatenate([names, self.indicator_.get_feature_names_out(names)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = _is_nan(self.missing_values)
        return tags
