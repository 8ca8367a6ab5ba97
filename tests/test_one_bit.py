"""OneBitAutoencoder and gaussian_1bit_mse: closed forms, sparsity, training, files.

The simulation tests use fixed frames, whose decoders are set in closed form
(no training), so d = 500 or 1000 stays fast. Their tolerances come from the
finite-d effects measured on them: the 1-bit code loses the norm of x, whose
relative spread on sparse data is sqrt((3/p - 1)/d) (about 0.17 at p = 0.1,
d = 1000), which raises a linear decoder's error by about 0.004 there.
"""

import inspect
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

import skgfe
from skgfe import OneBitAutoencoder, gaussian_1bit_mse, load
from skgfe.datasets import make_sparse_gaussian

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _test_mse(model, n_features, sparsity, n_samples=2000, seed=1):
    X_test = make_sparse_gaussian(n_samples, n_features, sparsity, random_state=seed)
    return -model.score(X_test)


def _fit_fixed(
    n_bits,
    n_features,
    sparsity,
    *,
    encoder="random_rotation",
    decoder="linear",
    n_samples=2000,
):
    X = make_sparse_gaussian(n_samples, n_features, sparsity, random_state=0)
    return OneBitAutoencoder(
        n_bits, encoder=encoder, decoder=decoder, device="cpu", random_state=0
    ).fit(X)


# ------------------------------------------------------------- closed forms


@pytest.mark.parametrize(
    "rate, expected", [(0.5, 0.6817), (1.0, 0.3634), (2.0, 0.2220)]
)
def test_gaussian_1bit_mse_values(rate, expected):
    assert gaussian_1bit_mse(rate) == pytest.approx(expected, abs=5e-5)


def test_gaussian_1bit_mse_branches_meet_and_decrease():
    assert gaussian_1bit_mse(1.0) == pytest.approx((math.pi - 2) / math.pi)
    rates = np.linspace(0.01, 5, 200)
    mse = gaussian_1bit_mse(rates)
    assert isinstance(mse, np.ndarray) and mse.shape == rates.shape
    assert np.all(np.diff(mse) < 0)
    assert isinstance(gaussian_1bit_mse(2), float)


@pytest.mark.parametrize("rate", [0, -1.0, [0.5, 0.0], float("nan")])
def test_gaussian_1bit_mse_rejects_non_positive_rates(rate):
    with pytest.raises(ValueError, match="rate must be positive"):
        gaussian_1bit_mse(rate)


@pytest.mark.parametrize(
    "n_bits, encoder",
    [
        (250, "random_rotation"),
        (500, "random_rotation"),
        (500, "tight_frame"),
        (1000, "tight_frame"),
    ],
)
def test_fixed_frames_reach_the_closed_form_at_d500(n_bits, encoder):
    model = _fit_fixed(n_bits, 500, 1.0, encoder=encoder)
    assert model.n_iter_ == 1
    assert _test_mse(model, 500, 1.0) == pytest.approx(
        gaussian_1bit_mse(n_bits / 500), abs=0.01
    )


def test_rotation_decoder_is_sqrt_2_over_pi_times_the_transpose():
    model = _fit_fixed(200, 400, 1.0)
    B = model.encoder_.weight
    scale = (model.decoder_.weight * B.T).sum() / B.square().sum()
    assert float(scale) == pytest.approx(math.sqrt(2 / math.pi), abs=0.01)
    np.testing.assert_allclose(
        model.decoder_.weight.detach().numpy(), (scale * B.T).numpy(), rtol=1e-12
    )


def test_linear_decoder_ignores_sparsity():
    errors = [
        _test_mse(_fit_fixed(1000, 1000, p, n_samples=1000), 1000, p, n_samples=1000)
        for p in (0.1, 0.3)
    ]
    assert errors[0] == pytest.approx(errors[1], abs=0.01)
    assert errors == pytest.approx([gaussian_1bit_mse(1.0)] * 2, abs=0.01)


def test_mmse_denoiser_beats_the_gaussian_value_on_sparse_data():
    model = _fit_fixed(1000, 1000, 0.1, decoder="linear+denoiser")
    assert _test_mse(model, 1000, 0.1) < 0.14


@pytest.mark.slow
@pytest.mark.parametrize("sparsity, expected", [(0.05, 0.08), (0.1, 0.12), (0.3, 0.26)])
def test_mmse_denoiser_matches_the_paper_at_rate_1(sparsity, expected):
    # Kogler et al. (2024) report about 0.08 / 0.12 / 0.26 at r = 1.
    model = _fit_fixed(1000, 1000, sparsity, decoder="linear+denoiser")
    assert _test_mse(model, 1000, sparsity) == pytest.approx(expected, abs=0.01)


