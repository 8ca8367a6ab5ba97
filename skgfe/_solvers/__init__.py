"""Gradient-flow solvers: one registry of names and one ``solve`` entry point.

Every solver takes a flow (:mod:`skgfe._flows`), targets ``y`` and initial codes
``z0`` and returns a :class:`SolveResult`. Nothing here knows of scikit-learn.
"""

import torch

from .._flows import FLOWS, LatentObjective
from . import _amd, _torchdiffeq
from ._amd import solve_amd
from ._common import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    REACHED_TAU,
    STALLED,
    STATUS_NAMES,
    SolveResult,
    StepRecord,
    Trajectory,
)
from ._fixed import STEPPERS, solve_fixed
from ._torchdiffeq import solve_torchdiffeq

# name -> (solve function, its default options); skgfe's own methods shadow
# torchdiffeq's methods of the same name.
SOLVERS = {
    name: (solve_torchdiffeq,
           {} if name in _torchdiffeq.FIXED_GRID else _torchdiffeq.DEFAULT_OPTIONS)
    for name in _torchdiffeq.METHODS
}
SOLVERS.update({name: (solve_fixed, {}) for name in STEPPERS})
SOLVERS["amd"] = (solve_amd, _amd.DEFAULT_OPTIONS)

# Solvers that record their steps, which the full adjoint replays.
RECORDING_SOLVERS = frozenset({"amd", *STEPPERS})

# Defaults for a solve whose recorded steps the adjoint replays. AMD's
# Barzilai-Borwein steps overshoot along directions of high curvature (the
# sufficient-decrease test still holds), and the adjoint multiplies those
# overshoots step after step: training the paper's Fashion-MNIST decoder with
# the full adjoint reached test BCE 0.364 after 504 images with them, 0.323 with
# steps that grow by a constant factor.
_ADJOINT_DEFAULTS = {"amd": {"step_rule": "grow"}}


def adjoint_options(solver: str, options) -> dict:
    """``options`` completed with ``solver``'s defaults for a solve the adjoint replays.

    Options the user set explicitly win.
    """
    return {**_ADJOINT_DEFAULTS.get(solver, {}), **(options or {})}


def check_solver_options(solver: str, options) -> dict:
    """Return ``options`` as a dict, rejecting keys that ``solver`` does not know."""
    options = {} if options is None else dict(options)
    allowed = SOLVERS[solver][1]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"solver_options has unknown key(s) {unknown} for solver={solver!r}; "
            f"allowed keys: {sorted(allowed) or 'none'}"
        )
    return options


def solve(
    decoder: torch.nn.Module,
    loss,
    y: torch.Tensor,
    z0: torch.Tensor,
    *,
    ode_order: int = 1,
    solver: str = "amd",
    alpha: float = 1.0,
    tau: float = 1e4,
    step_size: float = 1.0,
    tol: float = 1e-4,
    max_steps: int = 1000,
    options=None,
    record: bool = False,
) -> SolveResult:
    """Find codes that minimise ``loss(y, decoder(z))`` by a gradient flow from ``z0``.

    Parameters
    ----------
    decoder : torch.nn.Module
        Row-independent decoder.
    loss : callable
        ``loss(output, target) -> (n,)``.
    y : Tensor (n, n_features)
        Targets, on the decoder's device and dtype.
    z0 : Tensor (n, n_components)
        Initial codes.
    ode_order : {1, 2}
        First-order gradient flow or second-order accelerated flow.
    solver : str
        'amd', 'euler', 'rk4' or another torchdiffeq method.
    alpha, tau, step_size, tol, max_steps
        Flow rate, flow time, initial (or fixed) step, stopping tolerance and
        step limit per sample.
    options : dict or None
        Solver-specific options; unknown keys raise ValueError.
    record : bool
        Keep the accepted steps (``SolveResult.trajectory``); only for 'amd',
        'euler' and 'rk4'.

    Returns
    -------
    SolveResult
    """
    options = check_solver_options(solver, options)
    if record and solver not in RECORDING_SOLVERS:
        raise ValueError(
            f"solver={solver!r} cannot record its steps; use one of "
            f"{sorted(RECORDING_SOLVERS)}"
        )
    flow = FLOWS[ode_order](LatentObjective(decoder, loss), alpha)
    function = SOLVERS[solver][0]
    kwargs = dict(tau=tau, step_size=step_size, tol=tol, max_steps=max_steps,
                  options=options, record=record)
    if function is not solve_amd:
        kwargs["method"] = solver
    return function(flow, y, z0, **kwargs)


__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "NONFINITE",
    "REACHED_TAU",
    "RECORDING_SOLVERS",
    "SOLVERS",
    "STALLED",
    "STATUS_NAMES",
    "SolveResult",
    "StepRecord",
    "Trajectory",
    "adjoint_options",
    "check_solver_options",
    "solve",
]
