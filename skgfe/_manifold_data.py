"""Sampled manifolds with ground truth: coordinates, nearby pairs, distances, midpoints.

Every manifold here is flat: it has a chart, the ``coordinates``, in which the
geodesic distance is the Euclidean one (on a periodic domain for the cylinder
and the torus). So the pairs within ``epsilon``, their exact geodesic
distances and their Riemannian midpoints come from the chart, and the best
code of the manifold is known: its coordinates, up to a rigid motion.
"""

from numbers import Integral, Real

import numpy as np
from scipy.spatial import cKDTree
from sklearn.utils import Bunch, check_random_state, check_scalar

# The Swiss roll of sklearn.datasets.make_swiss_roll: the spiral (t cos t,
# t sin t) for t in [1.5 pi, 4.5 pi], 21 high.
_ROLL_T_RANGE = (1.5 * np.pi, 4.5 * np.pi)
_ROLL_HEIGHT = 21.0

# The squared norm of the derivative of a rendered Gaussian blob with respect
# to its centre, in pixel units: sum_p (d/dc exp(-|p - c|^2 / (2 s^2)))^2 is
# pi / 2 for any width s, up to terms exponentially small in s (Poisson
# summation) and the mass cut off by the image border. The image manifold is
# thus flat, with the centre times sqrt(pi / 2) as an isometric chart.
_BLOB_METRIC_SCALE = np.sqrt(np.pi / 2)


def _arc_length(t):
    """Arc length of the spiral (t cos t, t sin t) from the origin to t."""
    return (t * np.sqrt(1 + t**2) + np.arcsinh(t)) / 2


def _arc_length_inverse(s):
    """The t with ``_arc_length(t) = s``, by Newton's method (s is convex in t)."""
    # arc length ~ t^2 / 2 for large t; Newton converges from above.
    t = np.sqrt(2 * s) + 1
    for _ in range(50):
        step = (_arc_length(t) - s) / np.sqrt(1 + t**2)
        t = t - step
        if np.all(np.abs(step) <= 1e-13 * np.maximum(t, 1)):
            break
    return t


def _check_sampling(n_samples, n_pairs, epsilon, noise):
    check_scalar(n_samples, "n_samples", Integral, min_val=2)
    check_scalar(n_pairs, "n_pairs", Integral, min_val=1)
    check_scalar(epsilon, "epsilon", Real, min_val=0, include_boundaries="neither")
    check_scalar(noise, "noise", Real, min_val=0)


def _sample_pairs(coordinates, epsilon, n_pairs, periods, rng):
    """Draw pairs of points within ``epsilon`` in a flat chart.

    Parameters
    ----------
    coordinates : ndarray of shape (n_samples, d)
        Chart coordinates; periodic axes lie in ``[0, period)``.
    epsilon : float
        Largest geodesic distance of a pair.
    n_pairs : int
        Pairs to draw, without replacement, uniformly among all pairs within
        ``epsilon``.
    periods : ndarray of shape (d,)
        Period of each axis; 0 for an axis that is not periodic.
    rng : numpy.random.RandomState

    Returns
    -------
    pairs : ndarray of shape (n_pairs, 2), int64
    distances : ndarray of shape (n_pairs,)
        Geodesic distances (the shorter way round on periodic axes).
    midpoint_coordinates : ndarray of shape (n_pairs, d)
        Chart coordinates of the geodesic midpoints.
    """
    periodic = periods > 0
    if np.any(epsilon >= periods[periodic] / 2):
        raise ValueError(
            f"epsilon={epsilon!r} must be below half the shortest period "
            f"({periods[periodic].min() / 2:.3g}), or the midpoint of a pair is "
            "ambiguous"
        )
    shifted = np.where(periodic, coordinates, coordinates - coordinates.min(axis=0))
    # A box wider than the data plus epsilon never links points across a
    # non-periodic axis.
    box = np.where(periodic, periods, np.ptp(shifted, axis=0) + 2 * epsilon + 1)
    candidates = cKDTree(shifted, boxsize=box).query_pairs(
        epsilon, output_type="ndarray"
    )
    if len(candidates) < n_pairs:
        raise ValueError(
            f"only {len(candidates)} pairs of the {len(coordinates)} samples lie "
            "within "
            f"epsilon={epsilon!r}, fewer than n_pairs={n_pairs}; raise epsilon or "
            "n_samples, or lower n_pairs"
        )
    # Sorting makes the draw independent of the tree's output order.
    candidates = candidates[np.lexsort(candidates.T[::-1])]
    pairs = candidates[rng.choice(len(candidates), n_pairs, replace=False)]
    delta = coordinates[pairs[:, 1]] - coordinates[pairs[:, 0]]
    wraps = np.where(periodic, np.round(delta / np.where(periodic, periods, 1)), 0)
    delta -= wraps * periods
    midpoints = coordinates[pairs[:, 0]] + delta / 2
    midpoints = np.where(
        periodic, np.mod(midpoints, np.where(periodic, periods, 1)), midpoints
    )
    return pairs.astype(np.int64), np.linalg.norm(delta, axis=1), midpoints


