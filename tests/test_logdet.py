"""The volume term: exact log det(J^T J), conjugate gradients, stochastic gradient."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from skgfe._logdet import (
    conjugate_gradient,
    decoder_jacobian,
    jacobian_logdet,
    logdet_gradient_surrogate,
    logdet_jtj,
    rademacher_probes,
)
from skgfe.decoders import make_mlp


def _linear_decoder(weight):
    n_features, n_components = weight.shape
    linear = torch.nn.Linear(n_components, n_features).to(weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
    return linear


def _jacobian_with_singular_values(singular_values, n_features, seed, dtype):
    generator = torch.Generator().manual_seed(seed)
    k = len(singular_values)
    left, _ = torch.linalg.qr(
        torch.randn(n_features, k, generator=generator, dtype=torch.float64)
    )
    right, _ = torch.linalg.qr(
        torch.randn(k, k, generator=generator, dtype=torch.float64)
    )
    values = torch.tensor(singular_values, dtype=torch.float64)
    return ((left * values) @ right.T).to(dtype)


@given(
    n_components=st.integers(1, 4), extra=st.integers(0, 4), seed=st.integers(0, 1000)
)
def test_linear_decoder_gives_slogdet_of_its_gram_matrix(n_components, extra, seed):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(
        n_components + extra, n_components, generator=generator, dtype=torch.float64
    )
    z = torch.randn(5, n_components, generator=generator, dtype=torch.float64)
    expected = torch.linalg.slogdet(weight.T @ weight).logabsdet
    torch.testing.assert_close(
        logdet_jtj(_linear_decoder(weight), z),
        expected.expand(5),
        rtol=1e-10,
        atol=1e-10,
    )


def test_jacobian_matches_autograd_row_by_row(small_decoder, generator):
    z = torch.randn(4, 2, generator=generator, dtype=torch.float64)
    expected = torch.stack(
        [
            torch.autograd.functional.jacobian(
                lambda row: small_decoder(row[None])[0], row
            )
            for row in z
        ]
    )
    torch.testing.assert_close(decoder_jacobian(small_decoder, z), expected)


def test_exact_logdet_gradient_passes_gradcheck(small_decoder, generator):
    z = torch.randn(3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda codes: logdet_jtj(small_decoder, codes), (z,)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rank_deficient_jacobian_raises(dtype):
    weight = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=dtype)
    weight[:, 1] = 0
    z = torch.zeros(4, 3, dtype=dtype)
    with pytest.raises(torch.linalg.LinAlgError, match="rank-deficient .* 4 code"):
        logdet_jtj(_linear_decoder(weight), z)


def test_float32_jacobian_with_small_singular_value_is_redone_in_float64():
    # Singular values spanning 1e4 are well within float32's precision for J,
    # but J^T J spans 1e8, beyond it: a float32 Cholesky alone errs by ~2 nats.
    jacobian = _jacobian_with_singular_values(
        [1.0, 0.5, 0.3, 1e-4], 20, 0, torch.float32
    )
    exact = torch.linalg.slogdet(jacobian.double().T @ jacobian.double()).logabsdet
    naive = 2 * torch.linalg.cholesky_ex(jacobian.T @ jacobian).L.diagonal().log().sum()
    result = jacobian_logdet(jacobian[None])[0]
    assert result.dtype == torch.float32
    assert abs(float(result) - float(exact)) < 1e-4
    assert not abs(float(naive) - float(exact)) < 1e-2


@given(n_rows=st.integers(1, 4), k=st.integers(1, 6), seed=st.integers(0, 1000))
def test_conjugate_gradient_matches_a_direct_solve(n_rows, k, seed):
    generator = torch.Generator().manual_seed(seed)
    factor = torch.randn(n_rows, k, k, generator=generator, dtype=torch.float64)
    matrices = factor @ factor.mT + 0.1 * torch.eye(k, dtype=torch.float64)
    b = torch.randn(n_rows, k, generator=generator, dtype=torch.float64)
    result = conjugate_gradient(
        lambda v: (matrices @ v[..., None])[..., 0], b, tol=1e-12, max_iter=10 * k
    )
    torch.testing.assert_close(
        result.solution, torch.linalg.solve(matrices, b), rtol=1e-7, atol=1e-8
    )
    assert result.n_iter <= 10 * k


def test_conjugate_gradient_leaves_solved_rows_alone():
    matrices = torch.diag_embed(
        torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    )
    b = torch.tensor([[0.0, 0.0], [3.0, 8.0]], dtype=torch.float64)
    result = conjugate_gradient(
        lambda v: (matrices @ v[..., None])[..., 0], b, tol=1e-12
    )
    torch.testing.assert_close(
        result.solution, torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    )
    assert torch.isfinite(result.residual_norm).all()


def test_conjugate_gradient_stops_at_max_iter():
    matrices = torch.diag_embed(torch.arange(1.0, 7.0, dtype=torch.float64))[None]
    b = torch.ones(1, 6, dtype=torch.float64)
    result = conjugate_gradient(
        lambda v: (matrices @ v[..., None])[..., 0], b, tol=1e-12, max_iter=2
    )
    assert result.n_iter == 2
    assert float(result.residual_norm[0]) > 1e-3


def test_probes_are_seeded_signs(generator):
    z = torch.zeros(3, 4, dtype=torch.float64)
    probes = rademacher_probes(5, z, generator)
    again = rademacher_probes(5, z, torch.Generator().manual_seed(0))
    assert probes.shape == (5, 3, 4) and probes.dtype == torch.float64
    assert set(probes.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(probes, again)


def _flat_gradient(value, inputs):
    gradients = torch.autograd.grad(value, inputs, allow_unused=True)
    return torch.cat(
        [
            (torch.zeros_like(x) if g is None else g).flatten()
            for g, x in zip(gradients, inputs)
        ]
    )


@pytest.fixture
def decoder_and_codes():
    generator = torch.Generator().manual_seed(1)
    decoder = make_mlp(3, (16,), 10, "tanh", generator).double()
    z = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    return decoder, z, [*decoder.parameters(), z]


def test_surrogate_value_is_the_mean_probe_norm(decoder_and_codes, generator):
    # With an exact solve the value is 1/m sum ||eps_j||^2 = k: the sum over
    # the probes is divided by their number.
    decoder, z, _ = decoder_and_codes
    probes = rademacher_probes(7, z, generator)
    value = logdet_gradient_surrogate(decoder, z, probes, tol=1e-12)
    torch.testing.assert_close(
        value.detach(), torch.full((4,), 3.0, dtype=torch.float64)
    )


def test_surrogate_gradient_is_the_mean_over_probes(decoder_and_codes, generator):
    decoder, z, inputs = decoder_and_codes
    probes = rademacher_probes(3, z, generator)
    together = _flat_gradient(
        logdet_gradient_surrogate(decoder, z, probes, tol=1e-12).sum(), inputs
    )
    one_by_one = torch.stack(
        [
            _flat_gradient(
                logdet_gradient_surrogate(
                    decoder, z, probes[j : j + 1], tol=1e-12
                ).sum(),
                inputs,
            )
            for j in range(3)
        ]
    ).mean(dim=0)
    torch.testing.assert_close(together, one_by_one)


def test_hutchinson_cg_gradient_is_unbiased(decoder_and_codes, generator):
    decoder, z, inputs = decoder_and_codes
    exact = _flat_gradient(logdet_jtj(decoder, z).sum(), inputs)
    probes = rademacher_probes(4000, z, generator)
    estimate = _flat_gradient(
        logdet_gradient_surrogate(decoder, z, probes, tol=1e-10).sum(), inputs
    )
    # Measured: a relative error of about 1% with 4000 probes.
    relative_error = float((estimate - exact).norm() / exact.norm())
    assert relative_error < 0.05


def test_surrogate_keeps_the_dtype_float32(generator):
    decoder = make_mlp(2, (8,), 5, "tanh", generator)
    z = torch.randn(3, 2, generator=generator)
    value = logdet_gradient_surrogate(decoder, z, rademacher_probes(2, z, generator))
    assert value.dtype == torch.float32 and np.isfinite(value.detach().numpy()).all()
