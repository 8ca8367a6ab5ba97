"""Data-parallel training across processes with torch.distributed.

Every process holds the same estimator and the same X and runs the usual fit:
the same random_state gives every process the same initial modules and the
same order of mini-batches. Each process trains on its contiguous share of the
rows of every mini-batch, and the gradients are combined into the gradient of
the whole batch before the optimizer steps, so the processes stay identical
and the result is single-process training up to floating-point rounding.

The gradients are combined by one explicit ``all_reduce`` per batch after the
estimator's own ``_train_batch`` has finished, not by DistributedDataParallel:

- GFE's full adjoint adds its integral term to ``.grad`` by hand
  (:func:`skgfe._adjoint.add_integral_term`), after ``backward()``; DDP
  reduces inside autograd's hooks, so it would miss that term.
- The batch loss is a mean over the batch's rows. Shares of unequal sizes
  (a batch of 15 rows on 2 processes) must be weighted by their rows, where
  DDP averages the processes' gradients with equal weights.

Each process draws the random numbers of its share (GFE's random flow starts
``train_z0='random'``, the density term's probes) from a generator of its own,
seeded by random_state and its rank, and never from the fit's generator, which
thus stays the same in every process. Training that draws per batch is then
single-process training in distribution, not draw for draw.
"""

import atexit
import os
from numbers import Integral

import numpy as np
import torch
import torch.distributed as dist

from ._utils import make_generator, resolve_device


def fit_distributed(estimator, X, y=None, **fit_params):
    """Fit an estimator data-parallel over the processes of torch.distributed.

    Start one process per device with ``torchrun`` (e.g. ``torchrun
    --nproc_per_node=2 train.py``), and call this function in every process
    with the same estimator parameters and the same X. Each process trains on
    its share of the rows of every mini-batch; the gradients of the shares are
    summed, weighted by their rows, into the gradient of the whole batch, so
    every process ends with the same model: the model that single-process
    ``fit`` gives, up to floating-point rounding, when training draws no random
    numbers per batch (GFE with ``train_z0='z0'``; the autoencoder; no density
    term). With ``train_z0='random'`` each process draws its own rows' starts,
    so the result equals single-process training in distribution only.

    Parameters
    ----------
    estimator : GradientFlowEncoder, AutoencoderBaseline or OneBitAutoencoder
        The estimator to fit, with an int ``random_state`` (every process
        draws the same initialisation and batch order from it). On GPUs, give
        each process its own: ``device=f"cuda:{os.environ['LOCAL_RANK']}"``.
    X : array-like of shape (n_samples, n_features)
        Training data, the same in every process (a memory-mapped ``.npy``
        shares its pages between the processes of one machine).
    y : None
        Ignored.
    **fit_params : dict
        Further arguments of the estimator's ``fit`` (the pair loss's
        ``pairs``; its term is computed whole in every process).

    Returns
    -------
    estimator : object
        The fitted estimator, the same in every process.

    Notes
    -----
    Without an initialised process group, one is initialised from the
    environment that ``torchrun`` sets (``env://``), with the NCCL backend
    for a CUDA device and gloo otherwise, and kept for later calls.

    Examples
    --------
    >>> # train.py, started with: torchrun --nproc_per_node=2 train.py
    >>> from skgfe import GradientFlowEncoder, fit_distributed  # doctest: +SKIP
    >>> model = GradientFlowEncoder(random_state=0)  # doctest: +SKIP
    >>> fit_distributed(model, X)  # doctest: +SKIP
    """
    if not isinstance(estimator.random_state, Integral) or isinstance(
        estimator.random_state, bool
    ):
        raise ValueError(
            "fit_distributed needs an int random_state, got random_state="
            f"{estimator.random_state!r}: every process must draw the same "
            "initial modules and the same order of mini-batches from it"
        )
    device = resolve_device(estimator.device)
    _join_process_group(device)
    rank, world_size = dist.get_rank(), dist.get_world_size()
    _check_same_shape(np.shape(X), device)
    share_seed = np.random.SeedSequence([estimator.random_state, rank])
    train_share = _ShareTrainer(
        estimator, rank, world_size, make_generator(share_seed.generate_state(1)[0])
    )
    # The instance attribute shadows the class's _train_batch for this fit
    # only: the fit skeleton runs unchanged around the shared batch step.
    estimator._train_batch = train_share
    try:
        estimator.fit(X, y, **fit_params)
    finally:
        del estimator._train_batch
    return estimator


