"""Vector fields and the latent objective, checked on a linear decoder."""

import torch

from skgfe._flows import FirstOrderFlow, LatentObjective, SecondOrderFlow
from skgfe._losses import bce_loss, mse_loss


def test_value_and_grad_is_per_sample(small_decoder, targets):
    objective = LatentObjective(small_decoder, mse_loss)
    z = torch.randn(
        6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    loss, grad = objective.value_and_grad(z, targets)
    for i in range(6):
        loss_i, grad_i = objective.value_and_grad(z[i : i + 1], targets[i : i + 1])
        torch.testing.assert_close(loss[i : i + 1], loss_i)
        torch.testing.assert_close(grad[i : i + 1], grad_i)


def test_linear_decoder_mse_gradient_is_closed_form():
    W = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]], dtype=torch.float64)
    decoder = torch.nn.Linear(2, 3, bias=False).double()
    decoder.weight.data = W.clone()
    y = torch.tensor([[1.0, 0.0, 2.0]], dtype=torch.float64)
    z = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    _, grad = LatentObjective(decoder, mse_loss).value_and_grad(z, y)
    expected = (2.0 / 3.0) * (z @ W.T - y) @ W
    torch.testing.assert_close(grad, expected)


def test_bce_loss_matches_torch():
    logits = torch.tensor([[0.2, -1.0], [3.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 0.0], [0.5, 0.25]], dtype=torch.float64)
    expected = torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(logits), y, reduction="none"
    ).mean(1)
    torch.testing.assert_close(bce_loss(logits, y), expected)


def test_first_order_field_is_minus_alpha_gradient(small_decoder, targets):
    objective = LatentObjective(small_decoder, mse_loss)
    z = torch.zeros(6, 2, dtype=torch.float64)
    (dz,), _ = FirstOrderFlow(objective, alpha=2.5).derivative(0.0, (z,), targets)
    _, grad = objective.value_and_grad(z, targets)
    torch.testing.assert_close(dz, -2.5 * grad)


def test_second_order_field_damps_velocity(small_decoder, targets):
    objective = LatentObjective(small_decoder, mse_loss)
    flow = SecondOrderFlow(objective, alpha=1.0)
    z = torch.zeros(6, 2, dtype=torch.float64)
    v = torch.ones(6, 2, dtype=torch.float64)
    (dz, dv), _ = flow.derivative(3.0, (z, v), targets)
    _, grad = objective.value_and_grad(z, targets)
    torch.testing.assert_close(dz, v)
    torch.testing.assert_close(dv, -v - grad)
    assert flow.initial_state(z)[1].abs().sum() == 0
