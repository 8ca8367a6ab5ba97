"""Long-range pairs from the graph of local pairs (skgfe._geodesics)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform

from skgfe._geodesics import graph_geodesic_pairs


def _as_matrix(pairs, distances, n_samples):
    matrix = np.full((n_samples, n_samples), np.nan)
    matrix[pairs[:, 0], pairs[:, 1]] = distances
    return matrix


def test_shortest_paths_on_a_path_graph():
    # 0 -1- 1 -2- 2 -3- 3, and a shortcut 0 -4- 2 that is longer than 0-1-2 (3).
    pairs = np.array([[0, 1], [1, 2], [2, 3], [0, 2]])
    distances = np.array([1.0, 2.0, 3.0, 4.0])
    geodesic, lengths = graph_geodesic_pairs(
        pairs, distances, 4, 4, np.random.RandomState(0)
    )
    expected = np.array([[0, 1, 3, 6], [1, 0, 2, 5], [3, 2, 0, 3], [6, 5, 3, 0]], float)
    matrix = _as_matrix(geodesic, lengths, 4)
    off_diagonal = ~np.eye(4, dtype=bool)
    np.testing.assert_array_equal(matrix[off_diagonal], expected[off_diagonal])
    assert np.all(geodesic[:, 0] != geodesic[:, 1])
    assert geodesic.dtype == np.int64


def test_a_pair_given_twice_keeps_its_shorter_distance():
    # A sparse matrix would add the repeated entries (5 + 1 + 2 = 8).
    pairs = np.array([[0, 1], [1, 0], [0, 1]])
    distances = np.array([5.0, 1.0, 2.0])
    geodesic, lengths = graph_geodesic_pairs(
        pairs, distances, 2, 2, np.random.RandomState(0)
    )
    np.testing.assert_array_equal(lengths, [1.0, 1.0])


def test_samples_out_of_reach_are_left_out():
    pairs = np.array([[0, 1], [2, 3]])
    geodesic, lengths = graph_geodesic_pairs(
        pairs, np.ones(2), 5, 5, np.random.RandomState(0)
    )
    assert sorted(map(tuple, geodesic.tolist())) == [(0, 1), (1, 0), (2, 3), (3, 2)]
    np.testing.assert_array_equal(lengths, np.ones(4))


def test_sources_are_drawn_by_the_generator_and_capped():
    pairs = np.column_stack([np.arange(9), np.arange(1, 10)])
    distances = np.ones(9, dtype=np.float32)
    first, _ = graph_geodesic_pairs(pairs, distances, 10, 3, np.random.RandomState(1))
    again, lengths = graph_geodesic_pairs(
        pairs, distances, 10, 3, np.random.RandomState(1)
    )
    np.testing.assert_array_equal(first, again)
    assert len(np.unique(first[:, 0])) == 3 and len(first) == 3 * 9
    assert lengths.dtype == np.float32
    everything, _ = graph_geodesic_pairs(
        pairs, distances, 10, 50, np.random.RandomState(1)
    )
    assert len(everything) == 10 * 9


@given(seed=st.integers(0, 2**16), n_samples=st.integers(2, 30))
def test_flat_chart_paths_are_never_shorter_than_straight_lines(seed, n_samples):
    """In a flat chart the geodesic is the straight line; every pair finds it."""
    points = np.random.RandomState(seed).uniform(size=(n_samples, 2))
    straight = squareform(pdist(points))
    close = np.argwhere(np.triu(straight < 0.4, k=1) & (straight > 0))
    if len(close) == 0:
        return
    rng = np.random.RandomState(seed)
    geodesic, lengths = graph_geodesic_pairs(
        close, straight[tuple(close.T)], n_samples, n_samples, rng
    )
    assert np.all(lengths >= straight[tuple(geodesic.T)] * (1 - 1e-12))
    every = np.argwhere(np.triu(straight > 0, k=1))
    geodesic, lengths = graph_geodesic_pairs(
        every, straight[tuple(every.T)], n_samples, n_samples, rng
    )
    np.testing.assert_allclose(lengths, straight[tuple(geodesic.T)], rtol=1e-12)


@pytest.mark.parametrize("n_sources", [1, 4])
def test_swiss_roll_graph_distances_are_close_to_the_geodesics(n_sources):
    from skgfe.datasets import make_swiss_roll_manifold

    roll = make_swiss_roll_manifold(
        n_samples=400, n_pairs=2000, epsilon=5.0, random_state=0
    )
    geodesic, lengths = graph_geodesic_pairs(
        roll.pairs, roll.pair_distances, 400, n_sources, np.random.RandomState(0)
    )
    chart = roll.coordinates
    true = np.linalg.norm(chart[geodesic[:, 0]] - chart[geodesic[:, 1]], axis=1)
    ratio = lengths / true
    assert len(geodesic) == n_sources * 399
    assert ratio.min() >= 1 - 1e-9 and np.median(ratio) < 1.1
