"""What every solver shares: its options, its stopping rule and what it returns."""

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import NamedTuple

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

    rows: torch.Tensor | None
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
    trajectory: Trajectory | None = None


@dataclass(frozen=True)
class Option:
    """One solver option: its default and the values it accepts.

    ``types`` are the accepted Python types (``bool`` never counts as a
    number), ``valid`` the range test applied after the type test, and
    ``allowed`` says in words what passes both, for the error messages.
    """

    default: object
    allowed: str
    types: tuple = (Real,)
    valid: Callable[[object], bool] = lambda value: True
    nullable: bool = False

    def check(self, key: str, value):
        """Return ``value`` if allowed, else raise TypeError or ValueError."""
        if value is None and self.nullable:
            return value
        message = f"flow_solver_options[{key!r}] must be {self.allowed}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, self.types):
            raise TypeError(message)
        if not self.valid(value):
            raise ValueError(message)
        return value


def real_option(default, low, high, *, closed="neither", nullable=False):
    """A float option in the interval from ``low`` to ``high``.

    ``closed`` is 'neither', 'left', 'right' or 'both'; NaN never passes, and
    inf passes only as a closed bound (``high=float('inf'), closed='right'``).
    """
    left = "[" if closed in ("left", "both") else "("
    right = "]" if closed in ("right", "both") else ")"
    allowed = f"a float in {left}{low}, {high}{right}"
    if nullable:
        allowed += " or None"

    def valid(value):
        above = value >= low if left == "[" else value > low
        below = value <= high if right == "]" else value < high
        return bool(above and below)

    return Option(default, allowed, (Real,), valid, nullable)


def int_option(default, low, *, nullable=False):
    """An integer option of at least ``low``."""
    allowed = f"an int >= {low}" + (" or None" if nullable else "")
    return Option(default, allowed, (Integral,), lambda value: value >= low, nullable)


def str_option(default, choices):
    """A string option among ``choices``."""
    allowed = "one of " + ", ".join(repr(choice) for choice in sorted(choices))
    return Option(default, allowed, (str,), lambda value: value in choices)


# The per-sample stopping rule of every solver that stops before tau: a sample
# stops after `patience` accepted steps in a row whose relative loss decrease
# is below tol (flow_tol).
PATIENCE = int_option(3, 1)


def relative_decrease(loss: torch.Tensor, new_loss: torch.Tensor) -> torch.Tensor:
    """Per-sample ``(loss - new_loss) / |loss|``, shape (n,)."""
    decrease = loss - new_loss
    return decrease / loss.abs().clamp_min(torch.finfo(decrease.dtype).tiny)


def count_quiet_steps(
    quiet: torch.Tensor,
    rel_decrease: torch.Tensor,
    accept: torch.Tensor,
    tol: float,
    counting: torch.Tensor | bool = True,
) -> torch.Tensor:
    """Accepted steps in a row whose relative loss change is below ``tol``.

    ``quiet`` (n,) long is the count before the step, ``rel_decrease`` (n,) the
    step's relative decrease, ``accept`` (n,) bool the rows that took it;
    other rows keep their count. Where ``counting`` is False a quiet step
    resets the count instead (AMD: its step is still growing). The change is
    taken in absolute value, so a flow whose loss rises (a fixed step that
    overshoots) is never taken for converged; AMD's accepted steps never raise
    the loss, for which this is the signed decrease.
    """
    counted = torch.where(counting & (rel_decrease.abs() < tol), quiet + 1, 0)
    return torch.where(accept, counted, quiet)
