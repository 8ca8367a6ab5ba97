"""partial_fit of every estimator: one pass per call, equal to fit where it should."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skgfe import AutoencoderBaseline, GradientFlowEncoder, OneBitAutoencoder
from skgfe.datasets import make_sparse_gaussian

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]

SMALL = dict(batch_size=16, device="cpu", random_state=0)

# Estimators whose every call is mini-batch updates on its rows (no closed form).
MINI_BATCH = {
    "gfe": GradientFlowEncoder(hidden_layer_sizes=(8,), **SMALL),
    "gfe-full-adjoint": GradientFlowEncoder(
        hidden_layer_sizes=(8,),
        adjoint="full",
        flow_solver="euler",
        tau=5.0,
        step_size=0.5,
        **SMALL,
    ),
    "gfe-second-order": GradientFlowEncoder(
        hidden_layer_sizes=(8,), ode_order=2, **SMALL
    ),
    "autoencoder": AutoencoderBaseline(hidden_layer_sizes=(8,), **SMALL),
}
ALL = {
    **MINI_BATCH,
    "one-bit-learned": OneBitAutoencoder(n_components=4, **SMALL),
    "one-bit-frame": OneBitAutoencoder(
        n_components=4, encoder="random_rotation", decoder="linear+denoiser", **SMALL
    ),
}


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).uniform(size=(88, 5))


def module_state(estimator):
    return {
        f"{name}.{key}": value.detach().clone()
        for name in estimator._module_names
        for key, value in getattr(estimator, name).state_dict().items()
    }


def assert_same_modules(a, b):
    state_a, state_b = module_state(a), module_state(b)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("estimator", ALL.values(), ids=ALL.keys())
def test_a_first_call_equals_fit_with_one_epoch(estimator, X, shuffle):
    fitted = clone(estimator).set_params(max_iter=1, shuffle=shuffle).fit(X)
    updated = clone(estimator).set_params(shuffle=shuffle).partial_fit(X)
    assert_same_modules(updated, fitted)
    assert updated.n_iter_ == 1
    assert updated.loss_curve_ == fitted.loss_curve_


@pytest.mark.parametrize("estimator", MINI_BATCH.values(), ids=MINI_BATCH.keys())
def test_calls_on_batch_aligned_parts_equal_one_epoch_of_fit_on_all(estimator, X):
    # 32 and 48 rows are whole batches of 16; the last part (8 rows) need not be.
    parts = np.split(X, [32, 80])
    fitted = clone(estimator).set_params(max_iter=1, shuffle=False).fit(X)
    updated = clone(estimator).set_params(shuffle=False)
    for part in parts:
        updated.partial_fit(part)
    assert_same_modules(updated, fitted)
    assert updated.n_iter_ == len(parts)
    assert len(updated.loss_curve_) == len(parts)


def test_a_fixed_frame_accumulates_its_closed_form_over_calls():
    # The closed form sums over 1,024-row slices; parts of 1,024 rows add the
    # same slices in the same order as fit on all rows.
    X = make_sparse_gaussian(2500, 20, sparsity=0.2, random_state=0)
    model = OneBitAutoencoder(
        8, encoder="random_rotation", decoder="linear+denoiser", **SMALL
    )
    fitted = clone(model).set_params(max_iter=1, shuffle=False).fit(X)
    updated = clone(model)
    for part in np.split(X, [1024, 2048]):
        updated.partial_fit(part)
    assert_same_modules(updated, fitted)
    np.testing.assert_array_equal(updated.transform(X), fitted.transform(X))


def test_the_optimizer_state_carries_over_between_calls(X):
    model = AutoencoderBaseline(hidden_layer_sizes=(8,), **SMALL).partial_fit(X)
    optimizer = model._optimizer
    first = optimizer.param_groups[0]["params"][0]
    steps = float(optimizer.state[first]["step"])
    model.partial_fit(X)
    assert model._optimizer is optimizer
    assert float(optimizer.state[first]["step"]) == 2 * steps


@pytest.mark.parametrize("estimator", MINI_BATCH.values(), ids=MINI_BATCH.keys())
def test_a_pickled_estimator_goes_on_as_the_original(estimator, X):
    # dask moves the estimator between processes between its partial_fit calls.
    first, second = np.split(X, [48])
    model = clone(estimator).partial_fit(first)
    moved = pickle.loads(pickle.dumps(model))
    assert_same_modules(moved.partial_fit(second), model.partial_fit(second))


def test_partial_fit_after_fit_goes_on_from_the_fitted_model(X):
    model = AutoencoderBaseline(hidden_layer_sizes=(8,), max_iter=3, **SMALL).fit(X)
    before = module_state(model)
    model.partial_fit(X)
    assert model.n_iter_ == 4
    assert len(model.loss_curve_) == 4
    assert any(not torch.equal(before[k], v) for k, v in module_state(model).items())


def test_a_changed_number_of_features_is_refused_by_count(X):
    model = GradientFlowEncoder(hidden_layer_sizes=(8,), **SMALL).partial_fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but .* expecting 5"):
        model.partial_fit(X[:, :4])


@pytest.mark.parametrize(
    "weights",
    [{"distortion_weight": 1.0}, {"bending_weight": 1.0}],
    ids=["distortion", "bending"],
)
def test_the_pair_loss_is_refused(X, weights):
    model = GradientFlowEncoder(hidden_layer_sizes=(8,), **weights, **SMALL)
    with pytest.raises(ValueError, match="partial_fit does not train the pair loss"):
        model.partial_fit(X)
    assert not hasattr(model, "decoder_")


def test_early_stopping_does_not_apply(X):
    model = AutoencoderBaseline(
        hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=1, **SMALL
    )
    for _ in range(3):
        model.partial_fit(X)
    assert model.n_iter_ == 3
    assert model.validation_scores_ == []


def test_a_diverging_call_restores_the_model_before_it(X):
    model = AutoencoderBaseline(
        hidden_layer_sizes=(8,), optimizer="sgd", **SMALL
    ).partial_fit(X)
    before = module_state(model)
    # partial_fit keeps its optimizer, so the step is raised there.
    model._optimizer.param_groups[0]["lr"] = 1e6
    with pytest.warns(Warning, match="best parameters seen were restored"):
        model.partial_fit(X * 100)
    assert model.n_iter_ == 1
    for key, value in module_state(model).items():
        assert torch.equal(value, before[key]), key


def test_gfe_learns_from_parts_with_missing_entries(X):
    holes = np.random.default_rng(1).random(X.shape) < 0.3
    holes[holes.all(axis=1), 0] = False
    X_missing = np.where(holes, np.nan, X)
    gfe = clone(MINI_BATCH["gfe"]).set_params(shuffle=False)
    for part in (X_missing[:48], X_missing[48:]):  # 48 rows: 3 batches of 16
        gfe.partial_fit(part)
    one_epoch = clone(MINI_BATCH["gfe"]).set_params(max_iter=1, shuffle=False)
    assert_same_modules(gfe, one_epoch.fit(X_missing))
    assert gfe.n_iter_ == 2 and np.isfinite(gfe.loss_curve_).all()
    assert np.isfinite(gfe.transform(X_missing)).all()
