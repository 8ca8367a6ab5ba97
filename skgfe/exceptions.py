"""Warnings and errors raised by skgfe."""

from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "ConvergenceWarning",
    "DeviceWarning",
    "FlowSolverError",
    "FlowSolverWarning",
]


class DeviceWarning(UserWarning):
    """Warn that a model moved to another device than the one it was fitted on.

    Raised when a model fitted on CUDA is unpickled on a machine without CUDA.
    """


class FlowSolverWarning(UserWarning):
    """Warn that some samples' gradient flow did not converge.

    The message names the solver parameter to change (``max_flow_steps``,
    ``flow_tol``, ``tau`` or ``step_size``).
    """


class FlowSolverError(RuntimeError):
    """Raised when the gradient-flow solver cannot continue.

    Examples are non-finite codes or losses, or a torchdiffeq solver that
    underflowed its step size. The message names the parameter to change.
    """
