"""Behaviour every estimator shares through the base: run on both estimators."""

import pickle
import warnings
from functools import cache, partial

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out_pandas,
)

import skgfe._base
from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.exceptions import DeviceWarning

SMALL = dict(
    n_components=2, hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0
)
# A short flow budget keeps the untrained toy decoders' flows quick.
ESTIMATORS = [AutoencoderBaseline, partial(GradientFlowEncoder, max_flow_steps=100)]

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).uniform(size=(40, 6))


@pytest.fixture(params=ESTIMATORS, ids=["AutoencoderBaseline", "GradientFlowEncoder"])
def estimator(request):
    return request.param(**SMALL)


@pytest.fixture
def fitted(estimator, X):
    return estimator.fit(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_is_dtype_out(estimator, X, dtype):
    X = X.astype(dtype)
    codes = estimator.fit(X).transform(X)
    assert codes.dtype == dtype
    assert estimator.inverse_transform(codes).dtype == dtype
    assert estimator.decoder_[0].weight.dtype == skgfe._utils.torch_dtype(dtype)


def test_same_seed_same_model_and_global_rng_untouched(estimator, X):
    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    first = clone(estimator).fit(X).transform(X)
    second = clone(estimator).fit(X).transform(X)
    np.testing.assert_array_equal(first, second)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)


def test_other_seed_other_model(estimator, X):
    first = clone(estimator).fit(X).transform(X)
    second = clone(estimator).set_params(random_state=1).fit(X).transform(X)
    assert not np.allclose(first, second)


def test_inference_does_not_depend_on_its_batch_size(fitted, X, monkeypatch):
    codes = fitted.transform(X)
    scores = fitted.score_samples(X)
    monkeypatch.setattr(skgfe._base, "INFERENCE_BATCH_SIZE", 7)
    np.testing.assert_allclose(fitted.transform(X), codes, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fitted.score_samples(X), scores, rtol=0, atol=1e-12)


def test_score_is_minus_mean_reconstruction_loss(fitted, X):
    reconstruction = fitted.inverse_transform(fitted.transform(X))
    per_sample = ((reconstruction - X) ** 2).mean(axis=1)
    np.testing.assert_allclose(fitted.score_samples(X), -per_sample, rtol=1e-10)
    assert fitted.score(X) == pytest.approx(-per_sample.mean())


def test_bce_reconstructions_are_probabilities(estimator, X):
    estimator.set_params(loss="bce").fit(X)
    reconstruction = estimator.inverse_transform(estimator.transform(X))
    assert ((reconstruction > 0) & (reconstruction < 1)).all()
    with pytest.raises(ValueError, match=r"loss='bce' needs data in \[0, 1\]"):
        clone(estimator).fit(X * 3)


def test_pickle_round_trip_is_exact_and_stores_cpu_state(fitted, X):
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    state = fitted.__getstate__()
    assert state["device_"] == "cpu"
    assert "_optimizer" not in state
    # A warm start after unpickling rebuilds the optimizer and goes on.
    restored.set_params(warm_start=True, max_iter=1).fit(X)
    assert restored.n_iter_ == fitted.n_iter_ + 1


def test_cuda_pickle_loads_on_cpu_only_machine(fitted, monkeypatch):
    state = fitted.__getstate__()
    state["device_"] = "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = type(fitted).__new__(type(fitted))
    with pytest.warns(DeviceWarning, match="moved to the CPU"):
        restored.__setstate__(state)
    assert restored.device_ == torch.device("cpu")


@pytest.mark.parametrize(
    "device, message",
    [
        ("cuda", "torch.cuda.is_available\\(\\) is False"),
        ("tpu", "is not a device"),
        ("meta", "is not supported"),
    ],
)
def test_bad_device_is_rejected_in_fit(estimator, X, device, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=message):
        estimator.set_params(device=device).fit(X)


