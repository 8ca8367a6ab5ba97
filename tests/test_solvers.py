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
    make_flow_solver,
    solve,
)
from skgfe.exceptions import FlowSolverError

from .conftest import CountingDecoder

FAST = {"tau": 30.0, "step_size": 0.5, "tol": 1e-8, "max_steps": 2000}


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
    result = solve(
        decoder,
        mse_loss,
        y,
        z0,
        solver=solver,
        tau=tau,
        step_size=step,
        tol=1e-10,
        max_steps=10_000,
    )
    atol = {"euler": 2e-3, "midpoint": 1e-4}.get(solver, 1e-7)
    torch.testing.assert_close(result.z, expected, atol=atol, rtol=0)
    assert (result.status == REACHED_TAU).all()


@pytest.mark.parametrize("ode_order", [1, 2])
def test_amd_reaches_the_least_squares_code(ode_order):
    decoder, W, y = _linear_problem()
    z0 = torch.zeros(2, 2, dtype=torch.float64)
    result = solve(
        decoder,
        mse_loss,
        y,
        z0,
        ode_order=ode_order,
        solver="amd",
        tol=1e-12,
        max_steps=5000,
    )
    z_star = torch.linalg.lstsq(W, y.T).solution.T
    torch.testing.assert_close(result.z, z_star, atol=1e-5, rtol=0)
    # Barzilai-Borwein steps grow large near the minimum, so tau may end the flow.
    assert set(result.status.tolist()) <= {CONVERGED, STALLED, REACHED_TAU}


# Fixed-step cases with a flow_tol that stops rows at different steps.
STOPPING = {**FAST, "tau": 200.0, "tol": 1e-4}


@pytest.mark.parametrize(
    "solver, ode_order, settings",
    [
        ("amd", 1, FAST),
        ("amd", 2, FAST),
        ("euler", 1, FAST),
        ("rk4", 2, FAST),
        ("dopri5", 1, FAST),
        ("bosh3", 2, FAST),
        ("euler", 1, STOPPING),
        ("rk4", 1, STOPPING),
        ("rk4", 2, STOPPING),
        ("midpoint", 1, STOPPING),
        ("heun3", 2, STOPPING),
    ],
)
def test_code_does_not_depend_on_the_batch(
    small_decoder, targets, solver, ode_order, settings
):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    kwargs = {"ode_order": ode_order, "solver": solver, **settings}
    batch = solve(small_decoder, mse_loss, targets, z0, **kwargs)
    for i in [0, 3, 5]:
        alone = solve(
            small_decoder, mse_loss, targets[i : i + 1], z0[i : i + 1], **kwargs
        )
        torch.testing.assert_close(batch.z[i : i + 1], alone.z, atol=1e-10, rtol=0)
        assert batch.n_steps[i] == alone.n_steps[0]
    order = torch.tensor([5, 2, 0, 4, 1, 3])
    permuted = solve(small_decoder, mse_loss, targets[order], z0[order], **kwargs)
    torch.testing.assert_close(permuted.z, batch.z[order], atol=1e-10, rtol=0)


@pytest.mark.parametrize("ode_order", [1, 2])
def test_amd_never_accepts_a_loss_increase(small_decoder, targets, ode_order):
    generator = torch.Generator().manual_seed(3)
    z0 = torch.rand(6, 2, dtype=torch.float64, generator=generator)
    result = solve(
        small_decoder,
        mse_loss,
        targets,
        3 * z0,
        ode_order=ode_order,
        solver="amd",
        tol=1e-9,
        max_steps=500,
        record=True,
    )
    paths = result.trajectory.paths(result.z, result.t, result.loss)
    for times, _codes, losses in paths:
        assert (losses[1:] <= losses[:-1]).all()
        assert (times[1:] > times[:-1]).all()


def _first_target_at_its_start(decoder, targets, z0):
    """``targets`` with sample 0 next to its optimum, so its flow stops first."""
    targets = targets.clone()
    with torch.no_grad():
        targets[0] = decoder(z0[:1])[0] + 1e-3
    return targets


@pytest.mark.parametrize("ode_order", [1, 2])
def test_amd_spends_one_evaluation_per_trial_and_only_on_active_samples(
    small_decoder, targets, ode_order
):
    counting = CountingDecoder(small_decoder)
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    targets = _first_target_at_its_start(small_decoder, targets, z0)
    result = solve(
        counting,
        mse_loss,
        targets,
        z0,
        ode_order=ode_order,
        solver="amd",
        tol=1e-6,
        max_steps=1000,
    )
    # Every decoder row evaluated is one trial of one still-active sample.
    assert counting.rows_evaluated == int(result.n_fev.sum())
    assert result.n_fev[0] < result.n_fev[1:].min()