def _manifold_bunch(
    embed, coordinates, pairs, distances, midpoint_coordinates, noise, rng
):
    data = embed(coordinates)
    if noise:
        data = data + noise * rng.standard_normal(data.shape)
    return Bunch(
        data=data,
        coordinates=coordinates,
        pairs=pairs,
        pair_distances=distances,
        midpoints=embed(midpoint_coordinates),
        midpoint_coordinates=midpoint_coordinates,
    )


_RETURNS = """\
    Returns
    -------
    dataset : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, n_features)
            The points{noise}, with the noise.
        coordinates : ndarray of shape (n_samples, 2)
            Their true intrinsic coordinates: {chart}
        pairs : ndarray of shape (n_pairs, 2), dtype int64
            Row indices of pairs of points at geodesic distance at most
            ``epsilon``, drawn uniformly without replacement among all such
            pairs.
        pair_distances : ndarray of shape (n_pairs,)
            Their geodesic distances{distance_note}.
        midpoints : ndarray of shape (n_pairs, n_features)
            Their Riemannian midpoints (noise-free), as points of the data
            space.
        midpoint_coordinates : ndarray of shape (n_pairs, 2)
            The coordinates of the midpoints.

    Raises
    ------
    ValueError
        If a parameter is out of range, or fewer than ``n_pairs`` pairs lie
        within ``epsilon`` (the message says what to change)."""


def make_swiss_roll_manifold(
    n_samples=1000, *, n_pairs=1000, epsilon=2.0, noise=0.0, random_state=None
):
    """Sample the Swiss roll with its exact arc-length unrolling.

    The roll of :func:`sklearn.datasets.make_swiss_roll`: the points
    ``(t cos t, h, t sin t)`` for ``t`` in ``[1.5 pi, 4.5 pi]`` and ``h`` in
    ``[0, 21]``. It is developable: unrolled, it is the rectangle of the arc
    length ``s(t)`` along the spiral and the height ``h``, and those
    coordinates are an isometry. Unlike scikit-learn's, the points are
    uniform on the surface (uniform in ``(s, h)``), and pairs, geodesic
    distances and midpoints come with them.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    n_pairs : int, default=1000
        Number of pairs of nearby points.
    epsilon : float, default=2.0
        Largest geodesic distance of a pair (the roll is about 89 long and 21
        high; its layers lie about 6.3 apart).
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seeds the points, the pairs and the noise.

    {returns}

    See Also
    --------
    sklearn.datasets.make_swiss_roll : The same roll, points uniform in ``t``.

    Examples
    --------
    >>> from skgfe.datasets import make_swiss_roll_manifold
    >>> roll = make_swiss_roll_manifold(n_samples=500, n_pairs=300, random_state=0)
    >>> roll.data.shape, roll.pairs.shape, roll.midpoints.shape
    ((500, 3), (300, 2), (300, 3))
    """
    _check_sampling(n_samples, n_pairs, epsilon, noise)
    rng = check_random_state(random_state)
    start = _arc_length(_ROLL_T_RANGE[0])
    length = _arc_length(_ROLL_T_RANGE[1]) - start

    def embed(coordinates):
        t = _arc_length_inverse(start + coordinates[:, 0])
        return np.column_stack([t * np.cos(t), coordinates[:, 1], t * np.sin(t)])

    coordinates = rng.uniform(size=(n_samples, 2)) * [length, _ROLL_HEIGHT]
    sampled = _sample_pairs(coordinates, epsilon, n_pairs, np.zeros(2), rng)
    return _manifold_bunch(embed, coordinates, *sampled, noise, rng)


