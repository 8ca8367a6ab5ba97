"""The layer of estimators whose codes are differentiable in the decoder.

GradientFlowEncoder and AutoencoderBaseline can backpropagate a loss on their
codes into their modules (through the flow's adjoint, or through the encoder),
which is what the pair loss of the geometry paper (``distortion_weight``,
``bending_weight``, ``geodesic_sources``; :mod:`skgfe._geometry`) and the
likelihood of rectangular flows (``scoring``, ``prior``, ``density_weight``;
:mod:`skgfe._likelihood`) need. OneBitAutoencoder's bits have no gradient and
use :class:`~skgfe._base.BaseDecoderEstimator` alone.
"""

from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import torch

from ._base import BaseDecoderEstimator, _inference_threads
from ._compat import Interval, StrOptions, _fit_context
from ._geometry import make_pair_objective
from ._likelihood import LikelihoodMixin
from ._losses import LOSSES
from ._pair_data import check_pair_data
from ._utils import column_flags, to_numpy


class DifferentiableCodesEstimator(LikelihoodMixin, BaseDecoderEstimator):
    """Base of the estimators whose codes carry a gradient: pair loss, likelihood.

    A subclass adds the hook ``_backward_code_loss`` to those of
    :class:`~skgfe._base.BaseDecoderEstimator`.
    """

    _parameter_constraints: dict = {
        **BaseDecoderEstimator._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "binary_columns": ["array-like", None],
        "distortion_weight": [Interval(Real, 0, None, closed="left")],
        "bending_weight": [Interval(Real, 0, None, closed="left")],
        "geodesic_sources": [Interval(Integral, 0, None, closed="left")],
        **LikelihoodMixin._likelihood_parameter_constraints,
    }

    # With scoring='likelihood': the noise variance (a float or None) and the
    # prior as float64 arrays.
    _saved_attributes = (
        *BaseDecoderEstimator._saved_attributes,
        "noise_variance_",
        "prior_weights_",
        "prior_means_",
        "prior_covariances_",
    )

    @abstractmethod
    def __init__(
        self,
        n_components,
        *,
        loss,
        binary_columns,
        distortion_weight,
        bending_weight,
        geodesic_sources,
        scoring,
        prior,
        density_weight,
        density_warmup,
        logdet_method,
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
        super().__init__(
            n_components,
            decoder=decoder,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            optimizer=optimizer,
            optimizer_params=optimizer_params,
            learning_rate_init=learning_rate_init,
            batch_size=batch_size,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            warm_start=warm_start,
            device=device,
            random_state=random_state,
            verbose=verbose,
            n_threads=n_threads,
        )
        self.loss = loss
        self.binary_columns = binary_columns
        self.distortion_weight = distortion_weight
        self.bending_weight = bending_weight
        self.geodesic_sources = geodesic_sources
        self.scoring = scoring
        self.prior = prior
        self.density_weight = density_weight
        self.density_warmup = density_warmup
        self.logdet_method = logdet_method

    @property
    def _loss_name(self) -> str:
        return self.loss

    @property
    def _uses_pair_loss(self) -> bool:
        return self.distortion_weight > 0 or self.bending_weight > 0

    @abstractmethod
    def _backward_code_loss(self, X: torch.Tensor, code_loss) -> torch.Tensor:
        """Backpropagate ``code_loss(codes of X)`` into the parameters; return it."""

    def _check_params(self, n_features):
        super()._check_params(n_features)
        self._check_likelihood_params(n_features)
        if self.binary_columns is not None:
            if self.loss != "mse":
                raise ValueError(
                    "binary_columns gives the columns that take the cross-entropy "
                    "under loss='mse'; with loss='bce' every column does. Set "
                    "binary_columns=None or loss='mse'"
                )
            if self.scoring == "likelihood":
                raise ValueError(
                    "scoring='likelihood' has one noise model for all columns; "
                    "it does not combine with binary_columns"
                )
        if self.geodesic_sources > 0 and self.distortion_weight == 0:
            raise ValueError(
                f"geodesic_sources={self.geodesic_sources!r} adds long-range pairs to "
                "the distortion term, which is off; set distortion_weight > 0 or "
                "geodesic_sources=0"
            )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, pairs=None, pair_distances=None, midpoints=None):
        """Fit the model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored.
        pairs : array-like of shape (n_pairs, 2), default=None
            Row indices of pairs of nearby samples of X, for the pair loss
            (``distortion_weight``, ``bending_weight``); ignored when both
            weights are zero. None with ``distortion_weight > 0``: each sample
            is paired with its 5 nearest neighbours in X.
        pair_distances : array-like of shape (n_pairs,), default=None
            Local (geodesic) distances of the pairs; None: their Euclidean
            distances in X.
        midpoints : array-like of shape (n_pairs, n_features), default=None
            Riemannian midpoints of the pairs, in the space of X (after any
            preceding Pipeline step); required when ``bending_weight > 0``.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(
            X, pairs=pairs, pair_distances=pair_distances, midpoints=midpoints
        )

    @_inference_threads
    def score_samples(self, X):
        """Return a per-sample score, higher is better, chosen by ``scoring``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            With ``scoring='reconstruction'``: ``-loss(x, decoder(encode(x)))``,
            the loss being the mean over features of the squared error
            (``loss='mse'``) or of the binary cross-entropy (``loss='bce'``).
            With ``scoring='likelihood'``: the log-likelihood in nats,
            ``log p_Z(z) - 1/2 log det(J^T J) + log p_noise(x - decoder(z))`` at
            the code ``z`` of ``transform``, ``J`` the decoder Jacobian there
            (see :ref:`likelihood`).
        """
        if self.scoring != "likelihood":
            return super().score_samples(X)
        X, X_t = self._validate_for_inference(X)
        self._check_density_fitted()
        return to_numpy(self._map_batches(self._log_likelihood, X_t), np.float64)

    def score(self, X, y=None):
        """Return the mean of :meth:`score_samples` (higher is better).

        With ``scoring='reconstruction'`` (default) it is minus the mean
        reconstruction loss; with ``scoring='likelihood'`` the mean
        log-likelihood in nats per sample.

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
        return super().score(X, y)

    def _binary_column_flags(self, n_features) -> np.ndarray:
        """``binary_columns`` as a boolean mask over the features (checked)."""
        return column_flags(
            self.binary_columns,
            n_features,
            getattr(self, "feature_names_in_", None),
            "binary_columns",
        )

    def _binary_column_mask(self, device=None):
        if self.binary_columns is None:
            return None
        flags = self._binary_column_flags(self.n_features_in_)
        return torch.as_tensor(flags, device=device)

    def _check_training_data(self, X):
        super()._check_training_data(X)
        if self.binary_columns is None:
            return
        binary = X[:, self._binary_column_flags(X.shape[1])]
        if binary.size and (np.nanmin(binary) < 0 or np.nanmax(binary) > 1):
            raise ValueError(
                "binary_columns must hold values in [0, 1] (their loss is the "
                f"cross-entropy), got values in [{np.nanmin(binary):.3g}, "
                f"{np.nanmax(binary):.3g}]"
            )

    def _settings_without_missing(self, fitting):
        if self.scoring == "likelihood":
            return "scoring='likelihood' (its noise model needs every entry)"
        if fitting and self._uses_pair_loss:
            return (
                "the pair loss (distortion_weight, bending_weight: its pairs are "
                "distances between complete rows)"
            )
        return None

    def _check_fit_data(self, X, *, pairs, pair_distances, midpoints):
        return check_pair_data(
            X,
            pairs,
            pair_distances,
            midpoints,
            distortion_weight=self.distortion_weight,
            bending_weight=self.bending_weight,
        )

    def _make_auxiliary_step(self, X_t, fit_data, seed):
        if fit_data is None:
            return None
        objective = make_pair_objective(
            X_t,
            fit_data,
            distortion_weight=self.distortion_weight,
            bending_weight=self.bending_weight,
            geodesic_sources=self.geodesic_sources,
            batch_size=self.batch_size,
            seed=seed,
        )

        def train_pair_batch(generator):
            return self._backward_code_loss(*objective.draw(generator))

        return train_pair_batch

    def _after_fit(self, X_train, generator):
        if self.scoring == "likelihood":
            self._fit_density(X_train, generator)

    def _restored_attribute(self, name, value):
        if name.startswith("prior_"):
            return np.asarray(value, dtype=np.float64)
        return super()._restored_attribute(name, value)