def test_auto_device_resolves_in_fit_only(estimator, X, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    estimator.set_params(device="auto")
    assert estimator.get_params()["device"] == "auto"
    estimator.fit(X)
    assert estimator.device_ == torch.device("cpu")
    assert estimator.device == "auto"


BAD_INPUTS = {
    "nan": (np.full((5, 6), np.nan), ValueError, "NaN"),
    "inf": (np.full((5, 6), np.inf), ValueError, "infinity"),
    "huge": (
        np.full((5, 6), 1e30),
        ValueError,
        "values up to 1e\\+30 .* at most 1e\\+15",
    ),
    "empty": (np.zeros((0, 6)), ValueError, "0 sample"),
    "1-D": (np.zeros(6), ValueError, "Expected 2D array"),
    "3-D": (np.zeros((2, 3, 6)), ValueError, "dim 3"),
    "strings": (np.array([["a"] * 6] * 3), ValueError, "convert|numeric"),
    "objects": (
        np.array([[object()] * 6] * 3),
        (ValueError, TypeError),
        "float|number",
    ),
    "complex": (np.ones((3, 6)) * 1j, ValueError, "Complex data not supported"),
    "sparse": (sp.csr_matrix(np.eye(6)), TypeError, "dense data is required"),
    "wrong width": (
        np.zeros((3, 5)),
        ValueError,
        "X has 5 features, but .* expecting 6",
    ),
}
DATA_METHODS = ["transform", "score_samples", "score", "fit_transform"]


@pytest.mark.parametrize("method", DATA_METHODS)
@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gives_clear_errors(fitted, name, method):
    bad_X, error, message = BAD_INPUTS[name]
    if name == "wrong width" and method == "fit_transform":
        # A fresh fit may change the width; a warm-started one may not.
        fitted.set_params(warm_start=True)
    with pytest.raises(error, match=message):
        getattr(fitted, method)(bad_X)


@pytest.mark.parametrize("name", ["nan", "inf", "huge", "1-D", "complex", "sparse"])
def test_bad_codes_to_inverse_transform(fitted, name):
    codes, error, message = BAD_INPUTS[name]
    codes = codes[..., :2] if not sp.issparse(codes) else sp.csr_matrix(np.eye(2))
    with pytest.raises(error, match=message):
        fitted.inverse_transform(codes)


def test_wrong_widths_are_rejected(fitted, X):
    with pytest.raises(ValueError, match="X has 5 features, but .* is expecting 6"):
        fitted.transform(X[:, :5])
    with pytest.raises(ValueError, match="n_components=2"):
        fitted.inverse_transform(X[:, :3])


def test_mismatched_column_names_are_rejected(estimator, X):
    pd = pytest.importorskip("pandas")
    estimator.fit(pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]))
    renamed = pd.DataFrame(X, columns=[f"y{i}" for i in range(6)])
    with pytest.raises(ValueError, match="feature names should match"):
        estimator.transform(renamed)


def test_one_sample_and_one_feature_work(estimator, X):
    assert np.isfinite(clone(estimator).fit(X[:1]).transform(X[:1])).all()
    assert np.isfinite(clone(estimator).fit(X[:, :1]).transform(X[:, :1])).all()


class _InterruptAfter:
    """Stands in for ``_train_batch``: raises KeyboardInterrupt on call ``n``."""

    def __init__(self, train_batch, n):
        self.train_batch, self.n, self.calls = train_batch, n, 0

    def __call__(self, *args):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self.train_batch(*args)