def make_cylinder(
    n_samples=1000,
    *,
    radius=1.0,
    height=4.0,
    n_pairs=1000,
    epsilon=0.3,
    noise=0.0,
    random_state=None,
):
    """Sample a cylinder in R^3 with its unrolled coordinates.

    The points ``(r cos theta, r sin theta, h)`` for ``theta`` in
    ``[0, 2 pi)`` and ``h`` in ``[0, height]``, uniform on the surface. The
    cylinder is flat: ``(r theta, h)`` is an isometric chart, periodic in its
    first coordinate (period ``2 pi r``). It has no isometric embedding in the
    plane, so 2-D codes must distort it somewhere, while 3-D codes can be
    isometric but not flat.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    radius : float, default=1.0
        Radius ``r``.
    height : float, default=4.0
        Height of the cylinder.
    n_pairs : int, default=1000
        Number of pairs of nearby points.
    epsilon : float, default=0.3
        Largest geodesic distance of a pair; below ``pi * radius``.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seeds the points, the pairs and the noise.

    {returns}

    Examples
    --------
    >>> from skgfe.datasets import make_cylinder
    >>> cylinder = make_cylinder(n_samples=500, n_pairs=300, random_state=0)
    >>> cylinder.data.shape, cylinder.coordinates.shape
    ((500, 3), (500, 2))
    """
    _check_sampling(n_samples, n_pairs, epsilon, noise)
    check_scalar(radius, "radius", Real, min_val=0, include_boundaries="neither")
    check_scalar(height, "height", Real, min_val=0, include_boundaries="neither")
    rng = check_random_state(random_state)
    circumference = 2 * np.pi * radius

    def embed(coordinates):
        angle = coordinates[:, 0] / radius
        return np.column_stack(
            [radius * np.cos(angle), radius * np.sin(angle), coordinates[:, 1]]
        )

    coordinates = rng.uniform(size=(n_samples, 2)) * [circumference, height]
    sampled = _sample_pairs(
        coordinates, epsilon, n_pairs, np.array([circumference, 0.0]), rng
    )
    return _manifold_bunch(embed, coordinates, *sampled, noise, rng)


def make_flat_torus(
    n_samples=1000,
    *,
    radii=(1.0, 1.0),
    n_pairs=1000,
    epsilon=0.3,
    noise=0.0,
    random_state=None,
):
    """Sample the flat torus in R^4 with its periodic coordinates.

    The points ``(r1 cos u, r1 sin u, r2 cos v, r2 sin v)`` for ``u, v`` in
    ``[0, 2 pi)``, uniform on the surface: the product of two circles, a flat
    torus (zero Gaussian curvature, unlike the doughnut in R^3). ``(r1 u,
    r2 v)`` is an isometric chart, periodic in both coordinates. No code in
    R^2 can be isometric; its closed geodesics wind around both circles.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of points.
    radii : tuple of two floats, default=(1.0, 1.0)
        Radii ``(r1, r2)`` of the two circles.
    n_pairs : int, default=1000
        Number of pairs of nearby points.
    epsilon : float, default=0.3
        Largest geodesic distance of a pair; below ``pi * min(radii)``.
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the points.
    random_state : int, RandomState instance or None, default=None
        Seeds the points, the pairs and the noise.

    {returns}

    Examples
    --------
    >>> from skgfe.datasets import make_flat_torus
    >>> torus = make_flat_torus(n_samples=500, n_pairs=300, random_state=0)
    >>> torus.data.shape, torus.midpoints.shape
    ((500, 4), (300, 4))
    """
    _check_sampling(n_samples, n_pairs, epsilon, noise)
    radii = np.asarray(radii, dtype=float)
    if radii.shape != (2,) or not np.all(radii > 0):
        raise ValueError(f"radii must be two positive floats, got {radii.tolist()!r}")
    rng = check_random_state(random_state)
    periods = 2 * np.pi * radii

    def embed(coordinates):
        u, v = (coordinates / radii).T
        return np.column_stack(
            [
                radii[0] * np.cos(u),
                radii[0] * np.sin(u),
                radii[1] * np.cos(v),
                radii[1] * np.sin(v),
            ]
        )

    coordinates = rng.uniform(size=(n_samples, 2)) * periods
    sampled = _sample_pairs(coordinates, epsilon, n_pairs, periods, rng)
    return _manifold_bunch(embed, coordinates, *sampled, noise, rng)


