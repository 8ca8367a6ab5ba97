"""Imputation of scikit-learn's bundled tables: GradientFlowImputer against sklearn.

For every table (breast_cancer, wine, diabetes, digits, and a noisy Swiss roll
as a manifold case) and every pattern of missing entries (10 %, 30 %, 50 %
missing completely at random, MCAR; and one missing-not-at-random pattern,
MNAR: in every column, entries above the column's 75th percentile go missing
with probability 0.6), each imputer fills the holes of the whole table
(fit_transform, as scikit-learn's imputers are used) and is scored by:

- RMSE on the missing entries, each column in units of its standard deviation
  in the complete table (so 1.0 is about what the column means give under
  MCAR, and numbers of different columns and tables compare);
- the downstream score of ``Pipeline(imputer, StandardScaler, model)`` under
  5-fold cross-validation on the table with holes (the imputer is refitted in
  every fold): accuracy of LogisticRegression on the classification tables, R^2
  of Ridge on diabetes and of a 10-nearest-neighbours regressor of the roll's
  angle on the Swiss roll (a linear model cannot read an angle off a roll);
- the time of fit_transform (1 CPU thread).

Imputers: SimpleImputer (mean), KNNImputer (5 neighbours), IterativeImputer
(BayesianRidge, 10 rounds), "IterativeImputer + AE" (IterativeImputer fills the
table, a linear AutoencoderBaseline with the code size of GFE's 'auto' rule
(the decoder GFE uses too), early stopping on held-out rows, is trained on the
standardised filled table, and its reconstruction replaces the filled-in
entries: the autoencoder needs complete rows, so this is the fair way to give
it the same table), and GradientFlowImputer with its defaults
(``random_state`` = repeat). Nothing is tuned on the removed entries: the GFE
imputer chooses its flow time and stops training on held-out OBSERVED entries.

    python benchmarks/bench_missing.py --patterns mcar30       # RMSE, time
    python benchmarks/bench_missing.py --append --patterns mcar10,mcar50,mnar
    python benchmarks/bench_missing.py --append --what downstream --patterns mcar30
    python benchmarks/bench_missing.py --quick                 # smoke test

Writes results/missing.{json,md}; the JSON is rewritten after every cell, so
an interrupted run keeps what it measured.
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import machine_info
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_wine,
    make_swiss_roll,
)
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skgfe import AutoencoderBaseline
from skgfe._impute import auto_n_components
from skgfe.impute import GradientFlowImputer

PATTERNS = ("mcar10", "mcar30", "mcar50", "mnar")
METHODS = ("mean", "knn", "iterative", "iterative+ae", "gfe")


def load_table(name):
    """X without constant columns, y, and the downstream model."""
    if name == "swiss_roll":
        X, y = make_swiss_roll(n_samples=1000, noise=0.5, random_state=0)
        model = KNeighborsRegressor(n_neighbors=10)
    else:
        loader = {
            "breast_cancer": load_breast_cancer,
            "wine": load_wine,
            "diabetes": load_diabetes,
            "digits": load_digits,
        }[name]
        X, y = loader(return_X_y=True)
        model = Ridge() if name == "diabetes" else LogisticRegression(max_iter=2000)
    return X[:, X.std(axis=0) > 0], y, model


def make_holes(X, pattern, seed):
    rng = np.random.default_rng(seed)
    if pattern == "mnar":
        high = X > np.percentile(X, 75, axis=0)
        holes = high & (rng.random(X.shape) < 0.6)
    else:
        holes = rng.random(X.shape) < int(pattern[4:]) / 100
    # Every row keeps an observed entry (sklearn's imputers and GFE's both
    # handle empty rows, but an empty row says nothing about the method).
    empty = np.flatnonzero(holes.all(axis=1))
    holes[empty, rng.integers(X.shape[1], size=empty.size)] = False
    return holes


class IterativeAutoencoderImputer(TransformerMixin, BaseEstimator):
    """IterativeImputer, then an autoencoder's reconstruction of the holes."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y=None):
        self.iterative_ = IterativeImputer(random_state=self.random_state).fit(X)
        filled = self.iterative_.transform(X)
        self.scaler_ = StandardScaler().fit(filled)
        n, d = filled.shape
        self.autoencoder_ = AutoencoderBaseline(
            n_components=auto_n_components(n, d),
            hidden_layer_sizes=(),
            learning_rate_init=1e-2,
            early_stopping=True,
            device="cpu",
            random_state=self.random_state,
        ).fit(self.scaler_.transform(filled))
        return self

    def transform(self, X):
        holes = np.isnan(X)
        standardised = self.scaler_.transform(self.iterative_.transform(X))
        autoencoder = self.autoencoder_
        decoded = autoencoder.inverse_transform(autoencoder.transform(standardised))
        return np.where(holes, self.scaler_.inverse_transform(decoded), X)


