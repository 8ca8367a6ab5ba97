"""The solvers: closed forms, per-sample independence, AMD's guarantees, failures."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from skgfe._losses import mse_loss
from skgfe._solvers import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    REACHED_TAU,
    SOLVERS,
    STALLED,
    check_solver_options,
    solve,
)
from skgfe.exceptions import FlowSolverError

from .conftest import CountingDecoder

FAST = dict(tau=30.0, step_size=0.5, tol=1e-8, max_steps=2000)


def _linear_problem():
    W = torch.tensor([[1.0, 0.5], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    decoder = torch.nn.Linear(2, 3, bias=False).double()
    decoder.weight.data = W.clone()
    y = torch.tensor([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]], dtype=torch.float64)
    return decoder, W, y


@pytest.mark.parametrize("solver", ["euler", "rk4", "dopri5", "midpoint"])
def test_fixed_time_solution_matches_matrix_exponential(solver):
    # MSE on a linear decoder: dz/dt = -(2/d) W^T (W z - y), a linear ODE.
    decoder, W, y = _linear_problem()
    tau = 2.0
    z0 = torch.zeros(2, 2, dtype=torch.float64)
    A = (2.0 / 3.0) * W.T @ W
    z_star = torch.linalg.lstsq(W, y.T).solution.T
    expected = z_star + (z0 - z_star) @ torch.linalg.matrix_exp(-A * tau).T
    step = 1e-3 if solver == "euler" else 0.01
    result = solve(decoder, mse_loss, y, z0, solver=solver, tau=tau, step_size=step,
                   tol=1e-10, max_steps=10_000)
    atol = {"euler": 2e-3, "midpoint": 1e-4}.get(solver, 1e-7)
    torch.testing.assert_close(result.z, expected, atol=atol, rtol=0)
    assert (result.status == REACHED_TAU).all()


@pytest.mark.parametrize("ode_order", [1, 2])
def test_amd_reaches_the_least_squares_code(ode_order):
    decoder, W, y = _linear_problem()
    z0 = torch.zeros(2, 2, dtype=torch.float64)
    result = solve(decoder, mse_loss, y, z0, ode_order=ode_order, solver="amd",
                   tol=1e-12, max_steps=5000)
    z_star = torch.linalg.lstsq(W, y.T).solution.T
    torch.testing.assert_close(result.z, z_star, atol=1e-5, rtol=0)
    # Barzilai-Borwein steps grow large near the minimum, so tau may end the flow.
    assert set(result.status.tolist()) <= {CONVERGED, STALLED, REACHED_TAU}


@pytest.mark.parametrize(
    "solver, ode_order",
    [("amd", 1), ("amd", 2), ("euler", 1), ("rk4", 2), ("dopri5", 1), ("bosh3", 2)],
)
def test_code_does_not_depend_on_the_batch(small_decoder, targets, solver, ode_order):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    kwargs = dict(ode_order=ode_order, solver=solver, **FAST)
    batch = solve(small_decoder, mse_loss, targets, z0, **kwargs)
    for i in [0, 3, 5]:
        alone = solve(small_decoder, mse_loss, targets[i : i + 1], z0[i : i + 1], **kwargs)
        torch.testing.assert_close(batch.z[i : i + 1], alone.z, atol=1e-10, rtol=0)
        assert batch.n_steps[i] == alone.n_steps[0]
    order = torch.tensor([5, 2, 0, 4, 1, 3])
    permuted = solve(small_decoder, mse_loss, targets[order], z0[order], **kwargs)
    torch.testing.assert_close(permuted.z, batch.z[order], atol=1e-10, rtol=0)


@pytest.mark.parametrize("ode_order", [1, 2])
def test_amd_never_accepts_a_loss_increase(small_decoder, targets, ode_order):
    z0 = torch.rand(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    result = solve(small_decoder, mse_loss, targets, 3 * z0, ode_order=ode_order,
                   solver="amd", tol=1e-9, max_steps=500, record=True)
    for times, codes, losses in result.trajectory.paths(result.z, result.t, result.loss):
        assert (losses[1:] <= losses[:-1]).all()
        assert (times[1:] > times[:-1]).all()


@pytest.mark.parametrize("ode_order", [1, 2])
def test_amd_spends_one_evaluation_per_trial_and_only_on_active_samples(
    small_decoder, targets, ode_order
):
    counting = CountingDecoder(small_decoder)
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    # Sample 0 starts next to its optimum: its flow must stop early.
    targets = targets.clone()
    with torch.no_grad():
        targets[0] = small_decoder(z0[:1])[0] + 1e-3
    result = solve(counting, mse_loss, targets, z0, ode_order=ode_order, solver="amd",
                   tol=1e-6, max_steps=1000)
    # Every decoder row evaluated is one trial of one still-active sample.
    assert counting.rows_evaluated == int(result.n_fev.sum())
    assert result.n_fev[0] < result.n_fev[1:].min()


def test_amd_step_cap_gives_max_steps_status(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    result = solve(small_decoder, mse_loss, targets, z0, solver="amd", tol=0.0,
                   max_steps=7)
    assert (result.status == MAX_STEPS).all()
    assert (result.n_fev == 8).all()


def test_fixed_step_cap_gives_max_steps_status(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    result = solve(small_decoder, mse_loss, targets, z0, solver="rk4", tau=10.0,
                   step_size=0.1, max_steps=20)
    assert (result.status == MAX_STEPS).all()
    assert (result.n_steps == 20).all()
    torch.testing.assert_close(result.t, torch.full_like(result.t, 2.0))


class _InfAboveOne(torch.nn.Module):
    """Decodes to inf when the first code coordinate exceeds 1."""

    def forward(self, z):
        out = torch.cat([z, z.square()], dim=1)
        return torch.where(z[:, :1] > 1.0, torch.inf, out)


def test_nonfinite_start_is_reported_per_sample():
    y = torch.ones(3, 4, dtype=torch.float64)
    z0 = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    result = solve(_InfAboveOne(), mse_loss, y, z0, solver="amd", max_steps=50)
    assert result.status[1] == NONFINITE
    assert result.status[0] != NONFINITE and result.status[2] != NONFINITE
    assert torch.isfinite(result.z).all()


def test_amd_rejects_steps_into_nonfinite_regions():
    # The optimum z = (1.5, ...) lies in the inf region: AMD must stay finite.
    y = torch.full((1, 4), 1.5, dtype=torch.float64)
    z0 = torch.zeros(1, 2, dtype=torch.float64)
    result = solve(_InfAboveOne(), mse_loss, y, z0, solver="amd", step_size=10.0,
                   max_steps=300)
    assert torch.isfinite(result.loss).all()
    assert result.z[0, 0] <= 1.0


def test_unknown_solver_option_is_rejected():
    with pytest.raises(ValueError, match=r"solver_options has unknown key\(s\) \['gorw'\]"):
        check_solver_options("amd", {"gorw": 2.0})
    with pytest.raises(ValueError, match="allowed keys: none"):
        check_solver_options("rk4", {"atol": 1e-3})
    with pytest.raises(ValueError, match="allowed keys: none"):
        check_solver_options("midpoint", {"first_step": 1e-3})
    assert check_solver_options("dopri5", {"atol": 1e-6}) == {"atol": 1e-6}


def test_recording_needs_a_recording_solver(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="cannot record its steps"):
        solve(small_decoder, mse_loss, targets, z0, solver="dopri5", record=True)


def test_torchdiffeq_failure_names_the_parameter(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    with pytest.raises(FlowSolverError, match="increase max_flow_steps"):
        solve(small_decoder, mse_loss, targets, z0, solver="dopri5", tau=1e3,
              tol=1e-12, max_steps=3)


def test_registry_holds_skgfe_and_torchdiffeq_methods():
    assert {"amd", "euler", "rk4", "dopri5", "midpoint", "bosh3"} <= set(SOLVERS)
    assert "scipy_solver" not in SOLVERS


@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 5.0),
    ode_order=st.sampled_from([1, 2]),
)
def test_amd_lowers_every_sample_loss_below_its_start(seed, scale, ode_order):
    generator = torch.Generator().manual_seed(seed)
    decoder = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(),
                                  torch.nn.Linear(6, 4)).double()
    y = scale * torch.randn(5, 4, generator=generator, dtype=torch.float64)
    z0 = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    start = mse_loss(decoder(z0), y)
    result = solve(decoder, mse_loss, y, z0, ode_order=ode_order, solver="amd",
                   max_steps=200)
    assert (result.loss <= start).all()
    assert np.isfinite(result.z.detach().numpy()).all()
    assert math.isfinite(float(result.loss.sum()))


def test_amd_makes_progress_where_the_gradient_is_tiny_in_float32():
    # A weak decoder: default-sized steps change the float32 loss by less than
    # its rounding. AMD must grow its steps rather than stop at the start.
    generator = torch.Generator().manual_seed(0)
    decoder = torch.nn.Linear(3, 50, bias=False)
    with torch.no_grad():
        decoder.weight.copy_(1e-2 * torch.randn(50, 3, generator=generator))
    y = torch.randn(4, 50, generator=generator)
    z0 = torch.zeros(4, 3)
    z_star = torch.linalg.lstsq(decoder.weight.double(), y.double().T).solution.T
    best = mse_loss(decoder(z_star.float()), y)
    start = mse_loss(decoder(z0), y)
    result = solve(decoder, mse_loss, y, z0, solver="amd", tau=1e9,
                   options={"max_step_size": 1e9}, max_steps=2000)
    assert ((result.loss - best) < 0.01 * (start - best)).all()


def test_barzilai_borwein_steps_need_fewer_evaluations_than_growing():
    # MSE on a linear decoder with singular values 1 and 0.05 in rotated axes.
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(2, 2, generator=generator,
                                              dtype=torch.float64))
    decoder = torch.nn.Linear(2, 2, bias=False).double()
    decoder.weight.data = rotation @ torch.diag(torch.logspace(0, -1.3, 2,
                                                               dtype=torch.float64))
    y = torch.randn(8, 2, generator=generator, dtype=torch.float64)
    z_star = torch.linalg.solve(decoder.weight.data, y.T).T
    z0 = torch.zeros(8, 2, dtype=torch.float64)
    evals = {}
    for rule in ("grow", "bb"):
        result = solve(decoder, mse_loss, y, z0, solver="amd", tol=1e-10, tau=1e12,
                       max_steps=100000, options={"step_rule": rule})
        torch.testing.assert_close(result.z, z_star, atol=1e-4, rtol=0)
        evals[rule] = int(result.n_fev.sum())
    assert evals["bb"] < 0.2 * evals["grow"]
