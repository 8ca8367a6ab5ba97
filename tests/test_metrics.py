"""skgfe.metrics: exact values on known maps and invariances of the scores."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial import procrustes as scipy_procrustes
from scipy.stats import ortho_group
from sklearn.decomposition import PCA

from skgfe.datasets import make_blob_images, make_swiss_roll_manifold
from skgfe.metrics import (
    bending_score,
    distortion_score,
    interpolation_error,
    procrustes_error,
)


@pytest.fixture(scope="module")
def roll():
    return make_swiss_roll_manifold(n_samples=500, n_pairs=300, random_state=0)


def _isometry(seed, n_components):
    """A random linear isometry from R^2 into R^n_components."""
    return ortho_group.rvs(max(n_components, 2), random_state=seed)[:2, :n_components]


@pytest.mark.parametrize("n_components", [2, 3, 5])
def test_a_linear_isometry_has_no_distortion_and_no_bending(roll, n_components):
    isometry = _isometry(0, n_components)
    shift = np.arange(n_components, dtype=float)
    codes = roll.coordinates @ isometry + shift
    midpoint_codes = roll.midpoint_coordinates @ isometry + shift
    assert distortion_score(codes, roll.pairs, roll.pair_distances) == pytest.approx(
        0, abs=1e-7
    )
    assert bending_score(codes, roll.pairs, midpoint_codes) == pytest.approx(
        0, abs=1e-12
    )
    assert procrustes_error(codes, roll.coordinates, scaling=False) == pytest.approx(
        0, abs=1e-12
    )


def test_the_data_themselves_are_isometric_but_bent(roll):
    """The roll in R^3 keeps local distances (to second order) but is curved."""
    distortion = distortion_score(roll.data, roll.pairs, roll.pair_distances)
    bending = bending_score(roll.data, roll.pairs, roll.midpoints)
    assert distortion < 0.01
    assert bending > 0.005


def test_scores_grow_with_distortion_and_bending(roll):
    stretched = roll.coordinates * [1.0, 3.0]
    assert distortion_score(stretched, roll.pairs, roll.pair_distances) > 0.2
    bent = np.column_stack([roll.coordinates, 0.05 * roll.coordinates[:, 0] ** 2])
    bent_midpoints = np.column_stack(
        [roll.midpoint_coordinates, 0.05 * roll.midpoint_coordinates[:, 0] ** 2]
    )
    assert bending_score(bent, roll.pairs, bent_midpoints) > 0.002


def test_pca_of_the_roll_is_bent_and_distorted(roll):
    pca = PCA(n_components=2).fit(roll.data)
    codes = pca.transform(roll.data)
    assert bending_score(codes, roll.pairs, pca.transform(roll.midpoints)) > 0.01
    assert distortion_score(codes, roll.pairs, roll.pair_distances) > 0.2
    assert procrustes_error(codes, roll.coordinates) > 0.5


@given(
    scale=st.floats(0.01, 100.0),
    seed=st.integers(0, 2**16),
    shift=st.floats(-50.0, 50.0),
)
def test_scores_are_invariant_to_similarities_of_the_codes(roll, scale, seed, shift):
    # Any codes: a nonlinear map of the coordinates into R^3.
    def codes_of(coordinates):
        s, h = coordinates.T
        return np.column_stack([np.cos(s / 10), np.sin(s / 10), h / 5])

    codes, midpoint_codes = (
        codes_of(roll.coordinates),
        codes_of(roll.midpoint_coordinates),
    )
    rotation = ortho_group.rvs(3, random_state=seed)
    moved = scale * codes @ rotation + shift
    moved_midpoints = scale * midpoint_codes @ rotation + shift
    assert distortion_score(moved, roll.pairs, roll.pair_distances) == pytest.approx(
        distortion_score(codes, roll.pairs, roll.pair_distances), rel=1e-6, abs=1e-9
    )
    assert bending_score(moved, roll.pairs, moved_midpoints) == pytest.approx(
        bending_score(codes, roll.pairs, midpoint_codes), rel=1e-6
    )
    assert procrustes_error(moved, roll.coordinates) == pytest.approx(
        procrustes_error(codes, roll.coordinates), rel=1e-6
    )


@given(scale=st.floats(0.01, 100.0))
def test_distortion_is_invariant_to_the_unit_of_distance(roll, scale):
    codes = np.column_stack([roll.coordinates, np.sin(roll.coordinates[:, 0])])
    assert distortion_score(codes, roll.pairs, scale * roll.pair_distances) == (
        pytest.approx(
            distortion_score(codes, roll.pairs, roll.pair_distances), rel=1e-6
        )
    )


@given(seed=st.integers(0, 2**16))
def test_procrustes_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    codes, coordinates = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    _, _, disparity = scipy_procrustes(coordinates, codes)
    assert procrustes_error(codes, coordinates) ** 2 == pytest.approx(
        disparity, rel=1e-9
    )


def test_procrustes_pads_codes_of_another_dimension(roll):
    codes = roll.coordinates @ _isometry(1, 3)
    assert procrustes_error(codes, roll.coordinates) == pytest.approx(0, abs=1e-12)
    assert procrustes_error(roll.coordinates[:, :1], roll.coordinates) > 0
    assert procrustes_error(
        np.ones_like(roll.coordinates), roll.coordinates
    ) == pytest.approx(1)
    assert procrustes_error(
        0.5 * roll.coordinates, roll.coordinates, scaling=False
    ) == pytest.approx(0.5)


def test_interpolation_error_of_a_linear_decoder_on_a_flat_manifold(roll):
    """The roll's unrolling decoded by the exact map: midpoints decode exactly."""
    lift = _isometry(3, 5)
    decoded = interpolation_error(
        roll.coordinates,
        roll.pairs,
        roll.midpoint_coordinates @ lift,
        lambda z: z @ lift,
    )
    assert decoded == pytest.approx(0, abs=1e-12)


