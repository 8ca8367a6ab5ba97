"""The pairs given to ``fit`` for the pair loss: checks and the kNN fallback."""

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_array

from ._utils import host_array

# Neighbours per sample when the pairs are not given. Five keeps the pairs
# local (so the chord length is close to the geodesic one) while linking every
# sample to more than one other.
N_NEIGHBORS = 5


def check_pair_data(
    X, pairs, pair_distances, midpoints, *, distortion_weight, bending_weight
):
    """Validate the pair data of ``fit``, or derive pairs from nearest neighbours.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The validated training data the pairs index.
    pairs : array-like of shape (n_pairs, 2) or None
        Row indices of nearby samples. None: each sample and its
        ``N_NEIGHBORS`` nearest neighbours (only without bending).
    pair_distances : array-like of shape (n_pairs,) or None
        Local distances; None: the Euclidean distances between the rows.
    midpoints : array-like of shape (n_pairs, n_features) or None
        Riemannian midpoints, needed when ``bending_weight`` is positive.
    distortion_weight, bending_weight : float
        The estimator's weights.

    Returns
    -------
    pair_data : tuple (pairs, distances, midpoints) or None
        ``pairs`` int64 (m, 2), ``distances`` (m,) and ``midpoints`` (m,
        n_features) or None, both in the dtype of X; None when both weights are
        zero (the pair data are then ignored).
    """
    if distortion_weight == 0 and bending_weight == 0:
        return None
    if pairs is None:
        if pair_distances is not None or midpoints is not None:
            raise ValueError(
                "pair_distances and midpoints describe pairs of samples; pass the "
                "pairs too (fit(X, pairs=...))"
            )
        if bending_weight > 0:
            raise ValueError(
                f"bending_weight={bending_weight!r} needs the Riemannian midpoints of "
                "pairs of nearby samples: pass fit(X, pairs=..., midpoints=...), or "
                "set bending_weight=0"
            )
        pairs, distances = nearest_neighbor_pairs(X, N_NEIGHBORS)
        return pairs, distances.astype(X.dtype, copy=False), None
    pairs = check_pairs(pairs, X.shape[0], "X")
    distances = _check_distances(X, pairs, pair_distances)
    if bending_weight > 0:
        if midpoints is None:
            raise ValueError(
                f"bending_weight={bending_weight!r} needs midpoints, the Riemannian "
                "midpoints of the pairs as an array of shape (n_pairs, n_features); "
                "pass fit(X, pairs=..., midpoints=...), or set bending_weight=0"
            )
        midpoints = check_array(
            host_array(midpoints), dtype=X.dtype, input_name="midpoints"
        )
        if midpoints.shape != (pairs.shape[0], X.shape[1]):
            raise ValueError(
                f"midpoints must have shape (n_pairs, n_features) = "
                f"({pairs.shape[0]}, {X.shape[1]}), got {midpoints.shape}"
            )
    else:
        midpoints = None
    return pairs, distances, midpoints


def nearest_neighbor_pairs(X, n_neighbors):
    """Each sample paired with its nearest neighbours, and their Euclidean distances.

    Unordered pairs are kept once; pairs of identical rows are dropped (their
    distance is zero).
    """
    n_neighbors = min(n_neighbors + 1, X.shape[0])
    distances, neighbors = (
        NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(X)
    )
    rows = np.repeat(np.arange(X.shape[0]), n_neighbors)
    pairs = np.sort(np.column_stack([rows, neighbors.ravel()]), axis=1)
    distances = distances.ravel()
    keep = distances > 0
    pairs, first = np.unique(pairs[keep], axis=0, return_index=True)
    if pairs.shape[0] == 0:
        raise ValueError(
            "distortion_weight > 0 without pairs pairs each sample with its nearest "
            "neighbours, but all samples of X are identical; pass pairs"
        )
    return pairs.astype(np.int64), distances[keep][first]


def check_pairs(pairs, n_rows, rows_name):
    """``pairs`` as int64 (n_pairs, 2), each of two distinct rows of ``rows_name``."""
    pairs = check_array(host_array(pairs), dtype=None, input_name="pairs")
    if not np.issubdtype(pairs.dtype, np.integer) or pairs.shape[1] != 2:
        raise ValueError(
            f"pairs must be an integer array of shape (n_pairs, 2), got dtype "
            f"{pairs.dtype} and shape {pairs.shape}"
        )
    if pairs.min() < 0 or pairs.max() >= n_rows:
        raise ValueError(
            f"pairs must index the rows of {rows_name}, in [0, {n_rows - 1}], got "
            f"values in [{pairs.min()}, {pairs.max()}]"
        )
    if np.any(pairs[:, 0] == pairs[:, 1]):
        raise ValueError(
            "pairs must join two different rows, but some pair a row with itself"
        )
    return pairs.astype(np.int64, copy=False)


def _check_distances(X, pairs, pair_distances):
    if pair_distances is None:
        distances = np.linalg.norm(X[pairs[:, 0]] - X[pairs[:, 1]], axis=1)
        if np.any(distances == 0):
            raise ValueError(
                "some pairs join identical rows of X, so their Euclidean distance is "
                "zero; pass pair_distances or drop those pairs"
            )
        return distances
    distances = check_array(
        host_array(pair_distances),
        dtype=X.dtype,
        ensure_2d=False,
        input_name="pair_distances",
    )
    if distances.shape != (pairs.shape[0],):
        raise ValueError(
            f"pair_distances must have shape (n_pairs,) = ({pairs.shape[0]},), got "
            f"{distances.shape}"
        )
    if np.any(distances <= 0):
        raise ValueError(
            f"pair_distances must be positive, got a minimum of {distances.min()!r}"
        )
    return distances
