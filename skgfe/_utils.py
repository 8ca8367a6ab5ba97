"""Torch plumbing: devices, tensors, generators and mini-batches."""

import os
import sys
import warnings

import numpy as np
import torch

from .exceptions import DeviceWarning

_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
}
# The NumPy dtype to copy into when to_tensor must copy, so that the cast to
# the torch dtype does not copy a second time.
_NUMPY_DTYPES = {
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.int64: np.int64,
}


def resolve_device(device) -> torch.device:
    """Turn ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:N'`` or a device into a device.

    ``'auto'`` picks CUDA when it is available. Asking for CUDA on a machine
    without it raises a ValueError naming the ``device`` parameter.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device; expected 'auto', 'cpu', 'cuda', "
            "'cuda:N' or a torch.device"
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA but torch.cuda.is_available() is "
                "False; use device='cpu' or 'auto', or install a CUDA build of torch"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
    elif resolved.type != "cpu":
        raise ValueError(
            f"device={device!r} is not supported; expected 'auto', 'cpu', 'cuda' or "
            "'cuda:N'"
        )
    return resolved


def map_location(device) -> torch.device:
    """Return where a model saved on ``device`` can be loaded on this machine.

    A CUDA device that is absent here maps to the CPU with a DeviceWarning.
    """
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"the model was fitted on {device} but CUDA is not available here; "
            "it was moved to the CPU",
            DeviceWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    return device


def torch_dtype(dtype) -> torch.dtype:
    """Map a numpy floating dtype (float32 or float64) to the torch dtype."""
    try:
        return _TORCH_DTYPES[np.dtype(dtype)]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"dtype={dtype!r} is not supported; expected float32 or float64"
        ) from exc


def host_array(X):
    """Return ``X`` as a NumPy array if it is a torch tensor, else ``X`` unchanged.

    Call it before scikit-learn's ``check_array``/``validate_data``: they read
    a tensor through ``np.asarray``, which fails on a tensor that requires
    grad or lives on a GPU, and they do not recognise torch dtypes, so a
    float32 tensor comes out as float64. Here the tensor is detached and
    brought to the host first; a CPU tensor's memory is shared, not copied.
    """
    if not isinstance(X, torch.Tensor):
        return X
    X = X.detach().cpu().resolve_conj().resolve_neg()
    if X.dtype == torch.bfloat16:
        # NumPy has no bfloat16; float32 holds every bfloat16 value exactly.
        X = X.float()
    return X.numpy()


def to_tensor(X, device, dtype) -> torch.Tensor:
    """An array as a tensor of torch ``dtype`` on ``device``, sharing memory if it can.

    A writable array with non-negative strides (C- or F-ordered, or a strided
    view) is wrapped without a copy when its dtype and ``device`` already
    match. Otherwise the array is copied once: torch has no negative strides
    (``X[::-1]``) nor non-native byte order, and must not wrap read-only
    memory (a memmap, a broadcast view) that it might write to.
    """
    X = np.asarray(X)
    must_copy = (
        not X.flags.writeable
        or not X.dtype.isnative
        or any(stride < 0 for stride in X.strides)
    )
    if must_copy:
        X = np.array(X, dtype=_NUMPY_DTYPES.get(dtype), order="C")
    return torch.from_numpy(X).to(device=device, dtype=dtype)


def to_numpy(tensor: torch.Tensor, dtype=None) -> np.ndarray:
    """Detach a tensor, bring it to the host and cast it to ``dtype``."""
    array = tensor.detach().cpu().numpy()
    return array if dtype is None else array.astype(dtype, copy=False)


def draw_seed(generator: torch.Generator) -> int:
    """An int seed drawn from ``generator``, for a library with its own RNG."""
    return int(torch.randint(2**31 - 1, (1,), generator=generator))


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``; draws are moved to the device after.

    Drawing on the CPU keeps results identical on every device and leaves the
    global torch RNG untouched.
    """
    generator = torch.Generator(device="cpu")
    generator.manual_seed(int(seed))
    return generator


def batch_slices(n_samples: int, batch_size: int):
    """Yield consecutive slices of at most ``batch_size`` rows."""
    for start in range(0, n_samples, batch_size):
        yield slice(start, min(start + batch_size, n_samples))


def warn_at_caller(message: str, category: type) -> None:
    """Warn with the location of the first frame outside skgfe and scikit-learn.

    A warning about a user's call (a ConvergenceWarning from ``fit``) then
    points at that call, whatever chain of skgfe methods, scikit-learn
    wrappers or Pipeline steps it went through.
    """
    inner = tuple(
        os.path.dirname(module.__file__) + os.sep
        for module in (sys.modules[__package__], sys.modules.get("sklearn"))
        if module is not None and getattr(module, "__file__", None)
    )
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(inner):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)


def column_flags(columns, n_features: int, feature_names, name: str) -> np.ndarray:
    """``columns`` (indices, names or a boolean mask) as a bool mask over features.

    ``feature_names`` are the string column names seen in fit, or None; names
    need them. ``name`` is the parameter's, for the error messages.
    """
    values = np.asarray(columns)
    if values.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-d list of column indices, names or a boolean "
            f"mask, got an array of shape {values.shape}"
        )
    if values.dtype == bool:
        if values.size != n_features:
            raise ValueError(
                f"{name} as a boolean mask needs one entry per feature "
                f"({n_features}), got {values.size}"
            )
        return values.copy()
    flags = np.zeros(n_features, dtype=bool)
    if values.size == 0:
        return flags
    if values.dtype.kind in "UO":
        if feature_names is None:
            raise ValueError(
                f"{name} gives column names, but X has no string column names; "
                "give column indices instead"
            )
        unknown = sorted(set(values.tolist()) - set(feature_names.tolist()))
        if unknown:
            raise ValueError(f"{name} has unknown column name(s) {unknown}")
        return np.isin(feature_names, values)
    if values.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must hold column indices (int), names (str) or booleans, "
            f"got dtype {values.dtype}"
        )
    outside = values[(values < -n_features) | (values >= n_features)]
    if outside.size:
        raise ValueError(
            f"{name} has column index(es) {outside.tolist()} outside "
            f"[0, {n_features}) for X with {n_features} features"
        )
    flags[values] = True
    return flags
