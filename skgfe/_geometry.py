"""The Monte Carlo pair loss that favours isometric, extrinsically flat codes.

Braunsmann, Rajkovic, Rumpf and Wirth regularise an embedding ``phi`` of a data
manifold with pairs of nearby points ``(x_i, x_j)``, their local Riemannian
distance ``d_ij`` and their Riemannian midpoint ``m_ij``. For a pair,

    distortion_ij = (|phi(x_i) - phi(x_j)| / d_ij - 1)^2
    bending_ij    = |(phi(x_i) + phi(x_j)) / 2 - phi(m_ij)|^2 / d_ij^4

The first is zero when the code keeps the local distance (isometry); the second
is the squared second difference of ``phi`` along the geodesic through the pair,
zero when ``phi`` maps midpoints to midpoints (extrinsic flatness). Scaled by
``d_ij^4`` it tends to a finite multiple of the second derivative of ``phi`` as
the pairs shrink, so both terms stay of order one whatever the pair scale. The
loss is their weighted mean over a batch of pairs drawn uniformly with
replacement: a Monte Carlo estimate of the paper's integral over pairs.

:class:`PairObjective` is the whole pair loss of one fit: it draws the rows
of a batch of pairs and scores their codes. Nothing here knows of
scikit-learn: the tensors are already on the model's device and dtype.
"""

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ._geodesics import graph_geodesic_pairs
from ._utils import to_tensor


class PairSet(NamedTuple):
    """Pairs of rows of ``points`` with their local distances and midpoints.

    ``first`` and ``second`` (m,) index ``points`` (n, n_features);
    ``distances`` (m,) are positive; ``midpoints`` (m, n_features) is None when
    the bending term is off.
    """

    points: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor
    distances: torch.Tensor
    midpoints: torch.Tensor | None

    def sample(self, batch_size: int, generator: torch.Generator) -> "PairSet":
        """``batch_size`` pairs drawn uniformly with replacement.

        The draw is made on the CPU generator and moved to the device, so a seed
        gives the same pairs on every device.
        """
        picks = torch.randint(
            self.first.shape[0], (batch_size,), generator=generator
        ).to(self.first.device)
        return PairSet(
            self.points,
            self.first[picks],
            self.second[picks],
            self.distances[picks],
            None if self.midpoints is None else self.midpoints[picks],
        )

    def rows(self) -> torch.Tensor:
        """The points to encode: first ends, second ends, then midpoints, stacked."""
        parts = [self.points[self.first], self.points[self.second]]
        if self.midpoints is not None:
            parts.append(self.midpoints)
        return torch.cat(parts)


def distortion_terms(
    codes_first: torch.Tensor, codes_second: torch.Tensor, distances: torch.Tensor
) -> torch.Tensor:
    """Per-pair ``(|z_i - z_j| / d_ij - 1)^2``; shape (m,)."""
    return ((codes_first - codes_second).norm(dim=1) / distances - 1).square()


def bending_terms(
    codes_first: torch.Tensor,
    codes_second: torch.Tensor,
    codes_midpoint: torch.Tensor,
    distances: torch.Tensor,
) -> torch.Tensor:
    """Per-pair ``|(z_i + z_j) / 2 - z_m|^2 / d_ij^4``; shape (m,)."""
    defect = (codes_first + codes_second) / 2 - codes_midpoint
    return defect.square().sum(dim=1) / distances.pow(4)


def geodesic_stress(
    codes_first: torch.Tensor, codes_second: torch.Tensor, distances: torch.Tensor
) -> torch.Tensor:
    """Kruskal's squared normalised stress, ``sum (|z_i - z_j| - d_ij)^2 / sum d_ij^2``.

    The distortion term of long-range pairs. Unlike the per-pair relative
    error of :func:`distortion_terms`, it weighs pairs by their length, so the
    longest distances, which fix the global layout, count most. Trained on
    Swiss-roll pairs alone, an encoder settled in a fold with the relative
    error on three seeds of four (Procrustes errors 0.23-0.32), and reached
    0.01-0.08 with the stress.
    """
    residuals = (codes_first - codes_second).norm(dim=1) - distances
    return residuals.square().sum() / distances.square().sum()


def pair_loss(
    codes: torch.Tensor,
    distances: torch.Tensor,
    distortion_weight: float,
    bending_weight: float,
) -> torch.Tensor:
    """Weighted mean distortion and bending of a batch of pairs.

    Parameters
    ----------
    codes : Tensor (2 m, k) or (3 m, k)
        Codes of the first ends, the second ends and (when ``bending_weight``
        is positive) the midpoints, stacked in that order as by
        :meth:`PairSet.rows`.
    distances : Tensor (m,)
        Local distances of the pairs.
    distortion_weight, bending_weight : float
        Weights of the two terms; a zero weight skips its term.

    Returns
    -------
    loss : Tensor ()
    """
    m = distances.shape[0]
    codes_first, codes_second = codes[:m], codes[m : 2 * m]
    loss = codes.new_zeros(())
    if distortion_weight > 0:
        distortion = distortion_terms(codes_first, codes_second, distances)
        loss = loss + distortion_weight * distortion.mean()
    if bending_weight > 0:
        bending = bending_terms(codes_first, codes_second, codes[2 * m :], distances)
        loss = loss + bending_weight * bending.mean()
    return loss


