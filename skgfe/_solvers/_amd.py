"""AMD, the adaptive "minimise distance" solver, with per-sample steps.

Every sample has its own step size, acceptance test and stopping test, so a
sample's code does not depend on the other samples of its batch (unlike the
authors' version, which shares one step and one acceptance test over a batch).
One trial costs one decoder forward+backward pass: the loss and gradient at an
accepted point are kept and reused for the next trial. A trial is accepted
only if it lowers the sample's loss by the sufficient-decrease (Armijo) margin,
so the loss never rises. After a success the next step is the Barzilai-Borwein
step fitted to the change of gradient along the move (rounded down to a power
of two), or the step times ``grow`` (option ``step_rule``). Finished samples
leave the active set and cost nothing.

The first-order variant makes explicit Euler steps of the gradient flow. The
second-order variant discretises the accelerated flow of Su, Boyd and Candes as
Nesterov's method with momentum ``k / (k + 3)`` and adaptive restart
(O'Donoghue and Candes): when a momentum step fails, the momentum is reset and
the trial repeated as a plain gradient step.

References
----------
Flouris, Volokitin, Bredell, Konukoglu. Explicit and data-efficient encoding via
gradient flow. arXiv:2412.00864.
O'Donoghue, Candes. Adaptive restart for accelerated gradient schemes. FoCM 2015.
Barzilai, Borwein. Two-point step size gradient methods. IMA J. Numer. Anal. 1988.
"""


from typing import NamedTuple

import torch

from .._flows import FirstOrderFlow, SecondOrderFlow
from ._common import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    PATIENCE,
    REACHED_TAU,
    RUNNING,
    STALLED,
    SolveResult,
    StepRecord,
    Trajectory,
    count_quiet_steps,
    int_option,
    real_option,
    relative_decrease,
    str_option,
)

OPTIONS = {
    # upper bound of a sample's step
    "max_step_size": real_option(1e4, 0, float("inf"), closed="right"),
    # step factor after a rejected trial
    "shrink": real_option(0.5, 0, 1, closed="neither"),
    # step factor after an accepted trial (or a failed Barzilai-Borwein fit)
    "grow": real_option(2.0, 1, float("inf"), closed="left"),
    # sufficient-decrease (Armijo) margin
    "sigma": real_option(1e-4, 0, 1, closed="left"),
    # accepted steps in a row below flow_tol to stop
    "patience": PATIENCE,
    # trials between compactions; None: 1 on CPU, 8 on CUDA
    "sync_every": int_option(None, 1, nullable=True),
    # next step after a success: Barzilai-Borwein or the step times grow
    "step_rule": str_option("bb", {"bb", "grow"}),
}
DEFAULT_OPTIONS = {key: option.default for key, option in OPTIONS.items()}


class _Rows(NamedTuple):
    """Per-row state of AMD's active set (or, in ``out``, of every row).

    Rows leave the active set together in every field when they finish.
    """

    z: torch.Tensor  # (n_active, n_components), model dtype: the codes
    loss: torch.Tensor  # (n_active,): loss at z
    grad: torch.Tensor  # (n_active, n_components): its gradient in z
    step: torch.Tensor  # (n_active,): the next trial's step size
    t: torch.Tensor  # (n_active,): flow time reached
    n_steps: torch.Tensor  # (n_active,) long: accepted steps
    n_fev: torch.Tensor  # (n_active,) long: decoder evaluations (trials + 1)
    quiet: torch.Tensor  # (n_active,) long: accepted quiet steps in a row
    # (n_active,) bool: whether the step has met its scale (a rejection or the
    # step cap): before that, small decreases only mean the step still grows.
    scaled: torch.Tensor
    status: torch.Tensor  # (n_active,) long: RUNNING or a final status
    # Second order only, else None:
    z_prev: torch.Tensor | None  # (n_active, n_components): codes before z
    since_restart: torch.Tensor | None  # (n_active,) long: steps of momentum
    # Targets of the active rows, (n_active, n_features); None in `out`. They
    # travel with the rows (compacted, never re-gathered).
    y: torch.Tensor | None


