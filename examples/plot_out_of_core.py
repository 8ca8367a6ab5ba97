"""
Training on data on disk, block by block, with dask
===================================================

:meth:`~skgfe.GradientFlowEncoder.partial_fit` makes one pass of mini-batch
updates over the rows it is given and keeps the optimizer's state for the
next call, so a data set larger than memory can be trained on one block at a
time. dask-ml's :class:`~dask_ml.wrappers.Incremental` does the bookkeeping:
it calls ``partial_fit`` on each block of a dask array in turn, on the workers
of a ``dask.distributed`` cluster, and only the block being trained is in
memory. Here the data are a ``.npy`` file on disk, read through a memory map
(see :ref:`scaling` for zarr and for training across processes).
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# A data set on disk
# ------------------
# 200,000 rows of 10 features near a 2-dimensional surface, written to a
# ``.npy`` file 20,000 rows at a time through ``open_memmap``, so the whole
# array is never in memory, not even while it is written.
import pathlib
import tempfile
import warnings

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from dask.distributed import Client, LocalCluster
from dask_ml.wrappers import Incremental

from skgfe import GradientFlowEncoder
from skgfe.exceptions import ConvergenceWarning

warnings.filterwarnings("ignore", category=ConvergenceWarning)

n_rows, n_features, block_rows = 200_000, 10, 20_000
folder = tempfile.TemporaryDirectory()
path = pathlib.Path(folder.name) / "table.npy"
rng = np.random.default_rng(0)
mixing = rng.standard_normal((2, n_features))
table = np.lib.format.open_memmap(
    path, mode="w+", dtype=np.float32, shape=(n_rows, n_features)
)
latent = np.empty((n_rows, 2), dtype=np.float32)
for start in range(0, n_rows, block_rows):
    z = rng.uniform(-1, 1, size=(block_rows, 2))
    noise = 0.02 * rng.standard_normal((block_rows, n_features))
    table[start : start + block_rows] = np.tanh(z @ mixing) + noise
    latent[start : start + block_rows] = z
table.flush()
del table
print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB on disk")

# %%
# Read it through dask, train block by block
# -------------------------------------------
# ``np.load(..., mmap_mode="r")`` maps the file without reading it;
# ``da.from_array`` cuts it into blocks that the workers read when they train
# on them. ``shuffle_blocks=False`` keeps the file's order; the default
# (``True``) visits the blocks in a random order, as an epoch over shuffled
# data would. A small decoder and a few fixed flow steps keep the example
# fast.
X = da.from_array(np.load(path, mmap_mode="r"), chunks=(block_rows, n_features))
model = GradientFlowEncoder(
    n_components=2,
    hidden_layer_sizes=(16,),
    flow_solver="euler",
    tau=2.0,
    step_size=0.5,
    batch_size=512,
    learning_rate_init=1e-2,
    random_state=0,
)
with (
    LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster,
    Client(cluster),
):
    trained = Incremental(model, shuffle_blocks=False).fit(X).estimator_
    # Encoding a dask array is block by block too.
    head = X[:5000]
    codes = head.map_blocks(
        trained.transform, chunks=(head.chunks[0], (2,)), dtype=np.float32
    ).compute()
print(f"{trained.n_iter_} partial_fit calls, one per block of {block_rows:,} rows")
print(f"mean squared error of the last block: {trained.loss_curve_[-1]:.4f}")

# %%
# What was learned
# ----------------
# ``loss_curve_`` holds one mean training loss per ``partial_fit`` call, here
# per block. The codes of the first 5,000 rows are coloured by the first of
# the two coordinates the rows were generated from: after one pass over the
# file, they already vary smoothly with it.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(np.arange(1, trained.n_iter_ + 1), trained.loss_curve_, marker="o")
left.set_xlabel("block (partial_fit call)")
left.set_ylabel("mean training loss (MSE)")
left.set_yscale("log")
left.set_title("Training, one block at a time")
points = right.scatter(codes[:, 0], codes[:, 1], c=latent[:5000, 0], s=3)
right.set_xlabel("code 1")
right.set_ylabel("code 2")
right.set_title("Codes of 5,000 rows")
fig.colorbar(points, ax=right, label="generating coordinate 1")
fig.tight_layout()
plt.show()
folder.cleanup()
