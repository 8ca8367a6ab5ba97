"""Decoder gradients through the gradient flow: the 'approximate' and 'full' adjoints.

The decoder is trained on ``L(theta) = sum_m l(y_m, D(z*_m(theta), theta))``. Its
gradient is the direct term ``dl/dtheta`` at fixed ``z*`` plus the integral of
``lambda(t)^T df/dtheta`` along the flow, where the adjoint ``lambda`` runs
backwards from ``lambda(tau) = dl/dz*`` with ``d lambda/dt = -(df/dz)^T lambda``.

- 'approximate' keeps the direct term only (the decoder is trained at the
  detached codes), as the authors' headline models do.
- 'full' adds the integral term. It is computed as the *discrete* adjoint of the
  solver's own accepted steps: each recorded step is recomputed with autograd
  and its vector-Jacobian product taken (Hessian-vector products of the loss,
  never a Hessian), so the gradient equals automatic differentiation through the
  unrolled solver while storing only the states, not the graphs. Its cost is
  about twice the forward solve plus the memory of one state per accepted step.
"""

import torch


def integral_term(trajectory, y, code_grad, parameters):
    """The flow's contribution to the decoder gradient (the adjoint integral).

    Parameters
    ----------
    trajectory : Trajectory
        Recorded accepted steps of the forward solve.
    y : Tensor (n, n_features)
        Targets of the solve.
    code_grad : Tensor (n, n_components)
        ``dL/dz*``, the adjoint at the end of the flow.
    parameters : sequence of Tensor
        Decoder parameters to differentiate.

    Returns
    -------
    grads : list of Tensor
        One gradient per parameter (zeros where a parameter is unused).
    """
    parameters = list(parameters)
    # One adjoint per state component; only the codes enter the loss directly.
    adjoint = [code_grad.detach().clone()]
    adjoint += [torch.zeros_like(code_grad) for _ in range(trajectory.n_state - 1)]
    totals = [torch.zeros_like(p) for p in parameters]
    for record in reversed(trajectory.records):
        rows = record.rows
        n_state = len(record.state)
        with torch.enable_grad():
            state = tuple(s.detach().requires_grad_(True) for s in record.state)
            y_rows = y if rows is None else y[rows]
            new_state = trajectory.step(state, y_rows, **record.coeffs)
            outgoing = tuple(a if rows is None else a[rows] for a in adjoint)
            grads = torch.autograd.grad(
                new_state, (*state, *parameters), outgoing, allow_unused=True
            )
        for c in range(n_state):
            incoming = grads[c] if grads[c] is not None else torch.zeros_like(state[c])
            if rows is None:
                adjoint[c] = incoming
            else:
                adjoint[c][rows] = incoming
        for total, grad in zip(totals, grads[n_state:]):
            if grad is not None:
                total += grad
    return totals


def add_integral_term(trajectory, y, code_grad, parameters) -> None:
    """Add the adjoint integral to the ``.grad`` of each parameter."""
    parameters = list(parameters)
    for p, grad in zip(parameters, integral_term(trajectory, y, code_grad, parameters)):
        p.grad = grad if p.grad is None else p.grad + grad


# name -> whether the adjoint integral is added to the direct term
ADJOINTS = {"approximate": False, "full": True}
