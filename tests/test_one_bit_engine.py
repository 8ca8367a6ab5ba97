"""The torch pieces of 1-bit autoencoders: sign, frames and denoisers."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from skgfe._one_bit_engine import (
    BernoulliGaussianDenoiser,
    OneBitDecoder,
    PointwiseDenoiser,
    SignEncoder,
    bernoulli_gaussian_mmse,
    haar_orthogonal,
    random_frame,
    sign_bits,
)


def test_sign_bits_values_and_straight_through_gradient():
    z = torch.tensor(
        [-2.0, -0.0, 0.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True
    )
    bits = sign_bits(z)
    torch.testing.assert_close(
        bits, torch.tensor([-1.0, 1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    )
    (bits * torch.arange(5.0, dtype=torch.float64)).sum().backward()
    torch.testing.assert_close(z.grad, torch.arange(5.0, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sign_bits_keep_the_dtype(dtype):
    assert sign_bits(torch.randn(3, 2, dtype=dtype)).dtype == dtype


def test_haar_orthogonal_is_orthogonal_and_seeded():
    q = haar_orthogonal(7, torch.Generator().manual_seed(0))
    torch.testing.assert_close(q @ q.T, torch.eye(7, dtype=torch.float64))
    torch.testing.assert_close(q, haar_orthogonal(7, torch.Generator().manual_seed(0)))


def test_haar_orthogonal_has_no_sign_bias():
    # Without the sign fix of QR, the diagonal of Q leans positive.
    generator = torch.Generator().manual_seed(0)
    diagonals = torch.stack(
        [torch.diagonal(haar_orthogonal(4, generator)) for _ in range(2000)]
    )
    assert diagonals.mean().abs() < 0.03


@given(n_bits=st.integers(1, 30), n_features=st.integers(1, 30))
def test_random_frame_is_a_rotation_or_a_tight_frame(n_bits, n_features):
    frame = random_frame(n_bits, n_features, torch.Generator().manual_seed(0))
    assert frame.shape == (n_bits, n_features)
    if n_bits <= n_features:
        torch.testing.assert_close(
            frame @ frame.T, torch.eye(n_bits, dtype=torch.float64)
        )
    else:
        rate = n_bits / n_features
        torch.testing.assert_close(
            frame.T @ frame, rate * torch.eye(n_features, dtype=torch.float64)
        )


def test_sign_encoder_trains_only_a_learned_weight():
    weight = torch.randn(3, 5, dtype=torch.float64)
    assert [n for n, _ in SignEncoder(weight, trainable=True).named_parameters()] == [
        "weight"
    ]
    fixed = SignEncoder(weight, trainable=False)
    assert list(fixed.parameters()) == [] and "weight" in fixed.state_dict()
    x = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(fixed(x), sign_bits(x @ weight.T))


def _posterior_mean_by_quadrature(u, sparsity, slab_variance, noise_variance):
    x = np.linspace(-12, 12, 200001) * math.sqrt(slab_variance)

    def normal(value, variance):
        return np.exp(-(value**2) / (2 * variance)) / np.sqrt(2 * np.pi * variance)

    slab = sparsity * normal(x, slab_variance) * normal(u - x, noise_variance)
    spike = (1 - sparsity) * normal(u, noise_variance)
    return np.trapezoid(x * slab, x) / (np.trapezoid(slab, x) + spike)


@pytest.mark.parametrize(
    "sparsity, slab_variance, noise_variance",
    [(0.1, 10.0, 0.57), (0.3, 1 / 0.3, 0.2), (0.7, 2.0, 1.5)],
)
def test_mmse_matches_quadrature(sparsity, slab_variance, noise_variance):
    u = np.array([-4.0, -1.3, 0.0, 0.2, 1.0, 2.5, 6.0])
    expected = [
        _posterior_mean_by_quadrature(v, sparsity, slab_variance, noise_variance)
        for v in u
    ]
    got = bernoulli_gaussian_mmse(
        torch.tensor(u),
        torch.tensor(sparsity, dtype=torch.float64),
        torch.tensor(slab_variance, dtype=torch.float64),
        torch.tensor(noise_variance, dtype=torch.float64),
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-9)


def test_mmse_is_finite_for_extreme_inputs():
    u = torch.tensor([-1e6, -50.0, 0.0, 50.0, 1e6])
    out = bernoulli_gaussian_mmse(
        u, torch.tensor(0.01), torch.tensor(100.0), torch.tensor(1e-3)
    )
    assert torch.isfinite(out).all()


def test_dense_mmse_denoiser_is_linear_shrinkage():
    denoiser = BernoulliGaussianDenoiser().double()
    with torch.no_grad():
        denoiser.slab_variance.fill_(2.0)
        denoiser.gain.fill_(0.5)
        denoiser.log_noise_std.fill_(math.log(0.8))
    y = torch.linspace(-3, 3, 7, dtype=torch.float64)
    # sparsity 1 is a Gaussian prior: E[x | u] = v / (v + tau^2) u, u = y / gain.
    torch.testing.assert_close(
        denoiser(y), 2.0 / (2.0 + 0.64) * y / 0.5, rtol=1e-5, atol=1e-8
    )


def test_pointwise_denoiser_starts_at_the_identity():
    denoiser = PointwiseDenoiser([8], "elu", torch.Generator().manual_seed(0))
    y = torch.randn(5, 3)
    torch.testing.assert_close(denoiser(y), y)
    assert denoiser(y).shape == y.shape


def test_decoder_is_linear_then_denoiser():
    weight = torch.randn(4, 3)
    decoder = OneBitDecoder(weight, PointwiseDenoiser([8], "elu", torch.Generator()))
    bits = sign_bits(torch.randn(6, 3))
    torch.testing.assert_close(decoder.linear(bits), bits @ weight.T)
    torch.testing.assert_close(OneBitDecoder(weight, None)(bits), bits @ weight.T)
