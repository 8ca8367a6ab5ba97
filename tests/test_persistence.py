"""Versioned save/load: exact round trips, device mapping, version checks."""

import numpy as np
import pytest
import torch

import skgfe
from skgfe import AutoencoderBaseline, GradientFlowEncoder, load
from skgfe.exceptions import DeviceWarning

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(3).uniform(size=(20, 4))


@pytest.mark.parametrize(
    "estimator",
    [
        AutoencoderBaseline(3, hidden_layer_sizes=(6, 5), max_iter=2, random_state=0),
        GradientFlowEncoder(2, hidden_layer_sizes=(6,), max_iter=2, random_state=0,
                            max_flow_steps=100, z0=[0.1, 0.2], loss="bce"),
    ],
    ids=["AutoencoderBaseline", "GradientFlowEncoder"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(estimator, X, dtype, tmp_path):
    estimator.fit(X.astype(dtype))
    path = tmp_path / "model.skgfe"
    estimator.save(path)
    restored = load(path)
    assert type(restored) is type(estimator)
    assert restored.get_params() == estimator.get_params()
    np.testing.assert_array_equal(restored.transform(X.astype(dtype)),
                                  estimator.transform(X.astype(dtype)))
    assert restored.loss_curve_ == estimator.loss_curve_
    assert restored.n_iter_ == estimator.n_iter_


@pytest.mark.parametrize("z0", [np.array([0.1, 0.2]), np.array([[0.0, 0.0], [1.0, -1.0]])])
def test_array_parameters_round_trip(X, z0, tmp_path):
    """A NumPy array parameter (z0: several starts) is saved and comes back as one."""
    estimator = GradientFlowEncoder(2, hidden_layer_sizes=(6,), max_iter=1, random_state=0,
                                    max_flow_steps=50, z0=z0).fit(X)
    path = tmp_path / "model.skgfe"
    estimator.save(path)
    restored = load(path)
    assert isinstance(restored.z0, np.ndarray) and restored.z0.dtype == z0.dtype
    np.testing.assert_array_equal(restored.z0, z0)
    np.testing.assert_array_equal(restored.transform(X), estimator.transform(X))


def test_file_loads_without_unpickling(X, tmp_path):
    path = tmp_path / "model.skgfe"
    AutoencoderBaseline(max_iter=1, random_state=0).fit(X).save(path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "skgfe" and payload["format_version"] == 1


def test_feature_names_survive(X, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcd"))
    path = tmp_path / "model.skgfe"
    AutoencoderBaseline(max_iter=1, random_state=0).fit(frame).save(path)
    assert list(load(path).feature_names_in_) == list("abcd")


def test_cuda_saved_model_loads_on_cpu(X, tmp_path, monkeypatch):
    path = tmp_path / "model.skgfe"
    AutoencoderBaseline(max_iter=1, random_state=0).fit(X).save(path)
    payload = torch.load(path, weights_only=True)
    payload["device"] = "cuda:0"
    torch.save(payload, path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning, match="moved to the CPU"):
        restored = load(path)
    assert restored.device_ == torch.device("cpu")


def test_other_versions_warn_or_fail(X, tmp_path):
    path = tmp_path / "model.skgfe"
    AutoencoderBaseline(max_iter=1, random_state=0).fit(X).save(path)
    payload = torch.load(path, weights_only=True)
    payload["skgfe_version"] = "0.0.1"
    torch.save(payload, path)
    with pytest.warns(UserWarning, match="saved by skgfe 0.0.1"):
        load(path)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(ValueError, match="newer than"):
        load(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a model saved by skgfe"):
        load(path)


def test_custom_module_parameters_ask_for_pickle(X, tmp_path):
    decoder = torch.nn.Linear(2, 4)
    estimator = AutoencoderBaseline(decoder=decoder, max_iter=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="save this estimator with pickle"):
        estimator.save(tmp_path / "model.skgfe")


def test_unfitted_save_raises(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GradientFlowEncoder().save(tmp_path / "model.skgfe")


def test_load_is_public():
    assert "load" in skgfe.__all__
