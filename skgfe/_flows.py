"""Gradient-flow vector fields on the latent codes; no scikit-learn here.

The first-order flow is ``dz/dt = -alpha * grad_z l(y, D(z))``. The second-order
flow is the accelerated-gradient ODE of Su, Boyd and Candes,
``z'' + (3 / t) z' + alpha * grad_z l = 0``, written as a first-order system on the
state ``(z, v)``. States are tuples of tensors of shape (n_samples, n_components).
"""

from collections.abc import Callable

import torch

State = tuple[torch.Tensor, ...]

# Keeps 3 / t finite at t = 0, where v = 0 makes the damping term vanish anyway.
_DAMPING_EPS = 1e-8


class LatentObjective:
    """Per-sample loss ``l(y, D(z))`` of a decoder and its gradient in ``z``.

    Parameters
    ----------
    decoder : torch.nn.Module
        Maps codes (n, n_components) to outputs (n, n_features), row by row.
    loss : callable
        ``loss(output, target) -> (n,)`` per-sample loss.
    """

    def __init__(self, decoder: torch.nn.Module, loss: Callable):
        self.decoder = decoder
        self.loss = loss

    def value(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample loss, shape (n,)."""
        return self.loss(self.decoder(z), y)

    def value_and_grad(
        self, z: torch.Tensor, y: torch.Tensor, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample loss (n,) and its gradient in z (n, n_components).

        One decoder forward and backward pass. With ``create_graph=True`` the
        gradient stays differentiable (for Hessian-vector products in the full
        adjoint); ``z`` must then already be part of the graph.
        """
        with torch.enable_grad():
            if not create_graph:
                z = z.detach().requires_grad_(True)
            loss = self.value(z, y)
            # Rows are independent, so the gradient of the sum is each row's own.
            (grad,) = torch.autograd.grad(loss.sum(), z, create_graph=create_graph)
        if not create_graph:
            loss = loss.detach()
        return loss, grad


class FirstOrderFlow:
    """``dz/dt = -alpha * grad_z l``; the state is ``(z,)``."""

    order = 1

    def __init__(self, objective: LatentObjective, alpha: float):
        self.objective = objective
        self.alpha = alpha

    def initial_state(self, z0: torch.Tensor) -> State:
        return (z0,)

    @staticmethod
    def codes(state: State) -> torch.Tensor:
        return state[0]

    def derivative(self, t, state: State, y, create_graph=False):
        """Return the time derivative of ``state`` and the loss at ``state``."""
        loss, grad = self.objective.value_and_grad(state[0], y, create_graph)
        return (-self.alpha * grad,), loss


class SecondOrderFlow:
    """``z' = v, v' = -(3 / t) v - alpha * grad_z l``; the state is ``(z, v)``."""

    order = 2

    def __init__(self, objective: LatentObjective, alpha: float):
        self.objective = objective
        self.alpha = alpha

    def initial_state(self, z0: torch.Tensor) -> State:
        return (z0, torch.zeros_like(z0))

    @staticmethod
    def codes(state: State) -> torch.Tensor:
        return state[0]

    def derivative(self, t, state: State, y, create_graph=False):
        """Return the time derivative of ``state`` and the loss at ``state``."""
        z, v = state
        loss, grad = self.objective.value_and_grad(z, y, create_graph)
        damping = 3.0 / (t + _DAMPING_EPS)
        return (v, -damping * v - self.alpha * grad), loss


FLOWS = {1: FirstOrderFlow, 2: SecondOrderFlow}
