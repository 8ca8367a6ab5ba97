"""Torch pieces of 1-bit autoencoders: sign encoders, fixed frames, denoisers.

A 1-bit autoencoder compresses x in R^d to the bits sign(Bx) in {-1, +1}^k and
decodes them with a linear map, optionally followed by a denoiser applied to
every coordinate on its own. Nothing here knows about scikit-learn.

References
----------
A. Kogler, A. Shevchenko, H. Hassani, M. Mondelli. *Compression of structured
data with autoencoders: provable benefit of nonlinearities and depth*. ICML 2024.
"""

import math

import torch
from torch import nn

from .decoders import make_mlp


class _SignStraightThrough(torch.autograd.Function):
    """sign(z) in {-1, +1} (0 maps to +1), with the identity as its gradient."""

    @staticmethod
    def forward(ctx, z):
        return torch.where(z >= 0, 1.0, -1.0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def sign_bits(z: torch.Tensor) -> torch.Tensor:
    """Bits sign(z) in {-1, +1}, differentiable by the straight-through estimator."""
    return _SignStraightThrough.apply(z)


def haar_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    """An (n, n) orthogonal matrix drawn uniformly (Haar measure), in float64."""
    gaussian = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    # Fixing the signs of R's diagonal makes Q Haar-distributed, not just orthogonal.
    return q * torch.sign(torch.diagonal(r))


def random_frame(
    n_bits: int, n_features: int, generator: torch.Generator
) -> torch.Tensor:
    """Rows of a random rotation (n_bits <= n_features) or a random tight frame.

    Returns B of shape (n_bits, n_features) in float64. For n_bits <= n_features
    the rows are orthonormal. Otherwise B is the first n_features columns of a
    Haar (n_bits, n_bits) matrix scaled by sqrt(n_bits / n_features): a tight
    frame, B^T B = (n_bits / n_features) I, whose rows have norm close to 1 and
    nearly uncorrelated directions.
    """
    size = max(n_bits, n_features)
    q = haar_orthogonal(size, generator)
    return q[:n_bits, :n_features] * math.sqrt(max(1.0, n_bits / n_features))


class SignEncoder(nn.Module):
    """x -> sign(x W^T): a learned W (a parameter) or a fixed frame (a buffer)."""

    def __init__(self, weight: torch.Tensor, trainable: bool):
        super().__init__()
        if trainable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer("weight", weight)

    def forward(self, x):
        return sign_bits(x @ self.weight.T)


def bernoulli_gaussian_mmse(u, sparsity, slab_variance, noise_variance):
    """E[x | u] for u = x + noise, x Bernoulli-Gaussian, noise N(0, noise_variance).

    x is 0 with probability 1 - sparsity and N(0, slab_variance) otherwise.
    The posterior probability of the slab is a sigmoid of its log-odds, which
    keeps the computation finite for any u.
    """
    total_variance = slab_variance + noise_variance
    log_odds = (
        torch.log(sparsity)
        - torch.log1p(-sparsity)
        + 0.5 * torch.log(noise_variance / total_variance)
        + 0.5 * u.square() * (1 / noise_variance - 1 / total_variance)
    )
    return torch.sigmoid(log_odds) * (slab_variance / total_variance) * u


class BernoulliGaussianDenoiser(nn.Module):
    """Pointwise MMSE denoiser of y = gain * x + noise for Bernoulli-Gaussian x.

    The prior (``sparsity``, ``slab_variance``) is a buffer estimated from the
    data; the channel (``gain``, ``log_noise_std``, the noise of y / gain) is
    a parameter, calibrated in closed form and trainable with the encoder.
    """

    # Keeps the prior's log-odds finite for dense (sparsity 1) or empty data.
    _SPARSITY_MARGIN = 1e-6

    def __init__(self):
        super().__init__()
        self.register_buffer("sparsity", torch.ones(()))
        self.register_buffer("slab_variance", torch.ones(()))
        self.gain = nn.Parameter(torch.ones(()))
        self.log_noise_std = nn.Parameter(torch.zeros(()))

    def forward(self, y):
        sparsity = self.sparsity.clamp(self._SPARSITY_MARGIN, 1 - self._SPARSITY_MARGIN)
        noise_variance = torch.exp(2 * self.log_noise_std)
        return bernoulli_gaussian_mmse(
            y / self.gain, sparsity, self.slab_variance, noise_variance
        )


class PointwiseDenoiser(nn.Module):
    """y -> y + g(y) with g a 1 -> hidden -> 1 MLP applied to every coordinate.

    g's last layer starts at zero, so an untrained denoiser is the identity and
    training starts from the linear decoder.
    """

    def __init__(self, hidden_layer_sizes, activation, generator):
        super().__init__()
        self.correction = make_mlp(1, hidden_layer_sizes, 1, activation, generator)
        with torch.no_grad():
            self.correction[-1].weight.zero_()
            self.correction[-1].bias.zero_()

    def forward(self, y):
        return y + self.correction(y.reshape(-1, 1)).reshape(y.shape)


class OneBitDecoder(nn.Module):
    """bits -> denoiser(bits W^T): a linear map then an optional pointwise denoiser."""

    def __init__(self, weight: torch.Tensor, denoiser: nn.Module | None):
        super().__init__()
        # weight: (n_features, n_bits)
        self.weight = nn.Parameter(weight)
        self.denoiser = nn.Identity() if denoiser is None else denoiser

    def linear(self, bits):
        return bits @ self.weight.T

    def forward(self, bits):
        return self.denoiser(self.linear(bits))
