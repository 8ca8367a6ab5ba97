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

The first-order variant makes explicit Euler steps of the gradient flow, or,
with ``direction='lbfgs'``, steps along each sample's own L-BFGS direction
(the two-loop recursion over its last ``memory`` curvature pairs; Nocedal and
Wright, Alg. 7.4) with the same acceptance test: a unit step first, halved on
rejection. Those steps minimise the same per-sample loss in far fewer decoder
passes, but no longer follow the flow's path; the flow time ``t`` then
counts, per step, the time a gradient step of equal first-order decrease would
take. Samples without a usable curvature pair take gradient steps. The

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
Nocedal, Wright. Numerical Optimization, 2nd ed., Springer 2006, ch. 7.
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
    # trial direction of the first order: the flow's gradient, or a per-sample
    # L-BFGS direction (minimises the same loss in fewer decoder passes, but
    # does not follow the flow); 'auto': 'lbfgs' for the first order when
    # encoding, the flow otherwise (see TRAINING_OPTIONS)
    "direction": str_option("auto", {"auto", "gradient", "lbfgs"}),
    # curvature pairs that each sample's L-BFGS keeps
    "memory": int_option(8, 1),
}
DEFAULT_OPTIONS = {key: option.default for key, option in OPTIONS.items()}

# Options of the solves whose codes train the decoder, unless set explicitly.
# Training on L-BFGS codes was twice as fast but gave a worse decoder per
# image: test BCE 0.3010 vs 0.3003 (seed 0) and 0.3040 vs 0.3017 (seed 1)
# after 2,000 Fashion-MNIST images (paper settings, batch 8, scored with the
# default L-BFGS encoding; 0.3044 vs 0.3017 and 0.3078 vs 0.3032 with the
# flow's), so training follows the flow.
TRAINING_OPTIONS = {"direction": "gradient"}


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
    # L-BFGS only, else None: the curvature pairs, newest first.
    pair_s: torch.Tensor | None  # (n_active, memory, n_components): moves
    pair_y: torch.Tensor | None  # (n_active, memory, n_components): gradient changes
    n_pairs: torch.Tensor | None  # (n_active,) long: pairs held
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
    quasi_newton = _uses_lbfgs(opts["direction"], momentum)
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
        pair_s=z0.new_zeros(n, opts["memory"], z0.shape[1]) if quasi_newton else None,
        pair_y=z0.new_zeros(n, opts["memory"], z0.shape[1]) if quasi_newton else None,
        n_pairs=torch.zeros(n, **long) if quasi_newton else None,
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
        if quasi_newton:
            active = _lbfgs_trial(
                a,
                live,
                sq_grad,
                objective,
                alpha,
                opts,
                tol,
                max_steps,
                tau,
                rows,
                records if record else None,
            )
        else:
            floor = _resolution_floor(a.loss, alpha * sq_grad)
            step = torch.where(live, _trial_step(a, floor, opts, momentum, tau), a.step)
            alpha_step = alpha * step
            beta = _momentum(a) if momentum else None
            z_trial = a.z - alpha_step[:, None] * a.grad
            if momentum:
                z_trial = z_trial + beta[:, None] * (a.z - a.z_prev)
            loss_trial, grad_trial = objective.value_and_grad(z_trial, a.y)

            accept = _sufficient_decrease(
                a, live, loss_trial, grad_trial, opts["sigma"], alpha_step, sq_grad
            )
            if record:
                records.append(_record(a, rows, accept, alpha_step, beta, momentum))

            bb_step = None
            if opts["step_rule"] == "bb":
                bb_step = _barzilai_borwein(a, step, z_trial, grad_trial, alpha, opts)
            rel_decrease = relative_decrease(a.loss, loss_trial)
            moved, restart = _move(
                a, accept, live, z_trial, loss_trial, grad_trial, momentum
            )
            next_step = _adapt_step(step, accept, restart, bb_step, opts)
            # Time advances by the step (first order) or by its square root, the
            # time step of the accelerated ODE that Nesterov's method with this
            # step follows.
            advance = step.sqrt() if momentum else step
            moved = moved._replace(
                t=torch.where(accept, a.t + advance, a.t),
                step=torch.where(live, next_step, step),
            )
            active = _set_status(
                moved,
                accept,
                live,
                floor,
                next_step,
                rel_decrease,
                opts,
                tol,
                max_steps,
                tau,
            )

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
        step_function = (
            _not_replayable
            if quasi_newton
            else _momentum_step(flow)
            if momentum
            else _gradient_step(flow)
        )
        trajectory = Trajectory(step_function, records, 2 if momentum else 1)
        result = result._replace(trajectory=trajectory)
    return result


