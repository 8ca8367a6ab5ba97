"""Versioned save and load: module state dicts plus JSON parameters, no pickle.

A saved file holds plain data only (strings, numbers, lists and tensors), so
:func:`load` reads it with ``torch.load(..., weights_only=True)``, which never
runs code from the file. Estimators with a user-given module or callable as a
parameter cannot be described in JSON and are saved with pickle instead.

This module knows the file format only: what a fitted estimator holds comes
from its ``_export_fitted_state`` and goes back through its
``_restore_fitted_state``, and the estimator classes it may build are given
by the caller (:func:`skgfe.load`).
"""

import json
import os
import tempfile
import warnings
from numbers import Integral

import numpy as np
import torch

from ._utils import resolve_device
from ._version import __version__

FORMAT = "skgfe"
FORMAT_VERSION = 1
_DTYPES = ("float32", "float64")


class InvalidModelFileError(ValueError):
    """A file that :func:`load` cannot read as a model written by ``save``."""

    def __init__(self, path, reason):
        super().__init__(f"{path!s} is not a valid skgfe model file: {reason}")


def save(estimator, path) -> None:
    """Write a fitted estimator to ``path``; see :func:`load`.

    The file is written to a temporary file in the same folder and moved over
    ``path`` in one step, so a failed write (a full disk, an interrupt) leaves
    any earlier file at ``path`` whole.
    """
    params = estimator.get_params(deep=False)
    try:
        params_json = json.dumps(_mark_containers(params))
    except TypeError as exc:
        raise ValueError(
            f"{type(estimator).__name__}.save needs parameters that JSON can hold, "
            f"but {exc}; save this estimator with pickle instead"
        ) from exc
    state = estimator._export_fitted_state()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skgfe_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params_json,
        "fitted": json.dumps(state["attributes"]),
        "dtype": state["dtype"],
        "device": state["device"],
        "modules": state["modules"],
    }
    _write_atomically(payload, os.fspath(path))


def _write_atomically(payload, path) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def load(path, *, estimator_classes, device=None):
    """Load an estimator written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        File written by an estimator's ``save`` method.
    estimator_classes : iterable of classes
        The classes a file may name.
    device : {'cpu', 'cuda', 'cuda:N'}, torch.device or None, default=None
        Where to put the model; None keeps the saved device when it exists
        here and falls back to the CPU (with a DeviceWarning) when it does not.

    Returns
    -------
    estimator
        The fitted estimator.

    Raises
    ------
    InvalidModelFileError
        A ValueError, if the file is not an intact skgfe model file of a
        format this version reads.
    """
    payload = _read_payload(path)
    _check_version(path, payload)
    classes = {cls.__name__: cls for cls in estimator_classes}
    name = payload.get("estimator")
    if name not in classes:
        raise InvalidModelFileError(
            path, f"it names the estimator {name!r}, expected one of {sorted(classes)}"
        )
    estimator = _build_estimator(path, classes[name], payload)
    state = _fitted_state(path, payload)
    try:
        estimator._validate_params()
        estimator._check_params(state["attributes"]["n_features_in_"])
    except (ValueError, TypeError) as exc:
        raise InvalidModelFileError(path, f"its parameters are invalid: {exc}") from exc
    if device is not None:
        # A bad device is the caller's error, not the file's.
        resolve_device(device)
    try:
        estimator._restore_fitted_state(state, device=device)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InvalidModelFileError(
            path, f"its fitted state does not fit: {exc}"
        ) from exc
    return estimator


def _read_payload(path) -> dict:
    try:
        with warnings.catch_warnings():
            # torch's notes on the pickle protocol of files it then rejects.
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:
        # torch's own message advises weights_only=False, which would run code
        # from the file: never pass that on.
        raise InvalidModelFileError(
            path,
            f"it cannot be read as a torch archive of plain data "
            f"({type(exc).__name__})",
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidModelFileError(path, "it is not a model saved by skgfe's save()")
    return payload


def _check_version(path, payload) -> None:
    version = payload.get("format_version")
    if not isinstance(version, Integral) or isinstance(version, bool) or version < 1:
        raise InvalidModelFileError(
            path, f"its format_version is {version!r}, expected a positive int"
        )
    if version > FORMAT_VERSION:
        raise InvalidModelFileError(
            path,
            f"it uses skgfe file format {version}, newer than this skgfe "
            f"({__version__}) reads ({FORMAT_VERSION}); upgrade skgfe",
        )
    saved_by = payload.get("skgfe_version")
    if saved_by != __version__:
        warnings.warn(
            f"{path!s} was saved by skgfe {saved_by} and is loaded by "
            f"skgfe {__version__}; check its results",
            UserWarning,
            stacklevel=3,
        )


def _build_estimator(path, cls, payload):
    try:
        params = json.loads(payload["params"], object_hook=_unmark_containers)
        return cls(**params)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidModelFileError(
            path, f"its parameters cannot build {cls.__name__}: {exc}"
        ) from exc


def _fitted_state(path, payload) -> dict:
    try:
        attributes = json.loads(payload["fitted"])
        modules = payload["modules"]
        dtype, device = payload["dtype"], payload["device"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidModelFileError(
            path, f"its fitted state is incomplete: {exc}"
        ) from exc
    n_features = (
        attributes.get("n_features_in_") if isinstance(attributes, dict) else None
    )
    if (
        not isinstance(n_features, Integral)
        or isinstance(n_features, bool)
        or (n_features < 1)
    ):
        raise InvalidModelFileError(
            path, f"n_features_in_ is {n_features!r}, expected a positive int"
        )
    if dtype not in _DTYPES:
        raise InvalidModelFileError(
            path, f"its dtype is {dtype!r}, expected one of {list(_DTYPES)}"
        )
    if not isinstance(device, str) or not isinstance(modules, dict):
        raise InvalidModelFileError(path, "its device or modules entry is malformed")
    return {
        "attributes": attributes,
        "modules": modules,
        "dtype": dtype,
        "device": device,
    }


# JSON has no tuples; marking them keeps get_params() identical after a load.
def _mark_containers(value):
    """Parameters as JSON values; tuples and numeric arrays are marked to come back."""
    if isinstance(value, tuple):
        return {"__tuple__": [_mark_containers(v) for v in value]}
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, list):
        return [_mark_containers(v) for v in value]
    if isinstance(value, dict):
        return {k: _mark_containers(v) for k, v in value.items()}
    return value


def _unmark_containers(mapping):
    if set(mapping) == {"__tuple__"}:
        return tuple(mapping["__tuple__"])
    if set(mapping) == {"__ndarray__", "dtype"}:
        return np.array(mapping["__ndarray__"], dtype=mapping["dtype"])
    return mapping
