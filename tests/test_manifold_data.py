"""The manifold generators: exact ground truth for pairs, distances and midpoints."""

import numpy as np
import pytest

from skgfe._manifold_data import _arc_length
from skgfe.datasets import (
    make_blob_images,
    make_cylinder,
    make_flat_torus,
    make_swiss_roll_manifold,
)

GENERATORS = [
    make_swiss_roll_manifold,
    make_cylinder,
    make_flat_torus,
    make_blob_images,
]
N_FEATURES = {
    make_swiss_roll_manifold: 3,
    make_cylinder: 3,
    make_flat_torus: 4,
    make_blob_images: 256,
}


def _periods(generator):
    """Periods of the charts (0: not periodic) at the default parameters."""
    return {
        make_cylinder: np.array([2 * np.pi, 0.0]),
        make_flat_torus: np.array([2 * np.pi, 2 * np.pi]),
    }.get(generator, np.zeros(2))


def _chart_difference(generator, start, end):
    delta = end - start
    periods = _periods(generator)
    periodic = periods > 0
    delta[:, periodic] -= periods[periodic] * np.round(
        delta[:, periodic] / periods[periodic]
    )
    return delta


@pytest.fixture(scope="module", params=GENERATORS, ids=lambda g: g.__name__)
def sample(request):
    generator = request.param
    return generator, generator(n_samples=600, n_pairs=200, random_state=0)


def test_shapes_and_types(sample):
    generator, data = sample
    n_features = N_FEATURES[generator]
    assert data.data.shape == (600, n_features)
    assert data.coordinates.shape == (600, 2)
    assert data.pairs.shape == (200, 2) and data.pairs.dtype == np.int64
    assert data.pair_distances.shape == (200,)
    assert data.midpoints.shape == (200, n_features)
    assert data.midpoint_coordinates.shape == (200, 2)
    assert np.all(data.pairs[:, 0] != data.pairs[:, 1])
    assert len({tuple(p) for p in data.pairs}) == 200


def test_pairs_are_within_epsilon_at_their_geodesic_distance(sample):
    generator, data = sample
    epsilon = {make_swiss_roll_manifold: 2.0, make_blob_images: 1.0}.get(generator, 0.3)
    first, second = (
        data.coordinates[data.pairs[:, 0]],
        data.coordinates[data.pairs[:, 1]],
    )
    delta = _chart_difference(generator, first, second)
    np.testing.assert_allclose(
        data.pair_distances, np.linalg.norm(delta, axis=1), rtol=1e-12
    )
    assert np.all(data.pair_distances <= epsilon) and np.all(data.pair_distances > 0)


def test_midpoints_halve_the_geodesic(sample):
    generator, data = sample
    first, second = (
        data.coordinates[data.pairs[:, 0]],
        data.coordinates[data.pairs[:, 1]],
    )
    to_first = _chart_difference(generator, data.midpoint_coordinates, first)
    to_second = _chart_difference(generator, data.midpoint_coordinates, second)
    half = data.pair_distances / 2
    np.testing.assert_allclose(np.linalg.norm(to_first, axis=1), half, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(to_second, axis=1), half, rtol=1e-9)
    np.testing.assert_allclose(to_first, -to_second, atol=1e-9)


def test_chords_are_shorter_than_geodesics_and_close_to_them(sample):
    """Nearby pairs: the straight line in data space nearly follows the manifold."""
    _, data = sample
    chords = np.linalg.norm(
        data.data[data.pairs[:, 0]] - data.data[data.pairs[:, 1]], axis=1
    )
    ratio = chords / data.pair_distances
    assert np.all(ratio <= 1 + 1e-6)
    assert np.all(ratio > 0.97)


def test_midpoints_lie_halfway_in_data_space(sample):
    """Nearby pairs: the midpoint is about half the geodesic from each end."""
    _, data = sample
    first = data.data[data.pairs[:, 0]]
    second = data.data[data.pairs[:, 1]]
    to_first = np.linalg.norm(data.midpoints - first, axis=1)
    to_second = np.linalg.norm(data.midpoints - second, axis=1)
    np.testing.assert_allclose(to_first / data.pair_distances, 0.5, atol=0.02)
    np.testing.assert_allclose(to_second / data.pair_distances, 0.5, atol=0.02)


