"""Likelihood scores and density training of the decoder estimators."""

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, vonmises
from sklearn.mixture import GaussianMixture

from skgfe import AutoencoderBaseline, GradientFlowEncoder, load
from skgfe._likelihood import (
    fit_prior,
    mixture_log_density,
    noise_log_likelihood,
    standard_normal_log_density,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]

ESTIMATORS = [AutoencoderBaseline, GradientFlowEncoder]
SMALL = {"hidden_layer_sizes": (8,), "max_iter": 3, "random_state": 0}


def _small(Estimator):
    """Small settings; short flows keep the GFE tests fast."""
    if Estimator is GradientFlowEncoder:
        return {**SMALL, "max_flow_steps": 50, "flow_tol": 1e-3}
    return SMALL


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(4).normal(size=(40, 5))


# ------------------------------------------------------------------ the pieces


def test_mixture_log_density_matches_scipy():
    rng = np.random.default_rng(0)
    weights = np.array([0.3, 0.7])
    means = rng.normal(size=(2, 3))
    factors = rng.normal(size=(2, 3, 3))
    covariances = factors @ factors.transpose(0, 2, 1) + np.eye(3)
    z = rng.normal(size=(6, 3))
    expected = np.log(
        sum(
            w * multivariate_normal(m, c).pdf(z)
            for w, m, c in zip(weights, means, covariances)
        )
    )
    result = mixture_log_density(
        *(torch.as_tensor(a) for a in (z, weights, means, covariances))
    )
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-10)


def test_normal_prior_is_the_standard_normal():
    z = torch.as_tensor(np.random.default_rng(1).normal(size=(5, 3)))
    prior = [torch.as_tensor(a) for a in fit_prior(z.numpy(), "normal", 0)]
    torch.testing.assert_close(
        mixture_log_density(z, *prior), standard_normal_log_density(z)
    )
    expected = multivariate_normal(np.zeros(3), np.eye(3)).logpdf(z.numpy())
    np.testing.assert_allclose(standard_normal_log_density(z).numpy(), expected)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_fitted_mixture_prior_matches_scikit_learn(covariance_type):
    codes = np.random.default_rng(2).normal(size=(60, 2))
    mixture = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    prior = [torch.as_tensor(a) for a in fit_prior(codes, mixture, 0)]
    expected = mixture.fit(codes).score_samples(codes)
    np.testing.assert_allclose(
        mixture_log_density(torch.as_tensor(codes), *prior).numpy(), expected, rtol=1e-8
    )


def test_gmm_prior_has_at_most_ten_components():
    codes = np.random.default_rng(3).normal(size=(7, 2))
    weights, means, covariances = fit_prior(codes, "gmm", 0)
    assert (
        weights.shape == (7,)
        and means.shape == (7, 2)
        and covariances.shape == (7, 2, 2)
    )
    assert fit_prior(np.repeat(codes, 3, axis=0), "gmm", 0)[0].shape == (10,)


def test_gaussian_noise_is_normal_to_the_manifold():
    rng = np.random.default_rng(5)
    X, output = (
        torch.as_tensor(rng.normal(size=(4, 6))),
        torch.as_tensor(rng.normal(size=(4, 6))),
    )
    residual = (X - output).numpy()
    # Isotropic noise of variance 0.3 in the 6 - 2 normal directions.
    expected = -2 * np.log(2 * np.pi * 0.3) - (residual**2).sum(axis=1) / (2 * 0.3)
    np.testing.assert_allclose(
        noise_log_likelihood("mse", output, X, 0.3, 2).numpy(), expected
    )


def test_bernoulli_noise_is_the_bernoulli_log_likelihood():
    rng = np.random.default_rng(6)
    X = torch.as_tensor(rng.integers(0, 2, size=(3, 5)).astype(float))
    logits = torch.as_tensor(rng.normal(size=(3, 5)))
    p = torch.sigmoid(logits).numpy()
    expected = (X.numpy() * np.log(p) + (1 - X.numpy()) * np.log(1 - p)).sum(axis=1)
    np.testing.assert_allclose(
        noise_log_likelihood("bce", logits, X, None, 2).numpy(), expected
    )


