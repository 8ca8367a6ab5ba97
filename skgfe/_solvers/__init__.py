"""Gradient-flow solvers: one registry entry per name and one ``solve`` entry point.

``SOLVERS`` maps every solver name to a :class:`SolverSpec` holding all there
is to know about it: how it runs, its options with their defaults and checks,
whether it records its steps and its defaults under the full adjoint.
:func:`make_flow_solver` resolves a name and its settings once, checking them,
into a :class:`FlowSolver` whose ``solve`` runs a batch. Every solver takes a
flow (:mod:`skgfe._flows`), targets ``y`` and initial codes ``z0`` and returns a
:class:`SolveResult`. Nothing here knows of scikit-learn.
"""

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch

from .._flows import FLOWS, LatentObjective
from . import _amd, _torchdiffeq
from ._common import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    REACHED_TAU,
    STALLED,
    STATUS_NAMES,
    Option,
    SolveResult,
    StepRecord,
    Trajectory,
)
from ._fixed import OPTIONS as FIXED_OPTIONS
from ._fixed import STEPPERS, solve_fixed


@dataclass(frozen=True)
class SolverSpec:
    """Everything about one solver name.

    Attributes
    ----------
    name : str
        The name users pass as ``solver``.
    solve : callable
        ``solve(flow, y, z0, *, tau, step_size, tol, max_steps, options,
        record) -> SolveResult``, with ``options`` complete and checked.
    options : mapping of str to Option
        The options it accepts, with their defaults and checks.
    records : bool
        Whether it can record its steps (``record=True``), which the full
        adjoint and the pair loss replay.
    fixed_step : bool
        Whether its step is ``step_size`` (so ``tau / step_size`` steps reach
        ``tau``) rather than adapted.
    purpose_options : mapping of str to mapping
        Option values by the purpose of a solve, 'train' (the codes that
        train the decoder) or 'adjoint' (a solve that the full adjoint or the
        pair loss replays); options set explicitly win. A solve to encode
        ('encode') takes the defaults.
    """

    name: str
    solve: Callable[..., SolveResult]
    options: Mapping[str, Option]
    records: bool
    fixed_step: bool
    purpose_options: Mapping[str, Mapping[str, object]]

    @property
    def defaults(self) -> dict:
        """Every option's default value."""
        return {key: option.default for key, option in self.options.items()}

    def check_options(self, options: Mapping | None) -> dict:
        """``options`` checked and completed with the defaults.

        Unknown keys raise ValueError, values of the wrong type TypeError and
        values out of range ValueError, each message naming the key.
        """
        options = {} if options is None else dict(options)
        unknown = sorted(set(options) - set(self.options), key=repr)
        if unknown:
            raise ValueError(
                f"flow_solver_options has unknown key(s) {unknown} for solver="
                f"{self.name!r}; allowed keys: {sorted(self.options) or 'none'}"
            )
        for key, value in options.items():
            self.options[key].check(key, value)
        return {**self.defaults, **options}


PURPOSES = ("encode", "train", "adjoint")


def _spec(name, solve, options, *, records, fixed_step, purpose_options=None):
    return SolverSpec(
        name=name,
        solve=solve,
        options=MappingProxyType(dict(options)),
        records=records,
        fixed_step=fixed_step,
        purpose_options=MappingProxyType(
            {
                purpose: MappingProxyType(dict(values))
                for purpose, values in (purpose_options or {}).items()
            }
        ),
    )


# skgfe's own methods shadow torchdiffeq's methods of the same name.
SOLVERS: dict[str, SolverSpec] = {
    name: _spec(
        name,
        functools.partial(_torchdiffeq.solve_torchdiffeq, method=name),
        _torchdiffeq.options_of(name),
        records=False,
        fixed_step=name in _torchdiffeq.FIXED_GRID,
    )
    for name in sorted(_torchdiffeq.METHODS)
}
SOLVERS.update(
    {
        name: _spec(
            name,
            functools.partial(solve_fixed, method=name),
            FIXED_OPTIONS,
            records=True,
            fixed_step=True,
        )
        for name in STEPPERS
    }
)
# Under the full adjoint AMD's steps grow by a constant factor: its
# Barzilai-Borwein steps overshoot along directions of high curvature (the
# sufficient-decrease test still holds), and the adjoint multiplies those
# overshoots step after step: training the paper's Fashion-MNIST decoder with
# the full adjoint reached test BCE 0.364 after 504 images with them, 0.323
# with steps that grow by a constant factor.
# Its L-BFGS directions do not follow the flow, so a replayed solve takes the
# flow's gradient steps; so do the solves of training (see _AMD_TRAINING).
SOLVERS["amd"] = _spec(
    "amd",
    _amd.solve_amd,
    _amd.OPTIONS,
    records=True,
    fixed_step=False,
    purpose_options={
        "train": _amd.TRAINING_OPTIONS,
        "adjoint": {"step_rule": "grow", "direction": "gradient"},
    },
)


def recording_solvers() -> list:
    """Sorted names of the solvers that can record their steps."""
    return sorted(name for name, spec in SOLVERS.items() if spec.records)


