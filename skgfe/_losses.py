"""Per-sample reconstruction losses and the maps from decoder output to data space.

Every loss returns one value per sample (the mean over features), so the
gradient of the summed loss with respect to a sample's code is that sample's
own gradient: the flows of different samples never interact.

:func:`sample_loss` extends the two losses to tables: a loss per column (squared
error for real-valued columns, cross-entropy for binary ones) and missing
entries, marked by NaN in the target, which a sample's loss skips (the mean is
over its observed entries).
"""

from collections.abc import Callable

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


def _entry_losses(output, target, name, binary_columns):
    """Loss of every entry, (n, n_features): ``name``'s, or cross-entropy on
    ``binary_columns`` (a boolean mask over the features) and squared error
    elsewhere."""
    squared = (output - target).square()
    if name == "mse" and binary_columns is None:
        return squared
    cross_entropy = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    if name == "bce":
        return cross_entropy
    return torch.where(binary_columns, cross_entropy, squared)


def sample_loss(
    name: str, binary_columns: torch.Tensor | None = None, missing: bool = False
) -> Callable:
    """The per-sample loss ``loss(output, target) -> (n,)`` of a table.

    Parameters
    ----------
    name : {'mse', 'bce'}
        Loss of the columns not in ``binary_columns``.
    binary_columns : bool tensor of shape (n_features,) or None
        Columns whose loss is the cross-entropy of ``sigmoid(output)``.
    missing : bool
        Whether targets may hold NaN (missing entries): each sample's loss is
        then the mean over its observed entries. Without missing entries and
        mixed columns this is ``LOSSES[name][0]`` itself, so results on
        complete data do not change by a bit.
    """
    if binary_columns is None and not missing:
        return LOSSES[name][0]

    def loss(output, target):
        if not missing:
            return _entry_losses(output, target, name, binary_columns).mean(dim=1)
        observed = ~torch.isnan(target)
        # Zeros in the holes keep every term finite, gradients included; the
        # mask then drops them.
        filled = torch.where(observed, target, torch.zeros_like(target))
        entries = _entry_losses(output, filled, name, binary_columns)
        observed = observed.to(entries.dtype)
        return (entries * observed).sum(dim=1) / observed.sum(dim=1)

    return loss


def reconstruction_link(name: str, binary_columns: torch.Tensor | None = None):
    """The map from decoder outputs to reconstructions (probabilities where
    the loss is a cross-entropy)."""
    link = LOSSES[name][1]
    if name == "bce" or binary_columns is None:
        return link
    return lambda output: torch.where(binary_columns, torch.sigmoid(output), output)