def test_interrupted_fit_keeps_the_last_completed_epoch(estimator, X):
    one_epoch = clone(estimator).set_params(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one_epoch.fit(X)
    batches_per_epoch = -(-X.shape[0] // estimator.batch_size)
    # Interrupt in the middle of the second epoch.
    estimator._train_batch = _InterruptAfter(
        estimator._train_batch, batches_per_epoch + 1
    )
    with pytest.warns(UserWarning, match="interrupted.*n_iter_=1"):
        estimator.fit(X)
    assert estimator.n_iter_ == 1 and len(estimator.loss_curve_) == 1
    np.testing.assert_array_equal(estimator.transform(X), one_epoch.transform(X))
    del estimator._train_batch
    estimator.set_params(warm_start=True).fit(X)
    assert estimator.n_iter_ == 4


def test_inference_moves_one_batch_at_a_time_to_the_device(fitted, X, monkeypatch):
    monkeypatch.setattr(skgfe._base, "INFERENCE_BATCH_SIZE", 7)
    seen = []
    encode = fitted._encode_batch
    fitted._encode_batch = lambda batch: seen.append(batch.shape[0]) or encode(batch)
    fitted.transform(np.tile(X, (3, 1)))
    assert max(seen) == 7 and sum(seen) == 3 * X.shape[0]


def test_max_iter_gives_convergence_warning_and_n_iter(estimator, X):
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        estimator.fit(X)
    assert estimator.n_iter_ == 3
    assert len(estimator.loss_curve_) == 3


def test_early_stopping_tracks_validation_and_stops(estimator, X):
    estimator.set_params(early_stopping=True, max_iter=200, n_iter_no_change=2, tol=1e9)
    estimator.fit(X)
    # The first epoch improves on nothing; then n_iter_no_change epochs fail to.
    assert estimator.n_iter_ == 3
    assert len(estimator.validation_scores_) == estimator.n_iter_
    assert estimator.best_validation_score_ == max(estimator.validation_scores_)


def test_training_lowers_the_loss(estimator, X):
    estimator.set_params(max_iter=30, learning_rate_init=1e-2).fit(X)
    assert estimator.loss_curve_[-1] < estimator.loss_curve_[0]


def test_warm_start_continues(estimator, X):
    estimator.set_params(warm_start=True).fit(X)
    decoder = estimator.decoder_
    estimator.fit(X)
    assert estimator.n_iter_ == 6
    assert len(estimator.loss_curve_) == 6
    assert estimator.decoder_ is decoder


def test_verbose_prints_one_line_per_epoch(estimator, X, capsys):
    estimator.set_params(verbose=1).fit(X)
    lines = [line for line in capsys.readouterr().out.splitlines() if "Epoch" in line]
    assert len(lines) == 3 and "loss=" in lines[0]


def test_verbose_two_shows_a_progress_bar(estimator, X, capsys):
    estimator.set_params(verbose=2).fit(X)
    assert "epoch" in capsys.readouterr().err


def test_user_decoder_is_copied_not_trained_in_place(estimator, X):
    decoder = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6)
    )
    before = [p.detach().clone() for p in decoder.parameters()]
    estimator.set_params(decoder=decoder).fit(X)
    assert estimator.decoder_ is not decoder
    for b, p in zip(before, decoder.parameters()):
        assert torch.equal(b, p)
    assert estimator.decoder_[0].weight.dtype == torch.float64


def test_decoder_factory_is_seeded(estimator, X):
    def factory(n_components, n_features):
        return torch.nn.Linear(n_components, n_features)

    first = clone(estimator).set_params(decoder=factory).fit(X).transform(X)
    second = clone(estimator).set_params(decoder=factory).fit(X).transform(X)
    np.testing.assert_array_equal(first, second)
    with pytest.raises(TypeError, match="decoder must be a torch.nn.Module"):
        clone(estimator).set_params(decoder=lambda k, d: "not a module").fit(X)


def test_optimizer_class_and_params(estimator, X):
    estimator.set_params(
        optimizer=torch.optim.RMSprop, optimizer_params={"alpha": 0.9, "eps": 1e-6}
    ).fit(X)
    group = estimator._optimizer.param_groups[0]
    assert isinstance(estimator._optimizer, torch.optim.RMSprop)
    assert group["alpha"] == 0.9 and group["lr"] == estimator.learning_rate_init


def test_divergent_training_restores_finite_weights(estimator, X):
    estimator.set_params(max_iter=20, learning_rate_init=1e6, optimizer="sgd")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            estimator.fit(X * 1e3)
        except FloatingPointError as error:
            assert "lower learning_rate_init" in str(error)
            return
    for p in estimator.decoder_.parameters():
        assert torch.isfinite(p).all()


def test_pipeline_and_grid_search(estimator, X):
    pipeline = make_pipeline(MinMaxScaler(), estimator)
    search = GridSearchCV(
        pipeline, {f"{type(estimator).__name__.lower()}__n_components": [1, 3]}, cv=2
    )
    search.fit(X)
    assert search.best_estimator_.transform(X).shape[1] in (1, 3)


def test_feature_names_and_pandas_output(fitted, X):
    pd = pytest.importorskip("pandas")
    name = type(fitted).__name__.lower()
    assert list(fitted.get_feature_names_out()) == [f"{name}0", f"{name}1"]
    fitted.set_output(transform="pandas")
    frame = fitted.transform(pd.DataFrame(X, columns=[f"x{i}" for i in range(6)]))
    assert list(frame.columns) == [f"{name}0", f"{name}1"]


