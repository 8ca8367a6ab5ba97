"""Encoding speed on Fashion-MNIST: time to reach the converged loss, overhead, scaling.

The decoder is the paper's (20-150-300-600-784, ELU, BCE) as trained by
``bench_data_efficiency.py`` (its saved ``data_efficiency_gfe.skgfe``; run that
first). Measured on held-out test images, from z0 = 0:

a. for each solver and ODE order, the cheapest setting of its stopping knob
   (AMD: flow_tol; fixed-step: number of steps at a few step sizes) whose mean
   loss is within 1 % of the converged loss L* (per-sample AMD run to flow_tol 0
   for ``--reference-steps`` trials in float64, the lowest loss any run reached
   per sample), then its seconds and decoder evaluations per sample at batch
   1, 256 and 4096;
b. solver overhead = encode time / (evaluations x the time of one decoder
   forward+backward at that batch size, measured alone);
c. training: seconds per epoch and images per second for GFE and the
   autoencoder at several batch sizes (paper settings otherwise);
d. scaling: ``transform`` time and peak resident memory of a fresh process for
   n = 1k, 10k, 60k images (time should be linear in n, memory flat but for
   the data and the codes).

Writes ``encoding.json`` and ``encoding.md`` to ``--out``.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info, timed, transform_scaling  # noqa: E402

import skgfe  # noqa: E402
from skgfe._flows import LatentObjective  # noqa: E402
from skgfe._losses import LOSSES  # noqa: E402
from skgfe._solvers import solve  # noqa: E402
from skgfe.datasets import load_fashion_mnist  # noqa: E402

TARGET = 0.01
N_COMPONENTS = 20
FREE_TAU = 1e12
BCE = LOSSES["bce"][0]
SWEEPS = {
    "amd1": [
        {
            "solver": "amd",
            "ode_order": 1,
            "tol": tol,
            "tau": FREE_TAU,
            "step_size": 1.0,
            "max_steps": 100000,
        }
        for tol in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)
    ],
    "amd2": [
        {
            "solver": "amd",
            "ode_order": 2,
            "tol": tol,
            "tau": FREE_TAU,
            "step_size": 1.0,
            "max_steps": 100000,
        }
        for tol in (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6)
    ],
    **{
        f"{solver}": [
            {
                "solver": solver,
                "ode_order": 1,
                "tol": 0.0,
                "step_size": h,
                "tau": h * steps,
                "max_steps": 100000,
            }
            for h in (10.0, 30.0, 100.0)
            for steps in (5, 10, 20, 40, 80, 160, 320)
        ]
        for solver in ("euler", "rk4")
    },
}


def encode(decoder, y, setting, options=None):
    z0 = torch.zeros(y.shape[0], N_COMPONENTS, dtype=y.dtype, device=y.device)
    return solve(
        decoder,
        BCE,
        y,
        z0,
        ode_order=setting["ode_order"],
        solver=setting["solver"],
        alpha=1.0,
        tau=setting["tau"],
        step_size=setting["step_size"],
        tol=setting["tol"],
        max_steps=setting["max_steps"],
        options=options or {},
    )


def converged_losses(decoder, y, steps):
    """Per-sample AMD in float64 with no stopping test but the step budget."""
    decoder64 = copy.deepcopy(decoder).double()
    setting = {
        "solver": "amd",
        "ode_order": 1,
        "tol": 0.0,
        "tau": FREE_TAU,
        "step_size": 1.0,
        "max_steps": steps,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return encode(decoder64, y.double(), setting).loss.float()


def cheapest_settings(decoder, y, l_star):
    """Per method, the cheapest setting within 1 % of L*.

    L* is the mean over samples of the lowest loss any run reached (the
    reference or a sweep), so no method is judged against a worse optimum.
    """
    sweeps = {}
    for method, settings in SWEEPS.items():
        sweeps[method] = []
        for setting in settings:
            result = encode(decoder, y, setting)
            l_star = torch.minimum(l_star, result.loss)
            sweeps[method].append(
                {
                    **setting,
                    "mean_loss": float(result.loss.double().mean()),
                    "evals": float(result.n_fev.double().mean()),
                }
            )
    L_star = float(l_star.double().mean())
    found = {}
    for method, rows in sweeps.items():
        good = [r for r in rows if r["mean_loss"] <= (1 + TARGET) * L_star]
        if good:
            found[method] = min(good, key=lambda r: r["evals"])
        print(f"  {method}: {found.get(method, 'target not reached')}", flush=True)
    return found, sweeps, L_star


def time_per_eval(decoder, y, device, repeats):
    objective = LatentObjective(decoder, BCE)
    z = torch.zeros(y.shape[0], N_COMPONENTS, device=y.device)
    objective.value_and_grad(z, y)
    times, _ = timed(lambda: objective.value_and_grad(z, y), device, repeats, 20)
    return statistics.median(times)


def timing_rows(decoder, test, found, batches, device, repeats):
    rows = []
    for batch in batches:
        y = test[:batch].to(device)
        eval_seconds = time_per_eval(decoder, y, device, repeats)
        for method, setting in found.items():
            # Batch 1: a few rows one at a time; the time is per row.
            n_rows = 16 if batch == 1 else batch

            def run(setting=setting, batch=batch, n_rows=n_rows):
                return [
                    encode(decoder, test[i : i + batch].to(device), setting)
                    for i in range(0, n_rows, batch)
                ]

            run()
            times, results = timed(run, device, repeats, 60)
            evals = sum(float(r.n_fev.double().sum()) for r in results) / n_rows
            seconds = statistics.median(times) / n_rows
            rows.append(
                {
                    "batch": batch,
                    "method": method,
                    "evals_per_sample": evals,
                    "seconds_per_sample": seconds,
                    "images_per_second": 1 / seconds,
                    "spread": [min(times) / n_rows, max(times) / n_rows],
                    "eval_seconds": eval_seconds,
                    "overhead": seconds / (evals * eval_seconds / batch),
                }
            )
            print(
                f"  batch {batch:5d} {method}: {1 / seconds:8.0f} img/s, "
                f"{evals:.1f} evals, overhead {rows[-1]['overhead']:.2f}",
                flush=True,
            )
    return rows


def training_rows(train, batches, device, n_images):
    from bench_data_efficiency import PAPER

    rows = []
    for cls in (skgfe.AutoencoderBaseline, skgfe.GradientFlowEncoder):
        for batch in batches:
            params = {**PAPER, "batch_size": batch, "warm_start": False}
            X = train[: n_images if cls is skgfe.GradientFlowEncoder else 4 * n_images]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls(**params, device=device).fit(X[:batch])
                start = time.perf_counter()
                cls(**params, device=device).fit(X)
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "model": cls.__name__,
                    "batch": batch,
                    "images": len(X),
                    "seconds": seconds,
                    "images_per_second": len(X) / seconds,
                    "seconds_per_50k_epoch": 50000 * seconds / len(X),
                }
            )
            print(
                f"  {cls.__name__} batch {batch}: {len(X) / seconds:.0f} img/s",
                flush=True,
            )
    return rows


def markdown(report):
    info, a = report["machine"], report
    lines = [
        "# Encoding and training speed on Fashion-MNIST",
        "",
        f"Generated by `python benchmarks/bench_encoding.py` on {info['date']}: "
        f"{info['cpu_model']} ({info['n_cpus']} CPUs), device `{info['device']}`, "
        f"torch {info['torch']} with {info['torch_threads']} thread(s); load average "
        f"at start {info['load_average_start'][0]:.1f}, at end "
        f"{info['load_average_end'][0]:.1f} (absolute times on a shared machine are "
        "noisy; compare ratios).",
        "",
        f"Decoder: the paper's, after {a['decoder_training']}. L* = {a['L_star']:.5f} "
        f"(mean over {a['n_reference']} test images of the lowest loss reached; "
        f"L(z0) = {a['L0']:.5f}). Target: mean loss <= 1.01 L*.",
        "",
        "## a, b: encoding",
        "",
        "| batch | method | cheapest setting | evals/sample | img/s | ms/sample [min, max] | "
        "overhead |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in a["timing"]:
        s = a["cheapest"][row["method"]]
        knob = (
            f"flow_tol={s['tol']:g}"
            if s["solver"] == "amd"
            else f"h={s['step_size']:g}, {s['tau'] / s['step_size']:.0f} steps"
        )
        lines.append(
            f"| {row['batch']} | {row['method']} | {knob} | {row['evals_per_sample']:.1f} | "
            f"{row['images_per_second']:.0f} | {1e3 * row['seconds_per_sample']:.3g} "
            f"[{1e3 * row['spread'][0]:.3g}, {1e3 * row['spread'][1]:.3g}] | "
            f"{row['overhead']:.2f} |"
        )
    lines += [
        "",
        "Overhead: encode time / (evaluations x one decoder forward+backward "
        "at that batch, timed alone).",
        "",
        "## c: training",
        "",
        "| model | batch | images | img/s | s per 50k-image epoch |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in a["training"]:
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['images']} | "
            f"{row['images_per_second']:.0f} | {row['seconds_per_50k_epoch']:.0f} |"
        )
    lines += [
        "",
        "## d: scaling of transform (default settings, fresh process each)",
        "",
        "| n | seconds | img/s | peak RSS MiB | growth during transform MiB | "
        "data MiB | codes MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in a["scaling"]:
        lines.append(
            f"| {row['n']} | {row['seconds']:.1f} | {row['images_per_second']:.0f} "
            f"| {row['peak_rss_mib']:.0f} | {row['transform_extra_mib']:.0f} | "
            f"{row['data_mib']:.0f} | {row['codes_mib']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="default: OUT/data_efficiency_gfe.skgfe",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-reference", type=int, default=256)
    parser.add_argument("--reference-steps", type=int, default=3000)
    parser.add_argument("--batches", default="1,256,4096")
    parser.add_argument("--train-batches", default="8,64,256")
    parser.add_argument("--train-images", type=int, default=1024)
    parser.add_argument("--sizes", default="1000,10000,60000")
    parser.add_argument("--quick", action="store_true", help="smoke test")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_reference, args.reference_steps, args.batches = 16, 100, "1,16"
        args.train_batches, args.train_images, args.sizes = "8", 32, "100,200"
        for method in SWEEPS:
            SWEEPS[method] = SWEEPS[method][:2]
    model_path = args.model or args.out / "data_efficiency_gfe.skgfe"
    device = torch.device(args.device)
    info = machine_info(args)
    model = skgfe.load(model_path, device=args.device)
    decoder = model.decoder_.eval().requires_grad_(False)
    test = torch.as_tensor(load_fashion_mnist(subset="test").data.astype(np.float32))
    train = load_fashion_mnist(subset="train").data.astype(np.float32)
    y = test[: args.n_reference].to(device)
    print("converged losses ...", flush=True)
    l_star = converged_losses(decoder, y, args.reference_steps)
    print("sweeps ...", flush=True)
    found, sweeps, L_star = cheapest_settings(decoder, y, l_star)
    with torch.no_grad():
        L0 = float(
            BCE(decoder(torch.zeros(len(y), N_COMPONENTS, device=device)), y).mean()
        )
    batches = [int(b) for b in args.batches.split(",")]
    report = {
        "machine": info,
        "decoder_training": "the data-efficiency run (440 iterations at batch 8, "
        "3,520 images)",
        "n_reference": args.n_reference,
        "L_star": L_star,
        "L0": L0,
        "cheapest": found,
        "sweeps": sweeps,
    }
    print("timing ...", flush=True)
    report["timing"] = timing_rows(decoder, test, found, batches, device, args.repeats)
    print("training ...", flush=True)
    report["training"] = training_rows(
        train,
        [int(b) for b in args.train_batches.split(",")],
        args.device,
        args.train_images,
    )
    print("scaling ...", flush=True)
    report["scaling"] = transform_scaling(
        model_path, "fmnist", [int(n) for n in args.sizes.split(",")], args.threads
    )
    info["load_average_end"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encoding.json").write_text(json.dumps(report, indent=2))
    (args.out / "encoding.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