@pytest.mark.parametrize("generator", GENERATORS, ids=lambda g: g.__name__)
def test_seeded_and_noise_on_the_points_only(generator):
    clean = generator(n_samples=300, n_pairs=50, random_state=1)
    again = generator(n_samples=300, n_pairs=50, random_state=1)
    noisy = generator(n_samples=300, n_pairs=50, noise=0.1, random_state=1)
    for key in clean:
        np.testing.assert_array_equal(clean[key], again[key])
    for key in ("coordinates", "pairs", "pair_distances", "midpoints"):
        np.testing.assert_array_equal(clean[key], noisy[key])
    residual = noisy.data - clean.data
    assert 0.08 < residual.std() < 0.12
    other = generator(n_samples=300, n_pairs=50, random_state=2)
    assert not np.allclose(clean.coordinates, other.coordinates)


def test_swiss_roll_coordinates_are_the_unrolling():
    roll = make_swiss_roll_manifold(n_samples=400, n_pairs=50, random_state=0)
    x, height, z = roll.data.T
    t = np.hypot(x, z)  # the spiral's radius is its parameter t
    np.testing.assert_allclose(np.arctan2(z, x), np.angle(np.exp(1j * t)), atol=1e-9)
    np.testing.assert_allclose(
        roll.coordinates[:, 0], _arc_length(t) - _arc_length(1.5 * np.pi), atol=1e-9
    )
    np.testing.assert_allclose(roll.coordinates[:, 1], height)
    assert t.min() >= 1.5 * np.pi - 1e-9 and t.max() <= 4.5 * np.pi + 1e-9


def test_cylinder_and_torus_lie_on_their_circles():
    cylinder = make_cylinder(
        n_samples=200, radius=2.0, height=3.0, n_pairs=50, epsilon=0.5, random_state=0
    )
    np.testing.assert_allclose(np.hypot(*cylinder.data[:, :2].T), 2.0)
    assert cylinder.data[:, 2].min() >= 0 and cylinder.data[:, 2].max() <= 3.0
    torus = make_flat_torus(
        n_samples=200, radii=(1.0, 0.5), n_pairs=50, epsilon=0.2, random_state=0
    )
    np.testing.assert_allclose(np.hypot(*torus.data[:, :2].T), 1.0)
    np.testing.assert_allclose(np.hypot(*torus.midpoints[:, 2:].T), 0.5)


def test_blob_images_are_centred_blobs_and_locally_isometric():
    blobs = make_blob_images(
        n_samples=800,
        image_size=20,
        blob_width=1.5,
        n_pairs=100,
        epsilon=0.3,
        random_state=0,
    )
    images = blobs.data.reshape(-1, 20, 20)
    grid = np.arange(20)
    mass = images.sum(axis=(1, 2))
    column = (images.sum(axis=1) * grid).sum(axis=1) / mass
    row = (images.sum(axis=2) * grid).sum(axis=1) / mass
    centres = blobs.coordinates / np.sqrt(np.pi / 2) + 3.0
    # The border cuts a little of the blobs at the edge of the allowed square.
    np.testing.assert_allclose(np.column_stack([column, row]), centres, atol=0.05)
    assert images.max() <= 1
    chords = np.linalg.norm(
        blobs.data[blobs.pairs[:, 0]] - blobs.data[blobs.pairs[:, 1]], axis=1
    )
    np.testing.assert_allclose(chords / blobs.pair_distances, 1.0, atol=3e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=1), "n_samples == 1, must be >= 2"),
        (dict(n_pairs=0), "n_pairs == 0, must be >= 1"),
        (dict(epsilon=0.0), "epsilon == 0.0, must be > 0"),
        (dict(noise=-1.0), "noise == -1.0, must be >= 0"),
        (dict(n_samples=20, n_pairs=500), "only .* pairs .* fewer than n_pairs=500"),
    ],
)
def test_invalid_sampling_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_swiss_roll_manifold(**kwargs)


def test_invalid_shape_parameters_raise():
    with pytest.raises(ValueError, match="below half the shortest period"):
        make_cylinder(epsilon=4.0)
    with pytest.raises(ValueError, match="radii must be two positive floats"):
        make_flat_torus(radii=(1.0, -1.0))
    with pytest.raises(ValueError, match="leaves no room for a blob"):
        make_blob_images(image_size=6, blob_width=1.5)
    with pytest.raises(ValueError, match="radius == 0"):
        make_cylinder(radius=0)
