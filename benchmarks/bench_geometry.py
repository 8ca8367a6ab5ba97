"""Benchmark the geometry of codes on the Swiss roll: does the pair loss unroll it?

The Swiss roll of :func:`skgfe.datasets.make_swiss_roll_manifold` (1.5 turns, 89 long,
21 high, layers about 6.3 apart) is developable: its ideal 2-D code is the
unrolling, which the generator returns as ``coordinates``. For several seeds
(data, pairs and initialisation together) it fits

- PCA and Isomap (10 neighbours), for reference;
- AutoencoderBaseline on reconstruction alone;
- the same with the local pair loss of Braunsmann et al. (distortion and
  bending weights 10, pairs within ``epsilon``);
- the same plus ``geodesic_sources=20`` (long-range pairs along the graph of
  the local pairs, scored by stress): the configuration of the test suite;
- two ablations: without the bending term, and without any given pairs (the
  distortion term on each sample's 5 nearest neighbours in X, extended by
  geodesic pairs: no ground truth used at all).

and reports, on all samples, the Procrustes error to the unrolling (relative
to its extent), distortion and bending scores on the local pairs,
interpolation error (decoded latent midpoints against the true midpoints) and
the fit time. The roll is divided by 10 (a uniform scale keeps its geometry).
For the first seed it also runs GradientFlowEncoder's flows with the decoder
of the autoencoder trained with geodesic pairs, to see where they end.

It also trains a GradientFlowEncoder with the pair loss and geodesic pairs on
the first seed, from z0 = 0 (``--gfe-epochs``, 60 by default; 0 skips both)
and from four starts (a third of those epochs).

Run ``python benchmarks/bench_geometry.py`` (about 15 minutes on one CPU
thread) or ``--quick`` (a smoke test). Results: ``--out`` (default
``benchmarks/results/``), files ``geometry.json``, ``geometry.md`` and
``geometry_swiss_roll.png`` (the codes of the first seed).
"""

import os

# See bench_solvers.py: passive OpenMP waiting keeps a busy machine usable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import functools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.manifold import Isomap

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.datasets import make_swiss_roll_manifold
from skgfe.metrics import (
    bending_score,
    distortion_score,
    interpolation_error,
    procrustes_error,
)

SCALE = 10.0
UNROLLING = "autoencoder + pair loss + geodesic pairs"
PAIR_LOSS = {"distortion_weight": 10.0, "bending_weight": 10.0}
# name: (AutoencoderBaseline parameters beyond the shared ones, whether fit gets the pairs)
AUTOENCODERS = {
    "autoencoder": ({}, False),
    "autoencoder + local pair loss": (PAIR_LOSS, True),
    UNROLLING: ({**PAIR_LOSS, "geodesic_sources": 20}, True),
    "autoencoder + distortion + geodesic pairs (no bending)": (
        {"distortion_weight": 10.0, "geodesic_sources": 20},
        True,
    ),
    "autoencoder + distortion + geodesic pairs on the kNN graph (no given pairs)": (
        {"distortion_weight": 10.0, "geodesic_sources": 20},
        False,
    ),
}


def swiss_roll(args, seed):
    roll = make_swiss_roll_manifold(
        n_samples=args.n_samples,
        n_pairs=args.n_pairs,
        epsilon=args.epsilon,
        random_state=seed,
    )
    for key in ("data", "midpoints", "pair_distances"):
        roll[key] = roll[key] / SCALE
    return roll


def scores(roll, codes, midpoint_codes, decoder):
    return {
        "procrustes": procrustes_error(codes, roll.coordinates),
        "distortion": distortion_score(codes, roll.pairs, roll.pair_distances),
        "bending": bending_score(codes, roll.pairs, midpoint_codes),
        "interpolation": (
            None
            if decoder is None
            else interpolation_error(codes, roll.pairs, roll.midpoints, decoder)
        ),
    }


def fit_models(args, seed):
    """Every model on one seed's roll.

    Returns the roll, a dict name -> scores, seconds and codes, and the
    autoencoder trained with geodesic pairs.
    """
    roll = swiss_roll(args, seed)
    X = roll.data
    results = {}

    def record(name, fit, transform, decoder):
        start = time.perf_counter()
        fit()
        seconds = time.perf_counter() - start
        codes = transform(X)
        results[name] = {
            **scores(roll, codes, transform(roll.midpoints), decoder),
            "seconds": seconds,
            "codes": codes,
        }
        print(
            f"[seed {seed}] {name}: Procrustes {results[name]['procrustes']:.4f}, "
            f"bending {results[name]['bending']:.4f} ({seconds:.1f} s)",
            flush=True,
        )

    pca = PCA(n_components=2)
    record("PCA", lambda: pca.fit(X), pca.transform, pca)
    isomap = Isomap(n_neighbors=10, n_components=2)
    record("Isomap (10 neighbours)", lambda: isomap.fit(X), isomap.transform, None)
    pairs = {
        "pairs": roll.pairs,
        "pair_distances": roll.pair_distances,
        "midpoints": roll.midpoints,
    }
    for name, (params, given_pairs) in AUTOENCODERS.items():
        model = AutoencoderBaseline(
            n_components=2,
            hidden_layer_sizes=(64, 64),
            max_iter=args.epochs,
            batch_size=64,
            n_iter_no_change=args.epochs,
            device=args.device,
            random_state=seed,
            **params,
        )
        fit_params = pairs if given_pairs else {}
        record(
            name, functools.partial(model.fit, X, **fit_params), model.transform, model
        )
        if name == UNROLLING:
            unrolling = model
    return roll, results, unrolling


