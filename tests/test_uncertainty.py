"""Laplace uncertainty of codes, reconstructions and imputed values."""

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.stats import chi2, norm

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe._uncertainty import NOISE_MODELS, decoder_laplace, laplace_covariance
from skgfe.decoders import make_mlp

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]

ESTIMATORS = [AutoencoderBaseline, GradientFlowEncoder]


# Half-width of a central 90% normal interval, in standard deviations.
Z_90 = norm.ppf(0.95)


def _linear_decoder(weight):
    n_features, n_components = weight.shape
    linear = torch.nn.Linear(n_components, n_features).to(weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
    return linear


def _fitted_linear(Estimator, weight, X, **params):
    """``Estimator`` fitted briefly on X, then given the linear decoder ``weight``."""
    n_features, n_components = weight.shape
    estimator = Estimator(
        n_components=n_components,
        decoder=torch.nn.Linear(n_components, n_features).double(),
        max_iter=1,
        random_state=0,
        **params,
    ).fit(X)
    with torch.no_grad():
        estimator.decoder_.weight.copy_(torch.as_tensor(weight))
    return estimator


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(4).normal(size=(30, 6))


@pytest.fixture(scope="module")
def weight():
    return np.random.default_rng(5).normal(size=(6, 2))


# -------------------------------------------------------------------- the engine


@given(
    n_components=st.integers(1, 4),
    extra=st.integers(0, 4),
    noise_variance=st.floats(1e-3, 1e3),
    seed=st.integers(0, 1000),
)
def test_linear_decoder_gives_the_exact_gaussian_posterior(
    n_components, extra, noise_variance, seed
):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(
        n_components + extra, n_components, generator=generator, dtype=torch.float64
    )
    # Both sides invert W^T W, each with a rounding error that grows with its
    # condition number (1e-9 relative at 1e7).
    assume(torch.linalg.cond(weight) < 100)
    z = torch.randn(3, n_components, generator=generator, dtype=torch.float64)
    weights = torch.full(
        (3, n_components + extra), 1 / noise_variance, dtype=torch.float64
    )
    result = decoder_laplace(_linear_decoder(weight), z, weights)
    expected = noise_variance * torch.linalg.inv(weight.T @ weight)
    torch.testing.assert_close(
        result.covariance, expected.expand(3, -1, -1), rtol=1e-10, atol=0
    )
    torch.testing.assert_close(
        result.output_variance,
        (weight @ expected @ weight.T).diagonal().expand(3, -1),
        rtol=1e-10,
        atol=0,
    )
    assert not result.singular.any()


def test_precision_weights_the_jacobian_rows(generator):
    jacobian = torch.randn(4, 7, 3, generator=generator, dtype=torch.float64)
    weights = torch.rand(4, 7, generator=generator, dtype=torch.float64)
    result = laplace_covariance(jacobian, weights)
    precision = jacobian.mT @ (weights.unsqueeze(-1) * jacobian)
    torch.testing.assert_close(
        result.covariance, torch.linalg.inv(precision), rtol=1e-10, atol=0
    )


def test_covariance_of_a_row_does_not_depend_on_its_batch(small_decoder, generator):
    # Not bit for bit: the decoder's matrix products round differently with
    # the size of the batch.
    z = torch.randn(20, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(20, 5, generator=generator, dtype=torch.float64)
    batch = decoder_laplace(small_decoder, z, weights)
    for row in (0, 7, 19):
        alone = decoder_laplace(small_decoder, z[row : row + 1], weights[row : row + 1])
        torch.testing.assert_close(
            alone.covariance[0], batch.covariance[row], rtol=1e-12, atol=0
        )
        torch.testing.assert_close(
            alone.output_variance[0], batch.output_variance[row], rtol=1e-12, atol=0
        )


def test_chunks_give_the_rows_of_one_batch(small_decoder, generator, monkeypatch):
    from skgfe import _uncertainty

    z = torch.randn(9, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(9, 5, generator=generator, dtype=torch.float64)
    whole = decoder_laplace(small_decoder, z, weights)
    # 2 rows x 5 features x 2 components per chunk.
    monkeypatch.setattr(_uncertainty, "_MAX_JACOBIAN_ENTRIES", 20)
    chunked = decoder_laplace(small_decoder, z, weights)
    for field, expected in zip(chunked, whole, strict=True):
        torch.testing.assert_close(field, expected, rtol=1e-12, atol=0)


@given(seed=st.integers(0, 1000), n_features=st.integers(4, 9))
def test_removing_entries_widens_every_interval(seed, n_features):
    """Fewer observed entries: the covariance grows in the Loewner order, and
    with it the variance of every output entry."""
    generator = torch.Generator().manual_seed(seed)
    jacobian = torch.randn(1, n_features, 2, generator=generator, dtype=torch.float64)
    weights = torch.rand(1, n_features, generator=generator, dtype=torch.float64) + 0.1
    previous = laplace_covariance(jacobian, weights)
    for removed in torch.randperm(n_features, generator=generator)[: n_features - 2]:
        weights = weights.clone()
        weights[0, removed] = 0.0
        current = laplace_covariance(jacobian, weights)
        growth = torch.linalg.eigvalsh(current.covariance - previous.covariance)
        scale = current.covariance.abs().max()
        assert growth.min() >= -1e-10 * scale
        assert (current.output_variance >= previous.output_variance * (1 - 1e-10)).all()
        previous = current


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rows_with_too_few_observed_entries_have_infinite_variance(dtype, generator):
    jacobian = torch.randn(3, 6, 2, generator=generator, dtype=torch.float64).to(dtype)
    weights = torch.ones(3, 6, dtype=dtype)
    weights[1, 1:] = 0.0  # one observed entry for two components
    weights[2] = 0.0  # nothing observed
    result = laplace_covariance(jacobian, weights)
    assert result.singular.tolist() == [False, True, True]
    assert torch.isfinite(result.covariance[0]).all()
    assert torch.isfinite(result.output_variance[0]).all()
    assert torch.isposinf(result.covariance[1:]).all()
    assert torch.isposinf(result.output_variance[1:]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_collapsed_latent_direction_has_infinite_variance(dtype, generator):
    jacobian = torch.randn(2, 6, 2, generator=generator, dtype=torch.float64)
    jacobian[1, :, 1] = 3 * jacobian[1, :, 0]  # rank 1 in float64
    result = laplace_covariance(jacobian.to(dtype), torch.ones(2, 6, dtype=dtype))
    assert result.singular.tolist() == [False, True]
    assert torch.isposinf(result.covariance[1]).all()


def test_bernoulli_noise_model_is_the_sigmoid_variance():
    logits = torch.tensor([[-2.0, 0.0, 3.0]], dtype=torch.float64)
    probability = torch.sigmoid(logits)
    bernoulli = NOISE_MODELS["bce"]
    torch.testing.assert_close(
        bernoulli.fisher_information(logits), probability * (1 - probability)
    )
    # The link's derivative, by autograd.
    slope = torch.func.vmap(torch.func.grad(torch.sigmoid))(logits.flatten())
    torch.testing.assert_close(bernoulli.link_derivative(logits).flatten(), slope)


# ----------------------------------------------------------------- the estimators


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_linear_decoder_estimator_gives_the_exact_covariance(Estimator, X, weight):
    estimator = _fitted_linear(Estimator, weight, X)
    codes, covariance = estimator.code_uncertainty(
        X, return_cov=True, noise_variance=0.3
    )
    expected = 0.3 * np.linalg.inv(weight.T @ weight)
    np.testing.assert_allclose(
        covariance, np.broadcast_to(expected, (30, 2, 2)), rtol=1e-10
    )
    np.testing.assert_array_equal(codes, estimator.transform(X))
    _, std = estimator.code_uncertainty(X, noise_variance=0.3)
    np.testing.assert_allclose(
        std, np.sqrt(np.diag(expected))[None].repeat(30, 0), rtol=1e-10
    )
    X_reconstructed, X_std = estimator.reconstruct(
        X, return_std=True, noise_variance=0.3
    )
    np.testing.assert_array_equal(
        X_reconstructed, estimator.inverse_transform(estimator.transform(X))
    )
    expected_std = np.sqrt(np.diag(weight @ expected @ weight.T))
    np.testing.assert_allclose(X_std, expected_std[None].repeat(30, 0), rtol=1e-10)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_noise_variance_defaults_to_the_residuals_of_X(Estimator, X, weight):
    estimator = _fitted_linear(Estimator, weight, X)
    _, unit = estimator.code_uncertainty(X, return_cov=True, noise_variance=1.0)
    _, covariance = estimator.code_uncertainty(X, return_cov=True)
    residuals = X - estimator.reconstruct(X)
    estimate = np.square(residuals).sum() / (30 * (6 - 2))
    np.testing.assert_allclose(covariance, estimate * unit, rtol=1e-10)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_noise_variance_defaults_to_the_fitted_one(Estimator, X, weight):
    estimator = _fitted_linear(Estimator, weight, X, scoring="likelihood")
    _, unit = estimator.code_uncertainty(X, return_cov=True, noise_variance=1.0)
    _, covariance = estimator.code_uncertainty(X, return_cov=True)
    np.testing.assert_allclose(covariance, estimator.noise_variance_ * unit, rtol=1e-12)


def test_a_refit_without_the_likelihood_drops_the_fitted_noise_variance(X, weight):
    estimator = _fitted_linear(AutoencoderBaseline, weight, X, scoring="likelihood")
    estimator.set_params(scoring="reconstruction").fit(10 * X)
    assert not hasattr(estimator, "noise_variance_")
    assert not hasattr(estimator, "prior_weights_")
    _, unit = estimator.code_uncertainty(X, return_cov=True, noise_variance=1.0)
    _, covariance = estimator.code_uncertainty(X, return_cov=True)
    residuals = X - estimator.reconstruct(X)
    estimate = np.square(residuals).sum() / (30 * (6 - 2))
    np.testing.assert_allclose(covariance, estimate * unit, rtol=1e-10)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_bernoulli_reconstruction_std_goes_through_the_sigmoid(Estimator, weight):
    X = np.random.default_rng(6).uniform(size=(10, 6))
    estimator = _fitted_linear(Estimator, weight, X, loss="bce")
    codes, covariance = estimator.code_uncertainty(X, return_cov=True)
    logits = codes @ weight.T + estimator.decoder_.bias.detach().numpy()
    variance = 1 / (1 + np.exp(-logits)) * (1 / (1 + np.exp(logits)))
    precision = np.einsum("pi,np,pj->nij", weight, variance, weight)
    np.testing.assert_allclose(covariance, np.linalg.inv(precision), rtol=1e-10)
    X_reconstructed, X_std = estimator.reconstruct(X, return_std=True)
    logit_std = np.sqrt(np.einsum("pi,nij,pj->np", weight, covariance, weight))
    np.testing.assert_allclose(X_std, variance * logit_std, rtol=1e-10)
    np.testing.assert_allclose(X_reconstructed, 1 / (1 + np.exp(-logits)), rtol=1e-12)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_a_collapsing_decoder_gives_infinite_std(Estimator, X, weight):
    collapsed = weight.copy()
    collapsed[:, 1] = 0.0
    estimator = _fitted_linear(Estimator, collapsed, X)
    _, std = estimator.code_uncertainty(X, noise_variance=0.3)
    _, X_std = estimator.reconstruct(X, return_std=True, noise_variance=0.3)
    assert np.isposinf(std).all() and np.isposinf(X_std).all()


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_results_of_a_row_do_not_depend_on_its_batch(Estimator, X):
    estimator = Estimator(n_components=2, max_iter=2, random_state=0).fit(X)
    _, covariance = estimator.code_uncertainty(X, return_cov=True, noise_variance=0.1)
    _, X_std = estimator.reconstruct(X, return_std=True, noise_variance=0.1)
    for row in (0, 13, 29):
        alone = X[row : row + 1]
        _, row_covariance = estimator.code_uncertainty(
            alone, return_cov=True, noise_variance=0.1
        )
        _, row_std = estimator.reconstruct(alone, return_std=True, noise_variance=0.1)
        np.testing.assert_allclose(row_covariance[0], covariance[row], rtol=1e-12)
        np.testing.assert_allclose(row_std[0], X_std[row], rtol=1e-12)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_outputs_keep_the_dtype_of_X(Estimator, X):
    X32 = X.astype(np.float32)
    estimator = Estimator(n_components=2, max_iter=1, random_state=0).fit(X32)
    outputs = (
        *estimator.code_uncertainty(X32),
        *estimator.code_uncertainty(X32, return_cov=True),
        *estimator.reconstruct(X32, return_std=True),
        estimator.reconstruct(X32),
    )
    assert all(output.dtype == np.float32 for output in outputs)
    assert all(np.isfinite(output).all() for output in outputs)


@pytest.mark.parametrize("noise_variance", [0.0, -1.0, np.inf, np.nan, True, "0.1"])
def test_invalid_noise_variance_is_rejected(noise_variance, X):
    estimator = AutoencoderBaseline(n_components=2, max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="noise_variance must be a positive"):
        estimator.code_uncertainty(X, noise_variance=noise_variance)


def test_noise_variance_is_rejected_for_bernoulli_noise():
    X = np.random.default_rng(6).uniform(size=(10, 6))
    estimator = AutoencoderBaseline(
        n_components=2, loss="bce", max_iter=1, random_state=0
    ).fit(X)
    with pytest.raises(ValueError, match="applies to loss='mse' only"):
        estimator.reconstruct(X, return_std=True, noise_variance=0.1)


def test_residuals_without_degrees_of_freedom_are_rejected():
    X = np.random.default_rng(6).normal(size=(10, 2))
    estimator = AutoencoderBaseline(n_components=2, max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="pass noise_variance"):
        estimator.code_uncertainty(X)
    _, std = estimator.code_uncertainty(X, noise_variance=0.1)
    assert np.isfinite(std).all()


def test_reconstruct_is_inverse_transform_of_transform(X):
    estimator = GradientFlowEncoder(n_components=2, max_iter=2, random_state=0).fit(X)
    np.testing.assert_array_equal(
        estimator.reconstruct(X),
        estimator.inverse_transform(estimator.transform(X)),
    )


# ------------------------------------------- calibration on a known nonlinear model


@pytest.fixture(scope="module")
def true_model():
    """A GFE whose decoder is the true nonlinear decoder of the data, and the
    noise-free truth and noisy measurements of held-out codes.

    The fitted decoder is replaced by the true one, so the calibration checks
    the Laplace approximation itself, not how well a decoder was learned.
    """
    n_features, n_components, noise_std = 10, 2, 0.05
    generator = torch.Generator().manual_seed(0)
    true_decoder = make_mlp(n_components, (16,), n_features, "tanh", generator)
    true_decoder = true_decoder.double()
    rng = np.random.default_rng(0)

    def sample(n_samples):
        codes = rng.normal(size=(n_samples, n_components))
        with torch.no_grad():
            clean = true_decoder(torch.as_tensor(codes)).numpy()
        return codes, clean, clean + noise_std * rng.normal(size=clean.shape)

    # Several starts keep the flows out of the loss's local minima.
    starts = np.stack(np.meshgrid([-2, 0, 2], [-2, 0, 2]), axis=-1).reshape(-1, 2)
    gfe = GradientFlowEncoder(
        n_components=n_components,
        decoder=true_decoder,
        z0=starts,
        flow_tol=1e-8,
        max_flow_steps=2000,
        max_iter=1,
        random_state=0,
    ).fit(sample(20)[2])
    gfe.decoder_.load_state_dict(true_decoder.state_dict())
    return gfe, noise_std**2, *sample(300)


@pytest.mark.parametrize("known_noise", [True, False], ids=["true_noise", "estimated"])
def test_reconstruction_intervals_cover_the_noise_free_truth(true_model, known_noise):
    # Measured: 92.3% with the true noise, 92.6% with the estimated one (300
    # held-out rows x 10 entries); 89.0-92.3% over five seeds of the model.
    gfe, noise_variance, _, clean, X = true_model
    X_reconstructed, X_std = gfe.reconstruct(
        X, return_std=True, noise_variance=noise_variance if known_noise else None
    )
    coverage = np.mean(np.abs(X_reconstructed - clean) <= Z_90 * X_std)
    assert 0.85 <= coverage <= 0.95


def test_code_ellipses_cover_the_true_codes(true_model):
    # Measured: 92% of the true codes inside the 90% ellipses.
    gfe, noise_variance, codes, _, X = true_model
    estimated, covariance = gfe.code_uncertainty(
        X, return_cov=True, noise_variance=noise_variance
    )
    error = estimated - codes
    squared_distance = np.einsum(
        "ni,nij,nj->n", error, np.linalg.inv(covariance), error
    )
    coverage = np.mean(squared_distance <= chi2.ppf(0.9, df=2))
    assert 0.85 <= coverage <= 0.95


# --------------------------------------------- missing entries (NaN-native input)


def test_missing_entries_are_left_out_of_the_precision(true_model):
    gfe, noise_variance, _, _, X = true_model
    X_missing = X[:20].copy()
    X_missing[:, ::3] = np.nan
    codes, covariance = gfe.code_uncertainty(
        X_missing, return_cov=True, noise_variance=noise_variance
    )
    weights = torch.where(
        torch.isnan(torch.as_tensor(X_missing)), 0.0, 1 / noise_variance
    )
    expected = decoder_laplace(gfe.decoder_, torch.as_tensor(codes), weights)
    np.testing.assert_allclose(covariance, expected.covariance.numpy(), rtol=1e-10)


def test_imputed_values_cover_the_noise_free_truth(true_model):
    # Measured 91.8% (and 91.3% on the observed entries) in a simulation of
    # the NaN-native flow: codes by L-BFGS on the observed entries, then
    # decoder_laplace with zero weights on the missing ones.
    gfe, noise_variance, _, clean, X = true_model
    missing = np.zeros(X.shape, dtype=bool)
    missing[:, ::3] = True
    imputed, std = gfe.reconstruct(
        np.where(missing, np.nan, X), return_std=True, noise_variance=noise_variance
    )
    assert np.isfinite(imputed).all() and np.isfinite(std).all()
    inside = np.abs(imputed - clean) <= Z_90 * std
    assert 0.85 <= inside[missing].mean() <= 0.95


# GradientFlowEncoder encodes rows with missing entries; the autoencoder refuses them.
@pytest.mark.parametrize("Estimator", [GradientFlowEncoder])
def test_removing_entries_widens_every_interval_of_a_linear_decoder(
    Estimator, X, weight
):
    """Exactly so at a fixed Jacobian. With a nonlinear decoder the code moves
    as entries go missing, and single entries' intervals can narrow (in a
    simulation on the calibration model, 41% of removals narrowed some entry's
    interval by over 1%, while the median entry widened in 99%)."""
    estimator = _fitted_linear(Estimator, weight, X)
    row = X[:1].copy()
    previous_code_std = estimator.code_uncertainty(row, noise_variance=0.3)[1]
    previous_std = estimator.reconstruct(row, return_std=True, noise_variance=0.3)[1]
    for missing in range(X.shape[1] - 2):
        row[0, missing] = np.nan
        _, code_std = estimator.code_uncertainty(row, noise_variance=0.3)
        imputed, std = estimator.reconstruct(row, return_std=True, noise_variance=0.3)
        assert np.isfinite(imputed).all() and np.isfinite(std).all()
        assert (code_std >= previous_code_std * (1 - 1e-10)).all()
        assert (std >= previous_std * (1 - 1e-10)).all()
        previous_code_std, previous_std = code_std, std


# GradientFlowEncoder encodes rows with missing entries; the autoencoder refuses them.
@pytest.mark.parametrize("Estimator", [GradientFlowEncoder])
def test_rows_with_fewer_observed_entries_than_components_have_infinite_std(
    Estimator, X, weight
):
    estimator = _fitted_linear(Estimator, weight, X)
    rows = X[:2].copy()
    rows[0, 1:] = np.nan
    _, code_std = estimator.code_uncertainty(rows, noise_variance=0.3)
    _, std = estimator.reconstruct(rows, return_std=True, noise_variance=0.3)
    assert np.isposinf(code_std[0]).all() and np.isposinf(std[0]).all()
    assert np.isfinite(code_std[1]).all() and np.isfinite(std[1]).all()


def test_uncertainty_with_binary_columns_is_refused():
    X = np.random.default_rng(0).uniform(size=(20, 4))
    X[:, 0] = X[:, 0] > 0.5
    gfe = GradientFlowEncoder(
        n_components=2, binary_columns=[0], max_iter=1, random_state=0
    ).fit(X)
    with pytest.raises(ValueError, match="one noise model for every column"):
        gfe.code_uncertainty(X)
    with pytest.raises(ValueError, match="one noise model for every column"):
        gfe.reconstruct(X, return_std=True)
    # Without the standard deviations, binary columns are probabilities.
    probabilities = gfe.reconstruct(X)[:, 0]
    assert ((probabilities > 0) & (probabilities < 1)).all()