def _sufficient_decrease(
    a: _Rows,
    live: torch.Tensor,
    loss_trial: torch.Tensor,
    grad_trial: torch.Tensor,
    sigma: float,
    step: torch.Tensor,
    slope: torch.Tensor,
) -> torch.Tensor:
    """Rows whose finite trial lowers the loss by ``sigma * step * slope`` or more.

    ``slope`` (n,) is the predicted decrease per unit of ``step`` (n,): the
    Armijo test of every AMD trial, (n,) bool.
    """
    return (
        live
        & torch.isfinite(loss_trial)
        & torch.isfinite(grad_trial).all(dim=1)
        & (a.loss - loss_trial >= sigma * step * slope)
    )


def _uses_lbfgs(direction: str, momentum: bool) -> bool:
    if direction == "lbfgs" and momentum:
        raise ValueError(
            "flow_solver_options['direction']='lbfgs' is a first-order method; use "
            "ode_order=1, or direction='auto' or 'gradient' with ode_order=2"
        )
    return direction == "lbfgs" or (direction == "auto" and not momentum)


def _lbfgs_trial(
    a: _Rows,
    live: torch.Tensor,
    sq_grad: torch.Tensor,
    objective,
    alpha: float,
    opts: dict,
    tol: float,
    max_steps: int,
    tau: float,
    rows: torch.Tensor,
    records: list | None,
) -> _Rows:
    """One trial of every live row along its L-BFGS direction; the rows after it.

    With ``records``, the accepted steps are appended there (for their paths;
    they cannot be replayed by the adjoint).

    Rows with curvature pairs try ``z + step * d`` with ``d = -H grad`` and
    ``step`` starting at 1 after every success; rows without take AMD's
    gradient step. Both are accepted by the same sufficient-decrease test
    against the predicted decrease ``step * (-grad . d)``.
    """
    has_pairs = a.n_pairs > 0
    gradient_direction = -alpha * a.grad
    direction = _two_loop(a, gradient_direction)
    descent = -(a.grad * direction).sum(dim=1)
    # A direction that does not descend (rounding) falls back to the gradient.
    use_pairs = has_pairs & (descent > 0)
    direction = torch.where(use_pairs[:, None], direction, gradient_direction)
    descent = torch.where(use_pairs, descent, alpha * sq_grad)
    # Flow time a gradient step of equal first-order decrease would take, per
    # unit of step.
    time_per_step = torch.where(
        use_pairs,
        descent / (alpha * sq_grad).clamp_min(torch.finfo(descent.dtype).tiny),
        1.0,
    )
    floor = _resolution_floor(a.loss, descent)
    remaining = (tau - a.t).clamp_min(0.0) / time_per_step
    cap = torch.where(
        use_pairs,
        remaining,
        torch.minimum(remaining, torch.full_like(remaining, opts["max_step_size"])),
    )
    step = torch.where(live, torch.minimum(torch.maximum(a.step, floor), cap), a.step)
    z_trial = a.z + step[:, None] * direction
    loss_trial, grad_trial = objective.value_and_grad(z_trial, a.y)
    accept = _sufficient_decrease(
        a, live, loss_trial, grad_trial, opts["sigma"], step, descent
    )
    if records is not None:
        records.append(
            StepRecord(rows[accept], (a.z[accept],), {}, a.t[accept], a.loss[accept])
        )
    bb_step = None
    if opts["step_rule"] == "bb":
        bb_step = _barzilai_borwein(a, step, z_trial, grad_trial, alpha, opts)
    rel_decrease = relative_decrease(a.loss, loss_trial)
    moved, _ = _move(a, accept, live, z_trial, loss_trial, grad_trial, False)
    moved = _add_curvature_pair(moved, a, accept, z_trial, grad_trial)
    next_step = _adapt_step(step, accept, None, bb_step, opts)
    # After a success a row with curvature pairs tries the unit step again.
    next_step = torch.where(accept & (moved.n_pairs > 0), 1.0, next_step)
    moved = moved._replace(
        t=torch.where(accept, a.t + step * time_per_step, a.t),
        step=torch.where(live, next_step, step),
        # The unit step is the scale of an L-BFGS step.
        scaled=a.scaled | use_pairs,
    )
    return _set_status(
        moved, accept, live, floor, next_step, rel_decrease, opts, tol, max_steps, tau
    )


