"""GradientFlowEncoder: encoding semantics, diagnostics, adjoints, data efficiency."""

import copy
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.exceptions import FlowSolverError, FlowSolverWarning

from .test_solvers import OPTION_CASES

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]

# A short flow budget keeps the untrained toy decoder's flows quick.
SMALL = dict(
    n_components=2,
    hidden_layer_sizes=(8,),
    max_iter=3,
    device="cpu",
    random_state=0,
    max_flow_steps=100,
)


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(1).uniform(size=(30, 5))


@pytest.fixture(scope="module")
def fitted(X):
    return GradientFlowEncoder(**SMALL).fit(X)


def test_transform_is_row_independent_and_deterministic(fitted, X):
    codes = fitted.transform(X)
    np.testing.assert_array_equal(codes, fitted.transform(X))
    rows = np.vstack([fitted.transform(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(rows, codes, rtol=0, atol=1e-9)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(
        fitted.transform(X[order]), codes[order], rtol=0, atol=1e-9
    )


def test_fit_transform_equals_fit_then_transform(X):
    estimator = GradientFlowEncoder(**SMALL)
    np.testing.assert_array_equal(
        estimator.fit_transform(X), clone(estimator).fit(X).transform(X)
    )


def test_encoding_lowers_the_loss_below_its_start(fitted, X):
    diagnostics = fitted.flow_diagnostics(X)
    z0 = torch.zeros(len(X), 2, dtype=torch.float64)
    with torch.no_grad():
        start = ((fitted.decoder_(z0).numpy() - X) ** 2).mean(axis=1)
    assert (diagnostics.loss <= start).all()
    np.testing.assert_allclose(-diagnostics.loss, fitted.score_samples(X), rtol=1e-12)


@given(
    rows=arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.just(5)),
        elements=st.floats(-2, 3, allow_nan=False),
    )
)
def test_encoding_never_ends_above_its_start(fitted, rows):
    diagnostics = fitted.flow_diagnostics(rows)
    with torch.no_grad():
        start = (
            (
                fitted.decoder_(torch.zeros(len(rows), 2, dtype=torch.float64)).numpy()
                - rows
            )
            ** 2
        ).mean(axis=1)
    assert (diagnostics.loss <= start).all()


def test_flow_diagnostics_report_every_sample(fitted, X):
    diagnostics = fitted.flow_diagnostics(X, return_trajectory=True)
    np.testing.assert_array_equal(diagnostics.codes, fitted.transform(X))
    assert diagnostics.n_steps.shape == (len(X),)
    assert (diagnostics.n_fev > diagnostics.n_steps).all()
    assert set(diagnostics.status) <= {
        "converged",
        "stalled",
        "reached_tau",
        "max_steps",
    }
    assert "converged" in set(diagnostics.status)
    np.testing.assert_array_equal(
        diagnostics.converged, diagnostics.status != "max_steps"
    )
    assert len(diagnostics.trajectories) == len(X)
    times, codes, losses = diagnostics.trajectories[0]
    assert len(times) == diagnostics.n_steps[0] + 1
    np.testing.assert_allclose(codes[0], 0.0)
    np.testing.assert_allclose(codes[-1], diagnostics.codes[0])
    assert (np.diff(losses) <= 0).all()


def test_max_flow_steps_warns_with_the_parameter_name(fitted, X):
    capped = pickle.loads(pickle.dumps(fitted)).set_params(
        max_flow_steps=2, flow_tol=0.0
    )
    with pytest.warns(
        FlowSolverWarning, match="hit max_flow_steps=2 .* increase max_flow"
    ):
        capped.transform(X)
    capped.set_params(flow_solver="rk4", tau=10.0, step_size=1.0)
    with pytest.warns(FlowSolverWarning, match="10 steps are needed: lower tau"):
        capped.transform(X)


class _Overflowing(torch.nn.Module):
    """A decoder whose outputs overflow for codes beyond ``limit``."""

    def __init__(self, decoder, limit):
        super().__init__()
        self.decoder, self.limit = decoder, limit

    def forward(self, z):
        overflow = torch.where(z[:, :1] > self.limit, torch.inf, 0.0)
        return self.decoder(z) + overflow


def test_nonfinite_codes_raise_a_flow_error_naming_the_rows(fitted, X):
    broken = pickle.loads(pickle.dumps(fitted))
    broken.decoder_ = _Overflowing(broken.decoder_, limit=-1.0)  # z0 = 0 overflows
    with pytest.raises(
        FlowSolverError, match="non-finite codes or losses for 30 sample"
    ):
        broken.transform(X)


def test_a_diverging_row_does_not_affect_the_others(fitted, X):
    # Explicit Euler takes every step: rows whose flow crosses the limit blow up.
    euler = pickle.loads(pickle.dumps(fitted)).set_params(flow_solver="euler", tau=20.0)
    codes = euler.transform(X)
    limit = float(np.median(codes[:, 0]))
    path_maxima = np.array(
        [
            path[1][:, 0].max()
            for path in euler.flow_diagnostics(X, return_trajectory=True).trajectories
        ]
    )
    euler.decoder_ = _Overflowing(euler.decoder_, limit)
    diagnostics = euler.flow_diagnostics(X)
    crossed = path_maxima > limit
    assert crossed.any() and not crossed.all()
    assert (diagnostics.status[crossed] == "nonfinite").all()
    np.testing.assert_array_equal(diagnostics.codes[~crossed], codes[~crossed])
    with pytest.raises(FlowSolverError, match=f"for {crossed.sum()} sample"):
        euler.transform(X)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"flow_solver": "leapfrog"}, "'flow_solver' parameter"),
        ({"ode_order": 3}, "'ode_order' parameter"),
        ({"tau": 0.0}, "'tau' parameter"),
        ({"adjoint": "exact"}, "'adjoint' parameter"),
        ({"train_z0": "normal"}, "'train_z0' parameter"),
        ({"flow_solver_options": {"shrnk": 0.3}}, r"unknown key\(s\) \['shrnk'\]"),
        ({"adjoint": "full", "flow_solver": "dopri5"}, "adjoint='full' needs a solver"),
        ({"z0": [0.0, 1.0, 2.0]}, r"shape \(n_components,\) = \(2,\)"),
    ],
)
def test_invalid_flow_parameters(X, params, message):
    with pytest.raises(ValueError, match=message):
        GradientFlowEncoder(**SMALL).set_params(**params).fit(X)