class PairObjective:
    """The pair loss of one fit: draws a batch of pair rows and scores their codes.

    Without long-range pairs the given pairs take the whole pair loss. With
    them, the distortion term is the geodesic stress over all pairs
    (:func:`geodesic_stress`) and the given pairs keep the bending term only:
    next to the stress, the per-pair relative distortion held the codes of a
    Swiss roll in a fold on one seed of six (Procrustes error 0.08;
    0.011-0.031 on eight seeds without it).

    Parameters
    ----------
    given : PairSet
        The pairs given to ``fit`` (or the nearest-neighbour pairs).
    geodesic : PairSet or None
        The given and the long-range pairs, without midpoints; None without
        long-range pairs.
    distortion_weight, bending_weight : float
        Weights of the two terms.
    batch_size : int
        Pairs drawn from each set per batch (at most the set's size).
    """

    def __init__(
        self,
        given: PairSet,
        geodesic: PairSet | None,
        distortion_weight: float,
        bending_weight: float,
        batch_size: int,
    ):
        self.given = given
        self.geodesic = geodesic
        self.distortion_weight = distortion_weight
        self.bending_weight = bending_weight
        self.batch_size = batch_size
        self._local_distortion = distortion_weight if geodesic is None else 0.0

    def draw(
        self, generator: torch.Generator
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        """The rows of a batch of pairs and the loss of their codes.

        All ends and midpoints are stacked in one tensor, so that they are
        encoded in one call (one flow solve for GFE); ``code_loss(codes)``
        takes their codes in the same order.
        """
        uses_local = self._local_distortion > 0 or self.bending_weight > 0
        local = self._sample(self.given, generator) if uses_local else None
        long_range = (
            None if self.geodesic is None else self._sample(self.geodesic, generator)
        )
        rows = [batch.rows() for batch in (local, long_range) if batch is not None]
        sizes = [len(part) for part in rows]

        def code_loss(codes: torch.Tensor) -> torch.Tensor:
            parts = iter(codes.split(sizes))
            loss = codes.new_zeros(())
            if local is not None:
                loss = loss + pair_loss(
                    next(parts),
                    local.distances,
                    self._local_distortion,
                    self.bending_weight,
                )
            if long_range is not None:
                first, second = next(parts).chunk(2)
                loss = loss + self.distortion_weight * geodesic_stress(
                    first, second, long_range.distances
                )
            return loss

        return torch.cat(rows), code_loss

    def _sample(self, pair_set: PairSet, generator: torch.Generator) -> PairSet:
        return pair_set.sample(min(self.batch_size, len(pair_set.first)), generator)


def make_pair_objective(
    points: torch.Tensor,
    pair_data: tuple,
    *,
    distortion_weight: float,
    bending_weight: float,
    geodesic_sources: int,
    batch_size: int,
    seed: int,
) -> PairObjective:
    """Build the :class:`PairObjective` of a fit.

    Parameters
    ----------
    points : Tensor (n, n_features)
        The training rows the pairs index, on the model's device and dtype.
    pair_data : tuple (pairs, distances, midpoints)
        Checked pair data (:func:`skgfe._pair_data.check_pair_data`): int
        (m, 2), (m,) and (m, n_features) or None, as NumPy arrays.
    distortion_weight, bending_weight : float
        Weights of the two terms.
    geodesic_sources : int
        Sources of long-range pairs along the graph of the pairs
        (:func:`skgfe._geodesics.graph_geodesic_pairs`); 0 for none.
    batch_size : int
        Pairs drawn from each set per batch.
    seed : int
        Seeds the choice of the sources.
    """
    pairs, distances, midpoints = pair_data
    given = _pair_set(points, pairs, distances, midpoints)
    geodesic = None
    if geodesic_sources > 0:
        long_pairs, long_distances = graph_geodesic_pairs(
            pairs,
            distances,
            points.shape[0],
            geodesic_sources,
            np.random.RandomState(seed),
        )
        geodesic = _pair_set(
            points,
            np.concatenate([pairs, long_pairs]),
            np.concatenate([distances, long_distances]),
            None,
        )
    return PairObjective(given, geodesic, distortion_weight, bending_weight, batch_size)


def _pair_set(points, pairs, distances, midpoints) -> PairSet:
    def tensor(array):
        return None if array is None else to_tensor(array, points.device, points.dtype)

    indices = to_tensor(pairs, points.device, torch.int64)
    return PairSet(
        points, indices[:, 0], indices[:, 1], tensor(distances), tensor(midpoints)
    )