# ------------------------------------------------------------- the estimators


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_linear_decoder_likelihood_is_the_closed_form(Estimator, X):
    estimator = Estimator(
        2,
        decoder=lambda k, d: torch.nn.Linear(k, d),
        scoring="likelihood",
        **_small(Estimator),
    ).fit(X)
    codes = estimator.transform(X)
    weight = estimator.decoder_.weight.detach().numpy()
    residual = X - estimator.inverse_transform(codes)
    variance = estimator.noise_variance_
    expected = (
        multivariate_normal(np.zeros(2), np.eye(2)).logpdf(codes)
        - 0.5 * np.linalg.slogdet(weight.T @ weight)[1]
        - 0.5 * 3 * np.log(2 * np.pi * variance)
        - (residual**2).sum(axis=1) / (2 * variance)
    )
    np.testing.assert_allclose(estimator.score_samples(X), expected, rtol=1e-9)
    assert estimator.score(X) == pytest.approx(expected.mean(), rel=1e-9)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_noise_variance_is_fitted_on_the_training_residuals(Estimator, X):
    estimator = Estimator(2, scoring="likelihood", **_small(Estimator)).fit(X)
    residual = X - estimator.inverse_transform(estimator.transform(X))
    assert estimator.noise_variance_ == pytest.approx((residual**2).sum() / (40 * 3))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_reconstruction_scoring_is_unchanged(Estimator, X):
    default = Estimator(2, **_small(Estimator)).fit(X)
    explicit = Estimator(
        2, scoring="reconstruction", density_weight=0.0, **_small(Estimator)
    ).fit(X)
    reconstruction = default.inverse_transform(default.transform(X))
    expected = -((X - reconstruction) ** 2).mean(axis=1)
    np.testing.assert_allclose(default.score_samples(X), expected, rtol=1e-12)
    np.testing.assert_array_equal(explicit.score_samples(X), default.score_samples(X))
    assert not hasattr(default, "prior_weights_")


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_scoring_does_not_change_training(Estimator, X):
    reconstruction = Estimator(2, **_small(Estimator)).fit(X)
    likelihood = Estimator(
        2, scoring="likelihood", prior="gmm", **_small(Estimator)
    ).fit(X)
    for ours, theirs in zip(
        reconstruction.decoder_.parameters(), likelihood.decoder_.parameters()
    ):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_likelihood_needs_a_density_fitted_in_fit(X):
    estimator = AutoencoderBaseline(2, **SMALL).fit(X)
    estimator.set_params(scoring="likelihood")
    with pytest.raises(ValueError, match="refit it with scoring='likelihood'"):
        estimator.score_samples(X)


@pytest.mark.parametrize("params", [{"scoring": "likelihood"}, {"density_weight": 0.1}])
def test_density_needs_fewer_components_than_features(params, X):
    with pytest.raises(ValueError, match="need n_components < n_features"):
        AutoencoderBaseline(5, **SMALL, **params).fit(X)


