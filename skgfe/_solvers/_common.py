"""What every solver returns: codes, per-sample statistics and, on request, the path."""

from typing import Callable, NamedTuple, Optional

import torch

# Per-sample outcome of a solve (SolveResult.status).
CONVERGED = 0  # the stopping test (flow_tol) was met
REACHED_TAU = 1  # integrated up to the flow time tau
STALLED = 2  # no step, however small, lowers the loss further: a minimum to precision
MAX_STEPS = 3  # stopped by max_steps before converging
NONFINITE = 4  # the loss or the code is not finite
RUNNING = -1

STATUS_NAMES = {
    CONVERGED: "converged",
    REACHED_TAU: "reached_tau",
    STALLED: "stalled",
    MAX_STEPS: "max_steps",
    NONFINITE: "nonfinite",
}


class StepRecord(NamedTuple):
    """One accepted step for a set of rows, kept for the adjoint and for plots.

    ``state`` is the state *before* the step, ``coeffs`` the step's constants
    (step size, momentum, time) and ``loss`` the loss at ``state``; ``rows``
    indexes the batch (None: every row).
    """

    rows: Optional[torch.Tensor]
    state: tuple
    coeffs: dict
    t: torch.Tensor
    loss: torch.Tensor


class Trajectory(NamedTuple):
    """The accepted steps of a solve and the pure function that makes one step.

    ``step(state, y, **coeffs)`` recomputes a recorded step differentiably, which
    is all the full adjoint needs (see :mod:`skgfe._adjoint`).
    """

    step: Callable
    records: list
    n_state: int

    def paths(self, final_codes: torch.Tensor, final_t, final_loss):
        """Per-sample (times, codes, losses) along the flow, as lists of tensors."""
        n = final_codes.shape[0]
        times = [[] for _ in range(n)]
        codes = [[] for _ in range(n)]
        losses = [[] for _ in range(n)]
        for record in self.records:
            rows = range(n) if record.rows is None else record.rows.tolist()
            t = record.t.expand(len(rows)) if record.t.dim() == 0 else record.t
            for j, i in enumerate(rows):
                times[i].append(t[j])
                codes[i].append(record.state[0][j])
                losses[i].append(record.loss[j])
        for i in range(n):
            times[i].append(final_t[i])
            codes[i].append(final_codes[i])
            losses[i].append(final_loss[i])
        return [
            (torch.stack(t_i), torch.stack(z_i), torch.stack(l_i))
            for t_i, z_i, l_i in zip(times, codes, losses)
        ]


class SolveResult(NamedTuple):
    """Outcome of a gradient-flow solve for a batch of samples.

    Attributes
    ----------
    z : Tensor (n, n_components)
        The codes at the end of the flow.
    loss : Tensor (n,)
        Per-sample loss at ``z``.
    grad_norm : Tensor (n,)
        Euclidean norm of the loss gradient at ``z``.
    t : Tensor (n,)
        Flow time reached by each sample.
    n_steps : Tensor (n,)
        Accepted steps per sample.
    n_fev : Tensor (n,)
        Decoder forward+backward evaluations spent on each sample.
    status : Tensor (n,)
        One of the status codes of this module per sample.
    trajectory : Trajectory or None
        The accepted steps, when the solve was asked to record them.
    """

    z: torch.Tensor
    loss: torch.Tensor
    grad_norm: torch.Tensor
    t: torch.Tensor
    n_steps: torch.Tensor
    n_fev: torch.Tensor
    status: torch.Tensor
    trajectory: Optional[Trajectory] = None