def solve_amd(
    flow: FirstOrderFlow | SecondOrderFlow,
    y: torch.Tensor,
    z0: torch.Tensor,
    *,
    tau: float,
    step_size: float,
    tol: float,
    max_steps: int,
    options: dict,
    record: bool = False,
) -> SolveResult:
    """Integrate ``flow`` per sample with AMD; see the module docstring.

    Parameters
    ----------
    flow : FirstOrderFlow or SecondOrderFlow
        Its ``objective`` and ``alpha`` are used; ``order`` picks the variant.
    y : Tensor (n, n_features)
        Targets.
    z0 : Tensor (n, n_components)
        Initial codes.
    tau : float
        Largest flow time.
    step_size : float
        Initial step of every sample.
    tol : float
        A sample stops after ``patience`` accepted steps in a row whose relative
        loss decrease is below ``tol``.
    max_steps : int
        Largest number of trials per sample.
    options : dict
        Values for the keys of ``OPTIONS`` (checked by the caller); missing
        keys take their defaults.
    record : bool
        Keep the accepted steps for the adjoint or for plots.
    """
    opts = {**DEFAULT_OPTIONS, **options}
    momentum = flow.order == 2
    alpha = flow.alpha
    objective = flow.objective
    sync_every = opts["sync_every"] or (8 if z0.device.type == "cuda" else 1)
    n = z0.shape[0]
    long = {"dtype": torch.long, "device": z0.device}

    loss0, grad0 = objective.value_and_grad(z0, y)
    finite = torch.isfinite(loss0) & torch.isfinite(grad0).all(dim=1)
    out = _Rows(
        z=z0.clone(),
        loss=loss0,
        grad=grad0,
        step=torch.full_like(loss0, step_size),
        t=torch.zeros_like(loss0),
        n_steps=torch.zeros(n, **long),
        n_fev=torch.ones(n, **long),
        quiet=torch.zeros(n, **long),
        scaled=torch.zeros(n, dtype=torch.bool, device=z0.device),
        status=torch.where(finite, torch.full((n,), RUNNING, **long), NONFINITE),
        z_prev=z0.clone() if momentum else None,
        since_restart=torch.zeros(n, **long) if momentum else None,
        y=None,
    )
    # `active` holds the running rows; `out` receives rows as they finish.
    active = _Rows(*(None if v is None else v.clone() for v in out))._replace(y=y)
    rows = torch.arange(n, **long)
    records = []
    trials = 0

    while rows.numel():
        a = active
        live = a.status == RUNNING
        sq_grad = a.grad.square().sum(dim=1)
        floor = _resolution_floor(a.loss, alpha * sq_grad)
        step = torch.where(live, _trial_step(a, floor, opts, momentum, tau), a.step)
        alpha_step = alpha * step
        beta = _momentum(a) if momentum else None
        z_trial = a.z - alpha_step[:, None] * a.grad
        if momentum:
            z_trial = z_trial + beta[:, None] * (a.z - a.z_prev)
        loss_trial, grad_trial = objective.value_and_grad(z_trial, a.y)

        decrease = a.loss - loss_trial
        accept = (
            live
            & torch.isfinite(loss_trial)
            & torch.isfinite(grad_trial).all(dim=1)
            & (decrease >= opts["sigma"] * alpha_step * sq_grad)
        )
        if record:
            records.append(_record(a, rows, accept, alpha_step, beta, momentum))

        bb_step = None
        if opts["step_rule"] == "bb":
            bb_step = _barzilai_borwein(a, step, z_trial, grad_trial, alpha, opts)
        rel_decrease = relative_decrease(a.loss, loss_trial)
        moved, restart = _move(a, accept, live, z_trial, loss_trial, grad_trial,
                               momentum)
        next_step = _adapt_step(step, accept, restart, bb_step, opts)
        # Time advances by the step (first order) or by its square root, the
        # time step of the accelerated ODE that Nesterov's method with this
        # step follows.
        advance = step.sqrt() if momentum else step
        moved = moved._replace(
            t=torch.where(accept, a.t + advance, a.t),
            step=torch.where(live, next_step, step),
        )
        active = _set_status(moved, accept, live, floor, next_step, rel_decrease,
                             opts, tol, max_steps, tau)

        trials += 1
        if trials % sync_every == 0:
            rows, active = _compact(active, out, rows)

    result = SolveResult(
        z=out.z,
        loss=out.loss,
        grad_norm=out.grad.norm(dim=1),
        t=out.t,
        n_steps=out.n_steps,
        n_fev=out.n_fev,
        status=out.status,
        trajectory=None,
    )
    if record:
        step_function = _momentum_step(flow) if momentum else _gradient_step(flow)
        trajectory = Trajectory(step_function, records, 2 if momentum else 1)
        result = result._replace(trajectory=trajectory)
    return result


