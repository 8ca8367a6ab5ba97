"""Geometry of codes: distortion, bending, interpolation and Procrustes errors.

Plain functions of codes (PCA, Isomap, an autoencoder, GFE: anything that maps
samples to vectors) and of the ground truth that the generators of
:mod:`skgfe.datasets` return: pairs of nearby samples, their local distances,
their Riemannian midpoints and the true intrinsic coordinates.

``distortion_score`` and ``bending_score`` measure the two properties that the
pair loss of the estimators (``distortion_weight``, ``bending_weight``)
encourages: codes that keep local distances (isometry) and that map midpoints
to midpoints (extrinsic flatness). Both are zero for a rigid motion of the
true coordinates of a flat manifold, and unchanged when the codes are
rotated, translated or scaled.
"""

import numpy as np
from sklearn.utils.validation import check_array

from ._pair_data import check_pairs

__all__ = [
    "bending_score",
    "distortion_score",
    "interpolation_error",
    "procrustes_error",
]


def distortion_score(codes, pairs, pair_distances):
    r"""How far the code distances of nearby pairs are from their local distances.

    With :math:`r_k = \|z_i - z_j\| / d_{ij}` the ratio of the code distance of
    the pair :math:`k = (i, j)` to its local distance, the score is the root
    mean square relative error of the code distances at the best global scale
    :math:`s`,

    .. math::

        \min_s \sqrt{\frac{1}{m} \sum_k (s \, r_k - 1)^2}
        = \sqrt{1 - \frac{\bar r^{\,2}}{\overline{r^2}}},

    where bars are means over the pairs. It is 0 when the codes keep every
    local distance up to one common factor (a similarity: an isometry, possibly
    scaled), grows with the spread of the ratios, and stays below 1.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components)
        Codes of the samples.
    pairs : array-like of shape (n_pairs, 2)
        Row indices of pairs of nearby samples.
    pair_distances : array-like of shape (n_pairs,)
        Their local (geodesic) distances, positive.

    Returns
    -------
    score : float
        In [0, 1); lower is better.

    Raises
    ------
    ValueError
        If the inputs are malformed, or the codes of every pair coincide (the
        best scale is then undefined).

    See Also
    --------
    bending_score : Whether midpoints are mapped to midpoints.

    Examples
    --------
    >>> import numpy as np
    >>> from skgfe.datasets import make_swiss_roll_manifold
    >>> from skgfe.metrics import distortion_score
    >>> roll = make_swiss_roll_manifold(n_samples=500, n_pairs=300, random_state=0)
    >>> rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    >>> codes = 3.0 * roll.coordinates @ rotation + 1.0
    >>> round(distortion_score(codes, roll.pairs, roll.pair_distances), 6)
    0.0
    """
    codes, pairs = _check_codes_and_pairs(codes, pairs)
    distances = check_array(
        pair_distances, ensure_2d=False, input_name="pair_distances"
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
    ratios = _pair_code_distances(codes, pairs) / distances
    mean_square = np.mean(ratios**2)
    if mean_square == 0:
        raise ValueError(
            "the codes of every pair coincide; the distortion of "
            "collapsed codes is undefined"
        )
    return float(np.sqrt(max(0.0, 1 - np.mean(ratios) ** 2 / mean_square)))


def bending_score(codes, pairs, midpoint_codes):
    r"""How far the codes of the true midpoints are from the midpoints of the codes.

    For each pair :math:`(i, j)` with Riemannian midpoint :math:`m_{ij}`,
    compare the code of the midpoint :math:`z_m` with the latent midpoint
    :math:`(z_i + z_j) / 2`, relative to the code distance of the pair:

    .. math::

        \sqrt{\frac{\sum_k \|z_{m_k} - (z_{i_k} + z_{j_k}) / 2\|^2}
                   {\sum_k \|z_{i_k} - z_{j_k}\|^2}}.

    It is 0 when the codes map midpoints to midpoints (an affine map of the
    true coordinates of a flat manifold, e.g. its unrolling) and is invariant
    to rotations, translations and scalings of the codes. For a code map with
    bounded second derivative it shrinks linearly with the pair distances, so
    compare scores on the same pairs.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components)
        Codes of the samples.
    pairs : array-like of shape (n_pairs, 2)
        Row indices of pairs of nearby samples.
    midpoint_codes : array-like of shape (n_pairs, n_components)
        Codes of the pairs' Riemannian midpoints, e.g.
        ``estimator.transform(midpoints)``.

    Returns
    -------
    score : float
        Non-negative; lower is better.

    Raises
    ------
    ValueError
        If the inputs are malformed, or the codes of every pair coincide.

    See Also
    --------
    distortion_score : Whether local distances are kept.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from skgfe.datasets import make_swiss_roll_manifold
    >>> from skgfe.metrics import bending_score
    >>> roll = make_swiss_roll_manifold(n_samples=500, n_pairs=300, random_state=0)
    >>> pca = PCA(n_components=2).fit(roll.data)
    >>> score = bending_score(pca.transform(roll.data), roll.pairs,
    ...                       pca.transform(roll.midpoints))
    >>> score > 0
    True
    """
    codes, pairs = _check_codes_and_pairs(codes, pairs)
    midpoint_codes = check_array(midpoint_codes, input_name="midpoint_codes")
    if midpoint_codes.shape != (pairs.shape[0], codes.shape[1]):
        raise ValueError(
            f"midpoint_codes must have shape (n_pairs, n_components) = "
            f"({pairs.shape[0]}, {codes.shape[1]}), got {midpoint_codes.shape}"
        )
    spread = np.sum(_pair_code_distances(codes, pairs) ** 2)
    if spread == 0:
        raise ValueError(
            "the codes of every pair coincide; the bending of collapsed "
            "codes is undefined"
        )
    latent_midpoints = (codes[pairs[:, 0]] + codes[pairs[:, 1]]) / 2
    return float(np.sqrt(np.sum((midpoint_codes - latent_midpoints) ** 2) / spread))


def interpolation_error(codes, pairs, midpoints, decode):
    r"""Error of decoding the latent midpoint of a pair, against the true midpoint.

    Linear interpolation in code space is a useful post-processing step when
    the codes are flat: the decoded mean of two codes is then the Riemannian
    midpoint of the two samples. This is the root mean square error of that
    reconstruction over the pairs and the features,

    .. math::

        \sqrt{\frac{1}{m \, p} \sum_k
              \big\| D\big((z_{i_k} + z_{j_k}) / 2\big) - m_k \big\|^2},

    with :math:`D` the decoder and :math:`p` the number of features. It is in
    the units of the data (not scale-free); compare it with the decoder's own
    reconstruction error of the midpoints to see what the interpolation adds.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components)
        Codes of the samples.
    pairs : array-like of shape (n_pairs, 2)
        Row indices of pairs of nearby samples.
    midpoints : array-like of shape (n_pairs, n_features)
        Their Riemannian midpoints, in data space.
    decode : estimator or callable
        A fitted estimator with ``inverse_transform`` (a skgfe estimator,
        :class:`~sklearn.decomposition.PCA`, ...) or a callable mapping an
        array of codes (n, n_components) to data (n, n_features).

    Returns
    -------
    error : float
        Non-negative; lower is better.

    Examples
    --------
    >>> from sklearn.decomposition import PCA
    >>> from skgfe.datasets import make_swiss_roll_manifold
    >>> from skgfe.metrics import interpolation_error
    >>> roll = make_swiss_roll_manifold(n_samples=500, n_pairs=300, random_state=0)
    >>> pca = PCA(n_components=2).fit(roll.data)
    >>> error = interpolation_error(pca.transform(roll.data), roll.pairs,
    ...                             roll.midpoints, pca)
    >>> error > 0
    True
    """
    codes, pairs = _check_codes_and_pairs(codes, pairs)
    midpoints = check_array(midpoints, input_name="midpoints")
    if midpoints.shape[0] != pairs.shape[0]:
        raise ValueError(
            f"midpoints must have one row per pair ({pairs.shape[0]}), got "
            f"{midpoints.shape[0]}"
        )
    if hasattr(decode, "inverse_transform"):
        decode = decode.inverse_transform
    elif not callable(decode):
        raise TypeError(
            "decode must be a fitted estimator with inverse_transform or a callable "
            f"mapping codes to data, got {type(decode).__name__}"
        )
    latent_midpoints = (codes[pairs[:, 0]] + codes[pairs[:, 1]]) / 2
    decoded = np.asarray(decode(latent_midpoints))
    if decoded.shape != midpoints.shape:
        raise ValueError(
            f"decode returned an array of shape {decoded.shape} for "
            f"{len(latent_midpoints)} codes, but midpoints have shape {midpoints.shape}"
        )
    return float(np.sqrt(np.mean((decoded - midpoints) ** 2)))


def procrustes_error(codes, coordinates, *, scaling=True):
    r"""Distance of the codes to the true coordinates after the best rigid alignment.

    The codes are aligned to the coordinates by the translation, the
    orthogonal map (rotation or reflection) and, with ``scaling``, the global
    scale that minimise the squared distance (orthogonal Procrustes analysis,
    solved by a singular value decomposition). The error is the root mean
    square distance that remains, relative to the extent of the coordinates
    (their root mean square distance to their centroid):

    .. math::

        \frac{\min_{s, Q, t} \big(\sum_n \|s Q z_n + t - c_n\|^2\big)^{1/2}}
             {\big(\sum_n \|c_n - \bar c\|^2\big)^{1/2}}.

    Codes and coordinates of different dimensions are compared by padding the
    smaller with zero columns. The error is 0 when the codes are a rigid
    motion (with ``scaling``, a similarity) of the coordinates, and 1 for codes
    that are all the same point.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components)
        Codes of the samples.
    coordinates : array-like of shape (n_samples, n_coordinates)
        Their true intrinsic coordinates.
    scaling : bool, default=True
        Also fit a global scale. Without it, codes must match the
        coordinates in size too (as isometric codes do).

    Returns
    -------
    error : float
        Non-negative; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from skgfe.datasets import make_swiss_roll_manifold
    >>> from skgfe.metrics import procrustes_error
    >>> roll = make_swiss_roll_manifold(n_samples=500, n_pairs=300, random_state=0)
    >>> rotation = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> round(procrustes_error(roll.coordinates @ rotation, roll.coordinates), 6)
    0.0
    """
    codes = check_array(codes, input_name="codes")
    coordinates = check_array(coordinates, input_name="coordinates")
    if codes.shape[0] != coordinates.shape[0]:
        raise ValueError(
            f"codes and coordinates must have the same number of rows, got "
            f"{codes.shape[0]} and {coordinates.shape[0]}"
        )
    width = max(codes.shape[1], coordinates.shape[1])
    codes = _pad_columns(codes - codes.mean(axis=0), width)
    coordinates = _pad_columns(coordinates - coordinates.mean(axis=0), width)
    extent = np.sum(coordinates**2)
    if extent == 0:
        raise ValueError(
            "coordinates are all the same point; the relative error is undefined"
        )
    # The orthogonal Q maximising trace(Q^T C^T Z) is U V^T from the SVD of C^T Z.
    left, singular_values, right = np.linalg.svd(coordinates.T @ codes)
    aligned = codes @ (left @ right).T
    if scaling:
        code_norm = np.sum(codes**2)
        scale = singular_values.sum() / code_norm if code_norm > 0 else 0.0
        aligned = scale * aligned
    return float(np.sqrt(np.sum((aligned - coordinates) ** 2) / extent))


def _check_codes_and_pairs(codes, pairs):
    codes = check_array(codes, input_name="codes")
    return codes, check_pairs(pairs, codes.shape[0], "codes")


def _pair_code_distances(codes, pairs):
    return np.linalg.norm(codes[pairs[:, 0]] - codes[pairs[:, 1]], axis=1)


def _pad_columns(array, width):
    return np.pad(array, ((0, 0), (0, width - array.shape[1])))