@pytest.mark.parametrize("solver, key, value, error, message", OPTION_CASES)
def test_bad_solver_option_values_raise_in_fit(X, solver, key, value, error, message):
    estimator = GradientFlowEncoder(
        **SMALL, flow_solver=solver, tau=2.0, flow_solver_options={key: value}
    )
    with pytest.raises(error, match=message):
        estimator.fit(X)


@pytest.mark.parametrize("z0", [0.5, [0.1, -0.2]])
def test_custom_encoding_start(X, z0):
    estimator = GradientFlowEncoder(**SMALL, z0=z0).fit(X)
    _, codes, _ = estimator.flow_diagnostics(
        X[:1], return_trajectory=True
    ).trajectories[0]
    np.testing.assert_allclose(codes[0], np.broadcast_to(z0, (2,)))


STARTS = [[0.0, 0.0], [1.5, -1.0], [-2.0, 0.5]]


def _with_starts(fitted, z0):
    """The fitted model encoding from other starts (z0 is read at transform)."""
    return copy.deepcopy(fitted).set_params(z0=z0)


def test_several_starts_keep_each_rows_lowest_flow(fitted, X):
    single = [_with_starts(fitted, start) for start in STARTS]
    runs = [model.flow_diagnostics(X) for model in single]
    losses = np.stack([run.loss for run in runs])
    best = losses.argmin(axis=0)
    assert len(np.unique(best)) > 1  # the starts matter on this decoder
    multi = _with_starts(fitted, STARTS)
    diagnostics = multi.flow_diagnostics(X)
    expected = np.stack([run.codes for run in runs])[best, np.arange(len(X))]
    np.testing.assert_allclose(multi.transform(X), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(diagnostics.loss, losses.min(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(diagnostics.n_fev, sum(run.n_fev for run in runs))


@given(
    extra=arrays(
        np.float64,
        st.tuples(st.integers(1, 3), st.just(2)),
        elements=st.floats(-3, 3, allow_nan=False),
    )
)
def test_more_starts_never_end_higher(fitted, X, extra):
    """z0 stays the first start, so adding starts can only lower each row's loss."""
    multi = _with_starts(fitted, np.vstack([np.zeros((1, 2)), extra]))
    assert np.all(
        multi.flow_diagnostics(X).loss <= fitted.flow_diagnostics(X).loss + 1e-12
    )


def test_a_repeated_start_changes_nothing_but_the_cost(fitted, X):
    twice = _with_starts(fitted, [[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(
        twice.transform(X), fitted.transform(X), rtol=0, atol=1e-9
    )
    np.testing.assert_array_equal(
        twice.flow_diagnostics(X).n_fev, 2 * fitted.flow_diagnostics(X).n_fev
    )


def test_trajectories_start_at_each_rows_best_start(fitted, X):
    multi = _with_starts(fitted, STARTS)
    diagnostics = multi.flow_diagnostics(X[:6], return_trajectory=True)
    for codes, (_, path, _) in zip(diagnostics.codes, diagnostics.trajectories):
        assert path[0].tolist() in STARTS
        np.testing.assert_allclose(path[-1], codes, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "params",
    [
        {"z0": STARTS, "train_z0": "z0"},
        {"z0": STARTS, "adjoint": "full"},
        {"z0": STARTS, "train_z0": "z0", "adjoint": "full"},
        {"z0": STARTS, "distortion_weight": 1.0},
    ],
)
def test_several_starts_train_with_every_adjoint(X, params):
    estimator = GradientFlowEncoder(**{**SMALL, **params})
    codes = estimator.fit_transform(X)
    assert codes.shape == (len(X), 2) and np.isfinite(codes).all()
    assert all(np.isfinite(estimator.loss_curve_))


@pytest.mark.parametrize(
    "z0, message",
    [
        (np.zeros((3, 3)), r"\(n_starts, n_components\) = \(n_starts, 2\)"),
        (np.zeros((0, 2)), r"got shape \(0, 2\)"),
        (np.zeros((1, 1, 2)), r"got shape \(1, 1, 2\)"),
        ([[0.0, np.nan]], "z0 must be finite"),
    ],
)
def test_invalid_starts_raise(X, z0, message):
    with pytest.raises(ValueError, match=message):
        GradientFlowEncoder(**SMALL, z0=z0).fit(X)


@pytest.mark.parametrize(
    "params",
    [
        {"adjoint": "full"},
        {"adjoint": "full", "ode_order": 2},
        {"adjoint": "full", "flow_solver": "rk4", "tau": 5.0},
        {"flow_solver": "dopri5", "tau": 5.0, "max_iter": 1},
        {"train_z0": "z0"},
    ],
)
def test_training_variants_fit_and_encode(X, params):
    estimator = GradientFlowEncoder(
        **{**SMALL, **params, "max_iter": params.get("max_iter", 4)}
    )
    codes = estimator.fit_transform(X)
    assert codes.shape == (len(X), 2) and np.isfinite(codes).all()
    assert all(np.isfinite(estimator.loss_curve_))


def test_full_adjoint_changes_the_decoder_update(X):
    approximate = GradientFlowEncoder(**SMALL, adjoint="approximate").fit(X)
    full = GradientFlowEncoder(**SMALL, adjoint="full").fit(X)
    weight_a = approximate.decoder_[0].weight.detach()
    weight_f = full.decoder_[0].weight.detach()
    assert not torch.allclose(weight_a, weight_f)


@pytest.fixture(scope="module")
def digits():
    X = load_digits().data / 16
    return train_test_split(X, test_size=0.3, random_state=0)


def _held_out_mse(estimator, X_train, X_test):
    estimator.fit(X_train)
    return float(
        np.mean(
            (estimator.inverse_transform(estimator.transform(X_test)) - X_test) ** 2
        )
    )


@pytest.mark.slow
def test_gfe_beats_pca_on_digits(digits):
    X_train, X_test = digits
    gfe = _held_out_mse(
        GradientFlowEncoder(n_components=5, random_state=0), X_train, X_test
    )
    pca = _held_out_mse(PCA(n_components=5), X_train, X_test)
    assert gfe < pca


@pytest.mark.slow
def test_gfe_is_more_data_efficient_than_the_autoencoder(digits):
    X_train, X_test = digits
    X_small = X_train[:100]
    gfe = _held_out_mse(
        GradientFlowEncoder(n_components=5, random_state=0), X_small, X_test
    )
    ae = _held_out_mse(
        AutoencoderBaseline(n_components=5, random_state=0), X_small, X_test
    )
    assert gfe < ae


def test_adjoint_solves_use_the_solvers_adjoint_defaults(X, monkeypatch):
    from skgfe._solvers import FlowSolver

    seen = []
    original = FlowSolver.solve

    def spy(self, decoder, loss, y, z0, record=False):
        seen.append((record, dict(self.options)))
        return original(self, decoder, loss, y, z0, record=record)

    monkeypatch.setattr(FlowSolver, "solve", spy)
    GradientFlowEncoder(**{**SMALL, "max_iter": 1}, adjoint="full").fit(X)
    recorded = [opts["step_rule"] for record, opts in seen if record]
    assert recorded and set(recorded) == {"grow"}
    seen.clear()
    GradientFlowEncoder(
        **{**SMALL, "max_iter": 1},
        adjoint="full",
        flow_solver_options={"step_rule": "bb"},
    ).fit(X)
    assert seen and all(opts["step_rule"] == "bb" for _, opts in seen)
    seen.clear()
    GradientFlowEncoder(**{**SMALL, "max_iter": 1}).fit(X).transform(X)
    assert seen
    assert all(opts["step_rule"] == "bb" and not record for record, opts in seen)


def test_encoding_parameters_set_after_fit_apply_at_the_next_transform(fitted, X):
    encoder = pickle.loads(pickle.dumps(fitted))
    before = encoder.flow_diagnostics(X[:5])
    encoder.set_params(max_flow_steps=3, flow_tol=0.0)
    after = encoder.flow_diagnostics(X[:5])
    assert (after.n_fev <= 4).all() and (before.n_fev > 4).any()
    encoder.set_params(flow_solver_options={"patience": 0})
    with pytest.raises(ValueError, match=r"flow_solver_options\['patience'\]"):
        encoder.transform(X[:5])


@pytest.mark.parametrize("z0", [float("nan"), float("inf"), -np.inf])
def test_a_non_finite_float_z0_is_refused_in_fit(z0):
    X = np.random.default_rng(0).uniform(size=(10, 3))
    with pytest.raises(ValueError, match="z0 must be finite"):
        GradientFlowEncoder(z0=z0, max_iter=1).fit(X)


@pytest.mark.parametrize("params", [{"adjoint": "full"}, {"distortion_weight": 1.0}])
def test_explicit_lbfgs_cannot_be_replayed(params):
    X = np.random.default_rng(0).uniform(size=(10, 3))
    gfe = GradientFlowEncoder(
        flow_solver_options={"direction": "lbfgs"}, max_iter=1, **params
    )
    with pytest.raises(ValueError, match="does not follow the flow.*'auto'"):
        gfe.fit(X)


def test_transform_encodes_with_lbfgs_and_training_follows_the_flow():
    X = np.random.default_rng(0).uniform(size=(30, 4))
    settings = dict(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=2,
        device="cpu",
        random_state=0,
        max_flow_steps=200,
    )
    default = GradientFlowEncoder(**settings).fit(X)
    flow = GradientFlowEncoder(
        flow_solver_options={"direction": "gradient"}, **settings
    ).fit(X)
    for name, value in default.decoder_.state_dict().items():
        torch.testing.assert_close(
            value, flow.decoder_.state_dict()[name], rtol=0, atol=0
        )
    lbfgs = copy.deepcopy(default).set_params(
        flow_solver_options={"direction": "lbfgs"}
    )
    np.testing.assert_array_equal(default.transform(X), lbfgs.transform(X))
    assert not np.array_equal(default.transform(X), flow.transform(X))


def test_fixed_step_solver_at_the_defaults_stops_each_sample(fitted, X):
    # tau=1e4, step_size=1: the flows stop on flow_tol, not after 1000 steps.
    rk4 = pickle.loads(pickle.dumps(fitted)).set_params(
        flow_solver="rk4", max_flow_steps=1000
    )
    diagnostics = rk4.flow_diagnostics(X)
    # Flows along slow valleys still lower the loss by more than flow_tol per
    # step at step 1000 (where AMD's growing steps have long converged).
    assert set(diagnostics.status) == {"converged", "max_steps"}
    converged = diagnostics.status == "converged"
    assert converged.mean() > 0.5
    assert (diagnostics.n_steps[converged] < 1000).all()
    np.testing.assert_array_equal(diagnostics.flow_time, diagnostics.n_steps)
    rows = np.vstack([rk4.transform(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(rows, diagnostics.codes, rtol=0, atol=1e-9)