def test_mmse_prior_is_estimated_from_the_data():
    model = _fit_fixed(30, 30, 0.2, decoder="linear+denoiser", n_samples=3000)
    assert model.sparsity_ == pytest.approx(0.2, abs=0.01)
    assert model.slab_variance_ == pytest.approx(1 / 0.2, rel=0.05)


def test_mmse_prior_attributes_need_the_mmse_denoiser():
    model = _fit_fixed(5, 10, 0.5)
    with pytest.raises(AttributeError, match="denoiser='mmse'"):
        _ = model.sparsity_
    assert not hasattr(model, "slab_variance_")


# ---------------------------------------------------------------- estimator


@pytest.fixture(scope="module")
def X():
    return make_sparse_gaussian(60, 12, 0.3, random_state=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("encoder", ["learned", "random_rotation", "tight_frame"])
def test_bits_are_signs_in_the_input_dtype(X, dtype, encoder):
    model = OneBitAutoencoder(
        8, encoder=encoder, max_iter=2, device="cpu", random_state=0
    ).fit(X.astype(dtype))
    bits = model.transform(X.astype(dtype))
    assert bits.dtype == dtype and bits.shape == (60, 8)
    assert set(np.unique(bits)) <= {-1.0, 1.0}
    B = model.encoder_.weight.detach().numpy()
    np.testing.assert_array_equal(bits, np.where(X.astype(dtype) @ B.T >= 0, 1, -1))
    recon = model.inverse_transform(bits)
    assert recon.dtype == dtype and recon.shape == X.shape


def test_zero_projection_gives_a_plus_one_bit(X):
    model = OneBitAutoencoder(
        4, encoder="tight_frame", device="cpu", random_state=0
    ).fit(X)
    assert np.all(model.transform(np.zeros((2, 12))) == 1.0)


def test_random_rotation_needs_at_most_n_features_bits(X):
    with pytest.raises(ValueError, match="encoder='tight_frame' for more bits"):
        OneBitAutoencoder(13, encoder="random_rotation", device="cpu").fit(X)
    assert (
        OneBitAutoencoder(13, encoder="tight_frame", device="cpu").fit(X).n_iter_ == 1
    )


@pytest.mark.parametrize(
    "param, value", [("encoder", "identity"), ("decoder", "mlp"), ("denoiser", "soft")]
)
def test_invalid_options_are_named(X, param, value):
    with pytest.raises(ValueError, match=f"'{param}' parameter"):
        OneBitAutoencoder(**{param: value}).fit(X)


def test_uses_the_base_whole_and_shadows_nothing():
    """Every base parameter is a parameter, and no parameter of the pair-loss
    and likelihood layer exists here, not even as a class constant."""
    from skgfe._base import BaseDecoderEstimator
    from skgfe._differentiable import DifferentiableCodesEstimator

    params = set(OneBitAutoencoder().get_params())
    base_params = set(inspect.signature(BaseDecoderEstimator.__init__).parameters) - {
        "self"
    }
    layer_params = (
        set(inspect.signature(DifferentiableCodesEstimator.__init__).parameters)
        - base_params
        - {"self"}
    )
    assert base_params <= params
    assert set(BaseDecoderEstimator._parameter_constraints) <= set(
        OneBitAutoencoder._parameter_constraints
    )
    assert layer_params and not layer_params & params
    assert not any(hasattr(OneBitAutoencoder, name) for name in layer_params)


def test_closed_form_fit_is_one_pass_without_warning(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = OneBitAutoencoder(
            6,
            encoder="tight_frame",
            decoder="linear+denoiser",
            device="cpu",
            random_state=0,
        ).fit(X)
    assert model.n_iter_ == 1
    assert model.loss_curve_ == pytest.approx([-model.score(X)])
    model.set_params(warm_start=True).fit(X)
    assert model.n_iter_ == 2


def test_closed_form_fit_with_early_stopping_scores_the_validation_set(X):
    model = OneBitAutoencoder(
        6, encoder="tight_frame", early_stopping=True, device="cpu", random_state=0
    ).fit(X)
    assert len(model.validation_scores_) == 1
    assert model.best_validation_score_ == model.validation_scores_[0]


def test_fixed_encoder_with_learned_denoiser_trains_only_the_denoiser(X):
    model = OneBitAutoencoder(
        12,
        encoder="random_rotation",
        decoder="linear+denoiser",
        denoiser="learned",
        hidden_layer_sizes=(8,),
        max_iter=5,
        device="cpu",
        random_state=0,
    )
    model.fit(X)
    frame, weight = (
        model.encoder_.weight.clone(),
        model.decoder_.weight.detach().clone(),
    )
    model.set_params(warm_start=True).fit(X)
    torch.testing.assert_close(model.encoder_.weight, frame)
    torch.testing.assert_close(model.decoder_.weight.detach(), weight)
    assert model.n_iter_ == 10
    correction = model.decoder_.denoiser.correction
    assert correction[-1].weight.abs().sum() > 0


@pytest.mark.parametrize(
    "decoder, denoiser",
    [("linear", "mmse"), ("linear+denoiser", "mmse"), ("linear+denoiser", "learned")],
)
def test_learned_encoder_is_trained(X, decoder, denoiser):
    model = OneBitAutoencoder(
        8, decoder=decoder, denoiser=denoiser, max_iter=1, device="cpu", random_state=0
    ).fit(X)
    before = [
        p.detach().clone()
        for m in (model.encoder_, model.decoder_)
        for p in m.parameters()
    ]
    model.set_params(warm_start=True).fit(X)
    after = [
        p.detach() for m in (model.encoder_, model.decoder_) for p in m.parameters()
    ]
    assert all(not torch.equal(b, a) for b, a in zip(before, after))


def test_training_lowers_the_error_of_the_closed_form_start():
    X = make_sparse_gaussian(1000, 16, 1.0, random_state=0)
    start = OneBitAutoencoder(
        16, max_iter=1, learning_rate_init=1e-12, device="cpu", random_state=0
    ).fit(X)
    trained = OneBitAutoencoder(16, max_iter=10, device="cpu", random_state=0).fit(X)
    assert _test_mse(trained, 16, 1.0) < _test_mse(start, 16, 1.0) - 0.05


@pytest.mark.slow
@pytest.mark.parametrize("n_bits", [16, 32])
def test_trained_linear_model_reaches_the_gaussian_value(n_bits):
    # Measured over seeds 0-3: within 0.0152 (r = 1) and 0.009 (r = 0.5).
    X = make_sparse_gaussian(2000, 32, 1.0, random_state=0)
    model = OneBitAutoencoder(n_bits, max_iter=30, device="cpu", random_state=0).fit(X)
    mse = _test_mse(model, 32, 1.0, n_samples=4000)
    assert mse == pytest.approx(gaussian_1bit_mse(n_bits / 32), abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("denoiser", ["mmse", "learned"])
def test_trained_denoiser_goes_below_the_gaussian_value(denoiser):
    X = make_sparse_gaussian(2000, 64, 0.1, random_state=0)
    model = OneBitAutoencoder(
        64,
        decoder="linear+denoiser",
        denoiser=denoiser,
        max_iter=30,
        device="cpu",
        random_state=0,
    ).fit(X)
    assert _test_mse(model, 64, 0.1, n_samples=4000) < gaussian_1bit_mse(1.0) - 0.05


# -------------------------------------------------------------- persistence


CONFIGS = {
    "learned-mmse": {"decoder": "linear+denoiser"},
    "frame-learned-denoiser": {
        "encoder": "tight_frame",
        "decoder": "linear+denoiser",
        "denoiser": "learned",
        "hidden_layer_sizes": (4,),
    },
    "rotation-linear": {"encoder": "random_rotation"},
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_and_pickle_round_trips(X, config, dtype, tmp_path):
    X = X.astype(dtype)
    model = OneBitAutoencoder(
        10, max_iter=3, device="cpu", random_state=0, **CONFIGS[config]
    ).fit(X)
    path = tmp_path / "model.skgfe"
    model.save(path)
    for restored in (load(path), pickle.loads(pickle.dumps(model))):
        assert type(restored) is OneBitAutoencoder
        assert restored.get_params() == model.get_params()
        np.testing.assert_array_equal(restored.transform(X), model.transform(X))
        np.testing.assert_array_equal(
            restored.inverse_transform(model.transform(X)),
            model.inverse_transform(model.transform(X)),
        )
        assert restored.loss_curve_ == model.loss_curve_
        if config == "learned-mmse":
            assert restored.sparsity_ == model.sparsity_
            assert restored.slab_variance_ == model.slab_variance_


def test_public_names():
    assert {"OneBitAutoencoder", "gaussian_1bit_mse"} <= set(skgfe.__all__)


def test_pandas_output_and_feature_names(X):
    pd = pytest.importorskip("pandas")
    model = OneBitAutoencoder(3, encoder="tight_frame", device="cpu", random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(12)])
    out = model.set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns) == [f"onebitautoencoder{i}" for i in range(3)]
