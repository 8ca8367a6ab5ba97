"""Benchmark 1-bit codes on sparse data against the closed forms of Kogler et al. (2024).

Three parts, all on data with unit variance per entry (skgfe.datasets):

1. Sanity: on isotropic Gaussian data no encoder can beat PCA, whose mean squared
   error per feature with k real latents is 1 - k/d. GradientFlowEncoder and
   AutoencoderBaseline with a linear decoder and k real latents should reach it.
2. MSE against the rate r = k/d of OneBitAutoencoder with fixed frames (no
   training: the decoders are set in closed form), with the linear decoder and
   with the linear decoder followed by the Bernoulli-Gaussian MMSE denoiser, at
   several sparsities, against gaussian_1bit_mse(r). The linear decoder should
   match the Gaussian value at every sparsity (it ignores the structure), the
   denoiser should go below it on sparse data.
3. Training: a learned encoder (straight-through estimator) at a small d, with
   each decoder, against the same Gaussian value.

Errors are measured on held-out samples. Run ``python benchmarks/bench_one_bit.py``
(a few minutes on one CPU thread) or ``--quick`` (a smoke test). Results:
``--out`` (default ``benchmarks/results/``), files ``one_bit.json`` and ``one_bit.md``.
"""

import os

# See bench_solvers.py: passive OpenMP waiting keeps a busy machine usable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_info

from skgfe import (
    AutoencoderBaseline,
    GradientFlowEncoder,
    OneBitAutoencoder,
    gaussian_1bit_mse,
)
from skgfe.datasets import make_sparse_gaussian


def held_out_mse(model, X_test):
    return float(-model.score(X_test))


