"""Bridge to :func:`torchdiffeq.odeint` for its methods.

torchdiffeq's adaptive methods choose one step size from one error norm over
the whole state, so solving a batch at once would make a sample's code depend
on the other samples of its batch. They are therefore run one sample at a time
(slow, but correct). Its one-step fixed-grid methods ('midpoint', 'heun2',
'heun3', and 'euler' and 'rk4' where skgfe's own are not used) are driven one
step at a time on the active rows, so each sample stops on ``flow_tol`` as with
skgfe's fixed-step solvers. Its multistep Adams methods keep a history of past
steps over the whole batch inside one ``odeint`` call, which rows cannot leave,
so they run the whole batch up to ``tau``. torchdiffeq reports failures with
bare ``assert`` statements, which are turned here into
:class:`~skgfe.exceptions.FlowSolverError` naming the parameter to change.
"""

import math

import torch
from torchdiffeq import odeint

from .._compat import TORCHDIFFEQ_SOLVERS
from .._flows import FirstOrderFlow, SecondOrderFlow, State
from ..exceptions import FlowSolverError
from ._common import MAX_STEPS, NONFINITE, REACHED_TAU, SolveResult, real_option
from ._fixed import OPTIONS as FIXED_OPTIONS
from ._fixed import Derivative, integrate_fixed

FIXED_GRID = frozenset(
    {
        "euler",
        "midpoint",
        "heun2",
        "heun3",
        "rk4",
        "explicit_adams",
        "implicit_adams",
        "fixed_adams",
    }
)
# Fixed-grid methods that keep a history of steps (multistep methods).
MULTISTEP = frozenset({"explicit_adams", "implicit_adams", "fixed_adams"})
# scipy_solver leaves torch and cannot follow a torch decoder on the GPU.
METHODS = frozenset(TORCHDIFFEQ_SOLVERS) - {"scipy_solver"}

# Options of torchdiffeq's adaptive methods (tol gives rtol, and atol unless
# set); the one-step fixed-grid methods take the stopping rule's patience.
ADAPTIVE_OPTIONS = {
    "atol": real_option(None, 0, float("inf"), nullable=True),
    "first_step": real_option(None, 0, float("inf"), nullable=True),
}


def options_of(method: str) -> dict:
    """The options that torchdiffeq's ``method`` takes here."""
    if method in MULTISTEP:
        return {}
    return FIXED_OPTIONS if method in FIXED_GRID else ADAPTIVE_OPTIONS


def solve_torchdiffeq(
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
    """Solve with torchdiffeq's ``method``; see the module docstring.

    ``record`` must be False: the bridge does not replay torchdiffeq's steps.
    """
    if method in FIXED_GRID and method not in MULTISTEP:
        return integrate_fixed(
            flow,
            y,
            z0,
            _one_step(method),
            tau=tau,
            step_size=step_size,
            tol=tol,
            max_steps=max_steps,
            patience=options["patience"],
        )
    if method in MULTISTEP:
        n_needed = max(1, math.ceil(tau / step_size - 1e-9))
        t_end = tau * min(1.0, max_steps / n_needed)
        odeint_options = {"step_size": tau / n_needed}
        state, n_evals = _odeint(
            _field(flow, y),
            flow.initial_state(z0),
            0.0,
            t_end,
            method,
            tol,
            tol,
            odeint_options,
        )
        n_steps = [min(n_needed, max_steps)] * z0.shape[0]
        n_fev = [n_evals] * z0.shape[0]
        capped = n_needed > max_steps
    else:
        atol = options.get("atol") or tol
        odeint_options = {"max_num_steps": max_steps}
        if options.get("first_step") is not None:
            odeint_options["first_step"] = options["first_step"]
        states, n_fev = zip(
            *(
                _odeint(
                    _field(flow, y[i : i + 1]),
                    flow.initial_state(z0[i : i + 1]),
                    0.0,
                    tau,
                    method,
                    tol,
                    atol,
                    odeint_options,
                )
                for i in range(z0.shape[0])
            )
        )
        state = tuple(torch.cat(parts) for parts in zip(*states))
        # torchdiffeq does not report its accepted steps: count evaluations.
        n_steps = n_fev
        t_end, capped = tau, False

    z = flow.codes(state)
    loss, grad = flow.objective.value_and_grad(z, y)
    finite = torch.isfinite(loss) & torch.isfinite(z).all(dim=1)
    long = {"dtype": torch.long, "device": z0.device}
    status = torch.full((z0.shape[0],), MAX_STEPS if capped else REACHED_TAU, **long)
    return SolveResult(
        z=z,
        loss=loss,
        grad_norm=grad.norm(dim=1),
        t=torch.full_like(loss, t_end),
        n_steps=torch.tensor(n_steps, **long),
        n_fev=torch.tensor(n_fev, **long) + 1,
        status=torch.where(finite, status, NONFINITE),
    )


def _field(flow: FirstOrderFlow | SecondOrderFlow, y: torch.Tensor) -> Derivative:
    def derivative(t, state: State) -> tuple[State, torch.Tensor]:
        return flow.derivative(t, state, y)

    return derivative


def _one_step(method: str):
    """A stepper (see :func:`~._fixed.integrate_fixed`) making one ``method`` step.

    Without a step size, torchdiffeq's fixed-grid methods step along the
    given times, so ``odeint`` over ``[t, t + h]`` makes exactly one step. Their
    first evaluation is at ``(t, state)``: its loss is the loss at ``state``.
    """

    def step(
        derivative: Derivative, t: float, state: State, h: float
    ) -> tuple[State, torch.Tensor]:
        losses = []

        def recording(t_stage, s: State) -> tuple[State, torch.Tensor]:
            change, loss = derivative(t_stage, s)
            losses.append(loss)
            return change, loss

        new_state, _ = _odeint(recording, state, t, t + h, method, 0.0, 0.0, {})
        return new_state, losses[0]

    return step


def _odeint(
    derivative: Derivative,
    state: State,
    t_start: float,
    t_end: float,
    method: str,
    rtol: float,
    atol: float,
    options: dict,
) -> tuple[State, int]:
    """Return the state at ``t_end`` and the number of field evaluations."""
    n_evals = 0

    def field(t, s):
        nonlocal n_evals
        n_evals += 1
        return derivative(t, s)[0]

    times = torch.tensor([t_start, t_end], dtype=state[0].dtype, device=state[0].device)
    try:
        path = odeint(
            field, state, times, rtol=rtol, atol=atol, method=method, options=options
        )
    except AssertionError as exc:
        message = str(exc)
        if "max_num_steps" in message:
            hint = "increase max_flow_steps, loosen flow_tol or lower tau"
        elif "underflow" in message:
            hint = "loosen flow_tol, lower alpha, or use solver='amd'"
        else:
            hint = "check the decoder for non-finite outputs, or use solver='amd'"
        raise FlowSolverError(
            f"torchdiffeq solver {method!r} failed ({message}); {hint}"
        ) from exc
    return tuple(component[-1] for component in path), n_evals
