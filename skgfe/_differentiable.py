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
from ._likelihood import LikelihoodMixin, residual_noise_variance
from ._losses import LOSSES, reconstruction_link
from ._pair_data import check_pair_data
from ._uncertainty import NOISE_MODELS, decoder_laplace
from ._utils import column_flags, to_numpy

# Fitted at the end of fit with scoring='likelihood' only.
_DENSITY_ATTRIBUTES = (
    "noise_variance_",
    "prior_weights_",
    "prior_means_",
    "prior_covariances_",
)


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
    _saved_attributes = (*BaseDecoderEstimator._saved_attributes, *_DENSITY_ATTRIBUTES)

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

    @_inference_threads
    def code_uncertainty(self, X, *, return_cov=False, noise_variance=None):
        """Encode X and return the Laplace uncertainty of every code.

        The code of a sample is pinned down by the curvature of its
        log-likelihood there. The Laplace (Gauss-Newton) approximation gives
        each code the covariance ``(J^T W J)^-1``, ``J`` the decoder Jacobian at
        the code and ``W`` the diagonal Fisher information of the output
        entries under the noise model of ``loss``: ``1 / noise_variance`` per
        entry for 'mse', ``s (1 - s)`` for 'bce' (``s`` the reconstructed
        probability). Missing entries (NaN), where the estimator accepts them,
        have ``W = 0``. See :ref:`uncertainty` for what it ignores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        return_cov : bool, default=False
            Return each code's covariance matrix instead of the standard
            deviations of its components.
        noise_variance : float, default=None
            Variance of the Gaussian noise of ``loss='mse'`` (must be None for
            'bce'). None takes ``noise_variance_`` when ``fit`` ran with
            ``scoring='likelihood'``, else the estimate from the residuals of X
            itself, ``sum(r**2) / sum(max(n_observed - n_components, 0))`` over
            the rows of X (``n_observed``: a row's observed entries); the
            result of a row then depends on the other rows of X. Pass a value
            (e.g. one estimated on held-out data) for results row by row.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            The codes of :meth:`transform`, in the dtype of X.
        code_std : ndarray of shape (n_samples, n_components)
            Without ``return_cov``: the standard deviation of every code
            component, in the dtype of X; ``inf`` for the rows whose precision
            ``J^T W J`` is singular (see :ref:`uncertainty`).
        code_cov : ndarray of shape (n_samples, n_components, n_components)
            With ``return_cov=True``, instead of ``code_std``: the covariance
            of every code, all ``inf`` for the rows whose precision is singular.

        Examples
        --------
        >>> import numpy as np
        >>> from skgfe import GradientFlowEncoder
        >>> X = np.random.default_rng(0).normal(size=(50, 6))
        >>> gfe = GradientFlowEncoder(n_components=2, max_iter=2, random_state=0)
        >>> codes, code_std = gfe.fit(X).code_uncertainty(X)
        >>> codes.shape, code_std.shape
        ((50, 2), (50, 2))
        >>> codes, code_cov = gfe.code_uncertainty(X[:5], return_cov=True)
        >>> code_cov.shape
        (5, 2, 2)
        """
        X, X_t = self._validate_for_inference(X)
        known_variance = self._check_noise_variance(noise_variance, X)
        k = self.n_components

        def laplace_codes(X_batch):
            codes, _, laplace, squared_residuals = self._laplace_batch(X_batch)
            return torch.cat(
                [
                    codes.double(),
                    laplace.covariance.flatten(start_dim=1),
                    squared_residuals,
                ],
                dim=1,
            )

        packed = self._map_batches(laplace_codes, X_t)
        variance = self._noise_variance_of(known_variance, packed[:, -1], X)
        codes = to_numpy(packed[:, :k], X.dtype)
        covariance = variance * packed[:, k:-1].reshape(-1, k, k)
        if return_cov:
            return codes, to_numpy(covariance, X.dtype)
        return codes, to_numpy(covariance.diagonal(dim1=1, dim2=2).sqrt(), X.dtype)

    @_inference_threads
    def reconstruct(self, X, *, return_std=False, noise_variance=None):
        """Reconstruct X through its codes, with the Laplace standard deviations.

        The reconstruction is ``inverse_transform(transform(X))`` in one pass;
        for a missing entry (NaN), where the estimator accepts them, it is the
        imputed value. Its standard deviation is the delta method's
        ``sqrt(diag(J C J^T))`` with ``C`` the code covariance of
        :meth:`code_uncertainty`, times the derivative of the sigmoid for
        ``loss='bce'``: the uncertainty of the noise-free value that the code
        pins down, not of a new noisy measurement (for 'mse', add
        ``noise_variance`` to the variance for that).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct.
        return_std : bool, default=False
            Also return the standard deviation of every reconstructed entry.
        noise_variance : float, default=None
            As in :meth:`code_uncertainty`; used with ``return_std`` only.

        Returns
        -------
        X_reconstructed : ndarray of shape (n_samples, n_features)
            Reconstructions (probabilities for ``loss='bce'``), in the dtype of X.
        X_reconstructed_std : ndarray of shape (n_samples, n_features)
            With ``return_std=True``: the standard deviation of every
            reconstructed entry, in the dtype of X; ``inf`` on the rows whose
            code precision is singular.

        Examples
        --------
        >>> import numpy as np
        >>> from skgfe import GradientFlowEncoder
        >>> X = np.random.default_rng(0).normal(size=(50, 6))
        >>> gfe = GradientFlowEncoder(n_components=2, max_iter=2, random_state=0)
        >>> X_reconstructed, X_std = gfe.fit(X).reconstruct(X, return_std=True)
        >>> X_reconstructed.shape, X_std.shape
        ((50, 6), (50, 6))
        """
        X, X_t = self._validate_for_inference(X)
        link = reconstruction_link(self.loss, self._binary_column_mask(self.device_))
        if not return_std:

            def reconstruct_batch(X_batch):
                codes = self._encode_batch(X_batch)
                with torch.no_grad():
                    return link(self.decoder_(codes))

            return to_numpy(self._map_batches(reconstruct_batch, X_t), X.dtype)
        known_variance = self._check_noise_variance(noise_variance, X)
        link_derivative = NOISE_MODELS[self.loss].link_derivative

        def laplace_reconstruction(X_batch):
            _, output, laplace, squared_residuals = self._laplace_batch(X_batch)
            # The delta method through the link: d link / d output per entry.
            output_std = (
                link_derivative(output.double()) * laplace.output_variance.sqrt()
            )
            return torch.cat(
                [link(output).double(), output_std, squared_residuals], dim=1
            )

        packed = self._map_batches(laplace_reconstruction, X_t)
        variance = self._noise_variance_of(known_variance, packed[:, -1], X)
        n_features = X.shape[1]
        std = np.sqrt(variance) * packed[:, n_features:-1]
        return to_numpy(packed[:, :n_features], X.dtype), to_numpy(std, X.dtype)

    def _laplace_batch(self, X_batch):
        """Codes, decoder outputs, Laplace result at unit noise scale, and the
        squared residual norms over the observed entries, (n, 1), of a batch."""
        codes = self._encode_batch(X_batch)
        observed = ~torch.isnan(X_batch)
        with torch.no_grad():
            output = self.decoder_(codes)
            fisher = NOISE_MODELS[self.loss].fisher_information(output)
            laplace = decoder_laplace(
                self.decoder_, codes, torch.where(observed, fisher, 0.0)
            )
            residuals = torch.where(observed, output - X_batch, 0.0)
        squared_residuals = residuals.double().square().sum(dim=1, keepdim=True)
        return codes, output, laplace, squared_residuals

    def _check_noise_variance(self, noise_variance, X):
        """The noise variance that scales the Laplace covariances, if known before
        encoding: the given or fitted one for 'mse', 1 for 'bce' (the Bernoulli
        Fisher information has no free scale); None when it comes from the
        residuals of X, which this checks can estimate it."""
        if self.binary_columns is not None:
            raise ValueError(
                "code_uncertainty and reconstruct(return_std=True) take one noise "
                "model for every column; with binary_columns the Gaussian and "
                "Bernoulli columns would need one each, which is not implemented"
            )
        if self.loss != "mse":
            if noise_variance is not None:
                raise ValueError(
                    f"noise_variance={noise_variance!r} applies to loss='mse' only; "
                    f"loss={self.loss!r} has no noise variance, pass None"
                )
            return 1.0
        if noise_variance is not None:
            if (
                not isinstance(noise_variance, Real)
                or isinstance(noise_variance, (bool, np.bool_))
                or not 0 < noise_variance < np.inf
            ):
                raise ValueError(
                    "noise_variance must be a positive finite float or None, got "
                    f"{noise_variance!r}"
                )
            return float(noise_variance)
        fitted = getattr(self, "noise_variance_", None)
        if fitted is not None:
            return fitted
        if self._residual_degrees_of_freedom(X) == 0:
            raise ValueError(
                "noise_variance=None estimates the noise variance from the residuals "
                f"of X, but X's {X.shape[0]} row(s) have no more observed entries "
                f"than n_components={self.n_components}, so their residuals are "
                "zero; pass noise_variance, or fit with scoring='likelihood'"
            )
        return None

    def _noise_variance_of(self, known_variance, squared_residuals, X) -> float:
        if known_variance is not None:
            return known_variance
        return residual_noise_variance(
            float(squared_residuals.sum()),
            self._residual_degrees_of_freedom(X),
            float(np.nanmean(np.square(X, dtype=np.float64))),
        )

    def _residual_degrees_of_freedom(self, X) -> int:
        # A row with no more observed entries than components fits them exactly.
        n_observed = X.shape[1] - np.isnan(X).sum(axis=1)
        return int(np.maximum(n_observed - self.n_components, 0).sum())

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
            return
        # A previous fit's noise variance and prior describe another decoder:
        # kept, they would scale code_uncertainty and score_samples silently.
        for name in _DENSITY_ATTRIBUTES:
            if hasattr(self, name):
                delattr(self, name)

    def _restored_attribute(self, name, value):
        if name.startswith("prior_"):
            return np.asarray(value, dtype=np.float64)
        return super()._restored_attribute(name, value)
