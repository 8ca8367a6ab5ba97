"""The full adjoint equals differentiation through the unrolled solver."""

import pytest
import torch

from skgfe._adjoint import add_integral_term, integral_term
from skgfe._losses import mse_loss
from skgfe._solvers import CONVERGED, recording_solvers, solve

SETTINGS = {
    # The adjoint replays the flow's steps, not L-BFGS ones.
    "amd": {
        "tau": 1e4,
        "step_size": 1.0,
        "tol": 1e-6,
        "max_steps": 300,
        "options": {"direction": "gradient"},
    },
    "euler": {"tau": 10.0, "step_size": 0.5, "tol": 0.0, "max_steps": 100},
    "rk4": {"tau": 10.0, "step_size": 0.5, "tol": 0.0, "max_steps": 100},
}
# Every solver that records its steps, under both flows (SETTINGS must know it).
CASES = [(solver, order) for solver in recording_solvers() for order in (1, 2)]


def _grad_z(decoder, z, y):
    loss = mse_loss(decoder(z), y).sum()
    return torch.autograd.grad(loss, z, create_graph=True)[0]


def _unrolled_codes(decoder, y, z0, solver, ode_order, result):
    """Re-run the accepted steps in one autograd graph, apart from skgfe's replay."""
    z0 = z0.clone().requires_grad_(True)
    if solver == "amd":
        z, z_prev = z0.clone(), z0.clone()
        for record in result.trajectory.records:
            rows = record.rows
            zr = z[rows]
            grad = _grad_z(decoder, zr, y[rows])
            step = zr - record.coeffs["alpha_step"][:, None] * grad
            if ode_order == 2:
                step = step + record.coeffs["beta"][:, None] * (zr - z_prev[rows])
                z_prev = z_prev.index_put((rows,), zr)
            z = z.index_put((rows,), step)
        return z
    h = SETTINGS[solver]["tau"] / 20
    z, v = z0.clone(), torch.zeros_like(z0)

    def field(t, z, v):
        grad = _grad_z(decoder, z, y)
        if ode_order == 1:
            return -grad, torch.zeros_like(v)
        return v, -(3.0 / (t + 1e-8)) * v - grad

    t = 0.0
    for _ in range(20):
        if solver == "euler":
            dz, dv = field(t, z, v)
            z, v = z + h * dz, v + h * dv
        else:
            k1 = field(t, z, v)
            k2 = field(t + h / 2, z + h / 2 * k1[0], v + h / 2 * k1[1])
            k3 = field(t + h / 2, z + h / 2 * k2[0], v + h / 2 * k2[1])
            k4 = field(t + h, z + h * k3[0], v + h * k3[1])
            z = z + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            v = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        t += h
    return z


def _adjoint_gradients(decoder, y, z0, solver, ode_order):
    params = list(decoder.parameters())
    result = solve(
        decoder,
        mse_loss,
        y,
        z0,
        ode_order=ode_order,
        solver=solver,
        record=True,
        **SETTINGS[solver],
    )
    codes = result.z.detach().requires_grad_(True)
    direct = torch.autograd.grad(mse_loss(decoder(codes), y).sum(), [*params, codes])
    integral = integral_term(result.trajectory, y, direct[-1], params)
    return result, list(direct[:-1]), integral