def test_bce_likelihood_has_no_noise_variance():
    X = np.random.default_rng(7).uniform(size=(30, 6))
    estimator = GradientFlowEncoder(
        2, loss="bce", scoring="likelihood", **_small(GradientFlowEncoder)
    ).fit(X)
    scores = estimator.score_samples(X)
    assert estimator.noise_variance_ is None
    assert scores.shape == (30,) and np.isfinite(scores).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_likelihood_scores_are_float64(dtype, X):
    estimator = AutoencoderBaseline(2, scoring="likelihood", **SMALL).fit(
        X.astype(dtype)
    )
    assert estimator.score_samples(X.astype(dtype)).dtype == np.float64


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fitted_prior_survives_pickle_and_save(Estimator, X, tmp_path):
    estimator = Estimator(
        2, scoring="likelihood", prior="gmm", **_small(Estimator)
    ).fit(X)
    path = tmp_path / "model.skgfe"
    estimator.save(path)
    for restored in (pickle.loads(pickle.dumps(estimator)), load(path)):
        for name in ("prior_weights_", "prior_means_", "prior_covariances_"):
            np.testing.assert_array_equal(
                getattr(restored, name), getattr(estimator, name)
            )
        assert restored.noise_variance_ == estimator.noise_variance_
        np.testing.assert_array_equal(
            restored.score_samples(X), estimator.score_samples(X)
        )


# ------------------------------------------------------------ density training


def test_density_weight_ramps_up_over_the_warmup(X):
    estimator = AutoencoderBaseline(2, density_weight=0.4, density_warmup=4, **SMALL)
    weights = []
    for epoch in range(6):
        estimator.n_iter_ = epoch
        weights.append(estimator._density_weight_now())
    assert weights == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    estimator.set_params(density_warmup=0)
    assert estimator._density_weight_now() == 0.4


@pytest.mark.parametrize("logdet_method", ["exact", "stochastic"])
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_density_training_changes_the_decoder(Estimator, logdet_method, X):
    plain = Estimator(2, **_small(Estimator)).fit(X)
    weighted = Estimator(
        2,
        density_weight=0.5,
        density_warmup=0,
        logdet_method=logdet_method,
        **_small(Estimator),
    ).fit(X)
    assert np.isfinite(weighted.loss_curve_).all()
    assert any(
        not torch.equal(a, b)
        for a, b in zip(plain.decoder_.parameters(), weighted.decoder_.parameters())
    )


def test_full_adjoint_carries_the_prior_gradient_through_the_flow(X):
    common = dict(
        n_components=2,
        density_weight=0.5,
        density_warmup=0,
        flow_solver="euler",
        tau=5.0,
        step_size=0.5,
        **SMALL,
    )
    approximate = GradientFlowEncoder(**common).fit(X)
    full = GradientFlowEncoder(adjoint="full", **common).fit(X)
    assert any(
        not torch.allclose(a, b)
        for a, b in zip(approximate.decoder_.parameters(), full.decoder_.parameters())
    )


# ---------------------------------------------------- a density on a circle


def _von_mises_circle(n_samples, kappa=2.0):
    theta = vonmises.rvs(kappa, size=n_samples, random_state=1)
    noise = 0.02 * np.random.default_rng(0).normal(size=(n_samples, 2))
    X = np.c_[np.cos(theta), np.sin(theta)] + noise
    # A 1-D code cannot cover a closed circle; compare on the central 90% arc,
    # where the data are.
    half_arc = vonmises.ppf(0.95, kappa)
    angles = np.linspace(-half_arc, half_arc, 100)
    return X, np.c_[np.cos(angles), np.sin(angles)], vonmises.logpdf(angles, kappa)


def _circle_correlation(n_samples, max_iter):
    X, arc, true_log_density = _von_mises_circle(n_samples)
    estimator = AutoencoderBaseline(
        1,
        scoring="likelihood",
        prior=GaussianMixture(3, random_state=0),
        hidden_layer_sizes=(32, 32),
        activation="tanh",
        learning_rate_init=1e-2,
        max_iter=max_iter,
        random_state=0,
    ).fit(X)
    return np.corrcoef(estimator.score_samples(arc), true_log_density)[0, 1]


def test_circle_density_fast():
    # The same path as the slow test on a smaller budget.
    assert _circle_correlation(200, 30) > 0.5


@pytest.mark.slow
def test_circle_density_correlates_with_the_von_mises_density():
    # Measured: 0.989 (about 7 s).
    assert _circle_correlation(500, 100) > 0.9
