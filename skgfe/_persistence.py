"""Versioned save and load: module state dicts plus JSON parameters, no pickle.

A saved file holds plain data only (strings, numbers, lists and tensors), so
:func:`load` reads it with ``torch.load(..., weights_only=True)``, which never
runs code from the file. Estimators with a user-given module or callable as a
parameter cannot be described in JSON and are saved with pickle instead.
"""

import json
import warnings

import numpy as np
import torch

from ._utils import map_location, torch_dtype

FORMAT = "skgfe"
FORMAT_VERSION = 1

# Fitted attributes that travel in the file, besides the module states.
_FITTED_ATTRIBUTES = (
    "n_features_in_",
    "n_iter_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
)

# Fitted only with scoring='likelihood'; float64 arrays, except the float (or
# None) noise_variance_. JSON writes float64 values exactly.
_LIKELIHOOD_ATTRIBUTES = (
    "noise_variance_",
    "prior_weights_",
    "prior_means_",
    "prior_covariances_",
)


def save(estimator, path) -> None:
    """Write a fitted estimator to ``path``; see :func:`load`."""
    from . import __version__

    params = estimator.get_params(deep=False)
    try:
        params_json = json.dumps(_mark_containers(params))
    except TypeError as exc:
        raise ValueError(
            f"{type(estimator).__name__}.save needs parameters that JSON can hold, "
            f"but {exc}; save this estimator with pickle instead"
        ) from exc
    fitted = {name: getattr(estimator, name) for name in _FITTED_ATTRIBUTES}
    if hasattr(estimator, "feature_names_in_"):
        fitted["feature_names_in_"] = list(estimator.feature_names_in_)
    for name in _LIKELIHOOD_ATTRIBUTES:
        if hasattr(estimator, name):
            value = getattr(estimator, name)
            fitted[name] = value.tolist() if isinstance(value, np.ndarray) else value
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skgfe_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params_json,
        "fitted": json.dumps(fitted),
        "dtype": str(estimator._dtype).removeprefix("torch."),
        "device": str(estimator.device_),
        "modules": {
            name: {k: v.detach().cpu() for k, v in getattr(estimator, name).state_dict().items()}
            for name in estimator._module_names
        },
    }
    torch.save(payload, path)


def load(path, *, device=None):
    """Load an estimator written by ``save``.

    Parameters
    ----------
    path : str or path-like
        File written by the estimators' ``save`` method.
    device : {'cpu', 'cuda', 'cuda:N'}, torch.device or None, default=None
        Where to put the model; None keeps the saved device when it exists
        here and falls back to the CPU (with a DeviceWarning) when it does not.

    Returns
    -------
    estimator : GradientFlowEncoder or AutoencoderBaseline
        The fitted estimator.

    Raises
    ------
    ValueError
        If the file is not an skgfe model or comes from a newer file format.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from skgfe import AutoencoderBaseline, load
    >>> X = np.random.default_rng(0).uniform(size=(20, 4))
    >>> ae = AutoencoderBaseline(max_iter=2, random_state=0).fit(X)  # doctest: +SKIP
    >>> ae.save("model.skgfe")  # doctest: +SKIP
    >>> load("model.skgfe").transform(X).shape  # doctest: +SKIP
    (20, 2)
    """
    from . import __version__
    from ._autoencoder import AutoencoderBaseline
    from ._gradient_flow import GradientFlowEncoder
    from ._one_bit import OneBitAutoencoder

    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path!s} is not a model saved by skgfe's save()")
    if payload["format_version"] > FORMAT_VERSION:
        raise ValueError(
            f"{path!s} uses skgfe file format {payload['format_version']}, newer than "
            f"this skgfe ({__version__}) reads ({FORMAT_VERSION}); upgrade skgfe"
        )
    if payload["skgfe_version"] != __version__:
        warnings.warn(
            f"{path!s} was saved by skgfe {payload['skgfe_version']} and is loaded by "
            f"skgfe {__version__}; check its results",
            UserWarning,
            stacklevel=2,
        )
    classes = {
        cls.__name__: cls
        for cls in (GradientFlowEncoder, AutoencoderBaseline, OneBitAutoencoder)
    }
    params = json.loads(payload["params"], object_hook=_unmark_containers)
    estimator = classes[payload["estimator"]](**params)
    for name, value in json.loads(payload["fitted"]).items():
        if name == "feature_names_in_":
            value = np.asarray(value, dtype=object)
        elif name.startswith("prior_"):
            value = np.asarray(value, dtype=np.float64)
        setattr(estimator, name, value)
    estimator._dtype = torch_dtype(np.dtype(payload["dtype"]))
    estimator.device_ = (
        map_location(payload["device"]) if device is None else torch.device(device)
    )
    estimator._build_modules(estimator.n_features_in_, torch.Generator())
    for name, state in payload["modules"].items():
        # Cast before loading: load_state_dict copies into the existing dtype.
        module = getattr(estimator, name).to(dtype=estimator._dtype)
        module.load_state_dict(state)
        module.to(estimator.device_).eval()
    estimator._optimizer = None
    return estimator


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