@pytest.mark.parametrize("solver, ode_order", CASES)
def test_full_adjoint_matches_unrolled_autodiff(
    small_decoder, targets, solver, ode_order
):
    z0 = torch.full((6, 2), 0.1, dtype=torch.float64)
    result, direct, integral = _adjoint_gradients(
        small_decoder, targets, z0, solver, ode_order
    )
    assert any(g.abs().max() > 1e-6 for g in integral), "the integral term is not zero"
    codes = _unrolled_codes(small_decoder, targets, z0, solver, ode_order, result)
    torch.testing.assert_close(codes, result.z, atol=1e-10, rtol=0)
    expected = torch.autograd.grad(
        mse_loss(small_decoder(codes), targets).sum(), list(small_decoder.parameters())
    )
    for d, i, e in zip(direct, integral, expected):
        torch.testing.assert_close(d + i, e, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("solver", ["euler", "rk4"])
def test_full_adjoint_matches_finite_differences(small_decoder, targets, solver):
    z0 = torch.full((6, 2), 0.1, dtype=torch.float64)
    _, direct, integral = _adjoint_gradients(small_decoder, targets, z0, solver, 2)
    weight = small_decoder[0].weight
    eps = 1e-6
    for index in [(0, 0), (3, 1), (7, 0)]:
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                weight[index] += sign * eps
            values.append(
                solve(
                    small_decoder,
                    mse_loss,
                    targets,
                    z0,
                    ode_order=2,
                    solver=solver,
                    **SETTINGS[solver],
                ).loss.sum()
            )
            with torch.no_grad():
                weight[index] -= sign * eps
        finite_difference = (values[0] - values[1]) / (2 * eps)
        adjoint = direct[0][index] + integral[0][index]
        torch.testing.assert_close(adjoint, finite_difference, rtol=1e-5, atol=1e-9)


def test_approximate_gradient_is_the_full_gradient_minus_the_integral(
    small_decoder, targets
):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    params = list(small_decoder.parameters())
    result = solve(small_decoder, mse_loss, targets, z0, record=True, **SETTINGS["amd"])
    codes = result.z.detach().requires_grad_(True)
    mse_loss(small_decoder(codes), targets).sum().backward()
    approximate = [p.grad.clone() for p in params]
    add_integral_term(result.trajectory, targets, codes.grad, params)
    full = [p.grad.clone() for p in params]
    integral = integral_term(result.trajectory, targets, codes.grad, params)
    for a, f, i in zip(approximate, full, integral):
        torch.testing.assert_close(f - a, i, rtol=1e-12, atol=1e-14)


def _unrolled_by_records(decoder, y, z0, solver, ode_order, records):
    """Fixed steps in one autograd graph, each applied to the rows it recorded."""
    z0 = z0.clone().requires_grad_(True)
    z, v = z0.clone(), torch.zeros_like(z0)
    for record in records:
        rows, t, h = record.rows, record.coeffs["t"], record.coeffs["h"]

        def field(t, z, v, y=y[rows]):
            grad = _grad_z(decoder, z, y)
            if ode_order == 1:
                return -grad, torch.zeros_like(v)
            return v, -(3.0 / (t + 1e-8)) * v - grad

        zr, vr = z[rows], v[rows]
        k1 = field(t, zr, vr)
        if solver == "euler":
            zr, vr = zr + h * k1[0], vr + h * k1[1]
        else:
            k2 = field(t + h / 2, zr + h / 2 * k1[0], vr + h / 2 * k1[1])
            k3 = field(t + h / 2, zr + h / 2 * k2[0], vr + h / 2 * k2[1])
            k4 = field(t + h, zr + h * k3[0], vr + h * k3[1])
            zr = zr + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            vr = vr + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        z, v = z.index_put((rows,), zr), v.index_put((rows,), vr)
    return z


@pytest.mark.parametrize("solver", ["euler", "rk4"])
@pytest.mark.parametrize("ode_order", [1, 2])
def test_full_adjoint_is_exact_for_fixed_steps_that_stop_early(
    small_decoder, targets, solver, ode_order
):
    z0 = torch.full((6, 2), 0.1, dtype=torch.float64)
    params = list(small_decoder.parameters())
    result = solve(
        small_decoder,
        mse_loss,
        targets,
        z0,
        ode_order=ode_order,
        solver=solver,
        tau=40.0,
        step_size=0.5,
        tol=2e-3,
        max_steps=100,
        record=True,
    )
    # Rows stop at different steps, some before tau, and the records follow them.
    assert CONVERGED in result.status.tolist()
    assert len(set(result.n_steps.tolist())) > 1
    for i in range(6):
        taken = sum(int((r.rows == i).sum()) for r in result.trajectory.records)
        assert taken == result.n_steps[i]
    codes = result.z.detach().requires_grad_(True)
    direct = torch.autograd.grad(
        mse_loss(small_decoder(codes), targets).sum(), [*params, codes]
    )
    integral = integral_term(result.trajectory, targets, direct[-1], params)
    unrolled = _unrolled_by_records(
        small_decoder, targets, z0, solver, ode_order, result.trajectory.records
    )
    torch.testing.assert_close(unrolled, result.z, atol=1e-10, rtol=0)
    expected = torch.autograd.grad(
        mse_loss(small_decoder(unrolled), targets).sum(), params
    )
    for d, i, e in zip(direct[:-1], integral, expected):
        torch.testing.assert_close(d + i, e, rtol=1e-5, atol=1e-10)
