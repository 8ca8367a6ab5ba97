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
        GradientFlowEncoder(
            2,
            hidden_layer_sizes=(6,),
            max_iter=2,
            random_state=0,
            max_flow_steps=100,
            z0=[0.1, 0.2],
            loss="bce",
        ),
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
    np.testing.assert_array_equal(
        restored.transform(X.astype(dtype)), estimator.transform(X.astype(dtype))
    )
    assert restored.loss_curve_ == estimator.loss_curve_
    assert restored.n_iter_ == estimator.n_iter_


@pytest.mark.parametrize(
    "z0", [np.array([0.1, 0.2]), np.array([[0.0, 0.0], [1.0, -1.0]])]
)
def test_array_parameters_round_trip(X, z0, tmp_path):
    """A NumPy array parameter (z0: several starts) is saved and comes back as one."""
    estimator = GradientFlowEncoder(
        2, hidden_layer_sizes=(6,), max_iter=1, random_state=0, max_flow_steps=50, z0=z0
    ).fit(X)
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


# --------------------------------------------------------- files that are not models


@pytest.fixture
def saved(X, tmp_path):
    """A small saved GradientFlowEncoder: (path, payload as torch.load reads it)."""
    path = tmp_path / "model.skgfe"
    GradientFlowEncoder(
        2, hidden_layer_sizes=(5,), max_iter=1, random_state=0, max_flow_steps=50
    ).fit(X).save(path)
    return path, torch.load(path, weights_only=True)


def _edit_payload(payload, key, value):
    import json

    payload = dict(payload)
    if key.startswith("params."):
        params = json.loads(payload["params"])
        params[key.removeprefix("params.")] = value
        payload["params"] = json.dumps(params)
    elif key.startswith("fitted."):
        fitted = json.loads(payload["fitted"])
        fitted[key.removeprefix("fitted.")] = value
        payload["fitted"] = json.dumps(fitted)
    else:
        payload[key] = value
    return payload


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("format_version", 99, "newer than"),
        ("format_version", "1", "format_version is '1'"),
        ("format_version", True, "format_version is True"),
        ("estimator", "PCA", "names the estimator 'PCA'"),
        ("dtype", "float16", "dtype is 'float16'"),
        ("fitted.transform", 1, r"\['transform'\] are not fitted attributes"),
        ("fitted._dtype", "float16", r"\['_dtype'\] are not fitted attributes"),
        ("fitted.n_features_in_", -3, "n_features_in_ is -3"),
        ("params.max_flow_steps", -1, "max_flow_steps"),
        ("params.flow_rate", -1, "flow_rate"),
        ("params.not_a_parameter", 1, "cannot build GradientFlowEncoder"),
        ("params.z0", [1.0, 2.0, 3.0], "z0 must be"),
        ("modules", {"decoder_": {}}, "fitted state does not fit"),
        ("params", "{not json", "cannot build GradientFlowEncoder"),
    ],
)
def test_edited_files_are_rejected(saved, key, value, match):
    path, payload = saved
    torch.save(_edit_payload(payload, key, value), path)
    with pytest.raises(ValueError, match="not a valid skgfe model file") as info:
        load(path)
    assert info.match(match)


def _truncated(data):
    return data[: len(data) // 2]


def _bit_flipped(data):
    flipped = bytearray(data)
    for i in range(0, len(flipped), 97):
        flipped[i] ^= 0xFF
    return bytes(flipped)


@pytest.mark.parametrize(
    "damage",
    [
        _truncated,
        _bit_flipped,
        lambda _: b"\x00" * 100,
        lambda _: np.random.default_rng(0).bytes(5000),
    ],
    ids=["truncated", "bit-flipped", "zeros", "random-bytes"],
)
def test_damaged_files_are_rejected_without_torch_advice(saved, damage):
    path, _ = saved
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match="not a valid skgfe model file") as info:
        load(path)
    assert "weights_only" not in str(info.value)


def test_a_joblib_pickle_is_rejected_without_running_it(X, tmp_path):
    import pickle

    path = tmp_path / "model.pkl"
    path.write_bytes(
        pickle.dumps(AutoencoderBaseline(max_iter=1, random_state=0).fit(X))
    )
    with pytest.raises(ValueError, match="not a valid skgfe model file") as info:
        load(path)
    assert "weights_only" not in str(info.value)


def test_loading_on_absent_cuda_says_so(saved, monkeypatch):
    path, _ = saved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' asks for CUDA"):
        load(path, device="cuda")


def test_a_failed_save_leaves_the_old_model_whole(X, saved, monkeypatch):
    """A write cut off half way (a full disk) must not truncate the old file."""
    path, _ = saved
    before = path.read_bytes()
    real_save = torch.save

    def save_then_fail(payload, file):
        real_save(payload, file)
        file.truncate(10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_then_fail)
    estimator = AutoencoderBaseline(max_iter=1, random_state=1).fit(X)
    with pytest.raises(OSError, match="No space left"):
        estimator.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]
    load(path)
