"""Training beyond memory and beyond one process: peak memory and time per row.

1. Out of core: ``dask_ml.wrappers.Incremental(GradientFlowEncoder(...))`` on a
   dask array generated block by block (100,000 rows of 10 float32 features
   per block) on an in-process ``dask.distributed`` LocalCluster, for 1e5, 1e6
   and 1e7 rows, against in-memory ``fit(max_iter=1)`` on the same rows; each
   run in a fresh process whose peak resident memory (getrusage) is read
   before and after training.
2. Data parallel: ``skgfe.fit_distributed`` under ``torchrun`` with 1 and 2
   processes (gloo, one thread each), one epoch over 200,000 rows.
3. An estimate, from the measured per-sample work, of one epoch over 1e8
   samples on N GPUs, with its assumptions (no GPU was measured).

Writes ``scaling.json`` and ``scaling.md`` to ``--out``.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine_info  # noqa: E402

N_FEATURES = 10
BLOCK_ROWS = 100_000
# A tiny decoder and a fixed number of flow steps: a run of 1e7 rows takes
# minutes on one thread. train_z0='z0' makes training draw no random numbers,
# so the data-parallel runs do the single-process work exactly.
MODEL = dict(
    n_components=2,
    hidden_layer_sizes=(16,),
    flow_solver="euler",
    tau=2.0,
    step_size=0.5,
    train_z0="z0",
    batch_size=1024,
    max_iter=1,
    shuffle=False,
    device="cpu",
    random_state=0,
    n_threads=1,
)
AUTOENCODER = {
    k: MODEL[k]
    for k in (
        "n_components",
        "hidden_layer_sizes",
        "batch_size",
        "max_iter",
        "shuffle",
        "device",
        "random_state",
        "n_threads",
    )
}
DATA_PARALLEL_ROWS = 200_000

# Assumed GPU constants of the estimate (none measured here).
ASSUMED_GPU = {
    "sustained_fp32_flops": 10e12,
    "kernel_launch_seconds": 10e-6,
    "kernels_per_decoder_evaluation": 20,
    "rows_per_batch_per_gpu": 65_536,
    "all_reduce_seconds_per_batch": 100e-6,
}


def block(block_info=None):
    """Rows of one block, seeded by its position (no block exists before)."""
    info = block_info[None]
    rng = np.random.default_rng(info["chunk-location"][0])
    return rng.uniform(size=info["chunk-shape"]).astype(np.float32)


def peak_rss_mib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_out_of_core(n_rows, in_memory):
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from dask_ml.wrappers import Incremental

    from skgfe import GradientFlowEncoder

    n_blocks = -(-n_rows // BLOCK_ROWS)
    rows = (BLOCK_ROWS,) * (n_blocks - 1) + (n_rows - BLOCK_ROWS * (n_blocks - 1),)
    X = da.map_blocks(
        block,
        chunks=(rows, (N_FEATURES,)),
        dtype=np.float32,
        meta=np.empty((0, N_FEATURES), np.float32),
    )
    model = GradientFlowEncoder(**MODEL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if in_memory:
            data = X.compute(scheduler="synchronous")
            before = peak_rss_mib()
            start = time.perf_counter()
            model.fit(data)
        else:
            cluster = LocalCluster(
                n_workers=1,
                threads_per_worker=1,
                processes=False,
                dashboard_address=None,
            )
            client = Client(cluster)
            before = peak_rss_mib()
            start = time.perf_counter()
            model = Incremental(model, shuffle_blocks=False).fit(X).estimator_
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "n": n_rows,
                "seconds": seconds,
                "us_per_row": seconds / n_rows * 1e6,
                "data_mib": n_rows * N_FEATURES * 4 / 2**20,
                "rss_before_mib": before,
                "peak_rss_mib": peak_rss_mib(),
                "n_iter": model.n_iter_,
            }
        )
    )
    if not in_memory:
        client.close()
        cluster.close()


def child_data_parallel(name):
    import torch.distributed as dist

    from skgfe import AutoencoderBaseline, GradientFlowEncoder, fit_distributed

    dist.init_process_group("gloo")
    X = np.random.default_rng(0).uniform(size=(DATA_PARALLEL_ROWS, N_FEATURES))
    X = X.astype(np.float32)
    model = (
        GradientFlowEncoder(**MODEL)
        if name == "GradientFlowEncoder"
        else AutoencoderBaseline(**AUTOENCODER)
    )
    dist.barrier()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_distributed(model, X)
    dist.barrier()
    seconds = time.perf_counter() - start
    if dist.get_rank() == 0:
        print(json.dumps({"seconds": seconds, "world_size": dist.get_world_size()}))
    dist.destroy_process_group()


def run_child(arguments, launcher=()):
    done = subprocess.run(
        [*launcher, __file__, *arguments]
        if launcher
        else [sys.executable, __file__, *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def flow_work():
    """Decoder evaluations per training row and decoder parameters, measured."""
    from skgfe import GradientFlowEncoder

    X = np.random.default_rng(0).uniform(size=(2048, N_FEATURES)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GradientFlowEncoder(**MODEL).fit(X)
        diagnostics = model.flow_diagnostics(X)
    n_parameters = sum(p.numel() for p in model.decoder_.parameters())
    return float(np.mean(diagnostics.n_fev)), n_parameters


def gpu_estimate(n_fev, n_parameters, cpu_seconds_per_row, n_gpus=(1, 2, 4, 8)):
    """One epoch over 1e8 rows on N GPUs: an estimate, not a measurement."""
    a = ASSUMED_GPU
    n_rows = 1e8
    # Each flow evaluation is a decoder forward and a vector-Jacobian product
    # (about 3 forward passes, 2 FLOPs per parameter each), plus the final
    # forward and backward that give the decoder's gradient.
    flops_per_row = 6 * n_parameters * (n_fev + 1)
    rows = []
    for n in n_gpus:
        batches = n_rows / (n * a["rows_per_batch_per_gpu"])
        compute = flops_per_row * n_rows / n / a["sustained_fp32_flops"]
        launches = (
            batches
            * (n_fev + 1)
            * a["kernels_per_decoder_evaluation"]
            * a["kernel_launch_seconds"]
        )
        reduce = batches * a["all_reduce_seconds_per_batch"] if n > 1 else 0.0
        rows.append(
            {
                "n_gpus": n,
                "compute_bound_seconds": compute,
                "launch_bound_seconds": launches,
                "all_reduce_seconds": reduce,
                "estimate_seconds": max(compute, launches) + reduce,
                "cpu_processes_equivalent_hours": cpu_seconds_per_row
                * n_rows
                / n
                / 3600,
            }
        )
    return {"flops_per_row": flops_per_row, "rows": rows}


def markdown(report):
    info = report["machine"]
    lines = [
        "# Scaling: out-of-core training on dask, data-parallel training",
        "",
        f"Generated by `python benchmarks/bench_scaling.py` on {info['date']}: "
        f"{info['cpu_model']} ({info['n_cpus']} CPUs, shared with other jobs), "
        f"torch {info['torch']}, one thread per process; load average at start "
        f"{info['load_average_start'][0]:.1f}, at end "
        f"{info['load_average_end'][0]:.1f}. No GPU.",
        "",
        f"Model: `GradientFlowEncoder({', '.join(f'{k}={v!r}' for k, v in MODEL.items())})`"
        f"; data: uniform rows of {N_FEATURES} float32 features, blocks of "
        f"{BLOCK_ROWS:,} rows generated on the worker.",
        "",
        "## Peak memory and time per row, one epoch",
        "",
        "Fresh process per run; peak RSS from getrusage (the LocalCluster runs in "
        "the process, `processes=False`). 'Growth' is the peak during training "
        "beyond the peak before it: imports and cluster, and for `fit` the data "
        "assembled in memory, whose assembly from blocks (two copies at once) "
        "can set the peak before training starts; compare the peaks.",
        "",
        "| how | rows | data MiB | seconds | µs/row | peak RSS MiB | growth MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for how, runs in report["out_of_core"].items():
        for r in runs:
            lines.append(
                f"| {how} | {r['n']:,} | {r['data_mib']:.0f} | {r['seconds']:.1f} | "
                f"{r['us_per_row']:.2f} | {r['peak_rss_mib']:.0f} | "
                f"{r['peak_rss_mib'] - r['rss_before_mib']:.0f} |"
            )
    lines += [
        "",
        "## Time per epoch against the number of processes",
        "",
        f"`skgfe.fit_distributed` under `torchrun --nproc_per_node=P` (gloo, "
        f"one thread per process), one epoch over {DATA_PARALLEL_ROWS:,} rows; "
        "the 2 cores are shared with other jobs (see the load average).",
        "",
        "| estimator | processes | seconds per epoch | µs/row | speed-up |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in report["data_parallel"].items():
        base = runs[0]["seconds"]
        for r in runs:
            lines.append(
                f"| {name} | {r['world_size']} | {r['seconds']:.1f} | "
                f"{r['seconds'] / DATA_PARALLEL_ROWS * 1e6:.2f} | "
                f"{base / r['seconds']:.2f} |"
            )
    estimate = report["gpu_estimate"]
    lines += [
        "",
        "## Estimate (not a measurement): one epoch over 1e8 rows on N GPUs",
        "",
        "An estimate from CPU measurements, not a GPU measurement. Measured "
        f"here: {report['flow_work']['n_fev']:.1f} decoder evaluations per "
        f"training row (flow_diagnostics' n_fev) and "
        f"{report['flow_work']['n_parameters']} decoder parameters, so about "
        f"{estimate['flops_per_row']:.3g} FLOPs per row (6 per parameter per "
        "evaluation, plus one for the decoder's gradient). Assumed: "
        + ", ".join(f"{k}={v:g}" for k, v in ASSUMED_GPU.items())
        + ". Such a decoder leaves a GPU launch bound: the time is the number "
        "of sequential kernel launches per batch, so larger batches per GPU, "
        "not more FLOPs, decide it. The last column scales the measured "
        "single-process CPU cost per row to N CPU processes with perfect "
        "scaling, for comparison.",
        "",
        "| GPUs | compute bound s | launch bound s | all-reduce s | estimate s | "
        "N CPU processes, h |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in estimate["rows"]:
        lines.append(
            f"| {r['n_gpus']} | {r['compute_bound_seconds']:.2f} | "
            f"{r['launch_bound_seconds']:.2f} | {r['all_reduce_seconds']:.2f} | "
            f"{r['estimate_seconds']:.2f} | "
            f"{r['cpu_processes_equivalent_hours']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--device", default="cpu", choices=["cpu"])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument(
        "--markdown-only", action="store_true", help="rewrite scaling.md from the JSON"
    )
    args = parser.parse_args(argv)
    if args.markdown_only:
        report = json.loads((args.out / "scaling.json").read_text())
        (args.out / "scaling.md").write_text(markdown(report))
        return
    if args.child:
        kind, *rest = args.child
        if kind == "data-parallel":
            child_data_parallel(rest[0])
        else:
            child_out_of_core(int(rest[0]), in_memory=kind == "in-memory")
        return
    info = machine_info(args)
    sizes = [10_000, 150_000] if args.quick else [100_000, 1_000_000, 10_000_000]
    out_of_core = {"Incremental (dask)": [], "fit (in memory)": []}
    for n in sizes:
        out_of_core["Incremental (dask)"].append(run_child(["--child", "dask", str(n)]))
        out_of_core["fit (in memory)"].append(
            run_child(["--child", "in-memory", str(n)])
        )
        print(
            n, out_of_core["Incremental (dask)"][-1], out_of_core["fit (in memory)"][-1]
        )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    data_parallel = {}
    for name in ("GradientFlowEncoder", "AutoencoderBaseline"):
        data_parallel[name] = [
            run_child(
                ["--child", "data-parallel", name],
                launcher=[*torchrun, f"--nproc_per_node={p}"],
            )
            for p in (1, 2)
        ]
        print(name, data_parallel[name])
    n_fev, n_parameters = flow_work()
    seconds_per_row = data_parallel["GradientFlowEncoder"][0]["seconds"] / (
        DATA_PARALLEL_ROWS
    )
    info["load_average_end"] = list(os.getloadavg())
    report = {
        "machine": info,
        "model": MODEL,
        "out_of_core": out_of_core,
        "data_parallel": data_parallel,
        "flow_work": {"n_fev": n_fev, "n_parameters": n_parameters},
        "assumed_gpu": ASSUMED_GPU,
        "gpu_estimate": gpu_estimate(n_fev, n_parameters, seconds_per_row),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scaling.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "scaling.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
