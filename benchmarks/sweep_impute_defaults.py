"""Sweep GradientFlowImputer's decoder size, code size and flow time (tau).

The defaults of ``skgfe.impute.GradientFlowImputer`` ('auto' sizes, tau) come
from this sweep. Each configuration is fitted on a table with 30 % of its
entries removed completely at random (masks seeded 100 + repeat, not the
seeds of bench_missing.py) and is judged by the imputer's own early-stopping
criterion: the squared error of held-out OBSERVED training entries
(``-best_validation_score_``, standardised units). The RMSE on the removed
entries is reported beside it, but it chose nothing.

    python benchmarks/sweep_impute_defaults.py             # about 15 min, 1 thread
    python benchmarks/sweep_impute_defaults.py --quick     # smoke test

Writes results/impute_defaults.{json,md}.
"""

import argparse
import itertools
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import machine_info
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine

from skgfe.impute import GradientFlowImputer

TABLES = {
    "wine": load_wine,
    "diabetes": load_diabetes,
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
}


def run(name, config, repeat, max_iter):
    X = TABLES[name]().data
    X = X[:, X.std(axis=0) > 0]
    rng = np.random.default_rng(100 + repeat)
    holes = rng.random(X.shape) < 0.3
    holes[holes.all(axis=1), 0] = False
    fraction, hidden, tau = config
    n_components = max(1, min(X.shape[1] - 1, round(fraction * X.shape[1])))
    imputer = GradientFlowImputer(
        n_components=n_components,
        hidden_layer_sizes=hidden,
        tau=tau,
        max_iter=max_iter,
        device="cpu",
        random_state=repeat,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imputed = imputer.fit_transform(np.where(holes, np.nan, X))
    seconds = time.perf_counter() - start
    rmse = float(np.sqrt(np.mean(((imputed - X) / X.std(axis=0))[holes] ** 2)))
    return {
        "table": name,
        "n_components_fraction": fraction,
        "n_components": n_components,
        "hidden_layer_sizes": list(hidden),
        "tau": tau,
        "tau_chosen": imputer.encoder_.tau,
        "repeat": repeat,
        "held_out_mse": -imputer.best_validation_score_,
        "rmse_missing": rmse,
        "epochs": imputer.n_iter_,
        "seconds": seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tables", default="wine,diabetes,breast_cancer,digits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--grid",
        choices=["full", "auto"],
        default="full",
        help="full: fixed flow times; auto: tau='auto' with a linear and a "
        "(64,) decoder (the runs for the larger tables)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tables = args.tables.split(",")
    if args.quick:
        grid, max_iter, repeats = [(1 / 3, (), 1.0)], 3, 1
    else:
        grid = list(
            itertools.product((1 / 6, 1 / 3, 1 / 2), [(), (16,)], (0.3, 1.0, 3.0))
        )
        max_iter, repeats = 200, 1
    if args.grid == "auto":
        # The chosen rules' neighbourhood, flow time chosen on held-out entries.
        grid = [(1 / 3, (), "auto"), (1 / 3, (64,), "auto")]
    rows = []
    for name in tables:
        for config, repeat in itertools.product(grid, range(repeats)):
            row = run(name, config, repeat, max_iter)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "impute_defaults" + ("_quick" if args.quick else "")
    name += "_auto" if args.grid == "auto" else ""
    (out / f"{name}.json").write_text(
        json.dumps({"machine": machine_info(args), "rows": rows}, indent=1)
    )
    lines = [
        "# GradientFlowImputer: decoder size, code size and tau",
        "",
        "30 % of the entries missing completely at random (masks seeded 100 + "
        "repeat); held-out MSE: the imputer's early-stopping score on held-out "
        "observed training entries (the selection criterion); RMSE: on the "
        "removed entries (reported, not used for the choice). Standardised "
        "units, 1 CPU thread.",
        "",
        "| table | n_components (fraction) | hidden | tau (encoding) | held-out MSE | "
        "RMSE missing | epochs | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['table']} | {row['n_components']} "
            f"({row['n_components_fraction']:.2f}) | {tuple(row['hidden_layer_sizes'])} "
            f"| {row['tau']} ({row['tau_chosen']}) | {row['held_out_mse']:.3f} | {row['rmse_missing']:.3f} "
            f"| {row['epochs']} | {row['seconds']:.1f} |"
        )
    lines += ["", "Best configuration per table by held-out MSE:", ""]
    for table in tables:
        best = min(
            (r for r in rows if r["table"] == table), key=lambda r: r["held_out_mse"]
        )
        lines.append(
            f"- {table}: n_components={best['n_components']}, hidden="
            f"{tuple(best['hidden_layer_sizes'])}, tau={best['tau']} (held-out MSE "
            f"{best['held_out_mse']:.3f}, RMSE {best['rmse_missing']:.3f})"
        )
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
