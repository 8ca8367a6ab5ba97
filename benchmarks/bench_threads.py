"""Torch threads: one decoder pass, the README demo and a Fashion-MNIST fit.

Measures, on an idle machine and with one competing busy process (a second
Python process spinning on the CPU), interleaved:

- one decoder forward+backward pass in z (what a flow step costs) for the
  demo's decoder (8-64-64) and the paper's (20-150-300-600-784), at 8 to 1,024
  rows, on 1 and 2 threads: this sets ``skgfe._base.AUTO_THREADS_MIN_WORK``;
- the README's main job, ``python -m skgfe demo``, with ``--n-threads``
  auto, 1 and 2 (GFE's fit time and the whole command);
- one GradientFlowEncoder fit on Fashion-MNIST (paper decoder and settings,
  1,000 images, batch 8, one epoch) with n_threads auto, 1 and 2.

OMP_WAIT_POLICY is left unset, as users have it. Runs that exceed
``--timeout`` are reported as such. Writes ``threads.json`` and ``threads.md``
to ``--out``.
"""

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info  # noqa: E402

import skgfe._base  # noqa: E402
from skgfe._flows import LatentObjective  # noqa: E402
from skgfe._losses import LOSSES  # noqa: E402
from skgfe.decoders import make_mlp  # noqa: E402

DECODERS = {
    "demo 8-64-64": (8, (64,), 64, "elu"),
    "paper 20-150-300-600-784": (20, (150, 300, 600), 784, "elu"),
}
ROWS = (8, 32, 256, 1024)
THREADS = (1, 2)
CONDITIONS = ("idle", "busy")


@contextlib.contextmanager
def condition(name):
    """Nothing else running, or a second process spinning on the CPU."""
    if name == "idle":
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def pass_seconds(spec, rows, threads, min_seconds):
    """Median seconds of one forward+backward pass in z."""
    n_components, hidden, n_features, activation = spec
    generator = torch.Generator().manual_seed(0)
    decoder = make_mlp(n_components, hidden, n_features, activation, generator)
    objective = LatentObjective(decoder, LOSSES["mse"][0])
    z = torch.rand(rows, n_components, generator=generator)
    y = torch.rand(rows, n_features, generator=generator)
    torch.set_num_threads(threads)
    objective.value_and_grad(z, y)
    times = []
    while len(times) < 5 or (sum(times) < min_seconds and len(times) < 2000):
        start = time.perf_counter()
        objective.value_and_grad(z, y)
        times.append(time.perf_counter() - start)
    n_parameters = sum(p.numel() for p in decoder.parameters())
    return float(np.median(times)), n_parameters


def run_demo(n_threads, timeout):
    """GFE's fit seconds and the whole command's seconds, or None past timeout."""
    start = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "skgfe", "demo", "--n-threads", str(n_threads)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return {"gfe_fit_s": None, "command_s": None, "timed_out_after_s": timeout}
    total = time.perf_counter() - start
    row = re.search(r"^GradientFlowEncoder\s+\S+\s+\S+\s+(\S+)", out, re.M)
    return {"gfe_fit_s": float(row.group(1)), "command_s": total}


_FMNIST_CHILD = """
import sys, time, warnings
import numpy as np
from skgfe import GradientFlowEncoder
from skgfe.datasets import load_fashion_mnist
X = load_fashion_mnist(subset="train").data[:1000].astype(np.float32)
gfe = GradientFlowEncoder(20, hidden_layer_sizes=(150, 300, 600), loss="bce",
                          optimizer="rmsprop", learning_rate_init=5e-4,
                          optimizer_params={"alpha": 0.9, "eps": 1e-6},
                          batch_size=8, max_iter=1, shuffle=False, device="cpu",
                          random_state=0, n_threads=sys.argv[1] if sys.argv[1] == "auto"
                          else int(sys.argv[1]))
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gfe.fit(X)
print(time.perf_counter() - start)
"""