def flows_with_the_unrolling_decoder(args, roll, autoencoder):
    """Where GFE's flows end with the decoder of an autoencoder that unrolls the roll.

    A GradientFlowEncoder gets that decoder; its code of a sample is where the
    flow from z0 = 0 ends, or, with several starts (the k-means centres of the
    autoencoder's codes), the lowest of the flows' ends. Counted as reaching
    the autoencoder's code: within 0.1 of it (the roll is about 9 long in code
    units).
    """
    X = roll.data
    target = autoencoder.transform(X)
    gfe = GradientFlowEncoder(
        n_components=2,
        hidden_layer_sizes=(64, 64),
        max_iter=1,
        device=args.device,
        random_state=0,
    ).fit(X[:64])
    gfe.decoder_.load_state_dict(autoencoder.decoder_.state_dict())
    results = {"reconstruction_mse_autoencoder": float(-autoencoder.score(X))}
    for n_starts in (1, 2, 4):
        starts = (
            np.zeros((1, 2))
            if n_starts == 1
            else KMeans(n_starts, n_init=3, random_state=0).fit(target).cluster_centers_
        )
        gfe.set_params(z0=starts)
        start = time.perf_counter()
        flow_codes = gfe.transform(X)
        seconds = time.perf_counter() - start
        reached = np.linalg.norm(flow_codes - target, axis=1) < 0.1
        results[f"{n_starts} start(s)"] = {
            "fraction_reaching_the_autoencoder_code": float(reached.mean()),
            "procrustes_of_flow_codes": procrustes_error(flow_codes, roll.coordinates),
            "reconstruction_mse_flow_codes": float(-gfe.score(X)),
            "transform_seconds": seconds,
        }
        print(
            f"[flows, {n_starts} start(s)] {results[f'{n_starts} start(s)']}",
            flush=True,
        )
    return results


# Four starts along the roll's long axis, in code units (it is about 9 long).
LINE_OF_STARTS = [[-4.0, 0.0], [-1.3, 0.0], [1.3, 0.0], [4.0, 0.0]]