def sanity(args):
    """GFE and AE with k real latents and a linear decoder vs PCA's 1 - k/d."""
    d, k = args.sanity_features, args.sanity_components
    X = make_sparse_gaussian(args.n_train, d, 1.0, random_state=0)
    X_test = make_sparse_gaussian(args.n_test, d, 1.0, random_state=1)
    pca = PCA(k).fit(X)
    pca_mse = float(
        np.mean((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2)
    )
    common = {
        "hidden_layer_sizes": (),
        "learning_rate_init": 1e-2,
        "device": args.device,
        "random_state": 0,
    }
    models = {
        "AutoencoderBaseline": AutoencoderBaseline(
            k, max_iter=args.ae_epochs, **common
        ),
        "GradientFlowEncoder": GradientFlowEncoder(
            k, max_iter=args.gfe_epochs, **common
        ),
    }
    rows = [{"model": "PCA (fitted)", "mse": pca_mse, "epochs": None, "seconds": None}]
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(X)
        rows.append(
            {
                "model": name,
                "mse": held_out_mse(model, X_test),
                "epochs": model.n_iter_,
                "seconds": time.perf_counter() - start,
            }
        )
        print(
            f"[sanity] {name}: {rows[-1]['mse']:.4f} (PCA value {1 - k / d:.4f})",
            flush=True,
        )
    return {"n_features": d, "n_components": k, "pca_value": 1 - k / d, "rows": rows}


def rate_curves(args):
    """Fixed frames, closed-form decoders: MSE against rate, per sparsity and decoder."""
    d = args.n_features
    rows = []
    for sparsity in args.sparsities:
        X = make_sparse_gaussian(args.n_train, d, sparsity, random_state=0)
        X_test = make_sparse_gaussian(args.n_test, d, sparsity, random_state=1)
        for rate in args.rates:
            n_bits = round(rate * d)
            for decoder in ("linear", "linear+denoiser"):
                if decoder == "linear+denoiser" and sparsity == 1.0:
                    continue  # the MMSE denoiser of Gaussian data is the linear decoder
                model = OneBitAutoencoder(
                    n_bits,
                    encoder="tight_frame",
                    decoder=decoder,
                    device=args.device,
                    random_state=0,
                )
                start = time.perf_counter()
                model.fit(X)
                rows.append(
                    {
                        "sparsity": sparsity,
                        "rate": n_bits / d,
                        "decoder": decoder,
                        "mse": held_out_mse(model, X_test),
                        "gaussian_value": gaussian_1bit_mse(n_bits / d),
                        "seconds": time.perf_counter() - start,
                    }
                )
            print(
                f"[rates] p={sparsity} r={rate}: "
                + ", ".join(
                    f"{r['decoder']} {r['mse']:.4f}"
                    for r in rows[-2:]
                    if r["rate"] == n_bits / d and r["sparsity"] == sparsity
                )
                + f" (Gaussian value {gaussian_1bit_mse(n_bits / d):.4f})",
                flush=True,
            )
    return {"n_features": d, "n_train": args.n_train, "rows": rows}


def training(args):
    """Learned encoders (straight-through) at a small d, each decoder."""
    d, sparsity = args.train_features, args.train_sparsity
    rows = []
    for data_sparsity in (1.0, sparsity):
        X = make_sparse_gaussian(args.n_train, d, data_sparsity, random_state=0)
        X_test = make_sparse_gaussian(args.n_test, d, data_sparsity, random_state=1)
        for decoder, denoiser in [
            ("linear", "mmse"),
            ("linear+denoiser", "mmse"),
            ("linear+denoiser", "learned"),
        ]:
            if decoder != "linear" and data_sparsity == 1.0:
                continue
            for encoder in ("learned", "random_rotation"):
                model = OneBitAutoencoder(
                    d,
                    encoder=encoder,
                    decoder=decoder,
                    denoiser=denoiser,
                    max_iter=args.train_epochs,
                    device=args.device,
                    random_state=0,
                )
                start = time.perf_counter()
                model.fit(X)
                rows.append(
                    {
                        "sparsity": data_sparsity,
                        "encoder": encoder,
                        "decoder": decoder
                        if decoder == "linear"
                        else f"{decoder} ({denoiser})",
                        "mse": held_out_mse(model, X_test),
                        "train_mse": model.loss_curve_[-1],
                        "epochs": model.n_iter_,
                        "seconds": time.perf_counter() - start,
                    }
                )
                print(
                    f"[training] p={data_sparsity} {encoder} {rows[-1]['decoder']}: "
                    f"{rows[-1]['mse']:.4f}",
                    flush=True,
                )
    return {
        "n_features": d,
        "rate": 1.0,
        "gaussian_value": gaussian_1bit_mse(1.0),
        "rows": rows,
    }


def markdown(results, info, args):
    sanity_result, curves, train = (
        results["sanity"],
        results["rate_curves"],
        results["training"],
    )
    lines = [
        "# 1-bit codes on sparse data",
        "",
        f"Run of {info['date']} on {info['cpu_model']} ({info['torch_threads']} torch "
        f"thread(s), device {info['device']}), torch {info['torch']}, scikit-learn "
        f"{info['sklearn']}, skgfe at commit {info['git_commit'][:10]}"
        + (" with uncommitted changes" if info["skgfe_uncommitted_changes"] else "")
        + f"; {info['total_seconds']:.0f} s in all. Every error is the mean squared "
        f"error per feature on {args.n_test} held-out samples; models were fitted on "
        f"{args.n_train}.",
        "",
        "## Sanity: real latents on isotropic Gaussian data",
        "",
        (
            f"d = {sanity_result['n_features']}, k = {sanity_result['n_components']}: "
            f"the PCA value 1 - k/d is {sanity_result['pca_value']:.4f}. Linear decoders."
        ),
        "",
        "| model | held-out MSE | epochs | seconds |",
        "|---|---|---|---|",
    ]
    for row in sanity_result["rows"]:
        epochs = "-" if row["epochs"] is None else row["epochs"]
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(f"| {row['model']} | {row['mse']:.4f} | {epochs} | {seconds} |")
    lines += [
        "",
        f"## MSE against rate, fixed frames (d = {curves['n_features']})",
        "",
        (
            "Random tight frame encoder (a random rotation for r <= 1); the decoders are "
            "set in closed form from the training data, without gradient steps. The "
            "Gaussian value is `gaussian_1bit_mse(r)`."
        ),
        "",
        "| sparsity | rate | Gaussian value | linear | linear + MMSE denoiser |",
        "|---|---|---|---|---|",
    ]
    table = {}
    for row in curves["rows"]:
        table.setdefault((row["sparsity"], row["rate"]), {})[row["decoder"]] = row
    for (sparsity, rate), by_decoder in table.items():
        denoised = by_decoder.get("linear+denoiser")
        lines.append(
            f"| {sparsity} | {rate:.2f} | {by_decoder['linear']['gaussian_value']:.4f} | "
            f"{by_decoder['linear']['mse']:.4f} | "
            + ("-" if denoised is None else f"{denoised['mse']:.4f}")
            + " |"
        )
    gaps = {}
    for row in curves["rows"]:
        if row["decoder"] == "linear":
            gap = abs(row["mse"] - row["gaussian_value"])
            gaps[row["sparsity"]] = max(gaps.get(row["sparsity"], 0.0), gap)
    lines += [
        "",
        "Largest distance of the linear decoder's error from the Gaussian value, over "
        "the rates: "
        + ", ".join(f"{gap:.4f} at p = {p}" for p, gap in gaps.items())
        + ".",
        "",
        f"## Learned encoders (d = {train['n_features']}, r = 1)",
        "",
        (
            f"Straight-through training, {args.train_epochs} epochs at most; a random "
            f"rotation with the same decoder for comparison. Gaussian value "
            f"{train['gaussian_value']:.4f}."
        ),
        "",
        "| sparsity | encoder | decoder | held-out MSE | training MSE | epochs | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in train["rows"]:
        lines.append(
            f"| {row['sparsity']} | {row['encoder']} | {row['decoder']} | "
            f"{row['mse']:.4f} | {row['train_mse']:.4f} | {row['epochs']} | "
            f"{row['seconds']:.1f} |"
        )
    lines += [
        "",
        (
            "The bits drop the norm of x, which varies between samples by about "
            "sqrt((3/p - 1)/d) in relative terms, so at a small d sparse data can lose "
            "more than Gaussian data with a linear decoder; compare the linear rows at "
            f"p = 1 and p = {train['rows'][-1]['sparsity']} here with the table above "
            f"(d = {curves['n_features']})."
        ),
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--n-features", type=int, default=500)
    parser.add_argument("--sanity-features", type=int, default=20)
    parser.add_argument("--sanity-components", type=int, default=5)
    parser.add_argument("--ae-epochs", type=int, default=50)
    parser.add_argument("--gfe-epochs", type=int, default=10)
    parser.add_argument("--train-features", type=int, default=64)
    parser.add_argument("--train-sparsity", type=float, default=0.1)
    parser.add_argument("--train-epochs", type=int, default=30)
    args = parser.parse_args(argv)
    args.rates = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0]
    args.sparsities = [0.05, 0.1, 0.3, 1.0]
    if args.quick:
        args.n_train, args.n_test, args.n_features = 300, 300, 60
        args.ae_epochs, args.gfe_epochs, args.train_epochs = 2, 1, 2
        args.train_features = 16
        args.rates, args.sparsities = [0.5, 2.0], [0.1, 1.0]
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")

    info = machine_info(args)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Short runs end at max_iter by design; the epochs are reported.
        warnings.simplefilter("ignore")
        results = {
            "sanity": sanity(args),
            "rate_curves": rate_curves(args),
            "training": training(args),
        }
    info["load_average_end"] = list(os.getloadavg())
    info["total_seconds"] = time.perf_counter() - start

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "one_bit_quick" if args.quick else "one_bit"
    payload = {"machine": info, "args": vars(args), "results": results}
    (out / f"{name}.json").write_text(
        json.dumps(payload, indent=1, default=float) + "\n"
    )
    md = markdown(results, info, args)
    (out / f"{name}.md").write_text(md)
    print()
    print(md)
    print(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")


if __name__ == "__main__":
    main()