@dataclass(frozen=True)
class FlowSolver:
    """A solver name resolved with its checked settings; ``solve`` runs a batch.

    Build it with :func:`make_flow_solver`.
    """

    spec: SolverSpec
    ode_order: int
    alpha: float
    tau: float
    step_size: float
    tol: float
    max_steps: int
    options: Mapping[str, object]

    def solve(
        self,
        decoder: torch.nn.Module,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        y: torch.Tensor,
        z0: torch.Tensor,
        record: bool = False,
    ) -> SolveResult:
        """Codes that minimise ``loss(decoder(z), y)`` by a gradient flow from ``z0``.

        ``y`` (n, n_features) and ``z0`` (n, n_components) are on the decoder's
        device and dtype. With ``record``, ``SolveResult.trajectory`` keeps the
        accepted steps (only for solvers whose spec ``records``).
        """
        if record and not self.spec.records:
            raise ValueError(
                f"solver={self.spec.name!r} cannot record its steps; use one of "
                f"{recording_solvers()}"
            )
        flow = FLOWS[self.ode_order](LatentObjective(decoder, loss), self.alpha)
        return self.spec.solve(
            flow,
            y,
            z0,
            tau=self.tau,
            step_size=self.step_size,
            tol=self.tol,
            max_steps=self.max_steps,
            options=dict(self.options),
            record=record,
        )


def make_flow_solver(
    solver: str = "amd",
    options: Mapping | None = None,
    *,
    ode_order: int = 1,
    alpha: float = 1.0,
    tau: float = 1e4,
    step_size: float = 1.0,
    tol: float = 1e-4,
    max_steps: int = 1000,
    purpose: str = "encode",
) -> FlowSolver:
    """Resolve ``solver`` and its settings into a :class:`FlowSolver`, checking them.

    Parameters
    ----------
    solver : str
        A key of ``SOLVERS``.
    options : dict or None
        Solver-specific options; unknown keys, wrong types and values out of
        range raise (see :meth:`SolverSpec.check_options`).
    ode_order, alpha, tau, step_size, tol, max_steps
        See :func:`solve`.
    purpose : {'encode', 'train', 'adjoint'}
        What the solve is for: the solver's ``purpose_options`` for it fill
        in the options not set explicitly.
    """
    settings = {
        "ode_order": ode_order,
        "alpha": alpha,
        "tau": tau,
        "step_size": step_size,
        "tol": tol,
        "max_steps": max_steps,
    }
    options = {} if options is None else dict(options)
    try:
        # Typed, so that 1 and 1.0 (or True) do not share an entry.
        key = (
            solver,
            purpose,
            tuple((name, type(v), v) for name, v in settings.items()),
            tuple(
                sorted(
                    ((name, type(v), v) for name, v in options.items()),
                    key=lambda item: repr(item[0]),
                )
            ),
        )
        hash(key)
    except TypeError:  # an unhashable (hence invalid) option: let the checks say so
        return _make_flow_solver(solver, options, purpose, settings)
    return _cached_flow_solver(key)


@functools.lru_cache(maxsize=64)
def _cached_flow_solver(key: tuple) -> FlowSolver:
    # A FlowSolver is immutable, so one resolution serves every batch of every
    # call with the same settings; changed settings make a new key.
    solver, purpose, settings, options = key
    return _make_flow_solver(
        solver,
        {name: value for name, _, value in options},
        purpose,
        {name: value for name, _, value in settings},
    )


def _make_flow_solver(
    solver: str, options: dict, purpose: str, settings: dict
) -> FlowSolver:
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    spec = SOLVERS[solver]
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")
    options = {**spec.purpose_options.get(purpose, {}), **options}
    options = MappingProxyType(spec.check_options(options))
    return FlowSolver(spec=spec, options=options, **settings)


def solve(
    decoder: torch.nn.Module,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
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
    options: Mapping | None = None,
    record: bool = False,
) -> SolveResult:
    """Find codes that minimise ``loss(decoder(z), y)`` by a gradient flow from ``z0``.

    A thin wrapper: ``make_flow_solver(...).solve(decoder, loss, y, z0, record)``.

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
        A key of ``SOLVERS``: 'amd', 'euler', 'rk4' or another torchdiffeq
        method.
    alpha, tau, step_size, tol, max_steps
        Flow rate, flow time, initial (or fixed) step, stopping tolerance and
        step limit per sample.
    options : dict or None
        Solver-specific options; unknown keys raise ValueError.
    record : bool
        Keep the accepted steps (``SolveResult.trajectory``); only for the
        solvers whose spec ``records``.

    Returns
    -------
    SolveResult
    """
    flow_solver = make_flow_solver(
        solver,
        options,
        ode_order=ode_order,
        alpha=alpha,
        tau=tau,
        step_size=step_size,
        tol=tol,
        max_steps=max_steps,
    )
    return flow_solver.solve(decoder, loss, y, z0, record=record)


__all__ = [
    "CONVERGED",
    "MAX_STEPS",
    "NONFINITE",
    "REACHED_TAU",
    "SOLVERS",
    "STALLED",
    "STATUS_NAMES",
    "FlowSolver",
    "SolveResult",
    "SolverSpec",
    "StepRecord",
    "Trajectory",
    "make_flow_solver",
    "recording_solvers",
    "solve",
]