@pytest.mark.parametrize(
    "check",
    [
        check_set_output_transform_pandas,
        check_transformer_get_feature_names_out_pandas,
        check_dataframe_column_names_consistency,
    ],
)
def test_extra_sklearn_checks(estimator, check):
    pytest.importorskip("pandas")
    check(type(estimator).__name__, estimator)


# ------------------------------------------------------------- properties


@cache
def _fitted_model(index, dtype_name):
    X = np.random.default_rng(0).uniform(size=(40, 6)).astype(dtype_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ESTIMATORS[index](**SMALL).fit(X)


_rows = arrays(
    np.float64,
    st.tuples(st.integers(1, 12), st.just(6)),
    elements=st.floats(-3, 3, allow_nan=False),
)


@given(
    rows=_rows,
    index=st.sampled_from([0, 1]),
    dtype_name=st.sampled_from(["float32", "float64"]),
)
def test_transform_shape_dtype_and_finiteness(rows, index, dtype_name):
    model = _fitted_model(index, dtype_name)
    codes = model.transform(rows.astype(dtype_name))
    assert codes.shape == (rows.shape[0], 2) and codes.dtype == np.dtype(dtype_name)
    assert np.isfinite(codes).all() and np.isfinite(model.score_samples(rows)).all()
    reconstructions = model.inverse_transform(codes)
    assert reconstructions.shape == rows.shape and np.isfinite(reconstructions).all()


@given(rows=_rows, index=st.sampled_from([0, 1]), data=st.data())
def test_transform_is_invariant_to_subsets_and_order(rows, index, data):
    model = _fitted_model(index, "float64")
    codes = model.transform(rows)
    order = data.draw(st.permutations(range(rows.shape[0])))
    subset = sorted(
        data.draw(st.sets(st.sampled_from(range(rows.shape[0])), min_size=1))
    )
    np.testing.assert_allclose(model.transform(rows[order]), codes[order], atol=1e-9)
    np.testing.assert_allclose(model.transform(rows[subset]), codes[subset], atol=1e-9)


@settings(max_examples=5)
@given(seed=st.integers(0, 2**31 - 2), index=st.sampled_from([0, 1]))
def test_same_seed_fits_are_identical(seed, index):
    X = np.random.default_rng(1).uniform(size=(12, 4))
    params = {**SMALL, "max_iter": 2, "random_state": seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = ESTIMATORS[index](**params).fit(X)
        second = ESTIMATORS[index](**params).fit(X)
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    np.testing.assert_array_equal(first.loss_curve_, second.loss_curve_)


def test_optimizer_params_the_optimizer_rejects(estimator, X):
    estimator.set_params(optimizer="sgd", optimizer_params={"momentun": 0.9})
    with pytest.raises(TypeError, match="could not be built with optimizer_params"):
        estimator.fit(X)


_FIT_IN_A_FRESH_PROCESS = """
import hashlib, warnings, numpy as np, torch
torch.set_num_threads(1)
from skgfe import AutoencoderBaseline, GradientFlowEncoder
X = np.random.default_rng(0).uniform(size=(40, 6))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for cls in (AutoencoderBaseline, GradientFlowEncoder):
        codes = cls(n_components=2, hidden_layer_sizes=(8,), max_iter=2,
                    random_state=0, device="cpu").fit_transform(X)
        print(hashlib.sha256(codes.tobytes()).hexdigest())
"""


def test_same_seed_gives_identical_results_across_processes():
    import subprocess
    import sys

    runs = [
        subprocess.run(
            [sys.executable, "-c", _FIT_IN_A_FRESH_PROCESS],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and len(runs[0].split()) == 2


def test_fit_and_transform_run_in_torch_deterministic_mode(estimator, X):
    torch.use_deterministic_algorithms(True)
    try:
        codes = estimator.fit(X).transform(X)
    finally:
        torch.use_deterministic_algorithms(False)
    assert np.isfinite(codes).all()


def test_transform_allocates_no_copy_of_its_input(fitted):
    import tracemalloc

    X_large = np.random.default_rng(2).uniform(size=(50_000, 6))
    fitted.transform(X_large[:10])
    tracemalloc.start()
    try:
        fitted.transform(X_large)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Host allocations stay below half the input: no full-size temporary.
    assert peak < X_large.nbytes / 2


# ----------------------------------------------- faults during fit (issue 17)


def test_an_interrupt_before_the_first_epoch_leaves_the_estimator_unfitted(
    estimator, X
):
    from sklearn.exceptions import NotFittedError

    estimator._train_batch = _InterruptAfter(estimator._train_batch, 1)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(X)
    del estimator._train_batch
    assert not [name for name in vars(estimator) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        estimator.transform(X)
    # warm_start on the unfitted estimator is a fresh fit, not an AttributeError.
    estimator.set_params(warm_start=True).fit(X)
    assert estimator.n_iter_ == estimator.max_iter


def test_an_interrupt_during_initialisation_leaves_the_estimator_unfitted(
    estimator, X, monkeypatch
):
    from sklearn.exceptions import NotFittedError

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(estimator), "_make_optimizer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        estimator.fit(X)
    monkeypatch.undo()
    with pytest.raises(NotFittedError):
        estimator.transform(X)


def test_an_interrupt_between_bookkeeping_and_snapshot_is_consistent(
    estimator, X, monkeypatch
):
    """n_iter_ and the parameters always describe the same completed epoch."""
    one_epoch = clone(estimator).set_params(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one_epoch.fit(X)
    record = type(estimator)._record_progress
    calls = []

    def interrupt_in_second(self, *args):
        calls.append(1)
        improved = record(self, *args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return improved

    monkeypatch.setattr(type(estimator), "_record_progress", interrupt_in_second)
    with pytest.warns(UserWarning, match="interrupted.*n_iter_=1"):
        estimator.fit(X)
    monkeypatch.undo()
    assert estimator.n_iter_ == 1 and estimator.loss_curve_ == one_epoch.loss_curve_
    assert estimator.best_loss_ == one_epoch.best_loss_
    np.testing.assert_array_equal(estimator.transform(X), one_epoch.transform(X))


def test_exploding_training_is_divergence_in_every_estimator(estimator, X):
    """SGD at a huge rate: the loss explodes (finite for GFE, whose codes adapt).

    Either the first epoch fails (FloatingPointError, estimator unfitted) or
    the best epoch is restored with a warning; never a silent explosion.
    """
    estimator.set_params(optimizer="sgd", learning_rate_init=1e3, max_iter=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.fit(X)
        except FloatingPointError as error:
            assert "lower learning_rate_init" in str(error)
            assert not hasattr(estimator, "decoder_")
            return
    messages = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert any(
        "exploded" in m and "lower learning_rate_init" in m.lower() for m in messages
    ), messages
    assert max(estimator.loss_curve_) < 1e4 * estimator.loss_curve_[0]
    for p in estimator.decoder_.parameters():
        assert torch.isfinite(p).all()


class _Narrow(torch.nn.Module):
    def __init__(self, n_components, out):
        super().__init__()
        self.linear = torch.nn.Linear(n_components, out)

    def forward(self, z):
        return self.linear(z)


class _Pair(_Narrow):
    def forward(self, z):
        return self.linear(z), z


class _NaN(_Narrow):
    def forward(self, z):
        return self.linear(z) * float("nan")


@pytest.mark.parametrize(
    "decoder, message",
    [
        (
            lambda k, n: _Narrow(k, 1),
            r"tensor of shape \(n, n_features\).*returned "
            r"\(2, 1\), expected \(2, 6\)",
        ),
        (lambda k, n: _Pair(k, n), "returned tuple, expected"),
        (lambda k, n: _NaN(k, n), "non-finite values"),
        (lambda k, n: _Narrow(k + 1, n), "failed on codes of shape"),
    ],
    ids=["narrow", "tuple", "nan", "wrong-input-width"],
)
def test_decoders_that_do_not_fit_the_data_are_named(estimator, X, decoder, message):
    estimator.set_params(decoder=decoder)
    with pytest.raises(ValueError, match=f"decoder=.*{message}"):
        estimator.fit(X)


def test_a_float32_decoder_on_float64_data_is_named(estimator, X):
    estimator.set_params(decoder=_Float32Decoder)
    with pytest.raises(ValueError, match="returned torch.float32 for torch.float64"):
        estimator.fit(X)


class _Float32Decoder(_Narrow):
    def forward(self, z):
        return self.linear(z.float()).float()

    def to(self, *args, **kwargs):
        return self  # keeps float32 whatever fit asks


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_components", True),
        ("batch_size", True),
        ("max_iter", True),
        ("hidden_layer_sizes", True),
        ("hidden_layer_sizes", (8, True)),
        ("learning_rate_init", True),
    ],
)
def test_bools_are_not_numbers(estimator, X, name, value):
    estimator.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"{name} must be a"):
        estimator.fit(X)


def test_closure_optimizers_are_refused_by_name(estimator, X):
    estimator.set_params(optimizer=torch.optim.LBFGS)
    with pytest.raises(ValueError, match="closure.*not provide"):
        estimator.fit(X)


def test_an_optimizer_factory_returning_none_is_refused(X):
    from skgfe import OneBitAutoencoder

    model = OneBitAutoencoder(
        4, optimizer=lambda params, lr: None, max_iter=2, device="cpu", random_state=0
    )
    with pytest.raises(TypeError, match="must be a torch optimizer"):
        model.fit(X)


def test_two_threads_cannot_fit_one_estimator(estimator, X, monkeypatch):
    import threading

    started, release = threading.Event(), threading.Event()
    train_batch = estimator._train_batch

    def slow_train_batch(*args):
        started.set()
        release.wait(10)
        return train_batch(*args)

    estimator._train_batch = slow_train_batch
    errors = []
    worker = threading.Thread(target=lambda: estimator.fit(X))
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(RuntimeError, match="already running on this estimator"):
            estimator.fit(X)
    finally:
        release.set()
        worker.join()
    assert not errors
    del estimator._train_batch
    assert estimator.n_iter_ == estimator.max_iter


def test_random_state_none_leaves_numpy_global_rng_alone(estimator, X):
    estimator.set_params(random_state=None)
    state = np.random.get_state()[1].copy()
    estimator.fit(X)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_convergence_warning_points_at_the_users_call(estimator, X):
    with pytest.warns(ConvergenceWarning) as record:
        estimator.fit(X)  # the line the warning must name
    assert record[0].filename == __file__


def test_float64_data_on_a_float32_model_is_cast_batch_by_batch(estimator, X):
    import tracemalloc

    estimator.fit(X.astype(np.float32))
    X_large = np.random.default_rng(2).uniform(size=(50_000, 6))
    # Whole inference batches: float32 rounding depends on a batch's size.
    expected = estimator.transform(X_large[:2048].astype(np.float32))
    tracemalloc.start()
    try:
        codes = estimator.transform(X_large)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X_large.nbytes / 2  # a float32 copy of X alone is half of it
    np.testing.assert_array_equal(codes[:2048].astype(np.float32), expected)


# ------------------------------------------------------------ threads (issue 16)


def _threads_seen_by(estimator, method, X):
    seen = []
    encode = estimator._encode_batch

    def spy(*args):
        seen.append(torch.get_num_threads())
        return encode(*args)

    estimator._encode_batch = spy
    try:
        getattr(estimator, method)(X)
    finally:
        del estimator._encode_batch
    return seen


@pytest.mark.parametrize("method", ["transform", "score_samples", "score"])
def test_n_threads_holds_during_a_call_and_is_restored(fitted, X, method):
    torch.set_num_threads(1)
    fitted.set_params(n_threads=2)
    assert set(_threads_seen_by(fitted, method, X)) == {2}
    assert torch.get_num_threads() == 1


def test_auto_threads_take_one_thread_for_small_decoders(fitted, X):
    torch.set_num_threads(2)
    try:
        assert set(_threads_seen_by(fitted, "transform", X)) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_auto_threads_take_every_core_for_large_work(fitted, monkeypatch):
    from skgfe._threads import available_cores

    monkeypatch.setattr(skgfe._base, "AUTO_THREADS_MIN_WORK", 1)
    assert fitted._thread_count(1) == available_cores()
    fitted.device_ = torch.device("cuda")  # torch is left alone on a GPU
    assert fitted._thread_count(1) is None


def test_fit_runs_with_n_threads_and_restores(estimator, X):
    seen = []
    train_batch = estimator._train_batch

    def spy(*args):
        seen.append(torch.get_num_threads())
        return train_batch(*args)

    estimator._train_batch = spy
    estimator.set_params(n_threads=2).fit(X)
    assert set(seen) == {2} and torch.get_num_threads() == 1


def test_concurrent_calls_share_one_setting_and_restore_it(fitted, X):
    from concurrent.futures import ThreadPoolExecutor

    torch.set_num_threads(1)
    fitted.set_params(n_threads=2)
    expected = fitted.transform(X)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(fitted.transform, [X] * 8))
    for codes in results:
        np.testing.assert_array_equal(codes, expected)
    assert torch.get_num_threads() == 1


def test_verbose_two_shows_batch_progress_only_where_batches_are_slow(
    estimator, X, capsys
):
    estimator.set_params(verbose=2, batch_size=8).fit(X)
    capsys.readouterr()
    estimator.transform(X)
    transform_err = capsys.readouterr().err
    estimator.set_params(max_iter=1).fit(X)
    fit_err = capsys.readouterr().err
    slow = isinstance(estimator, GradientFlowEncoder)
    assert ("batch" in transform_err) == slow
    assert ("epoch 1" in fit_err and "/5" in fit_err) == slow


def test_pickling_does_not_change_the_pickled_estimator(fitted):
    """__getstate__ edited the estimator's own __dict__ (device_ became a str)."""
    import copy

    before = dict(vars(fitted))
    pickle.dumps(fitted)
    copy.deepcopy(fitted)
    assert vars(fitted).keys() == before.keys()
    for name, value in before.items():
        assert vars(fitted)[name] is value, name


# Reversed views (negative strides) and torch tensors as X, on all three
# estimators; OneBitAutoencoder shares the base's input handling.
def _all_estimators():
    from skgfe import OneBitAutoencoder

    return {
        "AutoencoderBaseline": partial(AutoencoderBaseline, **SMALL),
        "GradientFlowEncoder": partial(
            GradientFlowEncoder, max_flow_steps=100, **SMALL
        ),
        "OneBitAutoencoder": partial(
            OneBitAutoencoder, n_components=3, max_iter=2, device="cpu", random_state=0
        ),
    }


@pytest.mark.parametrize("name", list(_all_estimators()))
@pytest.mark.parametrize(
    "reverse", [lambda A: A[::-1], lambda A: A[:, ::-1]], ids=["rows", "columns"]
)
def test_reversed_views_give_the_results_of_their_copies(name, reverse):
    make = _all_estimators()[name]
    X = np.random.default_rng(3).uniform(size=(30, 6))
    view = reverse(X)
    assert min(view.strides) < 0
    copy = view.copy()

    # The view holds the copy's values, so every result is the copy's, bit for bit.
    on_copy = make().fit(copy)
    np.testing.assert_array_equal(
        make().fit(view).transform(copy), on_copy.transform(copy)
    )
    np.testing.assert_array_equal(
        make().fit_transform(view), make().fit_transform(copy)
    )
    np.testing.assert_array_equal(on_copy.transform(view), on_copy.transform(copy))
    np.testing.assert_array_equal(
        on_copy.score_samples(view), on_copy.score_samples(copy)
    )
    assert on_copy.score(view) == on_copy.score(copy)
    codes = on_copy.transform(copy)
    np.testing.assert_array_equal(
        on_copy.inverse_transform(reverse(codes)),
        on_copy.inverse_transform(reverse(codes).copy()),
    )


@pytest.mark.parametrize("name", list(_all_estimators()))
def test_results_on_reversed_rows_are_the_results_reversed(name):
    X = np.random.default_rng(3).uniform(size=(30, 6))
    model = _all_estimators()[name]().fit(X)
    codes = model.transform(X)
    # Rows are encoded independently (up to round-off, as in
    # test_transform_is_invariant_to_subsets_and_order).
    np.testing.assert_allclose(model.transform(X[::-1]), codes[::-1], atol=1e-9)
    np.testing.assert_allclose(
        model.score_samples(X[::-1]), model.score_samples(X)[::-1], atol=1e-9
    )
    np.testing.assert_allclose(
        model.inverse_transform(codes[::-1]),
        model.inverse_transform(codes)[::-1],
        atol=1e-9,
    )


# Torch tensors as X. scikit-learn's check_array reads a tensor through
# np.asarray: it does not know torch dtypes (a float32 tensor came out as
# float64) and cannot read a tensor that requires grad; the base passes X
# through skgfe._utils.host_array first.
@pytest.mark.parametrize("name", list(_all_estimators()))
@pytest.mark.parametrize(
    "dtype",
    [torch.float32, torch.float64],
    ids=["float32", "float64"],
)
def test_tensor_X_gives_results_in_its_dtype(name, dtype):
    make = _all_estimators()[name]
    X = torch.rand(30, 6, dtype=dtype, generator=torch.Generator().manual_seed(0))
    X_numpy = X.numpy()
    model = make().fit(X)
    codes = model.transform(X)
    assert codes.dtype == X_numpy.dtype
    assert make().fit_transform(X).dtype == X_numpy.dtype
    assert model.inverse_transform(torch.from_numpy(codes)).dtype == X_numpy.dtype
    assert model.score_samples(X).dtype == np.float64
    # The same model and results as from the NumPy array of the same values.
    np.testing.assert_array_equal(codes, make().fit(X_numpy).transform(X_numpy))


@pytest.mark.parametrize("name", list(_all_estimators()))
def test_tensor_X_that_requires_grad_is_detached(name):
    make = _all_estimators()[name]
    X = torch.rand(
        30, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    ).requires_grad_()
    X_numpy = X.detach().numpy()
    model = make().fit(X)
    expected = make().fit(X_numpy)
    np.testing.assert_array_equal(model.transform(X), expected.transform(X_numpy))
    np.testing.assert_array_equal(make().fit_transform(X), expected.transform(X_numpy))
    np.testing.assert_array_equal(
        model.score_samples(X), expected.score_samples(X_numpy)
    )
    assert model.score(X) == expected.score(X_numpy)
    codes = torch.from_numpy(model.transform(X_numpy)).requires_grad_()
    np.testing.assert_array_equal(
        model.inverse_transform(codes),
        expected.inverse_transform(codes.detach().numpy()),
    )
    # The caller's tensor is left as it was: still requiring grad, no gradient.
    assert X.requires_grad and X.grad is None


@pytest.mark.parametrize(
    "reverse", [lambda A: A[::-1], lambda A: A[:, ::-1]], ids=["rows", "columns"]
)
def test_reversed_pairs_give_the_results_of_their_copies(estimator, X, reverse):
    pairs = reverse(np.column_stack([np.arange(39), np.arange(1, 40)]))
    estimator.set_params(distortion_weight=1.0)
    expected = clone(estimator).fit(X, pairs=pairs.copy()).transform(X)
    np.testing.assert_array_equal(estimator.fit(X, pairs=pairs).transform(X), expected)


def test_pair_data_may_be_tensors_that_require_grad(estimator, X):
    pairs = np.column_stack([np.arange(39), np.arange(1, 40)])
    distances = np.linalg.norm(X[1:] - X[:-1], axis=1)
    estimator.set_params(distortion_weight=1.0)
    expected = clone(estimator).fit(X, pairs=pairs, pair_distances=distances)
    fitted = estimator.fit(
        X,
        pairs=torch.from_numpy(pairs),
        pair_distances=torch.from_numpy(distances).requires_grad_(),
    )
    np.testing.assert_array_equal(fitted.transform(X), expected.transform(X))


@pytest.mark.parametrize(
    "params", [{"n_components": 10**7}, {"hidden_layer_sizes": (10**6, 10**4)}]
)
def test_modules_too_large_for_memory_are_refused_before_allocation(
    estimator, X, params
):
    estimator.set_params(**params)
    with pytest.raises(ValueError, match="GiB .* available on cpu; use fewer"):
        estimator.fit(X)
    assert not hasattr(estimator, "decoder_")


def test_the_memory_check_uses_the_free_memory(estimator, X, monkeypatch):
    monkeypatch.setattr(skgfe._base, "_available_memory", lambda device: 1000)
    with pytest.raises(ValueError, match="n_components=2 and hidden_layer_sizes"):
        estimator.fit(X)
    monkeypatch.setattr(skgfe._base, "_available_memory", lambda device: None)
    estimator.fit(X)


def test_a_failed_refit_leaves_the_estimator_unfitted_not_mixed(fitted, X):
    """A refit on other data that fails after validation must not leave the old
    modules under the new n_features_in_."""
    from sklearn.exceptions import NotFittedError

    fitted.set_params(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True needs at least 2"):
        fitted.fit(np.ones((1, 9)))
    with pytest.raises(NotFittedError):
        fitted.transform(X)