def _momentum(a: _Rows) -> torch.Tensor:
    """Nesterov's momentum ``k / (k + 3)`` after k steps since the restart, (n,)."""
    k = a.since_restart.to(a.loss.dtype)
    return k / (k + 3.0)


def _record(
    a: _Rows,
    rows: torch.Tensor,
    accept: torch.Tensor,
    alpha_step: torch.Tensor,
    beta: torch.Tensor | None,
    momentum: bool,
) -> StepRecord:
    state = (a.z[accept], a.z_prev[accept]) if momentum else (a.z[accept],)
    coeffs = {"alpha_step": alpha_step[accept]}
    if momentum:
        coeffs["beta"] = beta[accept]
    return StepRecord(rows[accept], state, coeffs, a.t[accept], a.loss[accept])


def _move(
    a: _Rows,
    accept: torch.Tensor,
    live: torch.Tensor,
    z_trial: torch.Tensor,
    loss_trial: torch.Tensor,
    grad_trial: torch.Tensor,
    momentum: bool,
) -> tuple[_Rows, torch.Tensor | None]:
    """Move accepted rows to the trial point; count steps and trials.

    Returns the moved rows and, for the second order, which rows restart
    their momentum (a failed momentum step: adaptive restart), else None.
    """
    restart = None
    z_prev, since_restart = a.z_prev, a.since_restart
    if momentum:
        restart = live & ~accept & (a.since_restart > 0)
        z_prev = torch.where(accept[:, None], a.z, a.z_prev)
        z_prev = torch.where(restart[:, None], a.z, z_prev)
        since_restart = torch.where(
            accept, a.since_restart + 1, torch.where(restart, 0, a.since_restart)
        )
    moved = a._replace(
        z=torch.where(accept[:, None], z_trial, a.z),
        loss=torch.where(accept, loss_trial, a.loss),
        grad=torch.where(accept[:, None], grad_trial, a.grad),
        n_steps=a.n_steps + accept,
        n_fev=a.n_fev + live,
        z_prev=z_prev,
        since_restart=since_restart,
    )
    return moved, restart


# How many roundings of the loss a trial step must be predicted to gain.
_RESOLUTION_ULPS = 64


def _resolution_floor(loss: torch.Tensor, alpha_sq_grad: torch.Tensor) -> torch.Tensor:
    """The step whose predicted decrease is a few roundings of the loss, (n,).

    Smaller steps cannot change the loss visibly, so a trial never uses one: it
    would be rejected (or accepted without progress) for rounding, not for the
    flow. A rejected trial at the floor means the sample is at a minimum to
    precision.
    """
    eps = torch.finfo(loss.dtype).eps
    return _RESOLUTION_ULPS * eps * loss.abs() / alpha_sq_grad.clamp_min(
        torch.finfo(loss.dtype).tiny
    )


def _trial_step(
    a: _Rows, floor: torch.Tensor, opts: dict, momentum: bool, tau: float
) -> torch.Tensor:
    """The sample's step raised to the resolution floor, capped by the limits."""
    remaining = (tau - a.t).clamp_min(0.0)
    step = torch.maximum(a.step, floor).clamp_max(opts["max_step_size"])
    return torch.minimum(step, remaining.square() if momentum else remaining)