def _two_loop(a: _Rows, gradient_direction: torch.Tensor) -> torch.Tensor:
    """``-H grad`` per row from its curvature pairs (the L-BFGS two-loop recursion).

    Empty slots have ``rho = 0`` and change nothing; the initial matrix is
    ``(s.y / y.y) I`` of the newest pair. Rows without pairs get the gradient
    direction (the caller replaces them).
    """
    memory = a.pair_s.shape[1]
    slots = torch.arange(memory, device=a.n_pairs.device)
    held = slots[None, :] < a.n_pairs[:, None]  # (n, memory)
    sy = (a.pair_s * a.pair_y).sum(dim=2)  # (n, memory)
    rho = torch.where(held, 1.0 / torch.where(held, sy, 1.0), 0.0)
    q = a.grad
    coefficients = []
    for i in range(memory):
        coefficient = rho[:, i] * (a.pair_s[:, i] * q).sum(dim=1)
        q = q - coefficient[:, None] * a.pair_y[:, i]
        coefficients.append(coefficient)
    yy = a.pair_y[:, 0].square().sum(dim=1)
    gamma = torch.where(
        held[:, 0], sy[:, 0] / yy.clamp_min(torch.finfo(yy.dtype).tiny), 0.0
    )
    r = gamma[:, None] * q
    for i in reversed(range(memory)):
        correction = rho[:, i] * (a.pair_y[:, i] * r).sum(dim=1)
        r = r + (coefficients[i] - correction)[:, None] * a.pair_s[:, i]
    return torch.where(held[:, :1], -r, gradient_direction)


def _add_curvature_pair(
    moved: _Rows,
    before: _Rows,
    accept: torch.Tensor,
    z_trial: torch.Tensor,
    grad_trial: torch.Tensor,
) -> _Rows:
    """Push the accepted move's curvature pair, where it curves upwards enough.

    A pair with ``s.y`` at rounding level would make ``H`` arbitrary, so it is
    skipped (the row keeps its older pairs).
    """
    s = z_trial - before.z
    y = grad_trial - before.grad
    sy = (s * y).sum(dim=1)
    scale = (s.square().sum(dim=1) * y.square().sum(dim=1)).sqrt()
    keep = accept & torch.isfinite(sy) & (sy > torch.finfo(sy.dtype).eps * scale)
    pair_s = torch.cat([s[:, None], before.pair_s[:, :-1]], dim=1)
    pair_y = torch.cat([y[:, None], before.pair_y[:, :-1]], dim=1)
    memory = before.pair_s.shape[1]
    return moved._replace(
        pair_s=torch.where(keep[:, None, None], pair_s, before.pair_s),
        pair_y=torch.where(keep[:, None, None], pair_y, before.pair_y),
        n_pairs=torch.where(
            keep, (before.n_pairs + 1).clamp_max(memory), before.n_pairs
        ),
    )


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
    return (
        _RESOLUTION_ULPS
        * eps
        * loss.abs()
        / alpha_sq_grad.clamp_min(torch.finfo(loss.dtype).tiny)
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
    return torch.where(
        sy > 0, torch.exp2(torch.floor(torch.log2(fitted))), step * opts["grow"]
    )


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
    status = torch.where(live & accept & (quiet >= opts["patience"]), CONVERGED, status)
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


def _not_replayable(state, y):
    raise ValueError(
        "flow_solver_options['direction']='lbfgs' does not follow the flow, so "
        "its steps cannot be replayed by the full adjoint or the pair loss; use "
        "direction='gradient'"
    )


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
