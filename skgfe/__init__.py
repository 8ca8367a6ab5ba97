"""Gradient Flow Encoding with the scikit-learn API.

GFE drops the encoder of an autoencoder: a sample's code is found by
integrating a gradient flow on the decoder's reconstruction loss.
"""

from . import _persistence
from ._autoencoder import AutoencoderBaseline
from ._gradient_flow import GradientFlowEncoder
from ._one_bit import OneBitAutoencoder, gaussian_1bit_mse
from ._version import __version__

_ESTIMATORS = (AutoencoderBaseline, GradientFlowEncoder, OneBitAutoencoder)


def load(path, *, device=None):
    """Load an estimator written by its ``save`` method.

    Parameters
    ----------
    path : str or path-like
        File written by ``save``.
    device : {'cpu', 'cuda', 'cuda:N'}, torch.device or None, default=None
        Where to put the model; None keeps the saved device when it exists
        here and falls back to the CPU (with a DeviceWarning) when it does not.

    Returns
    -------
    estimator : GradientFlowEncoder, AutoencoderBaseline or OneBitAutoencoder
        The fitted estimator.

    Raises
    ------
    ValueError
        If the file is not an intact skgfe model file (the message starts with
        "not a valid skgfe model file"), comes from a newer file format, or
        holds parameters that ``fit`` would reject; or if ``device`` is not
        available here.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skgfe import AutoencoderBaseline, load
    >>> X = np.random.default_rng(0).uniform(size=(20, 4))
    >>> ae = AutoencoderBaseline(max_iter=2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skgfe")
    >>> ae.save(path)
    >>> load(path).transform(X).shape
    (20, 2)
    """
    return _persistence.load(path, estimator_classes=_ESTIMATORS, device=device)


def __getattr__(name):
    # torch.distributed is imported by data-parallel training only.
    if name == "fit_distributed":
        from ._distributed import fit_distributed

        return fit_distributed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AutoencoderBaseline",
    "GradientFlowEncoder",
    "OneBitAutoencoder",
    "__version__",
    "gaussian_1bit_mse",
    "fit_distributed",
    "load",
]
