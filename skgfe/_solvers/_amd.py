"""AMD, the adaptive "minimise distance" solver, with per-sample steps.

Every sample has its own step size, acceptance test and stopping test, so a
sample's code does not depend on the other samples of its batch (unlike the
authors' version, which shares one step and one acceptance test over a batch).
One trial costs one decoder forward+backward pass: the loss and gradient at an
accepted point are kept and reused for the next trial. A trial is accepted
only if it lowers the sample's loss by the sufficient-decrease (Armijo) margin,
so the loss never rises. After a success the next step is the Barzilai-Borwein
step fitted to the change of gradient along the move (rounded down to a power
of two), or the step times ``grow`` (option ``step_rule``). Finished samples leave the active set and cost nothing.

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


import torch

from ._common import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    REACHED_TAU,
    RUNNING,
    STALLED,
    SolveResult,
    StepRecord,
    Trajectory,
)

DEFAULT_OPTIONS = {
    "max_step_size": 1e4,  # upper bound of a sample's step
    "shrink": 0.5,  # step factor after a rejected trial
    "grow": 2.0,  # step factor after an accepted trial
    "sigma": 1e-4,  # sufficient-decrease (Armijo) margin
    "patience": 3,  # accepted steps in a row below flow_tol to stop
    "sync_every": None,  # trials between compactions; None: 1 on CPU, 8 on CUDA
    "step_rule": "bb",  # next step after a success: "bb" (Barzilai-Borwein) or "grow"
}


def solve_amd(flow, y, z0, *, tau, step_size, tol, max_steps, options, record=False):
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
        Values for the keys of ``DEFAULT_OPTIONS``.
    record : bool
        Keep the accepted steps for the adjoint or for plots.
    """
    opts = {**DEFAULT_OPTIONS, **options}
    momentum = flow.order == 2
    alpha = flow.alpha
    objective = flow.objective
    sync_every = opts["sync_every"] or (8 if z0.device.type == "cuda" else 1)
    n = z0.shape[0]
    long = dict(dtype=torch.long, device=z0.device)

    loss0, grad0 = objective.value_and_grad(z0, y)
    # Per-row state of the active set; `out` receives rows as they finish.
    active = {
        "z": z0.clone(),
        "loss": loss0,
        "grad": grad0,
        "step": torch.full_like(loss0, step_size),
        "t": torch.zeros_like(loss0),
        "n_steps": torch.zeros(n, **long),
        "n_fev": torch.ones(n, **long),
        "quiet": torch.zeros(n, **long),
        # Whether the step has met its scale (a rejection or the step cap):
        # before that, small decreases only mean the step is still growing.
        "scaled": torch.zeros(n, dtype=torch.bool, device=z0.device),
        "status": torch.full((n,), RUNNING, **long),
    }
    if momentum:
        active["z_prev"] = z0.clone()
        active["since_restart"] = torch.zeros(n, **long)
    finite = torch.isfinite(loss0) & torch.isfinite(grad0).all(dim=1)
    active["status"] = torch.where(finite, active["status"], NONFINITE)
    out = {key: value.clone() for key, value in active.items()}
    # Targets of the active rows travel with them (compacted, never re-gathered).
    active["y"] = y
    rows = torch.arange(n, **long)
    records = []
    trials = 0

    while rows.numel():
        a = active
        live = a["status"] == RUNNING
        ya = a["y"]
        sq_grad = a["grad"].square().sum(dim=1)
        floor = _resolution_floor(a["loss"], alpha * sq_grad)
        a["step"] = torch.where(live, _trial_step(a, floor, opts, momentum, tau),
                                a["step"])
        alpha_step = alpha * a["step"]
        beta = _momentum(a) if momentum else None
        z_trial = a["z"] - alpha_step[:, None] * a["grad"]
        if momentum:
            z_trial = z_trial + beta[:, None] * (a["z"] - a["z_prev"])
        loss_trial, grad_trial = objective.value_and_grad(z_trial, ya)

        decrease = a["loss"] - loss_trial
        accept = (
            live
            & torch.isfinite(loss_trial)
            & torch.isfinite(grad_trial).all(dim=1)
            & (decrease >= opts["sigma"] * alpha_step * sq_grad)
        )
        if record:
            records.append(_record(a, rows, accept, alpha_step, beta, momentum))

        if opts["step_rule"] == "bb":
            a["bb_step"] = _barzilai_borwein(a, z_trial, grad_trial, alpha, opts)
        _update(a, accept, live, z_trial, loss_trial, grad_trial, decrease, momentum)
        _adapt_step(a, accept, live, opts, momentum)
        _set_status(a, accept, live, floor, opts, tol, max_steps, tau)

        trials += 1
        if trials % sync_every == 0:
            rows, active = _compact(active, out, rows)

    result = SolveResult(
        z=out["z"],
        loss=out["loss"],
        grad_norm=out["grad"].norm(dim=1),
        t=out["t"],
        n_steps=out["n_steps"],
        n_fev=out["n_fev"],
        status=out["status"],
        trajectory=None,
    )
    if record:
        step = _momentum_step(flow) if momentum else _gradient_step(flow)
        result = result._replace(trajectory=Trajectory(step, records, 2 if momentum else 1))
    return result


def _momentum(a):
    k = a["since_restart"].to(a["loss"].dtype)
    return k / (k + 3.0)


def _record(a, rows, accept, alpha_step, beta, momentum):
    state = (a["z"][accept], a["z_prev"][accept]) if momentum else (a["z"][accept],)
    coeffs = {"alpha_step": alpha_step[accept]}
    if momentum:
        coeffs["beta"] = beta[accept]
    return StepRecord(rows[accept], state, coeffs, a["t"][accept], a["loss"][accept])