def make_blob_images(
    n_samples=1000,
    *,
    image_size=16,
    blob_width=1.5,
    n_pairs=1000,
    epsilon=1.0,
    noise=0.0,
    random_state=None,
):
    """Generate images of a Gaussian blob at random positions, with the positions.

    Each sample is a ``image_size x image_size`` image (flattened row by row)
    of ``exp(-|p - c|^2 / (2 blob_width^2))`` over the pixel centres ``p``,
    for a centre ``c = (column, row)`` uniform in the square that keeps the
    blob ``2 * blob_width`` pixels from the border. The images form a
    2-D manifold in pixel space, curved in pixel space but intrinsically
    flat: translating the blob changes the image by the same amount wherever
    it is, so ``sqrt(pi / 2) * c`` is an isometric chart, to within the
    blob's mass cut off by the border and terms exponentially small in
    ``blob_width`` (pixel units, ``blob_width`` of a pixel or more). The
    pairs' distances and midpoints are those of that chart; the midpoint
    image is the blob at the mean centre.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of images.
    image_size : int, default=16
        Side of the images in pixels (``n_features = image_size**2``).
    blob_width : float, default=1.5
        Standard deviation of the blob, in pixels.
    n_pairs : int, default=1000
        Number of pairs of nearby images.
    epsilon : float, default=1.0
        Largest geodesic distance of a pair (a shift of ``epsilon /
        sqrt(pi / 2)``, about 0.8 ``epsilon`` pixels).
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to the pixels.
    random_state : int, RandomState instance or None, default=None
        Seeds the centres, the pairs and the noise.

    {returns}

    Examples
    --------
    >>> from skgfe.datasets import make_blob_images
    >>> blobs = make_blob_images(n_samples=500, n_pairs=300, random_state=0)
    >>> blobs.data.shape, blobs.data.reshape(-1, 16, 16).shape
    ((500, 256), (500, 16, 16))
    """
    _check_sampling(n_samples, n_pairs, epsilon, noise)
    check_scalar(image_size, "image_size", Integral, min_val=2)
    check_scalar(
        blob_width, "blob_width", Real, min_val=0, include_boundaries="neither"
    )
    margin = 2 * blob_width
    span = image_size - 1 - 2 * margin
    if span <= 0:
        raise ValueError(
            f"image_size={image_size} leaves no room for a blob of blob_width="
            f"{blob_width} kept {margin:g} pixels from the border; raise image_size "
            "or lower blob_width"
        )
    rng = check_random_state(random_state)
    grid = np.arange(image_size, dtype=float)

    def embed(coordinates):
        column, row = (coordinates / _BLOB_METRIC_SCALE + margin).T
        across = np.exp(-((grid - column[:, None]) ** 2) / (2 * blob_width**2))
        down = np.exp(-((grid - row[:, None]) ** 2) / (2 * blob_width**2))
        return (down[:, :, None] * across[:, None, :]).reshape(len(coordinates), -1)

    coordinates = rng.uniform(size=(n_samples, 2)) * span * _BLOB_METRIC_SCALE
    sampled = _sample_pairs(coordinates, epsilon, n_pairs, np.zeros(2), rng)
    return _manifold_bunch(embed, coordinates, *sampled, noise, rng)


# The parts of each generator's Returns section that differ.
_RETURNS_FIELDS = {
    make_swiss_roll_manifold: dict(
        noise="",
        distance_note="",
        chart="the arc length along the spiral from its inner end, and\n"
        "            the height.",
    ),
    make_cylinder: dict(noise="", distance_note="", chart="``(radius * theta, h)``."),
    make_flat_torus: dict(noise="", distance_note="", chart="``(r1 u, r2 v)``."),
    make_blob_images: dict(
        noise=" (pixel values)",
        distance_note=" in the chart",
        chart="``sqrt(pi / 2)`` times the blob centre (column, row),\n"
        "            in pixels from the lowest allowed centre.",
    ),
}
for _generator, _fields in _RETURNS_FIELDS.items():
    _generator.__doc__ = _generator.__doc__.replace(
        "{returns}", _RETURNS.format(**_fields).lstrip()
    )