def run_fmnist(n_threads, timeout):
    try:
        out = subprocess.run(
            [sys.executable, "-c", _FMNIST_CHILD, str(n_threads)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return {"fit_s": None, "timed_out_after_s": timeout}
    return {"fit_s": float(out.split()[-1])}


def measure_passes(min_seconds):
    rows_out = []
    for name, spec in DECODERS.items():
        for rows in ROWS:
            for cond in CONDITIONS:
                cell = {"decoder": name, "rows": rows, "condition": cond}
                with condition(cond):
                    for threads in THREADS:
                        seconds, n_parameters = pass_seconds(
                            spec, rows, threads, min_seconds
                        )
                        cell[f"ms_{threads}_threads"] = seconds * 1e3
                cell["work"] = rows * n_parameters
                cell["speedup_2_over_1"] = cell["ms_1_threads"] / cell["ms_2_threads"]
                rows_out.append(cell)
                print(
                    f"  {name:26s} rows={rows:5d} {cond:4s}: 1 thread "
                    f"{cell['ms_1_threads']:.3f} ms, 2 threads "
                    f"{cell['ms_2_threads']:.3f} ms (x{cell['speedup_2_over_1']:.2f})",
                    flush=True,
                )
    torch.set_num_threads(1)
    return rows_out


def measure_runs(function, settings, timeout):
    results = []
    for cond in CONDITIONS:
        with condition(cond):
            for n_threads in settings:
                load = os.getloadavg()[0]
                result = {
                    "condition": cond,
                    "n_threads": n_threads,
                    "load_average_1min": load,
                    **function(n_threads, timeout),
                }
                results.append(result)
                print(f"  {cond:4s} n_threads={n_threads}: {result}", flush=True)
    return results


def write_markdown(results, path):
    lines = [
        "# Torch threads",
        "",
        f"Machine: {results['machine']['cpu_model']}, "
        f"{results['machine']['n_cpus']} CPUs, torch "
        f"{results['machine']['torch']}; OMP_WAIT_POLICY unset; "
        f"AUTO_THREADS_MIN_WORK = {results['auto_threads_min_work']:.3g}.",
        "",
        "## One decoder pass (forward+backward in z), median ms",
        "",
        "| decoder | rows | work (rows x params) | condition | 1 thread | "
        "2 threads | 2 over 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in results["passes"]:
        lines.append(
            f"| {cell['decoder']} | {cell['rows']} | {cell['work']:.3g} | "
            f"{cell['condition']} | {cell['ms_1_threads']:.3f} | "
            f"{cell['ms_2_threads']:.3f} | {cell['speedup_2_over_1']:.2f} |"
        )

    def seconds(value):
        return "timed out" if value is None else f"{value:.1f}"

    lines += [
        "",
        "## README demo (`python -m skgfe demo --n-threads N`)",
        "",
        "| condition | n_threads | GFE fit s | command s | load (1 min) |",
        "|---|---|---|---|---|",
    ]
    for run in results["demo"]:
        lines.append(
            f"| {run['condition']} | {run['n_threads']} | "
            f"{seconds(run['gfe_fit_s'])} | {seconds(run['command_s'])} | "
            f"{run['load_average_1min']:.2f} |"
        )
    lines += [
        "",
        "## GFE fit on Fashion-MNIST (paper decoder, 1,000 images, batch 8, one epoch)",
        "",
        "| condition | n_threads | fit s | load (1 min) |",
        "|---|---|---|---|",
    ]
    for run in results["fmnist"]:
        lines.append(
            f"| {run['condition']} | {run['n_threads']} | "
            f"{seconds(run['fit_s'])} | {run['load_average_1min']:.2f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=0.5,
        help="timing budget per pass measurement",
    )
    parser.add_argument(
        "--skip-runs", action="store_true", help="only the per-pass measurements"
    )
    args = parser.parse_args()
    args.device = "cpu"
    warnings.simplefilter("ignore")
    results = {
        "machine": machine_info(args),
        "auto_threads_min_work": skgfe._base.AUTO_THREADS_MIN_WORK,
    }
    print("decoder passes", flush=True)
    results["passes"] = measure_passes(args.min_seconds)
    results["demo"], results["fmnist"] = [], []
    if not args.skip_runs:
        print("demo", flush=True)
        results["demo"] = measure_runs(run_demo, ("auto", 1, 2), args.timeout)
        print("Fashion-MNIST fit", flush=True)
        results["fmnist"] = measure_runs(run_fmnist, ("auto", 1, 2), args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threads.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, args.out / "threads.md")
    print(f"wrote {args.out / 'threads.md'}")


if __name__ == "__main__":
    main()