def test_amd_step_cap_gives_max_steps_status(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    result = solve(
        small_decoder, mse_loss, targets, z0, solver="amd", tol=0.0, max_steps=7
    )
    assert (result.status == MAX_STEPS).all()
    assert (result.n_fev == 8).all()


def test_fixed_step_cap_gives_max_steps_status(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    result = solve(
        small_decoder,
        mse_loss,
        targets,
        z0,
        solver="rk4",
        tau=10.0,
        step_size=0.1,
        max_steps=20,
    )
    assert (result.status == MAX_STEPS).all()
    assert (result.n_steps == 20).all()
    torch.testing.assert_close(result.t, torch.full_like(result.t, 2.0))


def _stepping_solvers():
    """Every solver that stops each sample on flow_tol with a fixed step."""
    return sorted(
        name
        for name, spec in SOLVERS.items()
        if spec.fixed_step and "patience" in spec.options
    )


def test_fixed_step_solvers_that_stop_are_the_one_step_methods():
    assert {"euler", "rk4", "midpoint", "heun2", "heun3"} == set(_stepping_solvers())
    for name in ("explicit_adams", "implicit_adams", "fixed_adams"):
        assert SOLVERS[name].fixed_step and not SOLVERS[name].options


@pytest.mark.parametrize("solver", _stepping_solvers())
@pytest.mark.parametrize("ode_order", [1, 2])
def test_fixed_step_flow_stops_each_sample_when_converged(
    small_decoder, targets, solver, ode_order
):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    targets = _first_target_at_its_start(small_decoder, targets, z0)
    result = solve(
        small_decoder,
        mse_loss,
        targets,
        z0,
        ode_order=ode_order,
        solver=solver,
        tau=1e4,
        step_size=0.5,
        tol=1e-4,
        max_steps=5000,
    )
    # Converged long before tau / step_size = 20000 steps.
    assert (result.status == CONVERGED).all()
    if ode_order == 1:  # the momentum flow may overshoot the near optimum first
        assert result.n_steps[0] < result.n_steps[1:].min()
    torch.testing.assert_close(result.t, 0.5 * result.n_steps.double())
    # The same flow without a tolerance runs every step to tau.
    full = solve(
        small_decoder,
        mse_loss,
        targets[:2],
        z0[:2],
        ode_order=ode_order,
        solver=solver,
        tau=20.0,
        step_size=0.5,
        tol=0.0,
        max_steps=5000,
    )
    assert (full.status == REACHED_TAU).all() and (full.n_steps == 40).all()


@pytest.mark.parametrize("solver", ["euler", "rk4", "midpoint"])
def test_fixed_step_stops_near_the_least_squares_code(solver):
    decoder, W, y = _linear_problem()
    z0 = torch.zeros(2, 2, dtype=torch.float64)
    result = solve(
        decoder,
        mse_loss,
        y,
        z0,
        solver=solver,
        tau=1e4,
        step_size=0.5,
        tol=1e-10,
        max_steps=10_000,
    )
    z_star = torch.linalg.lstsq(W, y.T).solution.T
    torch.testing.assert_close(result.z, z_star, atol=1e-4, rtol=0)
    assert (result.status == CONVERGED).all() and (result.n_steps < 2000).all()


def test_patience_is_the_number_of_quiet_steps_before_a_stop(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    steps = {
        patience: solve(
            small_decoder,
            mse_loss,
            targets,
            z0,
            solver="rk4",
            tau=1e3,
            tol=1e-3,
            options={"patience": patience},
        ).n_steps
        for patience in (1, 3, 6)
    }
    assert (steps[1] < steps[3]).all() and (steps[3] < steps[6]).all()
    # Quiet steps stay quiet: a larger patience adds exactly the extra steps.
    assert (steps[6] - steps[3] == 3).all()


# Row 3 steps into the inf region, where the gradient is zero: Euler and RK4
# land there, the midpoint method only probes it and stays put (a zero step).
@pytest.mark.parametrize(
    "solver, last", [("euler", NONFINITE), ("rk4", NONFINITE), ("midpoint", CONVERGED)]
)
def test_fixed_step_freezes_a_diverging_row(solver, last):
    # Row 1 starts in the inf region; rows 0 and 2 never reach it.
    y = torch.tensor([[0.5] * 4, [1.0] * 4, [0.2] * 4, [3.0] * 4], dtype=torch.float64)
    z0 = torch.tensor(
        [[0.0, 0.0], [2.0, 0.0], [0.1, 0.1], [0.9, 0.9]], dtype=torch.float64
    )
    kwargs = {"solver": solver, "tau": 50.0, "step_size": 0.5, "tol": 1e-6}
    result = solve(_InfAboveOne(), mse_loss, y, z0, **kwargs)
    assert result.status.tolist() == [CONVERGED, NONFINITE, CONVERGED, last]
    assert result.n_steps[1] == 0 and torch.isfinite(result.z).all()
    for i in (0, 2):
        alone = solve(_InfAboveOne(), mse_loss, y[i : i + 1], z0[i : i + 1], **kwargs)
        torch.testing.assert_close(result.z[i], alone.z[0], atol=1e-12, rtol=0)


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
    result = solve(
        _InfAboveOne(), mse_loss, y, z0, solver="amd", step_size=10.0, max_steps=300
    )
    assert torch.isfinite(result.loss).all()
    assert result.z[0, 0] <= 1.0


def test_unknown_solver_option_is_rejected():
    unknown = r"flow_solver_options has unknown key\(s\) \['gorw'\]"
    with pytest.raises(ValueError, match=unknown):
        make_flow_solver("amd", {"gorw": 2.0})
    with pytest.raises(ValueError, match=r"allowed keys: \['patience'\]"):
        make_flow_solver("rk4", {"atol": 1e-3})
    with pytest.raises(ValueError, match=r"allowed keys: \['patience'\]"):
        make_flow_solver("midpoint", {"first_step": 1e-3})
    with pytest.raises(ValueError, match="allowed keys: none"):
        make_flow_solver("fixed_adams", {"patience": 3})
    assert make_flow_solver("dopri5", {"atol": 1e-6}).options["atol"] == 1e-6


# Per solver family: an option, a bad value, the error it raises and its message.
_NUMBER = "must be a float in"
BAD_OPTIONS = {
    "amd": [
        (
            "max_step_size",
            -1,
            ValueError,
            r"\['max_step_size'\] must be a float in \(0, inf\], got -1",
        ),
        ("max_step_size", 0.0, ValueError, _NUMBER),
        ("max_step_size", float("nan"), ValueError, r"got nan"),
        ("max_step_size", "big", TypeError, r"got 'big'"),
        (
            "shrink",
            "x",
            TypeError,
            r"\['shrink'\] must be a float in \(0, 1\), got 'x'",
        ),
        ("shrink", 1.0, ValueError, r"\(0, 1\), got 1.0"),
        ("shrink", 0, ValueError, r"\(0, 1\), got 0"),
        ("grow", 0.5, ValueError, r"\['grow'\] must be a float in \[1, inf\), got 0.5"),
        ("grow", float("inf"), ValueError, r"got inf"),
        ("grow", None, TypeError, r"got None"),
        ("sigma", float("nan"), ValueError, r"\['sigma'\] must be a float in \[0, 1\)"),
        ("sigma", -1e-4, ValueError, r"got -0.0001"),
        ("sigma", True, TypeError, r"got True"),
        ("patience", 0, ValueError, r"\['patience'\] must be an int >= 1, got 0"),
        ("patience", 2.0, TypeError, r"an int >= 1, got 2.0"),
        ("sync_every", 0, ValueError, r"\['sync_every'\] must be an int >= 1 or None"),
        ("sync_every", "8", TypeError, r"got '8'"),
        (
            "step_rule",
            "bogus",
            ValueError,
            r"\['step_rule'\] must be one of 'bb', 'grow', got 'bogus'",
        ),
        ("step_rule", 1, TypeError, r"got 1"),
        (
            "direction",
            "newton",
            ValueError,
            r"\['direction'\] must be one of 'auto', 'gradient', 'lbfgs', got 'newton'",
        ),
        ("memory", 0, ValueError, r"\['memory'\] must be an int >= 1, got 0"),
        ("memory", 4.0, TypeError, r"got 4.0"),
    ],
    "rk4": [
        ("patience", 0, ValueError, r"\['patience'\] must be an int >= 1, got 0"),
        ("patience", 1.5, TypeError, r"got 1.5"),
    ],
    "dopri5": [
        (
            "atol",
            -1e-3,
            ValueError,
            r"\['atol'\] must be a float in \(0, inf\) or None",
        ),
        ("atol", 0.0, ValueError, r"got 0.0"),
        ("atol", "1e-3", TypeError, r"got '1e-3'"),
        ("first_step", float("nan"), ValueError, r"\['first_step'\] must be a float"),
        ("first_step", [0.1], TypeError, r"got \[0.1\]"),
    ],
}
OPTION_CASES = [
    (solver, *case) for solver, cases in BAD_OPTIONS.items() for case in cases
]


@pytest.mark.parametrize("solver, key, value, error, message", OPTION_CASES)
def test_bad_option_values_raise_naming_the_key(solver, key, value, error, message):
    with pytest.raises(error, match=r"flow_solver_options\[" + f"'{key}'" + r"\]"):
        make_flow_solver(solver, {key: value})
    with pytest.raises(error, match=message):
        make_flow_solver(solver, {key: value})


def test_every_option_has_a_bad_value_case():
    for solver, cases in BAD_OPTIONS.items():
        assert {key for key, *_ in cases} == set(SOLVERS[solver].options)
    # Every solver takes the options of one of the families tested above.
    families = [set(SOLVERS[solver].options) for solver in BAD_OPTIONS]
    for spec in SOLVERS.values():
        assert not spec.options or set(spec.options) in families, spec.name


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_defaults_pass_their_own_checks(name):
    spec = SOLVERS[name]
    resolved = make_flow_solver(name, spec.defaults)
    assert dict(resolved.options) == spec.defaults
    for purpose, values in spec.purpose_options.items():
        assert dict(make_flow_solver(name, values, purpose=purpose).options) == {
            **spec.defaults,
            **values,
        }


def test_resolution_is_cached_by_value_and_type():
    first = make_flow_solver("amd", {"shrink": 0.25}, tau=10.0)
    assert make_flow_solver("amd", {"shrink": 0.25}, tau=10.0) is first
    assert make_flow_solver("amd", {"shrink": 0.25}, tau=10) is not first
    assert make_flow_solver("amd", {"shrink": 0.5}, tau=10.0).options["shrink"] == 0.5
    adjoint = make_flow_solver("amd", {"shrink": 0.25}, tau=10.0, purpose="adjoint")
    assert adjoint.options["step_rule"] == "grow"
    assert first.options["step_rule"] == "bb"


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_recording_follows_the_registry(small_decoder, targets, name):
    z0 = torch.zeros(2, 2, dtype=torch.float64)
    flow_solver = make_flow_solver(name, tau=1.0, step_size=0.5, tol=1e-3, max_steps=20)
    if SOLVERS[name].records:
        result = flow_solver.solve(
            small_decoder, mse_loss, targets[:2], z0, record=True
        )
        assert result.trajectory is not None and result.trajectory.records
    else:
        with pytest.raises(ValueError, match="cannot record its steps; use one of"):
            flow_solver.solve(small_decoder, mse_loss, targets[:2], z0, record=True)


def test_torchdiffeq_failure_names_the_parameter(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    with pytest.raises(FlowSolverError, match="increase max_flow_steps"):
        solve(
            small_decoder,
            mse_loss,
            targets,
            z0,
            solver="dopri5",
            tau=1e3,
            tol=1e-12,
            max_steps=3,
        )


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
    decoder = torch.nn.Sequential(
        torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4)
    ).double()
    y = scale * torch.randn(5, 4, generator=generator, dtype=torch.float64)
    z0 = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    start = mse_loss(decoder(z0), y)
    result = solve(
        decoder, mse_loss, y, z0, ode_order=ode_order, solver="amd", max_steps=200
    )
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
    result = solve(
        decoder,
        mse_loss,
        y,
        z0,
        solver="amd",
        tau=1e9,
        options={"max_step_size": 1e9},
        max_steps=2000,
    )
    assert ((result.loss - best) < 0.01 * (start - best)).all()


def test_barzilai_borwein_steps_need_fewer_evaluations_than_growing():
    # MSE on a linear decoder with singular values 1 and 0.05 in rotated axes.
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(
        torch.randn(2, 2, generator=generator, dtype=torch.float64)
    )
    decoder = torch.nn.Linear(2, 2, bias=False).double()
    decoder.weight.data = rotation @ torch.diag(
        torch.logspace(0, -1.3, 2, dtype=torch.float64)
    )
    y = torch.randn(8, 2, generator=generator, dtype=torch.float64)
    z_star = torch.linalg.solve(decoder.weight.data, y.T).T
    z0 = torch.zeros(8, 2, dtype=torch.float64)
    evals = {}
    for rule in ("grow", "bb"):
        result = solve(
            decoder,
            mse_loss,
            y,
            z0,
            solver="amd",
            tol=1e-10,
            tau=1e12,
            max_steps=100000,
            options={"step_rule": rule, "direction": "gradient"},
        )
        torch.testing.assert_close(result.z, z_star, atol=1e-4, rtol=0)
        evals[rule] = int(result.n_fev.sum())
    assert evals["bb"] < 0.2 * evals["grow"]


# ------------------------------------------------------------- AMD with L-BFGS

LBFGS = {"direction": "lbfgs"}


def test_lbfgs_reaches_the_least_squares_code():
    decoder, W, y = _linear_problem()
    z0 = torch.zeros(2, 2, dtype=torch.float64)
    result = solve(
        decoder,
        mse_loss,
        y,
        z0,
        solver="amd",
        tol=1e-12,
        max_steps=500,
        tau=1e12,
        options=LBFGS,
    )
    z_star = torch.linalg.lstsq(W, y.T).solution.T
    torch.testing.assert_close(result.z, z_star, atol=1e-8, rtol=0)


def test_lbfgs_rows_do_not_depend_on_their_batch(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    kwargs = dict(solver="amd", options=LBFGS, tol=1e-8, max_steps=2000)
    batch = solve(small_decoder, mse_loss, targets, z0, **kwargs)
    for i in range(6):
        alone = solve(
            small_decoder, mse_loss, targets[i : i + 1], z0[i : i + 1], **kwargs
        )
        torch.testing.assert_close(batch.z[i : i + 1], alone.z, atol=1e-10, rtol=0)
        assert batch.n_fev[i] == alone.n_fev[0]


def test_lbfgs_never_accepts_a_loss_increase_and_records_its_path(
    small_decoder, targets
):
    generator = torch.Generator().manual_seed(3)
    z0 = 3 * torch.rand(6, 2, dtype=torch.float64, generator=generator)
    result = solve(
        small_decoder,
        mse_loss,
        targets,
        z0,
        solver="amd",
        tol=1e-9,
        max_steps=500,
        record=True,
        options=LBFGS,
    )
    for times, _codes, losses in result.trajectory.paths(
        result.z, result.t, result.loss
    ):
        assert (losses[1:] <= losses[:-1]).all()
        assert (times[1:] > times[:-1]).all()
    with pytest.raises(ValueError, match="cannot be replayed.*direction='gradient'"):
        result.trajectory.step((z0,), targets)


def test_lbfgs_needs_fewer_decoder_passes_than_gradient_steps():
    generator = torch.Generator().manual_seed(0)
    from skgfe.decoders import make_mlp

    decoder = make_mlp(4, (32,), 20, "elu", generator).double()
    y = torch.rand(64, 20, dtype=torch.float64, generator=generator)
    z0 = torch.zeros(64, 4, dtype=torch.float64)
    kwargs = dict(solver="amd", tol=1e-6, tau=1e12, max_steps=5000)
    gradient = solve(
        decoder, mse_loss, y, z0, options={"direction": "gradient"}, **kwargs
    )
    lbfgs = solve(decoder, mse_loss, y, z0, options=LBFGS, **kwargs)
    assert lbfgs.n_fev.double().mean() < 0.7 * gradient.n_fev.double().mean()
    assert lbfgs.loss.mean() <= gradient.loss.mean() * (1 + 1e-6)


def test_lbfgs_is_first_order_only(small_decoder, targets):
    z0 = torch.zeros(6, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="first-order method; use ode_order=1"):
        solve(
            small_decoder,
            mse_loss,
            targets,
            z0,
            solver="amd",
            ode_order=2,
            options=LBFGS,
        )
    # 'auto' takes the momentum flow for the second order.
    solve(
        small_decoder,
        mse_loss,
        targets,
        z0,
        solver="amd",
        ode_order=2,
        options={"direction": "auto"},
    )


def test_replayed_solves_take_gradient_steps():
    assert make_flow_solver("amd", purpose="adjoint").options["direction"] == "gradient"
    explicit = make_flow_solver("amd", LBFGS, purpose="adjoint")
    assert explicit.options["direction"] == "lbfgs"