def regularised_gfe(args, roll):
    """GradientFlowEncoder trained with the pair loss and geodesic pairs (default AMD).

    From z0 = 0 for ``--gfe-epochs``, and from four starts (``train_z0='z0'``)
    for a third of those epochs, as each epoch then runs four flows per sample.
    """
    settings = {
        "z0 = 0": ({}, args.gfe_epochs),
        "4 starts, train_z0='z0'": (
            {"z0": LINE_OF_STARTS, "train_z0": "z0"},
            max(1, args.gfe_epochs // 3),
        ),
    }
    results = {}
    for name, (params, epochs) in settings.items():
        gfe = GradientFlowEncoder(
            n_components=2,
            hidden_layer_sizes=(64, 64),
            max_iter=epochs,
            batch_size=64,
            n_iter_no_change=epochs,
            device=args.device,
            random_state=args.seeds[0],
            **PAIR_LOSS,
            geodesic_sources=20,
            **params,
        )
        start = time.perf_counter()
        gfe.fit(
            roll.data,
            pairs=roll.pairs,
            pair_distances=roll.pair_distances,
            midpoints=roll.midpoints,
        )
        seconds = time.perf_counter() - start
        codes = gfe.transform(roll.data)
        results[name] = {
            **scores(roll, codes, gfe.transform(roll.midpoints), gfe),
            "reconstruction_mse": float(-gfe.score(roll.data)),
            "seconds": seconds,
            "epochs": epochs,
        }
        print(f"[gfe, {name}] {results[name]}", flush=True)
    return results


def summarise(per_seed):
    """Median, minimum and maximum of each score over the seeds, per model."""
    models = per_seed[0].keys()
    summary = {}
    for name in models:
        summary[name] = {}
        for key in ("procrustes", "distortion", "bending", "interpolation", "seconds"):
            values = [run[name][key] for run in per_seed if run[name][key] is not None]
            summary[name][key] = (
                None
                if not values
                else {
                    "median": float(np.median(values)),
                    "min": float(np.min(values)),
                    "max": float(np.max(values)),
                }
            )
    return summary


def plot(roll, results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(2.6 * (len(names) + 1), 3.2))
    panels = [("true unrolling", roll.coordinates)] + [
        (n, results[n]["codes"]) for n in names
    ]
    for ax, (name, codes) in zip(axes, panels):
        ax.scatter(
            codes[:, 0], codes[:, 1], c=roll.coordinates[:, 0], s=2, cmap="viridis"
        )
        ax.set_title(name.replace(" + ", "\n+ ").replace(" (", "\n("), fontsize=6)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Swiss roll codes, coloured by arc length (seed 0)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(args, info, summary, flows, gfe):
    def cell(stat, digits=3):
        if stat is None:
            return "-"
        return (
            f"{stat['median']:.{digits}f} ({stat['min']:.{digits}f}-"
            f"{stat['max']:.{digits}f})"
        )

    lines = [
        "# Geometry of the codes: the Swiss roll",
        "",
        f"{args.n_samples} points, {args.n_pairs} pairs within epsilon={args.epsilon} "
        f"(geodesic), roll divided by {SCALE:g}; autoencoders: hidden layers (64, 64), "
        f"{args.epochs} epochs, batch 64, Adam 1e-3. Seeds {args.seeds} (data, pairs "
        "and initialisation). Each cell: median (min-max) over the seeds. Procrustes: "
        "error to the true unrolling after the best similarity, relative to its "
        "extent; distortion and bending on the local pairs (lower is better).",
        "",
        "| codes | Procrustes | distortion | bending | interpolation | fit (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, stats in summary.items():
        lines.append(
            f"| {name} | {cell(stats['procrustes'])} | {cell(stats['distortion'])} | "
            f"{cell(stats['bending'], 4)} | {cell(stats['interpolation'])} | "
            f"{cell(stats['seconds'], 1)} |"
        )
    lines += [
        "",
        f"GradientFlowEncoder with the decoder of the seed-{args.seeds[0]} autoencoder "
        "trained with geodesic pairs (starts: z0 = 0, or the k-means centres of that "
        "autoencoder's codes; reached: within 0.1 of its code; autoencoder's "
        f"reconstruction MSE {flows['reconstruction_mse_autoencoder']:.4f}):",
        "",
        "| starts | reached | Procrustes | reconstruction MSE | transform (s) |",
        "|---|---|---|---|---|",
    ]
    for name, row in flows.items():
        if isinstance(row, dict):
            lines.append(
                f"| {name} | {row['fraction_reaching_the_autoencoder_code']:.1%} | "
                f"{row['procrustes_of_flow_codes']:.3f} | "
                f"{row['reconstruction_mse_flow_codes']:.4f} | "
                f"{row['transform_seconds']:.2f} |"
            )
    lines += [""]
    if gfe is not None:
        lines += [
            f"GradientFlowEncoder trained with the pair loss and geodesic pairs "
            f"(seed {args.seeds[0]}, AMD):",
            "",
            "| starts | epochs | Procrustes | distortion | bending | reconstruction MSE "
            "| fit (s) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in gfe.items():
            lines.append(
                f"| {name} | {row['epochs']} | {row['procrustes']:.3f} | "
                f"{row['distortion']:.3f} | {row['bending']:.4f} | "
                f"{row['reconstruction_mse']:.4f} | {row['seconds']:.0f} |"
            )
        lines += [""]
    lines += [
        f"Machine: {info['cpu_model']}, {info['torch_threads']} torch thread(s), "
        f"torch {info['torch']}; total {info['total_seconds']:.0f} s.",
        "",
    ]
    if not args.quick:
        lines += ["![codes](geometry_swiss_roll.png)", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-pairs", type=int, default=6000)
    parser.add_argument("--epsilon", type=float, default=3.0)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument(
        "--gfe-epochs",
        type=int,
        default=60,
        help="epochs of the regularised GradientFlowEncoder (0: skip)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_samples, args.n_pairs, args.epochs = [0], 300, 400, 3
        args.gfe_epochs = 1
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")

    info = machine_info(args)
    start = time.perf_counter()
    per_seed = []
    with warnings.catch_warnings():
        # Fits end at max_iter by design: every model gets the same epochs.
        warnings.simplefilter("ignore")
        for seed in args.seeds:
            roll, results, unrolling = fit_models(args, seed)
            if not per_seed:
                first_roll, first_results = roll, results
                flows = flows_with_the_unrolling_decoder(args, roll, unrolling)
                gfe = regularised_gfe(args, roll) if args.gfe_epochs else None
            per_seed.append(results)
    info["load_average_end"] = list(os.getloadavg())
    info["total_seconds"] = time.perf_counter() - start
    summary = summarise(per_seed)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "geometry_quick" if args.quick else "geometry"
    runs = [
        {
            model: {k: v for k, v in scores.items() if k != "codes"}
            for model, scores in results.items()
        }
        for results in per_seed
    ]
    (out / f"{name}.json").write_text(
        json.dumps(
            {
                "machine": info,
                "settings": vars(args),
                "summary": summary,
                "gfe_flows_with_the_unrolling_decoder": flows,
                "gfe_with_pair_loss": gfe,
                "runs": dict(zip(map(str, args.seeds), runs)),
            },
            indent=2,
        )
    )
    (out / f"{name}.md").write_text(markdown(args, info, summary, flows, gfe))
    if not args.quick:
        plot(first_roll, first_results, out / "geometry_swiss_roll.png")
    print((out / f"{name}.md").read_text())


if __name__ == "__main__":
    main()
