"""Benchmark the gradient-flow solvers that encode samples with a trained decoder.

Three ways to encode the same held-out samples from z0 = 0 are compared:

(a) skgfe's per-sample AMD (``solve(..., solver="amd")``), ``ode_order`` 1 and 2;
(b) a batch-shared AMD written here as a faithful reference of the authors'
    solver (``shared_amd`` in ``_authors_amd.py``; method.md section 3): one step
    size for the whole batch, a trial accepted only if every sample passes the
    test, three decoder passes per trial, the windowed stopping rule on the
    batch-mean loss;
(c) fixed-step RK4 (``solve(..., solver="rk4")``) on the first-order flow.

The "converged" loss l*_i of every sample is that of per-sample AMD with
flow_tol 1e-9 in float64. Two targets on the mean loss over the samples:

- ``loss``:   mean_i l_i <= 1.01 * mean_i l*_i   (within 1 % of the converged loss);
- ``excess``: mean_i l_i - L* <= 0.01 * (L(z0) - L*)   (99 % of the possible decrease).

For every method the stopping knob is swept (AMD: flow_tol, or a step budget
max_steps with flow_tol=0; batch-shared AMD: its eps_conv, or a trial budget;
RK4: step size and number of steps). The cheapest setting, in decoder
evaluations per sample, that reaches a target is then timed at batch sizes 1,
32 and 256 (repeats: median, min, max). The final loss of every method at its
default settings is reported too.

Run ``python benchmarks/bench_solvers.py`` (a few minutes) or ``--quick`` (a
smoke test); ``--device cuda`` on a GPU. Results: ``--out`` (default
``benchmarks/results/``), files ``solvers.json`` and ``solvers.md``; the text of
the Markdown comes from ``_solvers_report.py``.
"""

import os

# With the default (spinning) OpenMP wait policy, two torch threads on a busy
# 2-core machine were 10-20x slower per decoder pass than one in our runs; a
# passive wait removes that. It must be set before torch is imported; a value
# already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import copy
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).parent))
from _authors_amd import SHARED_DEFAULTS, shared_amd, value_and_grad
from _common import machine_info, sync, timed
from _solvers_report import METHODS, TARGETS, markdown

from skgfe import GradientFlowEncoder
from skgfe._losses import LOSSES
from skgfe._solvers import STATUS_NAMES, solve

