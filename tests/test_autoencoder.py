"""AutoencoderBaseline: the encoder side (the shared behaviour is in test_base.py)."""

import numpy as np
import pytest
import torch

from skgfe import AutoencoderBaseline

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(2).uniform(size=(25, 7))


def test_default_encoder_mirrors_the_decoder(X):
    ae = AutoencoderBaseline(3, hidden_layer_sizes=(16, 8), max_iter=1, random_state=0)
    ae.fit(X)
    encoder_widths = [
        m.out_features for m in ae.encoder_ if isinstance(m, torch.nn.Linear)
    ]
    decoder_widths = [
        m.out_features for m in ae.decoder_ if isinstance(m, torch.nn.Linear)
    ]
    assert encoder_widths == [8, 16, 3]
    assert decoder_widths == [16, 8, 7]


def test_transform_is_the_encoder_output(X):
    ae = AutoencoderBaseline(3, max_iter=2, random_state=0).fit(X)
    with torch.no_grad():
        expected = ae.encoder_(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(ae.transform(X), expected, rtol=1e-12)


def test_user_encoder_module_and_factory(X):
    encoder = torch.nn.Linear(7, 3)
    ae = AutoencoderBaseline(3, encoder=encoder, max_iter=2, random_state=0).fit(X)
    assert ae.encoder_ is not encoder
    assert isinstance(ae.encoder_, torch.nn.Linear)
    ae = AutoencoderBaseline(
        3, encoder=lambda d, k: torch.nn.Linear(d, k), max_iter=2, random_state=0
    ).fit(X)
    assert ae.encoder_.in_features == 7 and ae.encoder_.out_features == 3


def test_encoder_is_trained(X):
    ae = AutoencoderBaseline(3, max_iter=1, random_state=0).fit(X)
    before = [p.detach().clone() for p in ae.encoder_.parameters()]
    ae.set_params(warm_start=True).fit(X)
    assert any(not torch.equal(b, p) for b, p in zip(before, ae.encoder_.parameters()))
