"""Per-sample reconstruction losses and the maps from decoder output to data space.

Every loss returns one value per sample (the mean over features), so the
gradient of the summed loss with respect to a sample's code is that sample's
own gradient: the flows of different samples never interact.
"""

import torch
import torch.nn.functional as F


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over features; shape (n_samples,)."""
    return (output - target).square().mean(dim=1)


def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of sigmoid(logits) against targets in [0, 1], (n,)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(
        dim=1
    )


# name -> (per-sample loss, map from decoder output to reconstruction)
LOSSES = {
    "mse": (mse_loss, lambda output: output),
    "bce": (bce_loss, torch.sigmoid),
}