TARGET_REL = 0.01
# Flow time for the reference and for the sweeps of step budgets and tolerances:
# effectively unlimited, so that a method is stopped by its own knob and not by
# tau (the estimator's default tau = 1e4 binds on slowly converging decoders).
FREE_TAU = 1e12

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def polish_lbfgs(decoder, loss, y, z, max_eval):
    """Minimise each row's loss further with L-BFGS from ``z`` (float64).

    The rows are independent, so L-BFGS on the sum of their losses minimises
    each one; it starts where the flow stopped, in the basin the flow is in.
    Returns the per-row losses and a summary of what the polish changed.
    """
    z = z.detach().clone().requires_grad_(True)
    with torch.no_grad():
        before = loss(decoder(z), y)
    if max_eval <= 0:
        return before, {"n_eval": 0, "max_code_change": 0.0, "mean_loss_drop": 0.0}
    opt = torch.optim.LBFGS(
        [z],
        lr=1.0,
        max_iter=max_eval,
        max_eval=max_eval,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    count = [0]

    def closure():
        opt.zero_grad()
        value = loss(decoder(z), y).sum()
        value.backward()
        count[0] += 1
        return value

    start = z.detach().clone()
    opt.step(closure)
    with torch.no_grad():
        after = loss(decoder(z), y)
    # Never let the polish make a row worse (L-BFGS on the sum could, in theory).
    after = torch.minimum(after, before)
    _, grad = value_and_grad(decoder, loss, z.detach(), y)
    return after, {
        "n_eval": count[0],
        "max_code_change": float((z.detach() - start).norm(dim=1).max()),
        "max_code_norm": float(start.norm(dim=1).max()),
        "mean_loss_drop": float((before - after).mean()),
        "max_grad_norm_after": float(grad.norm(dim=1).max()),
    }


def mean(x):
    """Mean of a tensor as a Python float, accumulated in float64."""
    return float(x.double().mean())


def batches(n, size):
    """Consecutive slices of at most ``size`` rows covering ``n`` rows."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def status_counts(status):
    """``{status name: count}`` of a SolveResult's per-row status codes."""
    codes, counts = np.unique(status.cpu().numpy(), return_counts=True)
    return {STATUS_NAMES[int(s)]: int(c) for s, c in zip(codes, counts, strict=True)}


# --------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------


def digits_problem(args):
    X = (load_digits().data / 16.0).astype(np.float32)
    perm = np.random.RandomState(0).permutation(len(X))
    n_test = 32 if args.quick else args.n_test
    X_test, X_train = X[perm[:n_test]], X[perm[n_test:]]
    if args.quick:
        X_train = X_train[:300]
    params = {
        "n_components": 5,
        "loss": "bce",
        "hidden_layer_sizes": (64,),
        "activation": "elu",
        "batch_size": 64,
        "learning_rate_init": 3e-3,
        "flow_tol": 1e-3,
        "max_flow_steps": 200,
        "max_iter": 1 if args.quick else 10,
    }
    if args.quick:
        grid = {
            "amd_tol": [1e-2, 1e-3, 1e-4, 1e-5],
            "amd_budget": [5, 10, 20, 40, 80],
            "shared_eps": [1e-4, 1e-5],
            "shared_budget": 300,
            "rk4_h": [50.0, 10.0],
            "rk4_steps": 100,
        }
        return {
            "name": "digits",
            "X_train": X_train,
            "X_test": X_test,
            "params": params,
            "batch_sizes": [1, 8, 32],
            "batch1_samples": 8,
            "rk4_default_samples": 0,
            "ref_max_steps": 2000,
            "grid": grid,
        }
    grid = {
        "amd_tol": [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6],
        "amd_budget": [
            5,
            8,
            10,
            12,
            15,
            20,
            25,
            30,
            40,
            50,
            60,
            80,
            100,
            130,
            160,
            200,
            250,
            320,
            400,
            500,
        ],
        "shared_eps": [1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6],
        "shared_budget": 2000,
        "rk4_h": [500.0, 200.0, 100.0, 50.0, 20.0, 10.0, 5.0, 2.0, 1.0],
        "rk4_steps": 500,
    }
    return {
        "name": "digits",
        "X_train": X_train,
        "X_test": X_test,
        "params": params,
        "batch_sizes": [1, 32, 256],
        "batch1_samples": args.batch1_samples,
        "rk4_default_samples": args.rk4_default_samples,
        "ref_max_steps": 20000,
        "grid": grid,
    }


def fmnist_problem(args):
    from skgfe.datasets import load_fashion_mnist

    n_train = 200 if args.quick else args.fmnist_train
    n_test = 16 if args.quick else args.fmnist_test
    try:
        X_train = load_fashion_mnist(
            subset="train", n_samples=n_train, return_X_y=True
        )[0].astype(np.float32)
        X_test = load_fashion_mnist(subset="test", n_samples=n_test, return_X_y=True)[
            0
        ].astype(np.float32)
    except (OSError, ValueError) as exc:
        print(f"[fmnist] skipped: Fashion-MNIST files not found ({exc})")
        return None
    # The paper's decoder 20-150-300-600-784 (ELU, logits out) and loss; trained
    # briefly with Adam rather than their RMSprop at batch 5.
    params = {
        "n_components": 20,
        "loss": "bce",
        "hidden_layer_sizes": (150, 300, 600),
        "activation": "elu",
        "batch_size": 64,
        "learning_rate_init": 1e-3,
        "flow_tol": 1e-3,
        "max_flow_steps": 100 if args.quick else 200,
        "max_iter": 1 if args.quick else args.fmnist_epochs,
    }
    if args.quick:
        grid = {
            "amd_tol": [1e-3, 1e-4],
            "amd_budget": [20, 80],
            "shared_eps": [1e-5],
            "shared_tau": 1e3,
            "shared_budget": 200,
            "rk4_h": [200.0],
            "rk4_steps": 50,
        }
        return {
            "name": "fmnist",
            "X_train": X_train,
            "X_test": X_test,
            "params": params,
            "batch_sizes": [1, 16],
            "batch1_samples": 2,
            "rk4_default_samples": 0,
            "ref_max_steps": 300,
            "grid": grid,
        }
    grid = {
        "amd_tol": [1e-4, 3e-5, 1e-5, 3e-6, 1e-6],
        "amd_budget": [100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500],
        "shared_eps": [1e-5],
        "shared_budget": 4000,
        "rk4_h": [50.0, 35.0, 25.0],
        "rk4_steps": 1000,
    }
    return {
        "name": "fmnist",
        "X_train": X_train,
        "X_test": X_test,
        "params": params,
        "batch_sizes": sorted({b for b in (1, 32, n_test) if b <= n_test}),
        "batch1_samples": args.fmnist_batch1_samples,
        "rk4_default_samples": 0,
        "ref_max_steps": 1000,
        "grid": grid,
    }


def train(problem, args):
    name, params = problem["name"], problem["params"]
    start = time.perf_counter()
    gfe = GradientFlowEncoder(random_state=0, device=args.device, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gfe.fit(problem["X_train"])
    seconds = time.perf_counter() - start
    print(
        f"[{name}] trained on {len(problem['X_train'])} samples in {seconds:.1f} s "
        f"({gfe.n_iter_} epochs, final training loss {gfe.loss_curve_[-1]:.4f})",
        flush=True,
    )
    decoder = gfe.decoder_.eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    info = {
        "train_seconds": seconds,
        "n_train": len(problem["X_train"]),
        "epochs": gfe.n_iter_,
        "train_loss": gfe.loss_curve_[-1],
        "estimator_params": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()
        },
    }
    return decoder, info


# --------------------------------------------------------------------------
# the benchmark of one problem: reference, sweeps, timings, defaults
# --------------------------------------------------------------------------


@dataclass
class Case:
    """A trained decoder, its loss and the held-out rows ``y``, encoded from ``z0``."""

    name: str
    decoder: torch.nn.Module
    loss: Callable
    y: torch.Tensor
    z0: torch.Tensor
    started: float

    def log(self, msg):
        elapsed = time.perf_counter() - self.started
        print(f"[{self.name} {elapsed:5.0f} s] {msg}", flush=True)


def rel(reference, mean_loss):
    """Mean loss relative to L*: (L - L*) / L*."""
    return (mean_loss - reference["L_star"]) / reference["L_star"]


def excess_frac(reference, mean_loss):
    """Share of the initial excess left: (L - L*) / (L(z0) - L*)."""
    return (mean_loss - reference["L_star"]) / (reference["L0"] - reference["L_star"])


def compute_reference(case, problem, args):
    """The converged loss L* and the two targets.

    Per-sample AMD at flow_tol 1e-9 and unlimited flow time in float64 (orders
    1 and 2), then L-BFGS from the order-1 end point, for flows that AMD has not
    finished in max_steps. Returns the ``reference`` record and the per-row
    converged losses l*_i.
    """
    dec64 = copy.deepcopy(case.decoder).double()
    y64, z064 = case.y.double(), case.z0.double()
    settings = {
        "solver": "amd",
        "tol": 1e-9,
        "tau": FREE_TAU,
        "max_steps": problem["ref_max_steps"],
    }
    ref = solve(dec64, case.loss, y64, z064, **settings)
    ref2 = solve(dec64, case.loss, y64, z064, ode_order=2, **settings)
    l_star, polish = polish_lbfgs(dec64, case.loss, y64, ref.z, args.polish_iter)
    L_star = mean(l_star)
    L0 = mean(case.loss(case.decoder(case.z0), case.y))
    targets = {
        "loss": (1 + TARGET_REL) * L_star,
        "excess": L_star + TARGET_REL * (L0 - L_star),
    }
    reference = {
        "L0": L0,
        "L_star": L_star,
        "targets": targets,
        "target_definitions": TARGETS,
        "ref_settings": f"per-sample AMD, ode_order=1, flow_tol=1e-9, "
        f"tau={FREE_TAU:g}, max_steps={problem['ref_max_steps']}, float64",
        "ref_evals_per_sample": mean(ref.n_fev),
        "ref_status": status_counts(ref.status),
        "ref_amd_mean_loss_before_polish": mean(ref.loss),
        "polish": polish,
        "ref_order2_mean_loss": mean(ref2.loss),
        "ref_order2_evals_per_sample": mean(ref2.n_fev),
        "order2_minus_order1_per_sample_max": float((ref2.loss - ref.loss).max()),
        "order2_minus_order1_per_sample_min": float((ref2.loss - ref.loss).min()),
    }
    case.log(
        f"L(z0)={L0:.5f}  L*={L_star:.5f} (AMD {mean(ref.loss):.5f} after "
        f"{reference['ref_evals_per_sample']:.0f} evals/sample, "
        f"{reference['ref_status']}; L-BFGS polish moved codes by <= "
        f"{polish['max_code_change']:.3g})  order-2 ref "
        f"{reference['ref_order2_mean_loss']:.5f}  targets: loss <= "
        f"{targets['loss']:.5f}, excess <= {targets['excess']:.5f}"
    )
    return reference, l_star


def amd_run(case, order, tol, max_steps, rows=slice(None)):
    """skgfe's per-sample AMD on ``rows`` with unlimited flow time."""
    return solve(
        case.decoder,
        case.loss,
        case.y[rows],
        case.z0[rows],
        ode_order=order,
        solver="amd",
        tol=tol,
        tau=FREE_TAU,
        max_steps=max_steps,
    )


def sweep_amd(case, order, grid, strict, max_steps):
    """Per-sample AMD of ``order``: a flow_tol sweep, then a step-budget sweep.

    The flow_tol sweep runs at ``max_steps``, the budget sweep at flow_tol = 0.
    Each stops at the first setting whose mean loss reaches ``strict`` (the lower
    target): tighter settings only cost more. Returns the entries.
    """

    def entry(knob, tol, steps):
        r = amd_run(case, order, tol, steps)
        return {
            "knob": knob,
            "flow_tol": tol,
            "max_steps": steps,
            "mean_loss": mean(r.loss),
            "evals": mean(r.n_fev),
            "max_evals": int(r.n_fev.max()),
            "mean_t": mean(r.t),
            "rejected_fraction": 1 - mean(r.n_steps) / mean(r.n_fev - 1),
        }

    entries = []
    for knob, settings in (
        ("flow_tol", [(tol, max_steps) for tol in grid["amd_tol"]]),
        ("max_steps", [(0.0, budget) for budget in grid["amd_budget"]]),
    ):
        for tol, steps in settings:
            entries.append(entry(knob, tol, steps))
            if entries[-1]["mean_loss"] <= strict:
                break
    return entries


def sweep_shared(case, b, grid, targets):
    """The authors' batch-shared AMD in batches of ``b`` rows.

    An eps_conv sweep at the authors' tau (stopped once the lower target is
    reached at eps_conv <= their default), then one run with a pure trial budget
    (eps_conv = 0, unlimited flow time) whose loss curve gives the fewest trials
    that reach each target. Returns the entries and the record of the authors'
    default settings.
    """
    strict = min(targets.values())
    shared_tau = grid.get("shared_tau", 1e4)  # the authors' tau, except in --quick
    entries = []
    default = None
    for eps in grid["shared_eps"]:
        r = shared_amd(
            case.decoder,
            case.loss,
            case.y,
            case.z0,
            group_size=b,
            eps_conv=eps,
            tau=shared_tau,
        )
        entries.append(
            {
                "knob": "eps_conv",
                "eps_conv": eps,
                "max_trials": None,
                "tau": shared_tau,
                "mean_loss": mean(r["loss"]),
                "evals": mean(r["n_fev"]),
                "max_evals": int(r["n_fev"].max()),
                "forced_per_batch": mean(r["forced"]),
            }
        )
        if eps == SHARED_DEFAULTS["eps_conv"]:
            default = entries[-1]
        if entries[-1]["mean_loss"] <= strict and eps <= SHARED_DEFAULTS["eps_conv"]:
            break
    if default is None:
        r = shared_amd(
            case.decoder, case.loss, case.y, case.z0, group_size=b, tau=shared_tau
        )
        default = {
            "mean_loss": mean(r["loss"]),
            "evals": mean(r["n_fev"]),
            "forced_per_batch": mean(r["forced"]),
        }
    # A pure trial budget (eps_conv = 0): the loss after k trials, for every k.
    r = shared_amd(
        case.decoder,
        case.loss,
        case.y,
        case.z0,
        group_size=b,
        eps_conv=0.0,
        tau=FREE_TAU,
        max_trials=grid["shared_budget"],
        record_curve=True,
        stop_below=strict,
    )
    curve = r["curve"].double().cpu().numpy()
    for value in targets.values():
        hits = np.flatnonzero(curve <= value)
        if hits.size:
            k = int(hits[0]) + 1
            entries.append(
                {
                    "knob": "max_trials",
                    "eps_conv": 0.0,
                    "max_trials": k,
                    "tau": FREE_TAU,
                    "mean_loss": float(curve[k - 1]),
                    "evals": 1 + 3 * k,
                }
            )
    trials = max(1, int(r["trials"].sum()))
    entries.append(
        {
            "knob": "max_trials",
            "eps_conv": 0.0,
            "max_trials": len(curve),
            "tau": FREE_TAU,
            "mean_loss": float(curve[-1]),
            "evals": 1 + 3 * len(curve),
            "budget_run": True,
            "mean_t": mean(r["t"]),
            "rejected_fraction": 1 - float(r["accepted"].sum()) / trials,
        }
    )
    return entries, default


def sweep_rk4(case, grid, targets):
    """Fixed-step RK4: one recorded run per step size in ``grid["rk4_h"]``.

    A run of ``cap`` steps gives the loss after every number of steps, hence the
    fewest steps that reach each target; once one step size reaches the lower
    target, larger step budgets cannot win and the cap shrinks. Returns the
    entries.
    """
    strict = min(targets.values())
    entries = []
    cap = grid["rk4_steps"]
    for h in grid["rk4_h"]:
        r = solve(
            case.decoder,
            case.loss,
            case.y,
            case.z0,
            solver="rk4",
            step_size=h,
            tau=h * cap,
            max_steps=cap,
            record=True,
        )
        # records[k].loss is the loss before step k: keep those after 1..cap steps.
        losses = [rec.loss.double().mean() for rec in r.trajectory.records[1:]]
        curve = torch.stack([*losses, r.loss.double().mean()]).cpu().numpy()
        entries.append(
            {
                "knob": "steps",
                "step_size": h,
                "steps": len(curve),
                "tau": h * len(curve),
                "mean_loss": float(curve[-1]),
                "evals": 4 * len(curve) + 1,
                "budget_end": True,
            }
        )
        for value in targets.values():
            hits = np.flatnonzero(np.isfinite(curve) & (curve <= value))
            if hits.size:
                k = int(hits[0]) + 1
                entries.append(
                    {
                        "knob": "steps",
                        "step_size": h,
                        "steps": k,
                        "tau": h * k,
                        "mean_loss": float(curve[k - 1]),
                        "evals": 4 * k + 1,
                    }
                )
                if value == strict:
                    cap = min(cap, k)
    return entries


def cheapest(entries, value):
    """The entry with the fewest evaluations whose mean loss is <= ``value``."""
    ok = [e for e in entries if np.isfinite(e["mean_loss"]) and e["mean_loss"] <= value]
    return min(ok, key=lambda e: e["evals"]) if ok else None


def choose(sweeps, shared_sweeps, targets):
    """Per target, the cheapest swept setting of every method and batch size."""
    return {
        key: {
            "amd1": cheapest(sweeps["amd1"], value),
            "amd2": cheapest(sweeps["amd2"], value),
            "rk4": cheapest(sweeps["rk4"], value),
            **{f"shared_b{b}": cheapest(e, value) for b, e in shared_sweeps.items()},
        }
        for key, value in targets.items()
    }


def encode(case, key, setting, b, rows):
    """Encode ``rows`` in consecutive batches of ``b`` rows with one method.

    Returns the codes, the losses and the evaluations per row.
    """
    parts = []
    for s in batches(rows.stop - rows.start, b):
        part = slice(s.start + rows.start, s.stop + rows.start)
        if key in ("amd1", "amd2"):
            order = int(key[-1])
            r = amd_run(case, order, setting["flow_tol"], setting["max_steps"], part)
            parts.append((r.z, r.loss, r.n_fev))
        elif key == "shared":
            kwargs = {"eps_conv": setting["eps_conv"], "tau": setting["tau"]}
            if setting["max_trials"] is not None:
                kwargs["max_trials"] = setting["max_trials"]
            r = shared_amd(
                case.decoder, case.loss, case.y[part], case.z0[part], **kwargs
            )
            parts.append((r["z"], r["loss"], r["n_fev"]))
        else:
            r = solve(
                case.decoder,
                case.loss,
                case.y[part],
                case.z0[part],
                solver="rk4",
                step_size=setting["step_size"],
                tau=setting["tau"],
                max_steps=setting["steps"],
            )
            parts.append((r.z, r.loss, r.n_fev))
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


def warm_up(case, batch_sizes, device):
    """First calls of every code path (allocations, autograd set-up)."""
    for order in (1, 2):
        amd_run(case, order, 0.0, 3, slice(0, batch_sizes[-1]))
    shared_amd(case.decoder, case.loss, case.y, case.z0, max_trials=3)
    solve(
        case.decoder, case.loss, case.y, case.z0, solver="rk4", step_size=1.0, tau=3.0
    )
    sync(device)


def time_chosen(case, problem, chosen, reference, args, device):
    """Time each method's cheapest setting per target at every batch size.

    Batch 1 is timed on the first ``batch1_samples`` rows only: its cost per
    sample is the Python overhead of each trial, the same for every sample.
    Returns the timing records and the codes, by (target, method, batch size).
    """
    n = case.y.shape[0]
    timings, codes = [], {}
    for target in args.timed_targets:
        for b in problem["batch_sizes"]:
            m = min(n, problem["batch1_samples"]) if b == 1 else n
            rows = slice(0, m)
            for key, label in METHODS.items():
                setting = chosen[target][f"shared_b{b}" if key == "shared" else key]
                base = {
                    "target": target,
                    "method": key,
                    "label": label,
                    "batch_size": b,
                }
                if setting is None:
                    case.log(
                        f"{target} b={b} {label}: no swept setting reaches the "
                        "target; not timed"
                    )
                    timings.append({**base, "reached_target": False})
                    continue
                seconds, (z, final_loss, fev) = timed(
                    lambda key=key, setting=setting, b=b, rows=rows: encode(
                        case, key, setting, b, rows
                    ),
                    device,
                    args.repeats,
                    args.max_config_seconds,
                )
                per_sample = [s / m for s in seconds]
                codes[(target, key, b)] = z
                rec = {
                    **base,
                    "reached_target": True,
                    "setting": setting,
                    "n_samples_timed": m,
                    "mean_loss": setting["mean_loss"],
                    "rel_to_L_star": rel(reference, setting["mean_loss"]),
                    "fraction_of_initial_excess": excess_frac(
                        reference, setting["mean_loss"]
                    ),
                    "evals_per_sample": setting["evals"],
                    "mean_loss_timed_rows": mean(final_loss),
                    "evals_per_sample_timed_rows": mean(fev),
                    "sec_per_sample_median": statistics.median(per_sample),
                    "sec_per_sample_min": min(per_sample),
                    "sec_per_sample_max": max(per_sample),
                    "sec_per_sample_all": per_sample,
                    "repeats": len(per_sample),
                }
                timings.append(rec)
                case.log(
                    f"{target:6s} b={b:4d} {label:28s} evals/sample "
                    f"{setting['evals']:7.1f}  ms/sample "
                    f"{1e3 * rec['sec_per_sample_median']:8.3f} "
                    f"[{1e3 * rec['sec_per_sample_min']:.3f}, "
                    f"{1e3 * rec['sec_per_sample_max']:.3f}]  mean loss "
                    f"{setting['mean_loss']:.5f} ({100 * rec['rel_to_L_star']:+.2f} % "
                    "of L*)"
                )
    return timings, codes


def batch_checks(codes, timed_targets, batch_sizes):
    """Per-sample AMD must give the same codes whatever the batch size."""
    checks = {}
    first, last = batch_sizes[0], batch_sizes[-1]
    for target in timed_targets:
        for key in ("amd1", "amd2"):
            small, big = (target, key, first), (target, key, last)
            if small in codes and big in codes:
                z_small = codes[small]
                diff = (z_small - codes[big][: z_small.shape[0]]).abs().max()
                name = f"{key}_{target}_max_abs_code_diff_batch{first}_vs_batch{last}"
                checks[name] = float(diff)
    return checks


def run_defaults(case, problem, reference, l_star, default_shared, shared_tau, device):
    """Every method at its default settings, all rows in one batch.

    Per-sample AMD at the estimator's defaults; the authors' AMD from its
    eps_conv sweep; RK4 (step 1, tau 1e4) on the first ``rk4_default_samples``
    rows only, as it costs 40,001 decoder passes per sample.
    """
    defaults = []

    def add(key, settings, r, extra=None):
        loss = mean(r.loss)
        defaults.append(
            {
                "method": key,
                "label": METHODS[key],
                "settings": settings,
                "mean_loss": loss,
                "rel_to_L_star": rel(reference, loss),
                "fraction_of_initial_excess": excess_frac(reference, loss),
                "evals_per_sample": mean(r.n_fev),
                "status": status_counts(r.status),
                **(extra or {}),
            }
        )

    for order in (1, 2):
        r = solve(
            case.decoder, case.loss, case.y, case.z0, ode_order=order, solver="amd"
        )
        add(
            f"amd{order}", "flow_tol=1e-4, max_flow_steps=1000, step_size=1, tau=1e4", r
        )
    for b, e in default_shared.items():
        defaults.append(
            {
                "method": "shared",
                "label": f"batch-shared AMD, batch {b}",
                "settings": "authors' config: sigma 1e-5, dt_max 10, dt_min 1, "
                "n_shrink 20, dt_jump 10, p 0.98, eps_conv 1e-5, "
                f"tau {shared_tau:g}",
                "mean_loss": e["mean_loss"],
                "rel_to_L_star": rel(reference, e["mean_loss"]),
                "fraction_of_initial_excess": excess_frac(reference, e["mean_loss"]),
                "evals_per_sample": e["evals"],
                "batch_size": b,
                "forced_acceptances_per_batch": e["forced_per_batch"],
            }
        )
    m = min(case.y.shape[0], problem["rk4_default_samples"])
    if not m:
        defaults.append(
            {
                "method": "rk4",
                "label": METHODS["rk4"],
                "skipped": True,
                "settings": "step_size=1, tau=1e4 (10,000 steps): not run here "
                "(40,001 decoder passes per sample)",
            }
        )
        return defaults
    y, z0 = case.y[:m], case.z0[:m]
    start = time.perf_counter()
    r = solve(
        case.decoder,
        case.loss,
        y,
        z0,
        solver="rk4",
        step_size=1.0,
        tau=1e4,
        max_steps=10_000,
    )
    sync(device)
    seconds = time.perf_counter() - start
    # Compared with L* and L(z0) of the same rows, not of all rows.
    rows_ref = {"L_star": mean(l_star[:m]), "L0": mean(case.loss(case.decoder(z0), y))}
    add(
        "rk4",
        "step_size=1, tau=1e4 (10,000 steps); compared with L* of the same rows",
        r,
        {
            "n_samples": m,
            "seconds_per_sample": seconds / m,
            "rel_to_L_star": rel(rows_ref, mean(r.loss)),
            "fraction_of_initial_excess": excess_frac(rows_ref, mean(r.loss)),
        },
    )
    return defaults


def run_problem(problem, decoder, args):
    """Reference, sweeps, timings of the cheapest settings and defaults of one problem.

    Returns the problem's record of ``solvers.json``.
    """
    device = torch.device(args.device)
    y = torch.as_tensor(problem["X_test"], device=device)
    n, d = y.shape[0], problem["params"]["n_components"]
    case = Case(
        name=problem["name"],
        decoder=decoder,
        loss=LOSSES[problem["params"]["loss"]][0],
        y=y,
        z0=torch.zeros(n, d, device=device, dtype=y.dtype),
        started=time.perf_counter(),
    )
    grid, batch_sizes = problem["grid"], problem["batch_sizes"]

    reference, l_star = compute_reference(case, problem, args)
    targets = reference["targets"]
    strict = min(targets.values())  # the lower mean loss: reached last

    sweeps = {
        f"amd{order}": sweep_amd(case, order, grid, strict, args.amd_max_steps)
        for order in (1, 2)
    }
    case.log("per-sample AMD sweeps done")
    shared_sweeps, default_shared = {}, {}
    for b in batch_sizes:
        shared_sweeps[b], default_shared[b] = sweep_shared(case, b, grid, targets)
        case.log(f"batch-shared AMD sweep, batch {b} done")
    sweeps["shared"] = {str(b): e for b, e in shared_sweeps.items()}
    sweeps["rk4"] = sweep_rk4(case, grid, targets)
    case.log("RK4 sweep done")

    chosen = choose(sweeps, shared_sweeps, targets)
    warm_up(case, batch_sizes, device)
    timings, codes = time_chosen(case, problem, chosen, reference, args, device)
    checks = batch_checks(codes, args.timed_targets, batch_sizes)
    shared_tau = grid.get("shared_tau", 1e4)
    defaults = run_defaults(
        case, problem, reference, l_star, default_shared, shared_tau, device
    )
    case.log("defaults done")

    return {
        "problem": case.name,
        "n_test": n,
        "n_components": d,
        "batch_sizes": batch_sizes,
        "reference": reference,
        "chosen": chosen,
        "timings": timings,
        "defaults": defaults,
        "checks": checks,
        "sweeps": sweeps,
        "seconds": time.perf_counter() - case.started,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--device", default="cpu", help="'cpu' (default) or 'cuda'")
    parser.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results"),
        help="results directory (default: benchmarks/results)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (2)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timing repeats (3; 1 with --quick)"
    )
    parser.add_argument(
        "--max-config-seconds",
        type=float,
        default=30.0,
        help="fewer repeats (at least 1) for a setting whose repeats would "
        "take longer than this",
    )
    parser.add_argument(
        "--timed-targets",
        default="loss",
        help="targets whose cheapest settings are timed: 'loss', 'excess' "
        "or 'loss,excess' (default 'loss'; the others get an "
        "evaluations-only table)",
    )
    parser.add_argument(
        "--n-test", type=int, default=256, help="digits held-out samples"
    )
    parser.add_argument(
        "--batch1-samples",
        type=int,
        default=32,
        help="digits rows timed at batch size 1",
    )
    parser.add_argument(
        "--rk4-default-samples",
        type=int,
        default=32,
        help="digits rows encoded by RK4 at its default 10,000 steps",
    )
    parser.add_argument("--no-fmnist", action="store_true", help="skip Fashion-MNIST")
    parser.add_argument(
        "--polish-iter",
        type=int,
        default=None,
        help="L-BFGS evaluations that polish the reference codes "
        "(2000; 100 with --quick)",
    )
    parser.add_argument("--fmnist-train", type=int, default=1500)
    parser.add_argument("--fmnist-epochs", type=int, default=2)
    parser.add_argument("--fmnist-test", type=int, default=16)
    parser.add_argument("--fmnist-batch1-samples", type=int, default=4)
    parser.add_argument(
        "--amd-max-steps",
        type=int,
        default=5000,
        help="max_steps of the per-sample AMD flow_tol sweep",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.polish_iter is None:
        args.polish_iter = 100 if args.quick else 2000
    args.timed_targets = [t for t in args.timed_targets.split(",") if t]
    if not set(args.timed_targets) <= set(TARGETS):
        parser.error(f"--timed-targets must be among {sorted(TARGETS)}")
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")

    info = machine_info(args)
    print("machine:", json.dumps(info), flush=True)
    start = time.perf_counter()
    results = []
    makers = [digits_problem] + ([] if args.no_fmnist else [fmnist_problem])
    for make in makers:
        problem = make(args)
        if problem is None:
            continue
        decoder, train_info = train(problem, args)
        res = run_problem(problem, decoder, args)
        res["training"] = train_info
        results.append(res)
        print(f"[{problem['name']}] done in {res['seconds']:.0f} s", flush=True)
    info["load_average_end"] = list(os.getloadavg())
    info["total_seconds"] = time.perf_counter() - start

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": info,
        "args": vars(args),
        "targets": TARGETS,
        "shared_amd_defaults": SHARED_DEFAULTS,
        "results": results,
    }
    (out / "solvers.json").write_text(
        json.dumps(payload, indent=1, default=float) + "\n"
    )
    md = markdown(results, info, args)
    (out / "solvers.md").write_text(md)
    print()
    print(md)
    print(
        f"total {info['total_seconds']:.0f} s; wrote {out / 'solvers.json'} and "
        f"{out / 'solvers.md'}"
    )


if __name__ == "__main__":
    sys.exit(main())