def make_imputer(method, seed):
    return {
        "mean": lambda: SimpleImputer(),
        "knn": lambda: KNNImputer(),
        "iterative": lambda: IterativeImputer(random_state=seed),
        "iterative+ae": lambda: IterativeAutoencoderImputer(random_state=seed),
        "gfe": lambda: GradientFlowImputer(device="cpu", random_state=seed),
    }[method]()


def downstream_score(imputer, X_missing, y, model, seed):
    if isinstance(model, LogisticRegression):
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    else:
        folds = KFold(5, shuffle=True, random_state=seed)
    pipeline = make_pipeline(clone(imputer), StandardScaler(), clone(model))
    return float(cross_val_score(pipeline, X_missing, y, cv=folds).mean())


def markdown(results, info):
    cells = results["cells"]
    lines = [
        "# Imputation of scikit-learn's tables: GradientFlowImputer against sklearn",
        "",
        f"Machine: {info['cpu_model']}, {info['n_cpus']} cores shared with other "
        "jobs, 1 torch thread (OMP_NUM_THREADS=1); "
        f"sklearn {info['sklearn']}, torch {info['torch']}; {info['date']}. "
        "Script: benchmarks/bench_missing.py (its docstring has the design).",
        "",
        "RMSE on the missing entries in units of each column's standard "
        "deviation (mean over repeats, the spread in brackets is the range); "
        "**bold**: the lowest of the row. Downstream: 5-fold cross-validated "
        "accuracy (classification) or R^2 (diabetes: Ridge; swiss_roll: "
        "10-nearest-neighbours regression of the angle).",
        "",
    ]
    for pattern in PATTERNS:
        rows = [c for c in cells if c["pattern"] == pattern]
        if not rows and not any(
            d["pattern"] == pattern for d in results.get("downstream", [])
        ):
            continue
        lines += [f"## {pattern}", "", "| table | " + " | ".join(METHODS) + " |"]
        lines.append("|---" * (len(METHODS) + 1) + "|")
        tables = dict.fromkeys(c["table"] for c in rows)
        for table in tables:
            means = {}
            text = {}
            for method in METHODS:
                found = [
                    c for c in rows if c["table"] == table and c["method"] == method
                ]
                if not found:
                    text[method] = "not run"
                    continue
                rmse = [v for c in found for v in c["rmse"]]
                means[method] = np.mean(rmse)
                spread = f" [{min(rmse):.3f}, {max(rmse):.3f}]" if len(rmse) > 1 else ""
                text[method] = f"{np.mean(rmse):.3f}{spread}"
            best = min(means, key=means.get)
            text[best] = f"**{text[best]}**"
            lines.append(f"| {table} | " + " | ".join(text[m] for m in METHODS) + " |")
        lines.append("")
        timed = [c for c in rows if c.get("seconds")]
        if timed:
            lines += [
                "Seconds per fit_transform (mean over repeats):",
                "",
                "| table | " + " | ".join(METHODS) + " |",
                "|---" * (len(METHODS) + 1) + "|",
            ]
            for table in tables:
                entries = []
                for method in METHODS:
                    found = [
                        c for c in rows if c["table"] == table and c["method"] == method
                    ]
                    seconds = [v for c in found for v in c["seconds"]]
                    entries.append(f"{np.mean(seconds):.2f}" if seconds else "not run")
                lines.append(f"| {table} | " + " | ".join(entries) + " |")
            lines.append("")
        scored = [
            {**d, "downstream": d["score"]}
            for d in results.get("downstream", [])
            if d["pattern"] == pattern
        ]
        if scored:
            lines += [
                "Downstream score (5-fold CV, one split seed):",
                "",
                "| table | " + " | ".join(METHODS) + " |",
                "|---" * (len(METHODS) + 1) + "|",
            ]
            for table in dict.fromkeys(c["table"] for c in scored):
                entries = []
                for method in METHODS:
                    found = [
                        c["downstream"]
                        for c in scored
                        if c["table"] == table and c["method"] == method
                    ]
                    entries.append(f"{found[0]:.3f}" if found else "not run")
                lines.append(f"| {table} | " + " | ".join(entries) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables", default="breast_cancer,wine,diabetes,digits,swiss_roll"
    )
    parser.add_argument("--patterns", default=",".join(PATTERNS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--what",
        choices=["rmse", "downstream"],
        default="rmse",
        help="rmse: RMSE and time over --repeats masks; downstream: the "
        "cross-validated downstream score on the mask of repeat 0",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--append", action="store_true", help="add to missing.json")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "missing_quick" if args.quick else "missing"
    tables = args.tables.split(",")
    if args.quick:
        tables, args.repeats = ["wine"], 1
    info = machine_info(args)
    results = {"machine": info, "cells": [], "downstream": []}
    if args.append and (out / f"{name}.json").exists():
        results = json.loads((out / f"{name}.json").read_text())
        results.setdefault("more_machines", []).append(info)
    for pattern in args.patterns.split(","):
        for table in tables:
            X, y, model = load_table(table)
            for method in args.methods.split(","):
                key = {"table": table, "pattern": pattern, "method": method}
                if args.what == "downstream":
                    holes = make_holes(X, pattern, seed=0)
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        score = downstream_score(
                            make_imputer(method, 0),
                            np.where(holes, np.nan, X),
                            y,
                            model,
                            seed=0,
                        )
                    record = {**key, "score": score}
                    record["seconds"] = time.perf_counter() - start
                    print(json.dumps(record), flush=True)
                    _replace(results, "downstream", record)
                else:
                    cell = measure_rmse(X, pattern, method, args.repeats)
                    print(json.dumps({**key, **cell}), flush=True)
                    _replace(results, "cells", {**key, **cell})
                results["machine"]["load_average_end"] = list(os.getloadavg())
                (out / f"{name}.json").write_text(json.dumps(results, indent=1))
                (out / f"{name}.md").write_text(markdown(results, info))


def _replace(results, field, record):
    """Put ``record`` in ``results[field]`` in place of the one of its cell."""
    key = ("table", "pattern", "method")
    results[field] = [
        r
        for r in results.setdefault(field, [])
        if tuple(r[k] for k in key) != tuple(record[k] for k in key)
    ] + [record]


def measure_rmse(X, pattern, method, repeats):
    cell = {"rmse": [], "seconds": []}
    for repeat in range(repeats):
        holes = make_holes(X, pattern, seed=repeat)
        imputer = make_imputer(method, repeat)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imputed = imputer.fit_transform(np.where(holes, np.nan, X))
        cell["seconds"].append(time.perf_counter() - start)
        error = ((imputed - X) / X.std(axis=0))[holes]
        cell["rmse"].append(float(np.sqrt(np.mean(error**2))))
        cell["missing_fraction"] = float(holes.mean())
        if method == "gfe":
            cell.setdefault("gfe", []).append(
                {
                    "epochs": imputer.n_iter_,
                    "n_components": imputer.n_components_,
                    "tau": imputer.encoder_.tau,
                }
            )
    return cell


if __name__ == "__main__":
    main()
