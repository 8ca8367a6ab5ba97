"""Multi-layer perceptron builders for decoders and encoders.

A decoder is any :class:`torch.nn.Module` that maps a batch of codes of shape
``(n_samples, n_components)`` to outputs of shape ``(n_samples, n_features)``
and treats rows independently (no batch normalisation in training mode, no
attention across rows). For ``loss='bce'`` its outputs are logits.
"""

import math

import torch
from torch import nn

ACTIVATIONS = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}

__all__ = ["ACTIVATIONS", "make_mlp"]


def make_mlp(n_inputs, hidden_layer_sizes, n_outputs, activation="elu", generator=None):
    """Build ``Linear-activation-...-Linear`` with the given hidden sizes.

    Parameters
    ----------
    n_inputs : int
        Width of the input.
    hidden_layer_sizes : sequence of int
        Widths of the hidden layers, input side first. Empty gives one linear map.
    n_outputs : int
        Width of the output (no activation after the last layer).
    activation : {'elu', 'relu', 'tanh', 'sigmoid', 'softplus', 'gelu', 'silu'}, \
default='elu'
        Activation after every hidden layer.
    generator : torch.Generator, default=None
        Source of the initial weights. With a generator the global torch RNG is
        not used, so a seeded estimator does not disturb the user's RNG.

    Returns
    -------
    mlp : torch.nn.Sequential
        The network, in float32 on the CPU.

    Examples
    --------
    >>> from skgfe.decoders import make_mlp
    >>> make_mlp(2, (8,), 5)
    Sequential(
      (0): Linear(in_features=2, out_features=8, bias=True)
      (1): ELU(alpha=1.0)
      (2): Linear(in_features=8, out_features=5, bias=True)
    )
    """
    widths = [n_inputs, *hidden_layer_sizes, n_outputs]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        # skip_init: torch's own initialisation would draw from the global RNG.
        linear = nn.utils.skip_init(nn.Linear, n_in, n_out)
        _init_linear(linear, generator)
        layers.append(linear)
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _init_linear(linear: nn.Linear, generator) -> None:
    # torch's own default (Kaiming-uniform with a=sqrt(5)), drawn from `generator`.
    bound = 1.0 / math.sqrt(linear.in_features)
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound, generator=generator)
        linear.bias.uniform_(-bound, bound, generator=generator)
