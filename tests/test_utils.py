"""Torch plumbing: array to tensor conversion and dtype mapping."""

import numpy as np
import pytest
import torch

from skgfe._utils import host_array, to_tensor, torch_dtype


@pytest.fixture
def X():
    return np.random.default_rng(0).uniform(size=(7, 5))


@pytest.mark.parametrize(
    "view",
    [
        lambda X: X,
        lambda X: np.asfortranarray(X),
        lambda X: X[::2],
        lambda X: X[:, 1:4],
        lambda X: X.T,
    ],
    ids=["C", "F", "every other row", "column slice", "transpose"],
)
def test_ordinary_arrays_are_wrapped_without_a_copy(X, view):
    array = view(X)
    tensor = to_tensor(array, "cpu", torch.float64)
    assert np.shares_memory(tensor.numpy(), array)
    np.testing.assert_array_equal(tensor.numpy(), array)


def test_float32_array_is_wrapped_without_a_copy(X):
    array = X.astype(np.float32)
    tensor = to_tensor(array, "cpu", torch.float32)
    assert tensor.dtype == torch.float32
    assert np.shares_memory(tensor.numpy(), array)


@pytest.mark.parametrize(
    "view",
    [
        lambda X: X[::-1],
        lambda X: X[:, ::-1],
        lambda X: X[::-2, ::-1],
        lambda X: X.T[::-1],
    ],
    ids=["rows reversed", "columns reversed", "both reversed", "transpose reversed"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_negative_strides_are_copied(X, view, dtype):
    array = view(X)
    tensor = to_tensor(array, "cpu", dtype)
    assert tensor.dtype == dtype
    assert not np.shares_memory(tensor.numpy(), X)
    np.testing.assert_array_equal(tensor.numpy(), array.astype(tensor.numpy().dtype))


def test_negative_strides_of_integer_indices(X):
    pairs = np.array([[0, 1], [2, 3], [4, 5]])[::-1]
    tensor = to_tensor(pairs, "cpu", torch.int64)
    assert tensor.dtype == torch.int64
    np.testing.assert_array_equal(tensor.numpy(), pairs)


@pytest.mark.parametrize(
    "make_read_only",
    [
        lambda X: np.broadcast_to(X[0], X.shape),
        lambda X: np.frombuffer(X.tobytes(), X.dtype).reshape(X.shape),
    ],
    ids=["broadcast", "frombuffer"],
)
def test_read_only_arrays_are_copied_into_writable_memory(X, make_read_only):
    array = make_read_only(X)
    assert not array.flags.writeable
    tensor = to_tensor(array, "cpu", torch.float64)
    assert not np.shares_memory(tensor.numpy(), array)
    tensor += 1  # the copy is the tensor's own: writing to it is safe
    np.testing.assert_array_equal(tensor.numpy(), array + 1)


def test_non_native_byte_order_is_copied(X):
    array = X.astype(X.dtype.newbyteorder())
    tensor = to_tensor(array, "cpu", torch.float64)
    np.testing.assert_array_equal(tensor.numpy(), X)


def test_dtype_cast_copies(X):
    tensor = to_tensor(X, "cpu", torch.float32)
    assert tensor.dtype == torch.float32
    assert not np.shares_memory(tensor.numpy(), X)


def test_host_array_leaves_non_tensors_alone(X):
    assert host_array(X) is X
    data = [[1.0, 2.0]]
    assert host_array(data) is data


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_host_array_keeps_a_tensors_dtype_and_memory(dtype):
    tensor = torch.rand(4, 3, dtype=dtype)
    array = host_array(tensor)
    assert isinstance(array, np.ndarray)
    assert array.dtype == torch.empty(0, dtype=dtype).numpy().dtype
    assert np.shares_memory(array, tensor.numpy())


def test_host_array_detaches_a_tensor_that_requires_grad():
    tensor = torch.rand(4, 3, requires_grad=True)
    array = host_array(tensor)
    np.testing.assert_array_equal(array, tensor.detach().numpy())
    assert tensor.requires_grad  # the caller's tensor is untouched


def test_host_array_resolves_lazy_negation_and_bfloat16():
    negated = torch.rand(3, 2)._neg_view()
    np.testing.assert_array_equal(host_array(negated), negated.resolve_neg().numpy())
    half = torch.rand(3, 2).to(torch.bfloat16)
    array = host_array(half)
    assert array.dtype == np.float32
    np.testing.assert_array_equal(array, half.float().numpy())


@pytest.mark.parametrize("dtype", [np.float16, np.int64, "complex128", object])
def test_torch_dtype_rejects_other_dtypes_naming_them(dtype):
    with pytest.raises(ValueError, match="dtype=.* expected float32 or float64"):
        torch_dtype(dtype)
