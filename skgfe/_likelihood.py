"""Log-likelihood of samples under a decoder and a left inverse (rectangular flows).

A decoder ``D`` and a left inverse ``z(x)`` (GFE's flow, or an encoder) define,
for a latent prior ``p_Z`` and a noise model off the decoded manifold, the
log-likelihood of a sample ``x`` with code ``z = z(x)``, residual
``r = x - D(z)`` and Jacobian ``J = dD/dz`` at ``z``::

    log p(x) = log p_Z(z) - 1/2 log det(J^T J) + log p_noise(r)

The first two terms are the density of ``D(z)`` on the k-dimensional manifold
(Caterini et al., 2021); the last is the noise model of the reconstruction
loss. :class:`LikelihoodMixin` wires this to the estimators' parameters
(``scoring``, ``prior``, ``density_weight``, ``density_warmup``,
``logdet_method``) for
:class:`~skgfe._differentiable.DifferentiableCodesEstimator`.
"""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

from ._compat import Interval, StrOptions
from ._logdet import logdet_gradient_surrogate, logdet_jtj, rademacher_probes
from ._losses import LOSSES
from ._utils import draw_seed, to_numpy

# Training uses the exact log-determinant up to this many components (k
# Jacobian-vector products per sample), the stochastic gradient above it.
EXACT_LOGDET_MAX_COMPONENTS = 16

# Mixture components of prior='gmm' (fewer when there are fewer codes).
GMM_MAX_COMPONENTS = 10

# Hutchinson probes per sample and training step, as in rectangular flows.
_N_PROBES = 1
_CG_TOL = 1e-5

_LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` per row; shape (n,)."""
    return -0.5 * (z.square().sum(dim=-1) + z.shape[-1] * _LOG_2PI)


def mixture_log_density(z: torch.Tensor, weights, means, covariances) -> torch.Tensor:
    """Log-density of a Gaussian mixture at every row of ``z``; shape (n,).

    Parameters
    ----------
    z : Tensor of shape (n, k)
        Points.
    weights : Tensor of shape (n_mix,)
    means : Tensor of shape (n_mix, k)
    covariances : Tensor of shape (n_mix, k, k)
        Full covariance matrices.
    """
    factors = torch.linalg.cholesky(covariances)
    # (n, n_mix, k): every point against every component.
    centred = (z.unsqueeze(1) - means).unsqueeze(-1)
    whitened = torch.linalg.solve_triangular(factors, centred, upper=False).squeeze(-1)
    half_logdet = factors.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
    component = -0.5 * (whitened.square().sum(dim=-1) + z.shape[-1] * _LOG_2PI)
    return torch.logsumexp(component - half_logdet + weights.log(), dim=1)


def fit_prior(codes: np.ndarray, prior, random_state: int):
    """Fit the latent prior to training codes; return its mixture arrays.

    Parameters
    ----------
    codes : ndarray of shape (n_samples, k)
        Training codes.
    prior : {'normal', 'gmm'} or GaussianMixture or BayesianGaussianMixture
        'normal' is the standard normal (nothing is fitted); 'gmm' a mixture of
        up to ``GMM_MAX_COMPONENTS`` full-covariance Gaussians; a mixture
        instance is cloned and fitted.
    random_state : int
        Seed of the 'gmm' mixture.

    Returns
    -------
    weights, means, covariances : ndarray
        Of shapes (n_mix,), (n_mix, k) and (n_mix, k, k).
        In float64.
    """
    k = codes.shape[1]
    if isinstance(prior, str) and prior == "normal":
        return np.ones(1), np.zeros((1, k)), np.eye(k)[None]
    if isinstance(prior, str):
        mixture = GaussianMixture(
            n_components=min(GMM_MAX_COMPONENTS, len(codes)),
            covariance_type="full",
            random_state=random_state,
        )
    else:
        mixture = clone(prior)
    mixture.fit(codes)
    return (
        np.asarray(mixture.weights_, dtype=np.float64),
        np.asarray(mixture.means_, dtype=np.float64),
        _full_covariances(mixture, k),
    )


def _full_covariances(mixture, k) -> np.ndarray:
    covariances = np.asarray(mixture.covariances_, dtype=np.float64)
    n_mix = mixture.means_.shape[0]
    if mixture.covariance_type == "full":
        return covariances
    if mixture.covariance_type == "tied":
        return np.broadcast_to(covariances, (n_mix, k, k)).copy()
    if mixture.covariance_type == "diag":
        return covariances[:, :, None] * np.eye(k)
    return covariances[:, None, None] * np.eye(k)  # spherical


def noise_log_likelihood(loss_name, output, X, noise_variance, n_components):
    """Log-likelihood in nats of ``X`` around the decoder ``output``, per sample.

    ``loss='mse'``: the residual ``r = X - output`` is isotropic Gaussian noise
    of variance ``noise_variance`` in the ``n_features - n_components``
    directions normal to the decoded manifold (at a converged code, the
    residual is orthogonal to the manifold), i.e.
    ``-(n_features - k)/2 log(2 pi noise_variance) - ||r||^2 / (2 noise_variance)``.
    ``loss='bce'``: the Bernoulli log-likelihood of ``X`` under
    ``sigmoid(output)``, ``-n_features * bce``.
    """
    n_features = X.shape[1]
    per_feature_loss = LOSSES[loss_name][0](output, X)
    if loss_name == "bce":
        return -n_features * per_feature_loss
    normal_dims = n_features - n_components
    return -0.5 * (
        normal_dims * math.log(2 * math.pi * noise_variance)
        + n_features * per_feature_loss / noise_variance
    )


def residual_noise_variance(
    squared_residual_sum: float, degrees_of_freedom: int, mean_square: float
) -> float:
    """The Gaussian noise variance estimated from the residuals of the codes.

    ``squared_residual_sum / degrees_of_freedom``: at a converged code, a row
    with ``n`` entries leaves ``n - n_components`` directions to its residual.
    A perfect fit would give a zero variance and infinite densities; the floor
    is float64's resolution of the data's scale, ``eps * max(mean_square, 1)``
    (``mean_square``: the mean of the squared data).
    """
    floor = np.finfo(np.float64).eps * max(mean_square, 1.0)
    return max(squared_residual_sum / degrees_of_freedom, floor)


class LikelihoodMixin:
    """Likelihood scores and density training for the decoder estimators.

    The host provides ``decoder_``, ``_encode_batch``, ``_map_batches``,
    ``loss``, ``n_components``, ``device_``, ``_dtype`` and ``n_iter_``.
    """

    _likelihood_parameter_constraints: dict = {
        "scoring": [StrOptions({"reconstruction", "likelihood"})],
        "prior": [
            StrOptions({"normal", "gmm"}),
            GaussianMixture,
            BayesianGaussianMixture,
        ],
        "density_weight": [Interval(Real, 0, None, closed="left")],
        "density_warmup": [Interval(Integral, 0, None, closed="left")],
        "logdet_method": [StrOptions({"auto", "exact", "stochastic"})],
    }

    def _check_likelihood_params(self, n_features: int) -> None:
        uses_density = self.scoring == "likelihood" or self.density_weight > 0
        if uses_density and self.n_components >= n_features:
            raise ValueError(
                f"scoring={self.scoring!r} and density_weight={self.density_weight!r} "
                f"need n_components < n_features for a density on the decoded "
                f"manifold, got n_components={self.n_components} and "
                f"n_features={n_features}; lower n_components or use "
                "scoring='reconstruction' and density_weight=0"
            )

    def _fit_density(self, X_train: torch.Tensor, generator: torch.Generator) -> None:
        """Fit the noise variance and the prior on the training codes (the two-step)."""
        encoded = self._map_batches(self._encode_with_residual, X_train)
        codes, squared_residuals = encoded[:, :-1], encoded[:, -1]
        if self.loss == "mse":
            normal_dims = X_train.shape[1] - self.n_components
            self.noise_variance_ = residual_noise_variance(
                float(squared_residuals.double().sum()),
                len(codes) * normal_dims,
                float(X_train.square().mean()),
            )
        else:
            self.noise_variance_ = None
        seed = draw_seed(generator)
        weights, means, covariances = fit_prior(
            to_numpy(codes, np.float64), self.prior, seed
        )
        self.prior_weights_ = weights
        self.prior_means_ = means
        self.prior_covariances_ = covariances

    def _encode_with_residual(self, X_batch):
        """Codes and squared residual norms of a batch, side by side: (n, k + 1)."""
        codes = self._encode_batch(X_batch)
        with torch.no_grad():
            residual = self.decoder_(codes) - X_batch
        return torch.cat([codes, residual.square().sum(dim=1, keepdim=True)], dim=1)

    def _add_density_loss(self, loss, codes, generator):
        """``loss`` minus the weighted log-density of the codes (a training objective).

        The log-density is ``log N(z; 0, I) - 1/2 log det(J^T J)`` in nats per
        sample, averaged over the batch. Its weight ramps linearly over the
        first ``density_warmup`` epochs.
        """
        weight = self._density_weight_now()
        if weight == 0:
            return loss
        return (
            loss
            - weight
            * (
                standard_normal_log_density(codes)
                - 0.5 * self._training_logdet(codes, generator)
            ).mean()
        )

    def _density_weight_now(self) -> float:
        if self.density_warmup == 0:
            return self.density_weight
        return self.density_weight * min(1.0, (self.n_iter_ + 1) / self.density_warmup)

    def _training_logdet(self, codes, generator):
        method = self.logdet_method
        if method == "auto":
            exact = self.n_components <= EXACT_LOGDET_MAX_COMPONENTS
            method = "exact" if exact else "stochastic"
        if method == "exact":
            return logdet_jtj(self.decoder_, codes)
        probes = rademacher_probes(_N_PROBES, codes, generator)
        return logdet_gradient_surrogate(self.decoder_, codes, probes, tol=_CG_TOL)

    def _check_density_fitted(self) -> None:
        if not hasattr(self, "prior_weights_"):
            raise ValueError(
                f"scoring='likelihood' needs the prior and noise model fitted in fit, "
                f"but this {type(self).__name__} was fitted with scoring="
                "'reconstruction'; refit it with scoring='likelihood'"
            )

    def _log_likelihood(self, X_batch: torch.Tensor) -> torch.Tensor:
        """Per-sample log-likelihood in nats (see the module docstring)."""
        codes = self._encode_batch(X_batch)
        with torch.no_grad():
            output = self.decoder_(codes)
            logdet = logdet_jtj(self.decoder_, codes)
            log_prior = mixture_log_density(codes.double(), *self._prior_tensors())
            noise = noise_log_likelihood(
                self.loss, output, X_batch, self.noise_variance_, self.n_components
            )
        return log_prior.to(logdet.dtype) - 0.5 * logdet + noise

    def _prior_tensors(self):
        return tuple(
            torch.as_tensor(array, dtype=torch.float64, device=self.device_)
            for array in (
                self.prior_weights_,
                self.prior_means_,
                self.prior_covariances_,
            )
        )
