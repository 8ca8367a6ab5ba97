"""Sparse data generators: support, unit variance, seeding and validation."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skgfe import datasets
from skgfe.datasets import make_sparse_gaussian, make_sparse_rademacher

GENERATORS = [make_sparse_gaussian, make_sparse_rademacher]


@pytest.mark.parametrize("make", GENERATORS)
def test_generators_are_public(make):
    assert make.__name__ in datasets.__all__


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("sparsity", [0.05, 0.3, 1.0])
def test_moments_and_support(make, sparsity):
    n_samples, n_features = 4000, 50
    X = make(n_samples, n_features, sparsity, random_state=0)
    n_entries = X.size
    assert X.shape == (n_samples, n_features) and X.dtype == np.float64
    # Binomial count of non-zeros: 4 standard deviations.
    tolerance = 4 * np.sqrt(sparsity * (1 - sparsity) / n_entries)
    assert abs(np.mean(X != 0) - sparsity) <= tolerance + 1e-12
    # Unit variance whatever the sparsity; E x^4 is 3/p (Gaussian) or 1/p at most.
    fourth_moment = 3 / sparsity
    assert abs(np.mean(X**2) - 1) <= 4 * np.sqrt(fourth_moment / n_entries)
    assert abs(np.mean(X)) <= 4 / np.sqrt(n_entries)


@given(
    n_samples=st.integers(1, 20),
    n_features=st.integers(1, 20),
    sparsity=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**31 - 2),
)
def test_rademacher_entries_have_one_magnitude(n_samples, n_features, sparsity, seed):
    X = make_sparse_rademacher(n_samples, n_features, sparsity, random_state=seed)
    assert X.shape == (n_samples, n_features)
    magnitudes = np.abs(X[X != 0])
    np.testing.assert_allclose(magnitudes, 1 / np.sqrt(sparsity), rtol=1e-12)


def test_dense_gaussian_has_no_zeros():
    X = make_sparse_gaussian(100, 10, sparsity=1.0, random_state=0)
    assert np.all(X != 0)


@pytest.mark.parametrize("make", GENERATORS)
def test_seeding(make):
    np.testing.assert_array_equal(
        make(10, 5, 0.5, random_state=3), make(10, 5, 0.5, random_state=3)
    )
    assert not np.array_equal(
        make(10, 5, 0.5, random_state=3), make(10, 5, 0.5, random_state=4)
    )
    rng = np.random.RandomState(0)
    assert not np.array_equal(
        make(10, 5, 0.5, random_state=rng), make(10, 5, 0.5, random_state=rng)
    )


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_samples": 0}, ValueError, "n_samples == 0, must be >= 1"),
        ({"n_samples": 2.5}, TypeError, "n_samples must be an instance of int"),
        ({"n_features": -1}, ValueError, "n_features == -1, must be >= 1"),
        ({"sparsity": 0.0}, ValueError, r"sparsity == 0.0, must be > 0"),
        ({"sparsity": 1.5}, ValueError, r"sparsity == 1.5, must be <= 1"),
        ({"sparsity": "0.1"}, TypeError, "sparsity must be an instance of float"),
    ],
)
def test_invalid_parameters(make, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)
