"""Fixed-step explicit Euler and classic Runge-Kutta 4, stopping per sample."""

import math
from collections.abc import Callable

import torch

from .._flows import FirstOrderFlow, SecondOrderFlow, State
from ._common import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    PATIENCE,
    REACHED_TAU,
    SolveResult,
    StepRecord,
    Trajectory,
    count_quiet_steps,
    relative_decrease,
)

# derivative(t, state) -> (d state / dt, loss at state (n,))
Derivative = Callable[[float, State], tuple[State, torch.Tensor]]
Stepper = Callable[[Derivative, float, State, float], tuple[State, torch.Tensor]]


def _axpy(state: State, h: float, derivative: State) -> State:
    return tuple(s + h * d for s, d in zip(state, derivative))


def euler_step(
    derivative: Derivative, t: float, state: State, h: float
) -> tuple[State, torch.Tensor]:
    """One explicit Euler step; returns (new state, loss at ``state``)."""
    k1, loss = derivative(t, state)
    return _axpy(state, h, k1), loss


def rk4_step(
    derivative: Derivative, t: float, state: State, h: float
) -> tuple[State, torch.Tensor]:
    """One classic RK4 step; returns (new state, loss at ``state``)."""
    k1, loss = derivative(t, state)
    k2, _ = derivative(t + h / 2, _axpy(state, h / 2, k1))
    k3, _ = derivative(t + h / 2, _axpy(state, h / 2, k2))
    k4, _ = derivative(t + h, _axpy(state, h, k3))
    new_state = tuple(
        s + (h / 6) * (a + 2 * b + 2 * c + d)
        for s, a, b, c, d in zip(state, k1, k2, k3, k4)
    )
    return new_state, loss


STEPPERS = {"euler": (euler_step, 1), "rk4": (rk4_step, 4)}

# The options of every fixed-step method that stops early.
OPTIONS = {"patience": PATIENCE}


def solve_fixed(
    flow: FirstOrderFlow | SecondOrderFlow,
    y: torch.Tensor,
    z0: torch.Tensor,
    *,
    method: str,
    tau: float,
    step_size: float,
    tol: float,
    max_steps: int,
    options: dict,
    record: bool = False,
) -> SolveResult:
    """Integrate ``flow`` with skgfe's 'euler' or 'rk4'; see :func:`integrate_fixed`."""
    stepper = STEPPERS[method][0]
    result = integrate_fixed(
        flow,
        y,
        z0,
        stepper,
        tau=tau,
        step_size=step_size,
        tol=tol,
        max_steps=max_steps,
        patience=options["patience"],
        record=record,
    )
    if record:
        trajectory = result.trajectory._replace(step=_replay_step(flow, stepper))
        result = result._replace(trajectory=trajectory)
    return result


def integrate_fixed(
    flow: FirstOrderFlow | SecondOrderFlow,
    y: torch.Tensor,
    z0: torch.Tensor,
    stepper: Stepper,
    *,
    tau: float,
    step_size: float,
    tol: float,
    max_steps: int,
    patience: int,
    record: bool = False,
) -> SolveResult:
    """Integrate ``flow`` in equal steps no longer than ``step_size``, per sample.

    Every sample takes the steps ``h = tau / ceil(tau / step_size)`` from t = 0
    and stops after ``patience`` steps in a row whose relative loss change is
    below ``tol`` (AMD's rule, :func:`~._common.count_quiet_steps`; status
    CONVERGED), when its loss is not finite (NONFINITE), at ``tau``
    (REACHED_TAU) or after ``max_steps`` steps (MAX_STEPS). Stopped rows are
    frozen and leave the active set, so a row's code does not depend on its
    batch. ``stepper(derivative, t, state, h)`` returns the new state and the
    loss at ``state``; the loss after a step is known at the next one, so a
    row stops at the state where its last quiet step ended. Recorded steps
    carry the rows that took them; the trajectory's ``step`` is left for the
    caller to set.
    """
    n_needed = max(1, math.ceil(tau / step_size - 1e-9))
    n_steps_max = min(n_needed, max_steps)
    h = tau / n_needed
    n = z0.shape[0]
    long = {"dtype": torch.long, "device": z0.device}
    # The final state of each row, written when the row stops.
    final = tuple(s.clone() for s in flow.initial_state(z0))
    t_stop = torch.zeros(n, dtype=z0.dtype, device=z0.device)
    n_steps = torch.full((n,), n_steps_max, **long)
    n_fev = torch.ones(n, **long)  # the final evaluation
    status = torch.full(
        (n,), MAX_STEPS if n_steps_max < n_needed else REACHED_TAU, **long
    )

    # Active set: state components (n_active, n_components), model dtype;
    # rows (n_active,) indexes the batch; the targets travel with the rows.
    state = flow.initial_state(z0)
    rows = torch.arange(n, **long)
    y_active = y
    previous_loss = None  # (n_active,): loss at the state before the last step
    quiet = torch.zeros(n, **long)
    records = []
    n_evals = 0

    def derivative(t_stage, s: State) -> tuple[State, torch.Tensor]:
        nonlocal n_evals
        n_evals += 1
        return flow.derivative(t_stage, s, y_active)

    t = 0.0
    for k in range(n_steps_max):
        n_evals = 0
        new_state, loss = stepper(derivative, t, state, h)
        n_fev[rows] += n_evals
        if previous_loss is not None:
            change = relative_decrease(previous_loss, loss)
            quiet = count_quiet_steps(
                quiet, change, torch.ones_like(loss, dtype=bool), tol
            )
        converged = quiet >= patience
        stop = converged | ~torch.isfinite(loss)
        go = ~stop
        if record and bool(go.any()):
            t_tensor = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
            records.append(
                StepRecord(
                    rows[go],
                    tuple(s[go] for s in state),
                    {"t": t, "h": h},
                    t_tensor,
                    loss[go],
                )
            )
        if bool(stop.any()):
            done = rows[stop]
            for target, s in zip(final, state):
                target[done] = s[stop]
            t_stop[done] = t
            n_steps[done] = k
            status[done] = torch.where(converged[stop], CONVERGED, NONFINITE)
            rows, y_active = rows[go], y_active[go]
            new_state = tuple(s[go] for s in new_state)
            loss, quiet = loss[go], quiet[go]
        state, previous_loss, t = new_state, loss, t + h
        if not rows.numel():
            break
    for target, s in zip(final, state):
        target[rows] = s
    t_stop[rows] = t

    z = flow.codes(final)
    loss, grad = flow.objective.value_and_grad(z, y)
    finite = torch.isfinite(loss) & torch.isfinite(z).all(dim=1)
    trajectory = Trajectory(None, records, len(final)) if record else None
    return SolveResult(
        z=z,
        loss=loss,
        grad_norm=grad.norm(dim=1),
        t=t_stop,
        n_steps=n_steps,
        n_fev=n_fev,
        status=torch.where(finite, status, NONFINITE),
        trajectory=trajectory,
    )


def _replay_step(flow: FirstOrderFlow | SecondOrderFlow, stepper: Stepper) -> Callable:
    """The pure, differentiable step that the full adjoint replays."""

    def step(state: State, y: torch.Tensor, t: float, h: float) -> State:
        def derivative(t_stage: float, s: State) -> tuple[State, torch.Tensor]:
            return flow.derivative(t_stage, s, y, create_graph=True)

        return stepper(derivative, t, state, h)[0]

    return step