def _barzilai_borwein(
    a: _Rows,
    step: torch.Tensor,
    z_trial: torch.Tensor,
    grad_trial: torch.Tensor,
    alpha: float,
    opts: dict,
) -> torch.Tensor:
    """The step ``s.s / (s.y)`` fitted to the last move's change of gradient.

    It is rounded down to a power of two: the fitted value moves with the
    rounding of the decoder's output, which differs between batch sizes, and
    a continuous step would carry that difference into the code. Where the
    loss curves the wrong way along the move (``s.y <= 0``) the trial ``step``
    grows by ``grow`` instead.
    """
    s = z_trial - a.z
    y = grad_trial - a.grad
    sy = (s * y).sum(dim=1)
    fitted = s.square().sum(dim=1) / (alpha * sy).clamp_min(torch.finfo(sy.dtype).tiny)
    return torch.where(sy > 0, torch.exp2(torch.floor(torch.log2(fitted))),
                       step * opts["grow"])


def _adapt_step(
    step: torch.Tensor,
    accept: torch.Tensor,
    restart: torch.Tensor | None,
    bb_step: torch.Tensor | None,
    opts: dict,
) -> torch.Tensor:
    """The step controller's decision: the next step after a trial of ``step``.

    It grows after a success (to ``bb_step`` with the Barzilai-Borwein rule)
    and shrinks after a failure, except that a restarted sample (second order)
    retries the same step without momentum first.
    """
    shrunk = step * opts["shrink"]
    if restart is not None:
        shrunk = torch.where(restart, step, shrunk)
    grown = bb_step if bb_step is not None else step * opts["grow"]
    return torch.where(accept, grown, shrunk)


def _set_status(
    a: _Rows,
    accept: torch.Tensor,
    live: torch.Tensor,
    floor: torch.Tensor,
    next_step: torch.Tensor,
    rel_decrease: torch.Tensor,
    opts: dict,
    tol: float,
    max_steps: int,
    tau: float,
) -> _Rows:
    """Rows after a trial with their stopping counters and statuses updated."""
    scaled = a.scaled | (live & ~accept) | (a.step >= opts["max_step_size"])
    quiet = count_quiet_steps(a.quiet, rel_decrease, accept, tol, counting=scaled)
    stalled = ~accept & (next_step < floor)
    status = a.status
    status = torch.where(live & (a.n_fev > max_steps), MAX_STEPS, status)
    status = torch.where(live & stalled, STALLED, status)
    # Relative slack: t reaches tau through a sum of steps, which rounds.
    status = torch.where(live & (a.t >= tau * (1 - 1e-9)), REACHED_TAU, status)
    status = torch.where(
        live & accept & (quiet >= opts["patience"]), CONVERGED, status
    )
    return a._replace(scaled=scaled, quiet=quiet, status=status)


def _compact(
    active: _Rows, out: _Rows, rows: torch.Tensor
) -> tuple[torch.Tensor, _Rows]:
    """Write finished rows to ``out`` and keep only the running ones."""
    done = active.status != RUNNING
    if not bool(done.any()):
        return rows, active
    for target, value in zip(out, active):
        if target is not None:
            target[rows[done]] = value[done]
    keep = ~done
    return rows[keep], _Rows(*(None if v is None else v[keep] for v in active))


def _gradient_step(flow: FirstOrderFlow):
    """The pure, differentiable step that the full adjoint replays."""

    def step(state: tuple, y: torch.Tensor, alpha_step: torch.Tensor) -> tuple:
        z = state[0]
        _, grad = flow.objective.value_and_grad(z, y, create_graph=True)
        return (z - alpha_step[:, None] * grad,)

    return step


def _momentum_step(flow: SecondOrderFlow):
    """The pure, differentiable momentum step that the full adjoint replays."""

    def step(
        state: tuple, y: torch.Tensor, alpha_step: torch.Tensor, beta: torch.Tensor
    ) -> tuple:
        z, z_prev = state
        _, grad = flow.objective.value_and_grad(z, y, create_graph=True)
        z_new = z + beta[:, None] * (z - z_prev) - alpha_step[:, None] * grad
        return (z_new, z)

    return step


__all__ = ["DEFAULT_OPTIONS", "OPTIONS", "solve_amd"]
