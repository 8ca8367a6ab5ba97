"""Gradient Flow Encoding with the scikit-learn API.

GFE drops the encoder of an autoencoder: a sample's code is found by
integrating a gradient flow on the decoder's reconstruction loss.
"""

from ._autoencoder import AutoencoderBaseline
from ._gradient_flow import GradientFlowEncoder
from ._one_bit import OneBitAutoencoder, gaussian_1bit_mse
from ._persistence import load

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderBaseline",
    "GradientFlowEncoder",
    "OneBitAutoencoder",
    "__version__",
    "gaussian_1bit_mse",
    "load",
]
