"""Tests for skgfe.datasets, on small IDX files written on the fly."""

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from sklearn.utils import Bunch

from skgfe import datasets
from skgfe.datasets import _read_idx, load_fashion_mnist

N_TRAIN, N_TEST = 12, 5
REAL_DATA_HOME = Path("/usr/share/datasets/fashion-mnist")
TARGET_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _idx_bytes(array, magic=None):
    """Encode a uint8 array as an IDX file; ``magic`` overrides the header."""
    if magic is None:
        magic = 0x00000800 | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path, payload, compress):
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def _make_subset(n_samples, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n_samples, 28, 28), dtype=np.uint8)
    # Pin both ends of the pixel range so the scaling to [0, 1] is checked.
    images[0, 0, 0], images[-1, -1, -1] = 0, 255
    labels = np.arange(n_samples, dtype=np.uint8) % 10
    return images, labels


def _write_dataset(folder, compress):
    """Write the four IDX files into ``folder`` and return their arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train": _make_subset(N_TRAIN, 0), "test": _make_subset(N_TEST, 1)}
    for prefix, subset in (("train", "train"), ("t10k", "test")):
        images, labels = arrays[subset]
        _write(folder / f"{prefix}-images-idx3-ubyte", _idx_bytes(images), compress)
        _write(folder / f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels), compress)
    return arrays


@pytest.fixture(params=[False, True], ids=["plain", "gzip"])
def fake_home(request, tmp_path):
    """A folder holding small Fashion-MNIST-like IDX files, and their arrays."""
    return tmp_path, _write_dataset(tmp_path, compress=request.param)


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("SKGFE_FASHION_MNIST", raising=False)


def test_read_idx_round_trip(tmp_path):
    images, labels = _make_subset(3, 0)
    path = _write(tmp_path / "x-idx3-ubyte", _idx_bytes(images), compress=True)
    np.testing.assert_array_equal(_read_idx(path), images)
    path = _write(tmp_path / "y-idx1-ubyte", _idx_bytes(labels), compress=False)
    np.testing.assert_array_equal(_read_idx(str(path)), labels)


def test_load_bunch_contents(fake_home):
    home, arrays = fake_home
    images, labels = arrays["train"]
    bunch = load_fashion_mnist(home)

    assert isinstance(bunch, Bunch)
    assert bunch.data.shape == (N_TRAIN, 784)
    assert bunch.data.dtype == np.float32
    assert bunch.images.shape == (N_TRAIN, 28, 28)
    assert bunch.images.dtype == np.float32
    assert bunch.target.dtype == np.int64
    assert bunch.data.min() == 0.0 and bunch.data.max() == 1.0
    np.testing.assert_allclose(bunch.images, images / 255, rtol=1e-6)
    np.testing.assert_array_equal(bunch.data, bunch.images.reshape(N_TRAIN, -1))
    np.testing.assert_array_equal(bunch.target, labels)
    assert list(bunch.target_names) == TARGET_NAMES
    assert "Fashion-MNIST" in bunch.DESCR
    assert bunch.subset == "train"


@pytest.mark.parametrize(
    "subset, expected",
    [("train", ["train"]), ("test", ["test"]), ("all", ["train", "test"])],
)
def test_subset(fake_home, subset, expected):
    home, arrays = fake_home
    bunch = load_fashion_mnist(home, subset=subset)

    expected_images = np.concatenate([arrays[s][0] for s in expected])
    expected_labels = np.concatenate([arrays[s][1] for s in expected])
    assert bunch.subset == subset
    np.testing.assert_allclose(bunch.images * 255, expected_images, atol=1e-4)
    np.testing.assert_array_equal(bunch.target, expected_labels)


def test_subset_needs_only_its_own_files(tmp_path):
    _write_dataset(tmp_path, compress=False)
    (tmp_path / "train-images-idx3-ubyte").unlink()

    assert load_fashion_mnist(tmp_path, subset="test").data.shape == (N_TEST, 784)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path, subset="train")


@pytest.mark.parametrize("n_samples, expected", [(1, 1), (7, 7), (100, N_TRAIN)])
def test_n_samples_keeps_first_rows(fake_home, n_samples, expected):
    home, arrays = fake_home
    bunch = load_fashion_mnist(home, n_samples=n_samples)

    assert bunch.data.shape == (expected, 784)
    assert bunch.images.shape == (expected, 28, 28)
    np.testing.assert_array_equal(bunch.target, arrays["train"][1][:expected])


def test_n_samples_spans_train_and_test_for_all(fake_home):
    home, arrays = fake_home
    bunch = load_fashion_mnist(home, subset="all", n_samples=N_TRAIN + 2)

    np.testing.assert_array_equal(bunch.target[N_TRAIN:], arrays["test"][1][:2])


def test_return_X_y(fake_home):
    home, _ = fake_home
    bunch = load_fashion_mnist(home, subset="test")
    X, y = load_fashion_mnist(home, subset="test", return_X_y=True)

    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


def test_environment_variable(tmp_path, monkeypatch):
    _write_dataset(tmp_path / "fmnist", compress=True)
    monkeypatch.setenv("SKGFE_FASHION_MNIST", str(tmp_path / "fmnist"))

    assert load_fashion_mnist(subset="test").data.shape == (N_TEST, 784)


def test_data_home_overrides_environment_variable(tmp_path, monkeypatch):
    _write_dataset(tmp_path / "good", compress=False)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SKGFE_FASHION_MNIST", str(tmp_path / "empty"))

    assert load_fashion_mnist(tmp_path / "good").data.shape == (N_TRAIN, 784)


def test_default_location_with_subfolder(tmp_path, monkeypatch, no_env):
    # Files one level down must be found too, whatever the package layout.
    _write_dataset(tmp_path / "nested" / "raw", compress=True)
    monkeypatch.setattr(datasets, "_DEFAULT_DATA_HOME", tmp_path)

    bunch = load_fashion_mnist(subset="all")
    assert bunch.data.shape == (N_TRAIN + N_TEST, 784)


def test_missing_files_message(tmp_path, monkeypatch, no_env):
    monkeypatch.setattr(datasets, "_DEFAULT_DATA_HOME", tmp_path / "absent")

    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist()
    message = str(excinfo.value)
    assert str(tmp_path / "absent") in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "SKGFE_FASHION_MNIST" in message
    assert "data_home" in message
    assert "train-labels-idx1-ubyte" in message


def test_missing_files_names_the_folder_searched(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load_fashion_mnist(tmp_path, subset="test")


@pytest.mark.parametrize("compress", [False, True])
def test_bad_magic_number(tmp_path, compress):
    arrays = _write_dataset(tmp_path, compress=compress)
    _write(
        tmp_path / "train-labels-idx1-ubyte",
        _idx_bytes(arrays["train"][1], magic=0x00000802),
        compress,
    )

    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*0x00000802"):
        load_fashion_mnist(tmp_path)


@pytest.mark.parametrize(
    "cut, match",
    [(-1, "holds 9407 data bytes"), (10, "truncated"), (2, "fewer than the 4")],
)
def test_truncated_file(tmp_path, cut, match):
    arrays = _write_dataset(tmp_path, compress=False)
    payload = _idx_bytes(arrays["train"][0])
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(payload[:cut])

    with pytest.raises(ValueError, match=f"train-images-idx3-ubyte.*{match}"):
        load_fashion_mnist(tmp_path)


def test_truncated_gzip(tmp_path):
    _write_dataset(tmp_path, compress=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])

    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz.*gzip"):
        load_fashion_mnist(tmp_path, subset="test")


def test_image_and_label_counts_must_match(tmp_path):
    arrays = _write_dataset(tmp_path, compress=False)
    labels = arrays["test"][1][:-1]
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(labels), compress=False)

    with pytest.raises(ValueError, match=f"{N_TEST} images.*{N_TEST - 1} labels"):
        load_fashion_mnist(tmp_path, subset="test")


def test_images_must_be_28_by_28(tmp_path):
    _write_dataset(tmp_path, compress=False)
    images = np.zeros((N_TEST, 14, 56), dtype=np.uint8)
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(images), compress=False)

    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.*\(28, 28\)"):
        load_fashion_mnist(tmp_path, subset="test")


def test_labels_must_be_below_10(tmp_path):
    _write_dataset(tmp_path, compress=False)
    labels = np.full(N_TEST, 10, dtype=np.uint8)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(labels), compress=False)

    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte holds label 10"):
        load_fashion_mnist(tmp_path, subset="test")


@pytest.mark.parametrize(
    "subset",
    ["validation", "TRAIN", None, ["train"], np.array(["train", "test"])],
    ids=["validation", "TRAIN", "None", "list", "array"],
)
def test_bad_subset(tmp_path, subset):
    with pytest.raises(ValueError, match=r"subset must be one of .*'all'"):
        load_fashion_mnist(tmp_path, subset=subset)


@pytest.mark.parametrize("n_samples", [0, -3, 2.5, "10", True])
def test_bad_n_samples(tmp_path, n_samples):
    with pytest.raises(ValueError, match=r"n_samples must be None or an int >= 1"):
        load_fashion_mnist(tmp_path, n_samples=n_samples)


@pytest.mark.skipif(
    not REAL_DATA_HOME.exists(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_test_subset():
    bunch = load_fashion_mnist(REAL_DATA_HOME, subset="test")

    assert bunch.data.shape == (10_000, 784)
    assert bunch.data.dtype == np.float32
    assert 0.0 <= bunch.data.min() and bunch.data.max() <= 1.0
    # The official test set is balanced: 1,000 images per class.
    np.testing.assert_array_equal(np.bincount(bunch.target), np.full(10, 1000))


@pytest.mark.parametrize("compress", [False, True])
def test_files_with_zero_images_give_empty_arrays(tmp_path, compress):
    # Valid IDX files announcing 0 images: empty arrays of the usual widths, as
    # sklearn.datasets.load_svmlight_file returns for an empty file, so that
    # subset="all" still works when one subset is empty.
    arrays = _write_dataset(tmp_path, compress)
    empty_images = np.zeros((0, 28, 28), dtype=np.uint8)
    empty_labels = np.zeros(0, dtype=np.uint8)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(empty_images), compress)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(empty_labels), compress)

    bunch = load_fashion_mnist(tmp_path)
    assert bunch.data.shape == (0, 784) and bunch.data.dtype == np.float32
    assert bunch.target.shape == (0,) and bunch.target.dtype == np.int64
    assert bunch.images.shape == (0, 28, 28) and bunch.images.dtype == np.float32

    data, target = load_fashion_mnist(tmp_path, n_samples=3, return_X_y=True)
    assert data.shape == (0, 784) and target.shape == (0,)

    images, labels = arrays["test"]
    both = load_fashion_mnist(tmp_path, subset="all")
    np.testing.assert_array_equal(both.images, images / np.float32(255))
    np.testing.assert_array_equal(both.target, labels)


@pytest.mark.parametrize("return_X_y", ["no", 1, None])
def test_bad_return_X_y(fake_home, return_X_y):
    folder, _ = fake_home
    with pytest.raises(TypeError, match=r"return_X_y must be True or False"):
        load_fashion_mnist(folder, return_X_y=return_X_y)


def test_return_X_y_accepts_numpy_bools(fake_home):
    folder, _ = fake_home
    data, _ = load_fashion_mnist(folder, return_X_y=np.bool_(True))
    assert data.shape == (N_TRAIN, 784)


@pytest.mark.parametrize("data_home", [5, 2.5, b"/tmp", ["/tmp"]])
def test_data_home_of_the_wrong_type(data_home):
    with pytest.raises(TypeError, match=r"data_home must be None, a str or a path"):
        load_fashion_mnist(data_home)


def test_data_home_that_is_a_file(fake_home):
    folder, _ = fake_home
    a_file = next(p for p in folder.iterdir() if p.is_file())
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(a_file))} \(from the "
        r"data_home argument\) is a file; data_home .* must name",
    ):
        load_fashion_mnist(a_file)


def test_environment_variable_that_names_a_file(tmp_path, monkeypatch):
    a_file = tmp_path / "fmnist.tar"
    a_file.write_bytes(b"")
    monkeypatch.setenv("SKGFE_FASHION_MNIST", str(a_file))
    with pytest.raises(ValueError, match=r"\(from \$SKGFE_FASHION_MNIST\) is a file"):
        load_fashion_mnist()


def test_missing_folder_is_said_not_to_exist(tmp_path):
    folder = re.escape(str(tmp_path / "nope"))
    with pytest.raises(
        FileNotFoundError,
        match=rf"the folder {folder} \(from the "
        r"data_home argument\) does not exist",
    ):
        load_fashion_mnist(tmp_path / "nope")


def test_folder_named_like_an_idx_file_is_not_read(tmp_path):
    # A folder with a data file's name (an unpacked archive, say) is skipped:
    # the real file next to it is read, and without one the file is missing.
    arrays = _write_dataset(tmp_path / "data", compress=True)
    (tmp_path / "t10k-images-idx3-ubyte").mkdir()
    bunch = load_fashion_mnist(tmp_path, subset="test")
    np.testing.assert_array_equal(bunch.target, arrays["test"][1])

    (tmp_path / "data" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path, subset="test")