def _update(a, accept, live, z_trial, loss_trial, grad_trial, decrease, momentum):
    """Move accepted rows to the trial point; count steps and trials."""
    relative = decrease / a["loss"].abs().clamp_min(torch.finfo(decrease.dtype).tiny)
    a["rel_decrease"] = relative
    if momentum:
        restart = live & ~accept & (a["since_restart"] > 0)
        a["z_prev"] = torch.where(accept[:, None], a["z"], a["z_prev"])
        # A failed momentum step resets the momentum (adaptive restart).
        a["z_prev"] = torch.where(restart[:, None], a["z"], a["z_prev"])
        a["since_restart"] = torch.where(
            accept, a["since_restart"] + 1, torch.where(restart, 0, a["since_restart"])
        )
        a["restart"] = restart
    a["z"] = torch.where(accept[:, None], z_trial, a["z"])
    a["loss"] = torch.where(accept, loss_trial, a["loss"])
    a["grad"] = torch.where(accept[:, None], grad_trial, a["grad"])
    a["n_steps"] += accept
    a["n_fev"] += live


# How many roundings of the loss a trial step must be predicted to gain.
_RESOLUTION_ULPS = 64


def _resolution_floor(loss, alpha_sq_grad):
    """The step whose predicted decrease is a few roundings of the loss.

    Smaller steps cannot change the loss visibly, so a trial never uses one: it
    would be rejected (or accepted without progress) for rounding, not for the
    flow. A rejected trial at the floor means the sample is at a minimum to
    precision.
    """
    eps = torch.finfo(loss.dtype).eps
    return _RESOLUTION_ULPS * eps * loss.abs() / alpha_sq_grad.clamp_min(
        torch.finfo(loss.dtype).tiny
    )



def _trial_step(a, floor, opts, momentum, tau):
    """The sample's step raised to the resolution floor, capped by the limits."""
    remaining = (tau - a["t"]).clamp_min(0.0)
    step = torch.maximum(a["step"], floor).clamp_max(opts["max_step_size"])
    return torch.minimum(step, remaining.square() if momentum else remaining)


def _barzilai_borwein(a, z_trial, grad_trial, alpha, opts):
    """The step ``s.s / (s.y)`` fitted to the last move's change of gradient.

    It is rounded down to a power of two: the fitted value moves with the
    rounding of the decoder's output, which differs between batch sizes, and
    a continuous step would carry that difference into the code. Where the
    loss curves the wrong way along the move (``s.y <= 0``) the step grows by
    ``grow`` instead.
    """
    s = z_trial - a["z"]
    y = grad_trial - a["grad"]
    sy = (s * y).sum(dim=1)
    fitted = s.square().sum(dim=1) / (alpha * sy).clamp_min(torch.finfo(sy.dtype).tiny)
    return torch.where(sy > 0, torch.exp2(torch.floor(torch.log2(fitted))),
                       a["step"] * opts["grow"])


def _adapt_step(a, accept, live, opts, momentum):
    """Grow the step after a success, shrink it after a failure."""
    step = a["step"]
    # Time advances by the step (first order) or by its square root, the time
    # step of the accelerated ODE that Nesterov's method with this step follows.
    advance = step.sqrt() if momentum else step
    a["t"] = torch.where(accept, a["t"] + advance, a["t"])
    shrunk = step * opts["shrink"]
    if momentum:
        # A restarted sample retries the same step without momentum first.
        shrunk = torch.where(a["restart"], step, shrunk)
    grown = a["bb_step"] if opts["step_rule"] == "bb" else step * opts["grow"]
    a["next_step"] = torch.where(accept, grown, shrunk)
    a["step"] = torch.where(live, a["next_step"], step)


def _set_status(a, accept, live, floor, opts, tol, max_steps, tau):
    a["scaled"] = a["scaled"] | (live & ~accept) | (a["step"] >= opts["max_step_size"])
    quiet = torch.where(a["scaled"] & (a["rel_decrease"] < tol), a["quiet"] + 1, 0)
    a["quiet"] = torch.where(accept, quiet, a["quiet"])
    stalled = ~accept & (a["next_step"] < floor)
    status = a["status"]
    status = torch.where(live & (a["n_fev"] > max_steps), MAX_STEPS, status)
    status = torch.where(live & stalled, STALLED, status)
    # Relative slack: t reaches tau through a sum of steps, which rounds.
    status = torch.where(live & (a["t"] >= tau * (1 - 1e-9)), REACHED_TAU, status)
    status = torch.where(
        live & accept & (a["quiet"] >= opts["patience"]), CONVERGED, status
    )
    a["status"] = status


def _compact(active, out, rows):
    """Write finished rows to ``out`` and keep only the running ones."""
    done = active["status"] != RUNNING
    if not bool(done.any()):
        return rows, active
    for key, value in out.items():
        value[rows[done]] = active[key][done]
    keep = ~done
    return rows[keep], {key: value[keep] for key, value in active.items()}


def _gradient_step(flow):
    def step(state, y, alpha_step):
        z = state[0]
        _, grad = flow.objective.value_and_grad(z, y, create_graph=True)
        return (z - alpha_step[:, None] * grad,)

    return step


def _momentum_step(flow):
    def step(state, y, alpha_step, beta):
        z, z_prev = state
        _, grad = flow.objective.value_and_grad(z, y, create_graph=True)
        z_new = z + beta[:, None] * (z - z_prev) - alpha_step[:, None] * grad
        return (z_new, z)

    return step


__all__ = ["DEFAULT_OPTIONS", "solve_amd"]
