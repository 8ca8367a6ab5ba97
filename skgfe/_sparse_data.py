"""Generators of sparse data with unit variance: Bernoulli-Gaussian and -Rademacher."""

import math
from numbers import Integral, Real

from sklearn.utils import check_random_state, check_scalar


def make_sparse_gaussian(
    n_samples=100, n_features=100, sparsity=0.1, random_state=None
):
    """Generate Bernoulli-Gaussian data: sparse entries with unit variance.

    Every entry is independently non-zero with probability ``sparsity``, and a
    non-zero entry is drawn from N(0, 1 / sparsity), so that every entry has
    mean 0 and variance 1 whatever the sparsity. ``sparsity=1`` gives standard
    Gaussian data.

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples.
    n_features : int, default=100
        Number of features.
    sparsity : float, default=0.1
        Probability that an entry is non-zero, in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seed of the draw; an int gives the same data at every call.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples, in float64.

    See Also
    --------
    make_sparse_rademacher : Non-zero entries of one magnitude.

    References
    ----------
    A. Kogler, A. Shevchenko, H. Hassani, M. Mondelli. *Compression of
    structured data with autoencoders: provable benefit of nonlinearities and
    depth*. ICML 2024.

    Examples
    --------
    >>> from skgfe.datasets import make_sparse_gaussian
    >>> X = make_sparse_gaussian(5, 20, sparsity=0.3, random_state=0)
    >>> X.shape
    (5, 20)
    """
    mask, rng = _draw_support(n_samples, n_features, sparsity, random_state)
    values = rng.standard_normal((n_samples, n_features))
    return mask * values / math.sqrt(sparsity)


def make_sparse_rademacher(
    n_samples=100, n_features=100, sparsity=0.1, random_state=None
):
    """Generate Bernoulli-Rademacher data: sparse signs with unit variance.

    Every entry is independently non-zero with probability ``sparsity``, and a
    non-zero entry is ``+1 / sqrt(sparsity)`` or ``-1 / sqrt(sparsity)`` with
    equal probability, so that every entry has mean 0 and variance 1.

    Parameters
    ----------
    n_samples : int, default=100
        Number of samples.
    n_features : int, default=100
        Number of features.
    sparsity : float, default=0.1
        Probability that an entry is non-zero, in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seed of the draw; an int gives the same data at every call.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples, in float64.

    See Also
    --------
    make_sparse_gaussian : Gaussian non-zero entries.

    Examples
    --------
    >>> from skgfe.datasets import make_sparse_rademacher
    >>> X = make_sparse_rademacher(5, 20, sparsity=0.3, random_state=0)
    >>> X.shape
    (5, 20)
    """
    mask, rng = _draw_support(n_samples, n_features, sparsity, random_state)
    signs = 2.0 * rng.randint(0, 2, size=(n_samples, n_features)) - 1.0
    return mask * signs / math.sqrt(sparsity)


def _draw_support(n_samples, n_features, sparsity, random_state):
    """Validate the parameters; draw the non-zero pattern and return the generator.

    Returns
    -------
    mask : ndarray of bool of shape (n_samples, n_features)
        True where an entry is non-zero.
    rng : numpy.random.RandomState
        Seeded from ``random_state``, for the values of the non-zero entries.
    """
    check_scalar(n_samples, "n_samples", Integral, min_val=1)
    check_scalar(n_features, "n_features", Integral, min_val=1)
    check_scalar(
        sparsity, "sparsity", Real, min_val=0, max_val=1, include_boundaries="right"
    )
    rng = check_random_state(random_state)
    return rng.uniform(size=(n_samples, n_features)) < sparsity, rng
