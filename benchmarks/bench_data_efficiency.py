"""Reproduce GFE's data-efficiency result on Fashion-MNIST (paper Fig. 1, 2, 3).

GradientFlowEncoder (AMD, approximate adjoint) and AutoencoderBaseline are
trained with the paper's settings: decoder 20-150-300-600-784 (ELU, BCE on
logits), latent size 20, RMSprop (lr 5e-4, alpha 0.9, eps 1e-6), batch 8, one
pass over the training images in a fixed random order. Both models see the same
images in the same order. At the checkpoints of the authors' table script
(iterations 103, 168, 230, 309, 440 at batch 8, i.e. 1.65 % ... 7.04 % of an
epoch of 50,000 images; and 63 iterations, 1 %) training pauses and the mean test BCE over the
test images is computed (10,000 by default); wall time counts training only.

``--variants`` also trains, on the same stream, GFE with the second-order flow,
with a fixed-step Euler flow, with the full adjoint (Fig. 2) and with a looser
flow tolerance, evaluated on a subset of the test images. ``--only KEYS``
reruns some models and keeps the others from an earlier run's JSON. ``--full-epoch`` adds the 100 % checkpoint (6,250
iterations; about an hour on a CPU for GFE).

Writes ``data_efficiency.json``, ``data_efficiency.md``,
``data_efficiency_curves.png`` and ``data_efficiency_reconstructions.png`` to
``--out``; the final GFE model is saved as ``data_efficiency_gfe.skgfe`` for the
encoding benchmark.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info  # noqa: E402

from skgfe import AutoencoderBaseline, GradientFlowEncoder  # noqa: E402
from skgfe.datasets import load_fashion_mnist  # noqa: E402

PAPER = {
    "n_components": 20,
    "hidden_layer_sizes": (150, 300, 600),
    "activation": "elu",
    "loss": "bce",
    "optimizer": "rmsprop",
    "learning_rate_init": 5e-4,
    "optimizer_params": {"alpha": 0.9, "eps": 1e-6},
    "batch_size": 8,
    "max_iter": 1,
    "shuffle": False,
    "warm_start": True,
    "random_state": 0,
}
# The authors hold 10,000 training images out for validation: an epoch is the
# other 50,000, 6,250 iterations at batch 8.
CHECKPOINTS = [63, 103, 168, 230, 309, 440]
EPOCH_ITERATIONS = 6250
RECONSTRUCTION_CHECKPOINT = 63  # 504 images: 1 % of an epoch
# The autoencoder is cheap: it also runs on to a whole epoch, for the
# comparison at equal wall time.
AE_CHECKPOINTS = [1000, 2000, 4000, EPOCH_ITERATIONS]
MODELS = {
    "ae": (AutoencoderBaseline, {}, "autoencoder"),
    "gfe": (GradientFlowEncoder, {}, "GFE, AMD, order 1, approximate adjoint"),
}
VARIANTS = {
    "gfe_order2": (GradientFlowEncoder, {"ode_order": 2}, "GFE, AMD, order 2"),
    "gfe_euler": (
        GradientFlowEncoder,
        {"flow_solver": "euler", "step_size": 10.0, "tau": 500.0},
        "GFE, Euler, h=10, tau=500",
    ),
    "gfe_full": (GradientFlowEncoder, {"adjoint": "full"}, "GFE, AMD, full adjoint"),
    "gfe_tol": (GradientFlowEncoder, {"flow_tol": 1e-3}, "GFE, AMD, flow_tol=1e-3"),
}


def train_with_checkpoints(
    model, X_train, checkpoints, X_test, n_common, batch_size, on_checkpoint
):
    """Feed the training stream batch by batch; evaluate at each checkpoint.

    ``common_bce`` is the mean over the first ``n_common`` test images, the
    subset every model is evaluated on.
    """
    seconds, done, rows = 0.0, 0, []
    for iteration in checkpoints:
        chunk = X_train[done * batch_size : iteration * batch_size]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(chunk)
        seconds += time.perf_counter() - start
        done = iteration
        start = time.perf_counter()
        per_image = -model.score_samples(X_test)
        bce = float(per_image.mean())
        rows.append(
            {
                "iteration": iteration,
                "images": iteration * batch_size,
                "epoch_percent": 100 * iteration / EPOCH_ITERATIONS,
                "train_seconds": seconds,
                "test_bce": bce,
                "common_bce": float(per_image[:n_common].mean()),
                "eval_seconds": time.perf_counter() - start,
            }
        )
        print(
            f"  it {iteration:5d} ({rows[-1]['epoch_percent']:5.2f} %): test BCE "
            f"{bce:.4f}  train {seconds:7.1f} s  eval {rows[-1]['eval_seconds']:.1f} s",
            flush=True,
        )
        on_checkpoint(iteration, model)
    return rows


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(results, out, n_common):
    plt = _pyplot()
    fig, (by_images, by_time) = plt.subplots(1, 2, figsize=(11, 4))
    last_gfe_images = results["gfe"]["curve"][-1]["images"]
    for result in results.values():
        curve = result["curve"]
        bce = [r["common_bce"] for r in curve]
        by_images.plot([r["images"] for r in curve], bce, "o-", label=result["label"])
        by_time.plot(
            [r["train_seconds"] for r in curve], bce, "o-", label=result["label"]
        )
    ylabel = f"test BCE (first {n_common} test images)"
    by_images.set(
        xlabel="training images seen",
        ylabel=ylabel,
        xlim=(0, 1.05 * last_gfe_images),
        title="Fashion-MNIST, one pass, batch 8",
    )
    by_time.set(xlabel="training wall time (s)", ylabel=ylabel, xscale="log")
    by_images.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "data_efficiency_curves.png", dpi=120)
    plt.close(fig)


def plot_reconstructions_at_one_percent(out, test_images, reconstructions):
    from skgfe.plotting import plot_reconstructions

    plt = _pyplot()
    ax = plot_reconstructions(test_images, reconstructions, (28, 28), n=10)
    ax.set_title("Test reconstructions after 504 training images (1 %)")
    ax.figure.savefig(
        out / "data_efficiency_reconstructions.png", dpi=120, bbox_inches="tight"
    )
    plt.close(ax.figure)


def markdown(results, info, args):
    lines = [
        "# Data efficiency on Fashion-MNIST (paper Fig. 1-3)",
        "",
        f"Generated by `python benchmarks/bench_data_efficiency.py` on {info['date']}: "
        f"{info['cpu_model']} ({info['n_cpus']} CPUs), torch {info['torch']} with "
        f"{info['torch_threads']} thread(s); load average at start "
        f"{info['load_average_start'][0]:.1f}, at end {info['load_average_end'][0]:.1f}.",
        "",
        "Paper settings: decoder 20-150-300-600-784 ELU, BCE, RMSprop lr 5e-4 "
        "alpha 0.9 eps 1e-6, batch 8, one pass in a fixed order (same images for "
        f"every model). Test BCE: mean over {args.n_test} test images "
        f"({args.n_test_variants} for the variants). Wall time: training only.",
        "",
        "| model | "
        + " | ".join(
            f"{c} it ({100 * c / EPOCH_ITERATIONS:.2f} %)"
            for c in results["gfe"]["checkpoints"]
        )
        + " |",
        "|---|" + "---:|" * len(results["gfe"]["checkpoints"]),
    ]
    shown = set(results["gfe"]["checkpoints"])
    for result in results.values():
        cells = " | ".join(
            f"{r['test_bce']:.4f} ({r['train_seconds']:.0f} s)"
            for r in result["curve"]
            if r["iteration"] in shown
        )
        lines.append(f"| {result['label']} | {cells} |")
    further = [
        f"{r['epoch_percent']:.0f} %: {r['test_bce']:.4f} ({r['train_seconds']:.0f} s)"
        for r in results["ae"]["curve"]
        if r["iteration"] not in shown
    ]
    lines += ["", "Cells: test BCE (cumulative training seconds).", ""]
    if further:
        lines += [
            "The autoencoder further along the same pass: " + ", ".join(further) + ".",
            "",
        ]
    lines += [
        f"Same checkpoints, all models on the first {args.n_test_variants} test "
        "images (the variants' test set):",
        "",
        "| model | " + " | ".join(str(c) for c in results["gfe"]["checkpoints"]) + " |",
        "|---|" + "---:|" * len(results["gfe"]["checkpoints"]),
    ]
    for result in results.values():
        cells = " | ".join(
            f"{r['common_bce']:.4f}" for r in result["curve"] if r["iteration"] in shown
        )
        lines.append(f"| {result['label']} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--n-test-variants", type=int, default=2000)
    parser.add_argument("--variants", action="store_true")
    parser.add_argument("--full-epoch", action="store_true")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated model keys to (re)run, e.g. gfe_full; the "
        "others are kept from OUT/data_efficiency.json",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoints = CHECKPOINTS + ([EPOCH_ITERATIONS] if args.full_epoch else [])
    if args.quick:
        checkpoints, args.n_test, args.n_test_variants = [2, 4], 64, 32
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine_info(args)

    train = load_fashion_mnist(subset="train").data.astype(np.float32)
    test = load_fashion_mnist(subset="test").data.astype(np.float32)
    order = np.random.default_rng(0).permutation(len(train))
    X_train = train[order][: max(checkpoints + AE_CHECKPOINTS) * PAPER["batch_size"]]
    shown = test[:10]
    models = {**MODELS, **(VARIANTS if args.variants else {})}
    results, reconstructions = {}, {}
    if args.only:
        previous = json.loads((args.out / "data_efficiency.json").read_text())
        results = previous["results"]
        info["previous_runs"] = previous["machine"]
        models = {key: models[key] for key in args.only.split(",")}
    for key, (cls, extra, label) in models.items():
        n_test = args.n_test if key in MODELS else args.n_test_variants
        print(f"{label}: ", flush=True)
        # A throwaway fit first, so one-time start-up costs are not timed.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**PAPER, **extra, device=args.device).fit(X_train[:16]).score(test[:8])
        model = cls(**PAPER, **extra, device=args.device)

        def keep_reconstructions(iteration, model, key=key, label=label):
            if iteration == RECONSTRUCTION_CHECKPOINT and key in MODELS:
                reconstructions[label] = model.inverse_transform(model.transform(shown))

        model_checkpoints = checkpoints
        if key == "ae" and not args.quick:
            model_checkpoints = sorted(set(checkpoints) | set(AE_CHECKPOINTS))
        curve = train_with_checkpoints(
            model,
            X_train,
            model_checkpoints,
            test[:n_test],
            args.n_test_variants,
            PAPER["batch_size"],
            keep_reconstructions,
        )
        results[key] = {
            "label": label,
            "params": {**PAPER, **extra},
            "checkpoints": model_checkpoints,
            "n_test": n_test,
            "curve": curve,
        }
        if key == "gfe":
            model.save(args.out / "data_efficiency_gfe.skgfe")
    info["load_average_end"] = list(os.getloadavg())
    (args.out / "data_efficiency.json").write_text(
        json.dumps({"machine": info, "results": results}, indent=2)
    )
    (args.out / "data_efficiency.md").write_text(markdown(results, info, args))
    plot_curves(results, args.out, args.n_test_variants)
    if reconstructions:
        plot_reconstructions_at_one_percent(args.out, shown, reconstructions)
    print(markdown(results, info, args))


if __name__ == "__main__":
    main()
