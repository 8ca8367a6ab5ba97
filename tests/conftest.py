"""Shared fixtures: small float64 problems for the flow engine."""

import pytest
import torch

from skgfe.decoders import make_mlp

# The test models are tiny: a second intra-op thread only adds synchronisation,
# and on a busy machine it makes torch's small kernels crawl.
torch.set_num_threads(1)

try:
    from hypothesis import settings

    # CI profile: reproducible and bounded.
    settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None)
    settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is a test extra
    pass


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def small_decoder(generator):
    """A smooth 2 -> 8 -> 5 decoder in float64."""
    return make_mlp(2, (8,), 5, "tanh", generator).double()


@pytest.fixture
def targets(generator):
    return torch.rand(6, 5, generator=generator, dtype=torch.float64)


class CountingDecoder(torch.nn.Module):
    """Wraps a decoder and counts the rows it evaluates."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder
        self.rows_evaluated = 0

    def forward(self, z):
        self.rows_evaluated += z.shape[0]
        return self.decoder(z)
