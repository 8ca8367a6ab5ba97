"""Helpers shared by the benchmark scripts: machine facts and repeated timings."""

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_info(args):
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        here = Path(__file__).parent
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=here,
            check=False,
        ).stdout.strip()
        # Uncommitted changes to the package change what was measured.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "skgfe"],
            capture_output=True,
            text=True,
            cwd=here.parent,
            check=False,
        ).stdout.splitlines()
    except OSError:
        commit, dirty = "", []
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu,
        "n_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "device": args.device,
        "git_commit": commit,
        "skgfe_uncommitted_changes": dirty,
        "load_average_start": list(os.getloadavg()),
    }
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return info


def timed(fn, device, repeats, max_seconds):
    """Run ``fn()`` ``repeats`` times, fewer if that would exceed ``max_seconds``.

    Returns the list of seconds (at least one run) and the last output.
    """
    times = []
    out = None
    while len(times) < repeats:
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - start)
        if sum(times) + times[-1] > max_seconds:
            break
    return times, out


# Runs in a fresh process so that its peak resident memory is the transform's.
_TRANSFORM_CHILD = """
import os, resource, sys, time, warnings
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np, torch
model_path, kind, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
import skgfe
model = skgfe.load(model_path)
if kind == "fmnist":
    from skgfe.datasets import load_fashion_mnist
    data = load_fashion_mnist(subset="all").data.astype(np.float32)[:n]
else:
    data = np.random.default_rng(0).standard_normal((n, model.n_features_in_),
                                                     dtype=np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    codes = model.transform(data)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(seconds, before, after, data.nbytes, codes.nbytes)
"""


def transform_scaling(model_path, kind, sizes, threads):
    """``transform`` time and peak RSS of a fresh process per size.

    ``kind`` is 'fmnist' (Fashion-MNIST rows) or 'gaussian' (standard normal
    rows of the model's width). Memory is in MiB; 'transform_extra_mib' is the
    growth of the peak during the transform, beyond the loaded data and model.
    """
    rows = []
    for n in sizes:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _TRANSFORM_CHILD,
                str(model_path),
                kind,
                str(n),
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        seconds, before, after, data_bytes, code_bytes = map(float, out)
        rows.append(
            {
                "n": n,
                "seconds": seconds,
                "images_per_second": n / seconds,
                "peak_rss_mib": after / 1024,
                "rss_before_mib": before / 1024,
                "transform_extra_mib": (after - before) / 1024,
                "data_mib": data_bytes / 2**20,
                "codes_mib": code_bytes / 2**20,
            }
        )
        print(
            f"  n={n}: {seconds:.1f} s ({n / seconds:.0f} rows/s), peak RSS "
            f"{after / 1024:.0f} MiB (+{(after - before) / 1024:.0f} during transform)",
            flush=True,
        )
    return rows