def _join_process_group(device: torch.device) -> None:
    """Initialise the default process group from torchrun's environment if none is.

    The group is kept for later calls: a process that destroyed its group and
    initialised the next one while another process still used the first made
    the next fit hang (gloo, torchrun's store).
    """
    if dist.is_initialized():
        return
    missing = [n for n in ("RANK", "WORLD_SIZE", "MASTER_ADDR") if n not in os.environ]
    if missing:
        raise RuntimeError(
            "fit_distributed found no torch.distributed process group and no "
            f"torchrun environment (missing {', '.join(missing)}); start the script "
            "with torchrun --nproc_per_node=N, or call "
            "torch.distributed.init_process_group first"
        )
    if device.type == "cuda":
        # NCCL's collectives run on the current device; make it this process's.
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    # A gloo group still alive at interpreter exit can abort the process
    # ("terminate called without an active exception"), failing a torchrun
    # job whose training succeeded.
    atexit.register(_leave_process_group)


def _leave_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _check_same_shape(shape, device: torch.device) -> None:
    """Refuse X of different shapes in different processes, on every process."""
    local = torch.tensor(shape, dtype=torch.int64, device=device)
    lowest, highest = local.clone(), local.clone()
    dist.all_reduce(lowest, op=dist.ReduceOp.MIN)
    dist.all_reduce(highest, op=dist.ReduceOp.MAX)
    if not torch.equal(lowest, highest):
        raise ValueError(
            f"X has shape {tuple(shape)} in process {dist.get_rank()}, but the "
            "processes of fit_distributed must all pass the same X (shapes from "
            f"{tuple(lowest.tolist())} to {tuple(highest.tolist())})"
        )


class _ShareTrainer:
    """``_train_batch`` of one process: its share of a batch, gradients combined.

    Called with the whole mini-batch (the same in every process), it trains on
    this process's rows, then sums over the processes, in one ``all_reduce``,
    each parameter's gradient and the loss weighted by the share's fraction
    of the rows, plus one flag per parameter that says whether any process
    gave it a gradient (a parameter no process touched keeps ``grad=None``,
    which the optimizer skips, as in single-process training).
    """

    def __init__(self, estimator, rank, world_size, generator):
        self.estimator = estimator
        self.rank = rank
        self.world_size = world_size
        self.generator = generator

    def __call__(self, X, generator):
        n_rows = X.shape[0]
        start = self.rank * n_rows // self.world_size
        stop = (self.rank + 1) * n_rows // self.world_size
        weight = (stop - start) / n_rows
        parameters = self.estimator._trainable_parameters()
        if stop > start:
            # The fit's generator is left alone: see the module's docstring.
            loss = (
                type(self.estimator)
                ._train_batch(self.estimator, X[start:stop], self.generator)
                .detach()
            )
        else:  # a batch with fewer rows than processes
            loss = torch.zeros((), dtype=X.dtype, device=X.device)
        buffer = torch.cat(
            [
                *(
                    (p.grad * weight).reshape(-1)
                    if p.grad is not None
                    else torch.zeros(p.numel(), dtype=X.dtype, device=X.device)
                    for p in parameters
                ),
                torch.tensor(
                    [float(p.grad is not None) for p in parameters],
                    dtype=X.dtype,
                    device=X.device,
                ),
                (loss * weight).reshape(1),
            ]
        )
        dist.all_reduce(buffer)
        offset = 0
        flags = buffer[-1 - len(parameters) : -1]
        for p, flag in zip(parameters, flags, strict=True):
            size = p.numel()
            p.grad = (
                buffer[offset : offset + size].view_as(p).clone() if flag > 0 else None
            )
            offset += size
        return buffer[-1]
