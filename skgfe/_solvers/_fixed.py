"""Fixed-step explicit Euler and classic Runge-Kutta 4 on any flow's state."""

import math
from collections.abc import Callable

import torch

from .._flows import FirstOrderFlow, SecondOrderFlow, State
from ._common import (
    MAX_STEPS,
    NONFINITE,
    REACHED_TAU,
    SolveResult,
    StepRecord,
    Trajectory,
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
    """Integrate ``flow`` from 0 to ``tau`` in equal steps no longer than ``step_size``.

    At most ``max_steps`` steps are made; samples stopped by that cap get the
    MAX_STEPS status. ``tol`` and ``options`` are not used by fixed-step methods.
    """
    stepper, n_stages = STEPPERS[method]
    n_needed = max(1, math.ceil(tau / step_size - 1e-9))
    n_steps = min(n_needed, max_steps)
    h = tau / n_needed
    n = z0.shape[0]
    state = flow.initial_state(z0)
    records = []

    def derivative(t: float, s: State) -> tuple[State, torch.Tensor]:
        return flow.derivative(t, s, y)

    t = 0.0
    for _ in range(n_steps):
        new_state, loss = stepper(derivative, t, state, h)
        if record:
            t_tensor = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
            records.append(StepRecord(None, state, {"t": t, "h": h}, t_tensor, loss))
        state, t = new_state, t + h

    z = flow.codes(state)
    loss, grad = flow.objective.value_and_grad(z, y)
    finite = torch.isfinite(loss) & torch.isfinite(z).all(dim=1)
    long = {"dtype": torch.long, "device": z0.device}
    status = torch.full((n,), MAX_STEPS if n_steps < n_needed else REACHED_TAU, **long)
    status = torch.where(finite, status, NONFINITE)
    counts = torch.full((n,), n_steps, **long)
    trajectory = None
    if record:
        trajectory = Trajectory(_replay_step(flow, stepper), records, len(state))
    return SolveResult(
        z=z,
        loss=loss,
        grad_norm=grad.norm(dim=1),
        t=torch.full_like(loss, t),
        n_steps=counts,
        n_fev=counts * n_stages + 1,
        status=status,
        trajectory=trajectory,
    )


def _replay_step(flow: FirstOrderFlow | SecondOrderFlow, stepper: Stepper) -> Callable:
    """The pure, differentiable step that the full adjoint replays."""

    def step(state: State, y: torch.Tensor, t: float, h: float) -> State:
        def derivative(t_stage: float, s: State) -> tuple[State, torch.Tensor]:
            return flow.derivative(t_stage, s, y, create_graph=True)

        return stepper(derivative, t, state, h)[0]

    return step
