"""Beyond one process: torch.distributed data parallelism, joblib's dask backend,
dask arrays and dask-ml's Incremental (the dask tests are skipped without dask)."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from skgfe import AutoencoderBaseline, GradientFlowEncoder, fit_distributed

try:
    import dask.array as da
    import dask.distributed as distributed
    import joblib
except ImportError:  # the torch.distributed tests run without dask
    da = distributed = joblib = None

requires_dask = pytest.mark.skipif(da is None, reason="needs dask[array,distributed]")

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
    if da is None:
        pytest.skip("needs dask[array,distributed]")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            yield client


@requires_dask
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


@requires_dask
@pytest.mark.parametrize("estimator_class", [AutoencoderBaseline, GradientFlowEncoder])
def test_transform_of_a_dask_array_equals_in_memory(client, X, estimator_class):
    estimator = estimator_class(**SMALL).fit(X)
    chunks = da.from_array(X, chunks=(17, X.shape[1]))
    codes = chunks.map_blocks(estimator.transform, chunks=(17, 2), dtype=X.dtype)
    # Equal up to rounding: BLAS sums a 17-row block in another order than 60 rows.
    np.testing.assert_allclose(
        codes.compute(), estimator.transform(X), rtol=1e-12, atol=1e-12
    )


def generated_block(block_info=None):
    """A block of uniform rows seeded by its position: no block exists before."""
    info = block_info[None]
    seed = info["chunk-location"][0]
    return np.random.default_rng(seed).uniform(size=info["chunk-shape"])


@requires_dask
@pytest.mark.parametrize("estimator_class", [AutoencoderBaseline, GradientFlowEncoder])
def test_incremental_trains_block_by_block_as_partial_fit(client, estimator_class):
    dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")
    # Generated per block on the workers, never materialised in one piece.
    X = da.map_blocks(
        generated_block,
        chunks=((32, 32, 32, 20), (5,)),
        dtype=np.float64,
        meta=np.empty((0, 5)),
    )
    model = estimator_class(**{**SMALL, "batch_size": 16, "shuffle": False})
    incremental = dask_ml_wrappers.Incremental(model, shuffle_blocks=False).fit(X)
    trained = incremental.estimator_
    reference = estimator_class(**{**SMALL, "batch_size": 16, "shuffle": False})
    for block in X.blocks:
        reference.partial_fit(block.compute())
    assert trained.n_iter_ == 4
    for key, value in reference.decoder_.state_dict().items():
        assert torch.equal(trained.decoder_.state_dict()[key], value), key


# ----------------------------------------------------- torch.distributed (gloo)

# Batches of 15 rows split 7 + 8 over 2 processes, and the last batch of 91
# rows holds 1 row, so one process has none: the shares' weights matter.
DATA_PARALLEL = {
    "gfe-approximate": ("GradientFlowEncoder", {"train_z0": "z0"}),
    "gfe-full-adjoint": (
        "GradientFlowEncoder",
        {
            "train_z0": "z0",
            "adjoint": "full",
            "flow_solver": "euler",
            "tau": 5.0,
            "step_size": 0.5,
        },
    ),
    "autoencoder": ("AutoencoderBaseline", {}),
}
# Each process draws its own rows' random starts: the processes must still
# take the same steps.
RANDOM_STARTS = {"gfe-random-starts": ("GradientFlowEncoder", {})}
DATA_PARALLEL_COMMON = dict(
    hidden_layer_sizes=(8,), batch_size=15, max_iter=3, device="cpu", random_state=0
)

TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys

    import numpy as np
    import torch

    import skgfe

    configs, common, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    X = np.load(os.path.join(out, "X.npy"))
    for name, (class_name, params) in configs.items():
        model = getattr(skgfe, class_name)(**common, **params)
        skgfe.fit_distributed(model, X)
        path = os.path.join(out, f"{name}-{os.environ['RANK']}.pt")
        torch.save(model.decoder_.state_dict(), path)
    """
)


@pytest.fixture(scope="module")
def data_parallel_decoders(tmp_path_factory):
    """Decoders trained by 2 gloo processes started with torchrun."""
    out = tmp_path_factory.mktemp("data_parallel")
    X = np.random.default_rng(1).uniform(size=(91, 6))
    np.save(out / "X.npy", X)
    script = out / "train.py"
    script.write_text(TRAIN_SCRIPT)
    root = pathlib.Path(__file__).parents[1]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        str(script),
        json.dumps({**DATA_PARALLEL, **RANDOM_STARTS}),
        json.dumps({**DATA_PARALLEL_COMMON, "hidden_layer_sizes": [8]}),
        str(out),
    ]
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return X, {
        name: [torch.load(out / f"{name}-{rank}.pt") for rank in (0, 1)]
        for name in {**DATA_PARALLEL, **RANDOM_STARTS}
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", DATA_PARALLEL)
def test_two_processes_train_the_single_process_decoder(data_parallel_decoders, name):
    import skgfe

    X, decoders = data_parallel_decoders
    class_name, params = DATA_PARALLEL[name]
    single = getattr(skgfe, class_name)(**DATA_PARALLEL_COMMON, **params).fit(X)
    # Measured after 3 epochs in float64 (max abs difference of the decoder's
    # parameters): 7.4e-12 with GFE's adaptive 'amd' solver, whose step
    # acceptance carries the rounding of 7- and 8-row matrix products (BLAS
    # sums them in another order than 15 rows) into the codes; 5.6e-17 with
    # the full adjoint on fixed Euler steps and with the autoencoder.
    atol = 1e-9 if name == "gfe-approximate" else 1e-14
    for key, value in single.decoder_.state_dict().items():
        torch.testing.assert_close(decoders[name][0][key], value, rtol=0, atol=atol)


@pytest.mark.parametrize("name", [*DATA_PARALLEL, *RANDOM_STARTS])
def test_the_processes_end_with_the_same_decoder(data_parallel_decoders, name):
    first, second = data_parallel_decoders[1][name]
    for key, value in first.items():
        assert torch.equal(second[key], value), key


def test_fit_distributed_needs_an_int_random_state():
    with pytest.raises(ValueError, match="needs an int random_state"):
        fit_distributed(AutoencoderBaseline(device="cpu"), np.zeros((4, 2)))


def test_fit_distributed_without_torchrun_says_how_to_start(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="torchrun --nproc_per_node"):
        fit_distributed(AutoencoderBaseline(device="cpu", random_state=0), [[0.0]])
