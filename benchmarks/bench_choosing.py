"""PCA, AutoencoderBaseline or GradientFlowEncoder: fit time, accuracy, error.

The numbers behind the documentation's decision guide (docs/choosing.rst). On
two tables bundled with scikit-learn, for several training-set sizes and seeds,
each of the three encoders is fitted on the training rows and measured on a
fixed held-out set: fit time, transform time, the held-out reconstruction error
(mean squared error per feature, in the scaled space the encoder saw) and the
test accuracy of a logistic regression fitted on the training codes.

- digits: 8x8 images scaled to [0, 1], 10 classes, 8 codes; 500 held-out rows.
- breast_cancer: 30 features standardised on the training rows, 2 classes,
  4 codes; 169 held-out rows.

The neural encoders use the demo's decoder (one hidden layer of 64 units),
``loss='mse'``, batches of 32 and ``n_threads=1``, and the same budget of
optimizer steps whatever the training-set size: 640, the demo's 20 epochs on
1,000 rows (so 160 epochs on 100 rows). A fixed number of epochs would instead
leave the small sets undertrained and mix the effect of the data size with
that of the budget. Torch runs on one thread.

Writes ``choosing.json`` and ``choosing.md`` to ``--out`` (``choosing_quick.*``
with ``--quick``).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skgfe import AutoencoderBaseline, GradientFlowEncoder  # noqa: E402
from skgfe.exceptions import ConvergenceWarning  # noqa: E402

# name: (loader, n_components, held-out rows, training sizes, scale)
DATASETS = {
    "digits": (load_digits, 8, 500, (100, 300, 1000), "divide by 16"),
    "breast_cancer": (load_breast_cancer, 4, 169, (100, 400), "standardise"),
}
METHODS = ("PCA", "AutoencoderBaseline", "GradientFlowEncoder")
NEURAL = {"hidden_layer_sizes": (64,), "loss": "mse", "batch_size": 32, "n_threads": 1}
STEP_BUDGET = 640
SEEDS = (0, 1)


def load_split(name, n_train, seed):
    loader, _, n_test, _, scale = DATASETS[name]
    X, y = loader(return_X_y=True)
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, y, test_size=n_test, stratify=y, random_state=seed
    )
    if n_train < len(X_pool):
        X_pool, _, y_pool, _ = train_test_split(
            X_pool, y_pool, train_size=n_train, stratify=y_pool, random_state=seed
        )
    if scale == "divide by 16":
        X_pool, X_test = X_pool / 16, X_test / 16
    else:
        scaler = StandardScaler().fit(X_pool)
        X_pool, X_test = scaler.transform(X_pool), scaler.transform(X_test)
    return (
        X_pool.astype(np.float32),
        X_test.astype(np.float32),
        y_pool,
        y_test,
    )


def epochs_for(n_train, step_budget):
    return max(1, round(step_budget / math.ceil(n_train / NEURAL["batch_size"])))


def make_encoder(method, n_components, seed, device, max_iter):
    if method == "PCA":
        return PCA(n_components=n_components, random_state=seed)
    cls = {
        "AutoencoderBaseline": AutoencoderBaseline,
        "GradientFlowEncoder": GradientFlowEncoder,
    }[method]
    return cls(
        n_components=n_components,
        **NEURAL,
        max_iter=max_iter,
        device=device,
        random_state=seed,
    )


def measure(encoder, X_train, X_test, y_train, y_test):
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The step budget may end before the loss levels off; the table shows
        # what it gives.
        warnings.simplefilter("ignore", ConvergenceWarning)
        encoder.fit(X_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    codes_test = encoder.transform(X_test)
    transform_seconds = time.perf_counter() - start
    codes_train = encoder.transform(X_train)
    error = float(np.mean((encoder.inverse_transform(codes_test) - X_test) ** 2))
    classifier = LogisticRegression(max_iter=5000).fit(codes_train, y_train)
    return {
        "fit_seconds": fit_seconds,
        "transform_ms_per_1k_rows": transform_seconds * 1e6 / len(X_test),
        "reconstruction_mse": error,
        "accuracy": float(classifier.score(codes_test, y_test)),
    }


def run(args):
    # The first optimizer imports torch's compiler stack (seconds of start-up),
    # which would otherwise be charged to the first timed fit.
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    rows = []
    for name, (_, n_components, _, sizes, _) in DATASETS.items():
        for n_train in sizes[:1] if args.quick else sizes:
            for seed in SEEDS[:1] if args.quick else SEEDS:
                X_train, X_test, y_train, y_test = load_split(name, n_train, seed)
                for method in METHODS:
                    epochs = epochs_for(len(X_train), args.step_budget)
                    encoder = make_encoder(
                        method, n_components, seed, args.device, epochs
                    )
                    row = {
                        "dataset": name,
                        "n_train": len(X_train),
                        "seed": seed,
                        "method": method,
                        "epochs": None if method == "PCA" else epochs,
                        **measure(encoder, X_train, X_test, y_train, y_test),
                    }
                    rows.append(row)
                    print(
                        f"{name} n={row['n_train']} seed={seed} {method}: "
                        f"fit {row['fit_seconds']:.2f} s, accuracy {row['accuracy']:.3f}, "
                        f"MSE {row['reconstruction_mse']:.4f}",
                        flush=True,
                    )
    return rows


def summary(rows):
    """Median (min, max) over the seeds of each number, per dataset, size and method."""
    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["n_train"], row["method"]), []).append(
            row
        )
    table = []
    for (dataset, n_train, method), group in groups.items():
        entry = {
            "dataset": dataset,
            "n_train": n_train,
            "method": method,
            "epochs": group[0]["epochs"],
            "n_seeds": len(group),
        }
        for key in (
            "fit_seconds",
            "transform_ms_per_1k_rows",
            "reconstruction_mse",
            "accuracy",
        ):
            values = np.array([row[key] for row in group])
            entry[key] = {
                "median": float(np.median(values)),
                "min": float(values.min()),
                "max": float(values.max()),
            }
        table.append(entry)
    return table


def _cell(stat, fmt):
    return f"{stat['median']:{fmt}} ({stat['min']:{fmt}}-{stat['max']:{fmt}})"


def markdown(report):
    info = report["machine"]
    lines = [
        "# Choosing an encoder: PCA, AutoencoderBaseline, GradientFlowEncoder",
        "",
        f"Generated by `python benchmarks/bench_choosing.py{' --quick' if report['quick'] else ''}` on {info['date']}: "
        f"{info['cpu_model']} ({info['n_cpus']} CPUs, shared with other jobs), torch {info['torch']} "
        f"with {info['torch_threads']} thread(s), scikit-learn {info['sklearn']}; load average at start "
        f"{info['load_average_start'][0]:.1f}, at end {info['load_average_end'][0]:.1f}; "
        f"{report['total_seconds']:.0f} s in all.",
        "",
        "Neural encoders: the demo's settings, decoder with one hidden layer of 64 units, "
        f"`loss='mse'`, batches of 32, one thread, {report['step_budget']} optimizer steps whatever the size (epochs in the table). digits: 8x8 images / 16, "
        "8 codes, 500 held-out rows; breast_cancer: 30 features standardised on the training rows, 4 codes, "
        "169 held-out rows. Accuracy: logistic regression fitted on the training codes, scored on the "
        "held-out codes. Reconstruction: held-out mean squared error per feature in the scaled space. "
        f"Each cell: median (min-max) over {len(report['seeds'])} seed(s) (split and initialisation).",
        "",
        "| data | training rows | method | epochs | fit s | transform ms / 1k rows | held-out reconstruction MSE | test accuracy |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for entry in report["summary"]:
        lines.append(
            f"| {entry['dataset']} | {entry['n_train']} | {entry['method']} | "
            f"{entry['epochs'] or '-'} | "
            f"{_cell(entry['fit_seconds'], '.2f')} | "
            f"{_cell(entry['transform_ms_per_1k_rows'], '.1f')} | "
            f"{_cell(entry['reconstruction_mse'], '.4f')} | "
            f"{_cell(entry['accuracy'], '.3f')} |"
        )
    lines += ["", "Ratios within one run (medians):", ""]
    by_key = {(e["dataset"], e["n_train"], e["method"]): e for e in report["summary"]}
    for dataset, n_train in sorted(
        {(e["dataset"], e["n_train"]) for e in report["summary"]}
    ):
        pca, ae, gfe = (by_key[dataset, n_train, m] for m in METHODS)
        lines.append(
            f"- {dataset}, {n_train} rows: GFE fit takes "
            f"{gfe['fit_seconds']['median'] / ae['fit_seconds']['median']:.1f}x the autoencoder's and "
            f"{gfe['fit_seconds']['median'] / max(pca['fit_seconds']['median'], 1e-6):.0f}x PCA's; "
            f"held-out MSE GFE / PCA {gfe['reconstruction_mse']['median'] / pca['reconstruction_mse']['median']:.2f}, "
            f"GFE / autoencoder {gfe['reconstruction_mse']['median'] / ae['reconstruction_mse']['median']:.2f}; "
            f"accuracy GFE - PCA {gfe['accuracy']['median'] - pca['accuracy']['median']:+.3f}, "
            f"GFE - autoencoder {gfe['accuracy']['median'] - ae['accuracy']['median']:+.3f}."
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: one size, one seed, 20 steps"
    )
    args = parser.parse_args(argv)
    args.step_budget = 20 if args.quick else STEP_BUDGET
    torch.set_num_threads(1)
    info = machine_info(args)
    start = time.perf_counter()
    rows = run(args)
    info["load_average_end"] = list(os.getloadavg())
    report = {
        "machine": info,
        "quick": args.quick,
        "step_budget": args.step_budget,
        "seeds": list(SEEDS[:1] if args.quick else SEEDS),
        "datasets": {
            name: {
                "n_components": d[1],
                "n_test": d[2],
                "n_train": list(d[3]),
                "scale": d[4],
            }
            for name, d in DATASETS.items()
        },
        "neural_settings": NEURAL,
        "total_seconds": time.perf_counter() - start,
        "rows": rows,
        "summary": summary(rows),
    }
    stem = "choosing_quick" if args.quick else "choosing"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(f"wrote {args.out / stem}.json and .md")


if __name__ == "__main__":
    main()
