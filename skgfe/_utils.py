"""Torch plumbing: devices, tensors, generators and mini-batches."""

import os
import sys
import warnings

import numpy as np
import torch

from .exceptions import DeviceWarning

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


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
    return _TORCH_DTYPES[np.dtype(dtype)]


def to_tensor(X, device, dtype) -> torch.Tensor:
    """Copy an array to a tensor of the given torch dtype on ``device``."""
    X = np.asarray(X)
    if not X.flags.writeable:
        # torch cannot wrap read-only memory (e.g. a memmap) safely.
        X = X.copy()
    return torch.as_tensor(X, dtype=dtype, device=device)


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
