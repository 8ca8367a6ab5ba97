"""Small fixed-seed fits whose outputs must not change under refactoring.

``python -m tests._reference_cases`` records the digests in
``tests/data/reference_results.json``; tests/test_reference_results.py
recomputes them and compares bit for bit. Record anew only for a change that
is meant to change results, and say so in the commit.
"""

import hashlib
import json
import pathlib
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits

from skgfe import AutoencoderBaseline, GradientFlowEncoder, OneBitAutoencoder
from skgfe.datasets import make_sparse_gaussian

RESULTS = pathlib.Path(__file__).parent / "data" / "reference_results.json"

_SMALL = dict(
    n_components=3,
    hidden_layer_sizes=(12,),
    max_iter=2,
    batch_size=16,
    random_state=0,
    device="cpu",
)


def _data():
    X = load_digits().data[:48] / 16
    return X.astype(np.float64)


def _pairs(n):
    first = np.arange(n - 1)
    return np.column_stack([first, first + 1])


def _digest(*arrays) -> str:
    hasher = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
        hasher.update(str(array.shape).encode())
        hasher.update(array.tobytes())
    return hasher.hexdigest()


def _outputs(estimator, X, **fit_params):
    estimator.fit(X, **fit_params)
    codes = estimator.transform(X)
    return _digest(
        codes,
        estimator.score_samples(X),
        estimator.loss_curve_,
        estimator.inverse_transform(codes),
    )


def _gfe(**params):
    return GradientFlowEncoder(**{**_SMALL, **params})


def _ae(**params):
    return AutoencoderBaseline(**{**_SMALL, **params})


def cases():
    """name -> zero-argument callable returning a digest."""
    X = _data()
    X32 = X.astype(np.float32)
    midpoints = (X[:-1] + X[1:]) / 2
    pair_fit = dict(pairs=_pairs(len(X)), midpoints=midpoints)
    starts = np.array([[0.0, 0.0, 0.0], [0.5, -0.5, 0.2]])

    def diagnostics():
        gfe = _gfe().fit(X)
        d = gfe.flow_diagnostics(X[:6], return_trajectory=True)
        return _digest(
            d.codes,
            d.loss,
            d.n_fev,
            d.n_steps,
            d.flow_time,
            *[np.concatenate([np.ravel(a) for a in path]) for path in d.trajectories],
        )

    return {
        "gfe_amd": lambda: _outputs(_gfe(), X),
        "gfe_amd_float32": lambda: _outputs(_gfe(), X32),
        "gfe_amd_grow": lambda: _outputs(
            _gfe(flow_solver_options={"step_rule": "grow"}), X
        ),
        "gfe_amd_gradient": lambda: _outputs(
            _gfe(flow_solver_options={"direction": "gradient"}), X
        ),
        "gfe_amd_order2": lambda: _outputs(_gfe(ode_order=2), X),
        "gfe_euler": lambda: _outputs(_gfe(flow_solver="euler", tau=5.0), X),
        "gfe_rk4_order2": lambda: _outputs(
            _gfe(flow_solver="rk4", tau=5.0, ode_order=2), X
        ),
        "gfe_midpoint": lambda: _outputs(_gfe(flow_solver="midpoint", tau=5.0), X),
        # Fixed steps at the default tau=1e4 that stop each sample on flow_tol.
        "gfe_rk4_stops": lambda: _outputs(_gfe(flow_solver="rk4", flow_tol=1e-3), X),
        "gfe_full_rk4_stops": lambda: _outputs(
            _gfe(flow_solver="rk4", flow_tol=1e-3, adjoint="full"), X
        ),
        "gfe_midpoint_order2_stops": lambda: _outputs(
            _gfe(flow_solver="midpoint", flow_tol=1e-3, ode_order=2), X
        ),
        "gfe_dopri5": lambda: _outputs(
            _gfe(flow_solver="dopri5", tau=3.0, max_iter=1, flow_tol=1e-3), X[:12]
        ),
        "gfe_full_amd": lambda: _outputs(_gfe(adjoint="full"), X),
        "gfe_full_rk4": lambda: _outputs(
            _gfe(adjoint="full", flow_solver="rk4", tau=4.0), X
        ),
        "gfe_full_order2": lambda: _outputs(_gfe(adjoint="full", ode_order=2), X),
        "gfe_pairs": lambda: _outputs(
            _gfe(distortion_weight=1.0, bending_weight=1.0), X, **pair_fit
        ),
        "gfe_geodesic": lambda: _outputs(
            _gfe(distortion_weight=1.0, geodesic_sources=3), X
        ),
        "gfe_likelihood": lambda: _outputs(
            _gfe(
                scoring="likelihood", prior="gmm", density_weight=0.1, density_warmup=0
            ),
            X,
        ),
        "gfe_starts": lambda: _outputs(_gfe(z0=starts, train_z0="z0"), X),
        "gfe_early_stopping": lambda: _outputs(
            _gfe(early_stopping=True, max_iter=3, optimizer="rmsprop"), X
        ),
        "gfe_diagnostics": diagnostics,
        "ae": lambda: _outputs(_ae(), X),
        "ae_bce": lambda: _outputs(_ae(loss="bce", optimizer="sgd"), X),
        "ae_pairs": lambda: _outputs(
            _ae(distortion_weight=1.0, bending_weight=0.5, geodesic_sources=2),
            X,
            **pair_fit,
        ),
        "ae_likelihood": lambda: _outputs(
            _ae(scoring="likelihood", density_weight=0.1, logdet_method="stochastic"), X
        ),
        "one_bit": lambda: _outputs(
            OneBitAutoencoder(
                8, decoder="linear+denoiser", max_iter=2, random_state=0, device="cpu"
            ),
            make_sparse_gaussian(40, 12, sparsity=0.2, random_state=0),
        ),
        "one_bit_frame": lambda: _outputs(
            OneBitAutoencoder(
                16,
                encoder="tight_frame",
                decoder="linear+denoiser",
                denoiser="learned",
                max_iter=2,
                random_state=0,
                device="cpu",
            ),
            make_sparse_gaussian(40, 12, sparsity=0.2, random_state=0),
        ),
    }


def compute():
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: case() for name, case in cases().items()}


if __name__ == "__main__":
    RESULTS.write_text(
        json.dumps(
            {"torch": torch.__version__, "digests": compute()}, indent=1, sort_keys=True
        )
    )
    print(f"wrote {RESULTS}")
