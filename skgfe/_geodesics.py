"""Long-range pairs with graph geodesic distances, built from local pairs.

The pair loss only sees pairs of nearby points. Local isometry does not fix
the global layout: a code that folds a sheet over itself keeps every local
distance except across the crease, and gradient descent settles in such folds
(on the Swiss roll, a purely local loss left Procrustes errors of 0.8-0.9).
Distances along the graph of the local pairs approximate geodesic distances
at every scale, as in Isomap (Tenenbaum, de Silva and Langford, 2000), and a
distortion term on them rules the folds out: a fold shortens the long
distances across it.

Nothing here knows of scikit-learn or torch.
"""

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra


def graph_geodesic_pairs(pairs, distances, n_samples, n_sources, rng):
    """Pair random sources with every sample they reach through the pair graph.

    The graph has a node per sample and an undirected edge of length
    ``distances[k]`` per pair ``pairs[k]``. Each source is paired with every
    other sample it reaches, at their shortest-path length.

    Parameters
    ----------
    pairs : ndarray of shape (n_pairs, 2), int
        Local pairs: distinct row indices in ``[0, n_samples)``.
    distances : ndarray of shape (n_pairs,)
        Their positive local distances.
    n_samples : int
        Number of nodes.
    n_sources : int
        Sources, drawn without replacement; at most ``n_samples`` are used.
    rng : numpy.random.RandomState
        Draws the sources.

    Returns
    -------
    geodesic_pairs : ndarray of shape (m, 2), int64
        ``(source, sample)`` for every sample a source reaches, the source
        itself excluded; ``m`` is at most ``n_sources * (n_samples - 1)``.
    geodesic_distances : ndarray of shape (m,)
        Shortest-path lengths, in the dtype of ``distances``. They exceed the
        true geodesic distances by the detours of the paths (about 5 % on
        average on a Swiss roll with some 12 pairs per sample).
    """
    sources = rng.choice(n_samples, size=min(n_sources, n_samples), replace=False)
    lengths = dijkstra(
        _pair_graph(pairs, distances, n_samples), directed=False, indices=sources
    )
    # Zero is each source itself; inf marks samples in another component.
    source_rows, samples = np.nonzero(np.isfinite(lengths) & (lengths > 0))
    geodesic_pairs = np.column_stack([sources[source_rows], samples]).astype(np.int64)
    geodesic_distances = lengths[source_rows, samples].astype(distances.dtype)
    return geodesic_pairs, geodesic_distances


def _pair_graph(pairs, distances, n_samples):
    """Sparse graph of the pairs; a pair given twice keeps its shorter distance.

    A sparse matrix sums repeated entries, which would lengthen the edge.
    """
    ends = np.sort(pairs, axis=1)
    order = np.lexsort((distances, ends[:, 1], ends[:, 0]))
    ends, lengths = ends[order], distances[order].astype(np.float64)
    first = np.ones(len(ends), dtype=bool)
    first[1:] = np.any(ends[1:] != ends[:-1], axis=1)
    return coo_matrix(
        (lengths[first], (ends[first, 0], ends[first, 1])), shape=(n_samples, n_samples)
    ).tocsr()