def test_interpolation_error_takes_an_estimator_or_a_callable():
    blobs = make_blob_images(n_samples=400, n_pairs=100, random_state=0)
    pca = PCA(n_components=2).fit(blobs.data)
    codes = pca.transform(blobs.data)
    by_estimator = interpolation_error(codes, blobs.pairs, blobs.midpoints, pca)
    by_callable = interpolation_error(
        codes, blobs.pairs, blobs.midpoints, pca.inverse_transform
    )
    assert by_estimator == by_callable > 0
    with pytest.raises(TypeError, match="decode must be a fitted estimator"):
        interpolation_error(codes, blobs.pairs, blobs.midpoints, "pca")
    with pytest.raises(ValueError, match="decode returned an array of shape"):
        interpolation_error(codes, blobs.pairs, blobs.midpoints, lambda z: z)


def test_invalid_inputs_raise(roll):
    codes = roll.coordinates
    with pytest.raises(ValueError, match="pairs must be an integer array"):
        distortion_score(codes, roll.pairs.astype(float), roll.pair_distances)
    with pytest.raises(ValueError, match="pairs must index the rows of codes"):
        distortion_score(codes[:10], roll.pairs, roll.pair_distances)
    with pytest.raises(ValueError, match="pair_distances must have shape"):
        distortion_score(codes, roll.pairs, roll.pair_distances[:-1])
    with pytest.raises(ValueError, match="pair_distances must be positive"):
        distortion_score(codes, roll.pairs, -roll.pair_distances)
    with pytest.raises(ValueError, match="codes of every pair coincide"):
        distortion_score(np.zeros_like(codes), roll.pairs, roll.pair_distances)
    with pytest.raises(ValueError, match="codes of every pair coincide"):
        bending_score(np.zeros_like(codes), roll.pairs, roll.midpoint_coordinates)
    with pytest.raises(ValueError, match="midpoint_codes must have shape"):
        bending_score(codes, roll.pairs, roll.midpoint_coordinates[:, :1])
    with pytest.raises(ValueError, match="midpoints must have one row per pair"):
        interpolation_error(codes, roll.pairs, roll.midpoints[:5], lambda z: z)
    with pytest.raises(ValueError, match="same number of rows"):
        procrustes_error(codes[:5], roll.coordinates)
