"""Every parameter of every estimator: invalid values are rejected in fit.

The table below must name every parameter; a new parameter without an entry
fails ``test_the_table_covers_every_parameter``.
"""

import numpy as np
import pytest
from sklearn.base import clone

import skgfe

# parameter -> (an invalid value, a pattern the message must contain: the
# parameter's name and what it accepts)
SHARED = {
    "n_components": (0, "'n_components' parameter .* int in the range \\[1, inf\\)"),
    "decoder": (3, "'decoder' parameter .* callable or None"),
    "hidden_layer_sizes": ((8, 0), "hidden_layer_sizes must be a positive int"),
    "activation": ("swish", "'activation' parameter .* str among"),
    "loss": ("l1", "'loss' parameter .* str among"),
    "optimizer": ("lbfgs", "'optimizer' parameter .* str among"),
    "optimizer_params": ([0.9], "'optimizer_params' parameter .* 'dict' or None"),
    "learning_rate_init": (
        0.0,
        "'learning_rate_init' parameter .* range \\(0.0, inf\\)",
    ),
    "batch_size": (0, "'batch_size' parameter .* range \\[1, inf\\)"),
    "max_iter": (0, "'max_iter' parameter .* range \\[1, inf\\)"),
    "shuffle": ("yes", "'shuffle' parameter .* 'bool'"),
    "tol": (-1.0, "'tol' parameter .* range \\[0.0, inf\\)"),
    "early_stopping": ("yes", "'early_stopping' parameter .* 'bool'"),
    "validation_fraction": (
        1.0,
        "'validation_fraction' parameter .* range \\(0.0, 1.0\\)",
    ),
    "n_iter_no_change": (0, "'n_iter_no_change' parameter .* range \\[1, inf\\)"),
    "warm_start": ("yes", "'warm_start' parameter .* 'bool'"),
    "device": ("tpu", "device='tpu' is not a device; expected 'auto', 'cpu', 'cuda'"),
    "random_state": ("seed", "'random_state' parameter .* int"),
    "verbose": ("loud", "'verbose' parameter .* int"),
    "n_threads": (0, "'n_threads' parameter .* int in the range \\[1, inf\\) or a str"),
}
# The pair loss and the likelihood: the two estimators with a decoder network.
CODE_GEOMETRY_AND_DENSITY = {
    "binary_columns": ([5], "binary_columns has column index.*outside \\[0, 3\\)"),
    "distortion_weight": (
        -1.0,
        "'distortion_weight' parameter .* range \\[0.0, inf\\)",
    ),
    "bending_weight": (-1.0, "'bending_weight' parameter .* range \\[0.0, inf\\)"),
    "geodesic_sources": (-1, "'geodesic_sources' parameter .* range \\[0, inf\\)"),
    "scoring": ("density", "'scoring' parameter .* str among"),
    "prior": ("flow", "'prior' parameter .* str among .*GaussianMixture"),
    "density_weight": (-1.0, "'density_weight' parameter .* range \\[0.0, inf\\)"),
    "density_warmup": (-1, "'density_warmup' parameter .* range \\[0, inf\\)"),
    "logdet_method": ("lu", "'logdet_method' parameter .* str among"),
}
TABLES = {
    skgfe.AutoencoderBaseline: {
        **SHARED,
        **CODE_GEOMETRY_AND_DENSITY,
        "encoder": (3, "'encoder' parameter .* callable or None"),
    },
    skgfe.GradientFlowEncoder: {
        **SHARED,
        **CODE_GEOMETRY_AND_DENSITY,
        "ode_order": (3, "'ode_order' parameter .* range \\[1, 2\\]"),
        "flow_solver": ("rk45", "'flow_solver' parameter .* str among"),
        "flow_rate": (0.0, "'flow_rate' parameter .* range \\(0.0, inf\\)"),
        "tau": (-1.0, "'tau' parameter .* range \\(0.0, inf\\)"),
        "step_size": (0.0, "'step_size' parameter .* range \\(0.0, inf\\)"),
        "flow_tol": (-1e-3, "'flow_tol' parameter .* range \\[0.0, inf\\)"),
        "max_flow_steps": (0, "'max_flow_steps' parameter .* range \\[1, inf\\)"),
        "flow_solver_options": (
            {"grow_rate": 2},
            "flow_solver_options has unknown key.*'grow_rate'.*allowed keys",
        ),
        "z0": ("ones", "'z0' parameter .* str among \\{'zeros'\\}"),
        "train_z0": ("zeros", "'train_z0' parameter .* str among"),
        "adjoint": ("exact", "'adjoint' parameter .* str among"),
    },
    skgfe.OneBitAutoencoder: {
        **{name: SHARED[name] for name in SHARED if name not in ("decoder", "loss")},
        "decoder": ("mlp", "'decoder' parameter .* str among"),
        "encoder": ("pca", "'encoder' parameter .* str among"),
        "denoiser": ("wiener", "'denoiser' parameter .* str among"),
    },
}
CASES = [(cls, name) for cls, table in TABLES.items() for name in table]


@pytest.mark.parametrize("cls", list(TABLES), ids=lambda cls: cls.__name__)
def test_the_table_covers_every_parameter(cls):
    assert set(TABLES[cls]) == set(cls().get_params())


@pytest.mark.parametrize(
    "cls, name", CASES, ids=[f"{cls.__name__}-{name}" for cls, name in CASES]
)
def test_invalid_value_is_rejected_in_fit_naming_the_parameter(cls, name):
    value, message = TABLES[cls][name]
    estimator = cls(n_components=1, hidden_layer_sizes=(2,), max_iter=1)
    estimator.set_params(**{name: value})  # __init__ and set_params never validate
    with pytest.raises((ValueError, TypeError), match=message):
        clone(estimator).fit(np.random.default_rng(0).uniform(size=(6, 3)))
