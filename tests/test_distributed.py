"""Beyond one machine: joblib's dask backend and dask arrays (skipped without dask)."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skgfe import AutoencoderBaseline, GradientFlowEncoder

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
    # The cluster's own shutdown chatter is not ours to test.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

SMALL = dict(
    n_components=2, hidden_layer_sizes=(8,), max_iter=2, device="cpu", random_state=0
)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(4).uniform(size=(60, 5))


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@pytest.mark.parametrize(
    "estimator",
    [AutoencoderBaseline(**SMALL), GradientFlowEncoder(**SMALL, max_flow_steps=100)],
    ids=["AutoencoderBaseline", "GradientFlowEncoder"],
)
def test_grid_search_on_a_dask_cluster_matches_local(client, X, estimator):
    grid = {"n_components": [1, 2], "learning_rate_init": [1e-3, 1e-2]}
    local = GridSearchCV(estimator, grid, cv=2).fit(X)
    with joblib.parallel_backend("dask"):
        remote = GridSearchCV(estimator, grid, cv=2, n_jobs=-1).fit(X)
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-10,
    )
    assert remote.best_params_ == local.best_params_


@pytest.mark.parametrize("estimator_class", [AutoencoderBaseline, GradientFlowEncoder])
def test_transform_of_a_dask_array_equals_in_memory(client, X, estimator_class):
    estimator = estimator_class(**SMALL).fit(X)
    chunks = da.from_array(X, chunks=(17, X.shape[1]))
    codes = chunks.map_blocks(estimator.transform, chunks=(17, 2), dtype=X.dtype)
    # Equal up to rounding: BLAS sums a 17-row block in another order than 60 rows.
    np.testing.assert_allclose(
        codes.compute(), estimator.transform(X), rtol=1e-12, atol=1e-12
    )
