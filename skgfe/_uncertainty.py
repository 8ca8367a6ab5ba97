"""Laplace (Gauss-Newton) uncertainty of codes and of the decoder's outputs.

A code ``z*`` that minimises the negative log-likelihood of a sample ``x``
under a decoder ``D`` is pinned down by the curvature of that likelihood at
``z*``. With independent noise per output entry ``j`` and the decoder output
``eta = D(z)`` (logits for Bernoulli entries), the Gauss-Newton approximation
of that curvature is the precision

    P = J^T diag(w) J,   J = dD/dz at z*,

``w_j`` the Fisher information of entry ``j`` about ``eta_j``: ``1/sigma^2``
for Gaussian noise of variance ``sigma^2``, ``s(1 - s)`` with
``s = sigmoid(eta_j)`` for a Bernoulli entry, and 0 for a missing entry (it
says nothing about the code). The Laplace covariance of the code is
``P^-1``, and by the delta method the covariance of the output is
``J P^-1 J^T``, whose diagonal is returned. A reconstruction ``link(eta)``
has the standard deviation ``link'(eta)`` times that of ``eta``.

A row whose precision is singular to working precision (fewer informative
entries than components, or a decoder that collapses a direction there) has
no finite Laplace covariance: its covariance and its output variances are
``inf``, all of them, and ``singular`` marks it.

The module is torch only and knows nothing of scikit-learn.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._logdet import _unreliable_cholesky, decoder_jacobian, singular_gram_threshold
from ._utils import batch_slices

# Jacobian entries (rows x n_features x k) per chunk of decoder_laplace: with
# the float64 copies of the Jacobian that laplace_covariance makes, about
# 0.5 GB at most.
_MAX_JACOBIAN_ENTRIES = 2**24


class NoiseModel(NamedTuple):
    """What the Laplace approximation needs of a per-entry noise model."""

    # decoder output (n, p) -> Fisher information of each entry about its
    # output, for a unit noise scale (Gaussian: 1, to be divided by sigma^2).
    fisher_information: Callable
    # decoder output (n, p) -> derivative of the reconstruction with respect
    # to the output (the link's derivative).
    link_derivative: Callable


def _ones(output: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(output)


def _bernoulli_variance(logits: torch.Tensor) -> torch.Tensor:
    # s(1 - s) is both the Fisher information of a Bernoulli entry about its
    # logit and the derivative of the sigmoid.
    probability = torch.sigmoid(logits)
    return probability * (1 - probability)


# Keyed like skgfe._losses.LOSSES: the noise model whose negative
# log-likelihood each loss is (up to constants and the mean over entries).
NOISE_MODELS = {
    "mse": NoiseModel(fisher_information=_ones, link_derivative=_ones),
    "bce": NoiseModel(
        fisher_information=_bernoulli_variance, link_derivative=_bernoulli_variance
    ),
}


class LaplaceResult(NamedTuple):
    """Laplace covariances of a batch of codes and the variances of their outputs."""

    covariance: torch.Tensor  # (n, k, k) float64; inf on singular rows
    output_variance: torch.Tensor  # (n, p) float64; inf on singular rows
    singular: torch.Tensor  # (n,) bool: the precision is singular


def laplace_covariance(jacobian: torch.Tensor, weights: torch.Tensor) -> LaplaceResult:
    """Code covariances ``(J^T diag(w) J)^-1`` and output variances, row by row.

    Parameters
    ----------
    jacobian : Tensor of shape (n, n_features, k)
        Decoder Jacobians at the codes.
    weights : Tensor of shape (n, n_features)
        Fisher information of every output entry (non-negative; 0 for a
        missing entry).

    Returns
    -------
    result : LaplaceResult
        In float64 whatever the dtype of ``jacobian``: ``covariance`` (n, k, k),
        ``output_variance`` (n, n_features), the diagonal of
        ``J covariance J^T``, and ``singular`` (n,), the rows whose precision
        is singular to the precision ``jacobian`` was computed in (see
        :func:`~skgfe._logdet.singular_gram_threshold`), or not finite. Their
        covariance and output variances are ``inf``.
    """
    n_features, k = jacobian.shape[-2:]
    jacobian_64 = jacobian.detach().double()
    weighted = weights.detach().double().sqrt().unsqueeze(-1) * jacobian_64
    precision = weighted.mT @ weighted
    singular = _unreliable_cholesky(
        precision, singular_gram_threshold(jacobian.dtype, n_features)
    )
    # Singular rows are factorised as identities, then overwritten with inf.
    identity = torch.eye(k, dtype=precision.dtype, device=precision.device)
    factor = torch.linalg.cholesky(
        torch.where(singular[:, None, None], identity, precision)
    )
    covariance = torch.cholesky_inverse(factor)
    # diag(J P^-1 J^T) = column norms of L^-1 J^T for P = L L^T: a sum of
    # squares, never negative.
    whitened = torch.linalg.solve_triangular(factor, jacobian_64.mT, upper=False)
    output_variance = whitened.square().sum(dim=-2)
    infinite = torch.tensor(torch.inf, dtype=precision.dtype, device=precision.device)
    return LaplaceResult(
        torch.where(singular[:, None, None], infinite, covariance),
        torch.where(singular[:, None], infinite, output_variance),
        singular,
    )


def decoder_laplace(
    decoder: Callable, z: torch.Tensor, weights: torch.Tensor
) -> LaplaceResult:
    """:func:`laplace_covariance` at the decoder's Jacobians at the rows of ``z``.

    Parameters
    ----------
    decoder : callable
        Maps (n, k) codes to (n, n_features) outputs, rows independently.
    z : Tensor of shape (n, k)
        Codes.
    weights : Tensor of shape (n, n_features)
        Fisher information of every output entry (0 for a missing entry).

    Returns
    -------
    result : LaplaceResult
        One forward-mode Jacobian per row (k Jacobian-vector products), no
        graph to the decoder's parameters. Rows are processed in chunks of at
        most ``_MAX_JACOBIAN_ENTRIES`` Jacobian entries, which bounds memory and
        changes no row's result beyond rounding.
    """
    n_rows, n_features = weights.shape
    chunk = max(1, _MAX_JACOBIAN_ENTRIES // (n_features * z.shape[1]))
    parts = []
    for rows in batch_slices(n_rows, chunk):
        with torch.no_grad():
            jacobian = decoder_jacobian(decoder, z[rows].detach())
        parts.append(laplace_covariance(jacobian, weights[rows]))
    return LaplaceResult(*(torch.cat(field) for field in zip(*parts, strict=True)))
