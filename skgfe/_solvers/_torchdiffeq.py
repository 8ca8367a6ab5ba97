"""Bridge to :func:`torchdiffeq.odeint` for its methods.

torchdiffeq's adaptive methods choose one step size from one error norm over
the whole state, so solving a batch at once would make a sample's code depend
on the other samples of its batch. They are therefore run one sample at a time
(slow, but correct); its fixed-grid methods run on the whole batch. torchdiffeq
reports failures with bare ``assert`` statements, which are turned here into
:class:`~skgfe.exceptions.FlowSolverError` naming the parameter to change.
"""

import math

import torch
from torchdiffeq import odeint

from .._compat import TORCHDIFFEQ_SOLVERS
from .._flows import FirstOrderFlow, SecondOrderFlow, State
from ..exceptions import FlowSolverError
from ._common import MAX_STEPS, NONFINITE, REACHED_TAU, SolveResult, real_option

FIXED_GRID = frozenset(
    {"euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams",
     "fixed_adams"}
)
# scipy_solver leaves torch and cannot follow a torch decoder on the GPU.
METHODS = frozenset(TORCHDIFFEQ_SOLVERS) - {"scipy_solver"}

# Options of torchdiffeq's adaptive methods (tol gives rtol, and atol unless
# set); its fixed-grid methods take none.
ADAPTIVE_OPTIONS = {
    "atol": real_option(None, 0, float("inf"), nullable=True),
    "first_step": real_option(None, 0, float("inf"), nullable=True),
}


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

    ``record`` must be False: torchdiffeq does not report its steps.
    """
    if method in FIXED_GRID:
        n_needed = max(1, math.ceil(tau / step_size - 1e-9))
        t_end = tau * min(1.0, max_steps / n_needed)
        odeint_options = {"step_size": tau / n_needed}
        state, n_evals = _odeint(flow, y, flow.initial_state(z0), t_end, method, tol,
                                 tol, odeint_options)
        n_steps = [min(n_needed, max_steps)] * z0.shape[0]
        n_fev = [n_evals] * z0.shape[0]
        capped = n_needed > max_steps
    else:
        atol = options.get("atol") or tol
        odeint_options = {"max_num_steps": max_steps}
        if options.get("first_step") is not None:
            odeint_options["first_step"] = options["first_step"]
        states, n_fev = zip(*(
            _odeint(flow, y[i : i + 1], flow.initial_state(z0[i : i + 1]), tau, method,
                    tol, atol, odeint_options)
            for i in range(z0.shape[0])
        ))
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


def _odeint(
    flow: FirstOrderFlow | SecondOrderFlow,
    y: torch.Tensor,
    state: State,
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
        return flow.derivative(t, s, y)[0]

    times = torch.tensor([0.0, t_end], dtype=state[0].dtype, device=state[0].device)
    try:
        path = odeint(field, state, times, rtol=rtol, atol=atol, method=method,
                      options=options)
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
