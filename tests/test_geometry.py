"""The pair loss: its terms, its sampling, and its use by both estimators in fit."""

import numpy as np
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skgfe import AutoencoderBaseline, GradientFlowEncoder, load
from skgfe._geometry import (
    PairSet,
    bending_terms,
    distortion_terms,
    geodesic_stress,
    pair_loss,
)
from skgfe.datasets import make_blob_images, make_swiss_roll_manifold
from skgfe.metrics import bending_score, distortion_score, procrustes_error

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]

SMALL = dict(
    n_components=2, hidden_layer_sizes=(8,), max_iter=3, device="cpu", random_state=0
)
SMALL_GFE = dict(SMALL, flow_solver="rk4", tau=4.0, step_size=0.5)


@pytest.fixture(scope="module")
def roll():
    """A small Swiss roll, scaled to unit size (the scale keeps isometry)."""
    data = make_swiss_roll_manifold(
        n_samples=120, n_pairs=150, epsilon=6.0, random_state=0
    )
    for key in ("data", "coordinates", "pair_distances", "midpoints"):
        data[key] = data[key] / 10
    return data


def _fit_params(data):
    return dict(
        pairs=data.pairs, pair_distances=data.pair_distances, midpoints=data.midpoints
    )


# ----------------------------------------------------------------- the terms


def test_terms_on_known_codes():
    first = torch.tensor([[0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    second = torch.tensor([[2.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    distances = torch.tensor([1.0, 1.0], dtype=torch.float64)
    # Code distances 2 and 1 for local distances 1: (2 - 1)^2 and 0.
    torch.testing.assert_close(
        distortion_terms(first, second, distances),
        torch.tensor([1.0, 0.0], dtype=torch.float64),
    )
    midpoint = torch.tensor([[1.0, 0.0], [0.0, 1.5]], dtype=torch.float64)
    # Second pair: latent midpoint (0, 0.5), midpoint code (0, 1.5): defect 1.
    torch.testing.assert_close(
        bending_terms(first, second, midpoint, distances / 2),
        torch.tensor([0.0, 16.0], dtype=torch.float64),
    )


def test_pair_loss_is_zero_for_a_linear_isometry():
    roll = make_swiss_roll_manifold(n_samples=200, n_pairs=100, random_state=0)
    isometry = torch.linalg.qr(
        torch.randn(
            3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
    )[0].T
    ends = torch.as_tensor(roll.coordinates[roll.pairs.T.ravel()])
    codes = torch.cat([ends, torch.as_tensor(roll.midpoint_coordinates)]) @ isometry
    loss = pair_loss(codes, torch.as_tensor(roll.pair_distances), 1.0, 1.0)
    assert float(loss) == pytest.approx(0, abs=1e-20)


def test_pair_loss_weights_select_the_terms():
    generator = torch.Generator().manual_seed(1)
    codes = torch.randn(9, 2, generator=generator, dtype=torch.float64)
    distances = torch.rand(3, generator=generator, dtype=torch.float64) + 0.5
    distortion = distortion_terms(codes[:3], codes[3:6], distances).mean()
    bending = bending_terms(codes[:3], codes[3:6], codes[6:], distances).mean()
    torch.testing.assert_close(
        pair_loss(codes, distances, 2.0, 0.5), 2 * distortion + 0.5 * bending
    )
    torch.testing.assert_close(pair_loss(codes[:6], distances, 1.0, 0.0), distortion)
    assert float(pair_loss(codes, distances, 0.0, 0.0)) == 0


def test_pair_loss_gradient():
    generator = torch.Generator().manual_seed(2)
    codes = torch.randn(
        9, 2, generator=generator, dtype=torch.float64, requires_grad=True
    )
    distances = torch.rand(3, generator=generator, dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(lambda z: pair_loss(z, distances, 1.0, 0.3), codes)


def test_geodesic_stress_on_known_codes_and_its_invariances():
    first = torch.zeros(2, 2, dtype=torch.float64)
    second = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    distances = torch.tensor([4.0, 2.0], dtype=torch.float64)
    # Residuals 5 - 4 and 1 - 2: (1 + 1) / (16 + 4).
    torch.testing.assert_close(
        geodesic_stress(first, second, distances),
        torch.tensor(0.1, dtype=torch.float64),
    )
    torch.testing.assert_close(
        geodesic_stress(7 * first, 7 * second, 7 * distances),
        torch.tensor(0.1, dtype=torch.float64),
    )
    rotation = torch.tensor([[0.6, -0.8], [0.8, 0.6]], dtype=torch.float64)
    torch.testing.assert_close(
        geodesic_stress(first @ rotation + 1, second @ rotation + 1, distances),
        torch.tensor(0.1, dtype=torch.float64),
    )
    exact = second.norm(dim=1)
    assert float(geodesic_stress(first, second, exact)) == 0


def test_pair_set_sampling_is_seeded_and_stacks_ends_then_midpoints():
    points = torch.arange(10.0).reshape(5, 2)
    pair_set = PairSet(
        points,
        torch.tensor([0, 1, 2]),
        torch.tensor([1, 2, 4]),
        torch.tensor([1.0, 2.0, 3.0]),
        torch.tensor([[9.0, 9.0]] * 3),
    )
    first = pair_set.sample(7, torch.Generator().manual_seed(0))
    second = pair_set.sample(7, torch.Generator().manual_seed(0))
    assert torch.equal(first.first, second.first) and first.first.shape == (7,)
    rows = first.rows()
    assert rows.shape == (21, 2)
    torch.testing.assert_close(rows[:7], points[first.first])
    torch.testing.assert_close(rows[7:14], points[first.second])
    assert torch.all(rows[14:] == 9.0)


# ------------------------------------------------------------- in the estimators


@pytest.mark.parametrize(
    "estimator",
    [AutoencoderBaseline(**SMALL), GradientFlowEncoder(**SMALL_GFE)],
    ids=["AutoencoderBaseline", "GradientFlowEncoder"],
)
def test_zero_weights_ignore_the_pairs_bit_for_bit(estimator, roll):
    plain = clone(estimator).fit(roll.data)
    with_pairs = clone(estimator).fit(roll.data, **_fit_params(roll))
    np.testing.assert_array_equal(
        plain.transform(roll.data), with_pairs.transform(roll.data)
    )
    assert plain.loss_curve_ == with_pairs.loss_curve_


def test_regularised_autoencoder_is_less_distorted(roll):
    params = dict(
        SMALL,
        hidden_layer_sizes=(32,),
        max_iter=40,
        batch_size=16,
        learning_rate_init=3e-3,
    )
    plain = AutoencoderBaseline(**params).fit(roll.data)
    regularised = AutoencoderBaseline(
        **params, distortion_weight=1.0, bending_weight=0.1
    ).fit(roll.data, **_fit_params(roll))
    scores = [
        distortion_score(model.transform(roll.data), roll.pairs, roll.pair_distances)
        for model in (plain, regularised)
    ]
    assert scores[1] < 0.5 * scores[0]


def test_regularised_gfe_is_less_distorted(roll):
    params = dict(
        SMALL_GFE,
        hidden_layer_sizes=(16,),
        max_iter=6,
        batch_size=40,
        learning_rate_init=1e-2,
    )
    plain = GradientFlowEncoder(**params).fit(roll.data)
    regularised = GradientFlowEncoder(**params, distortion_weight=1.0).fit(
        roll.data, pairs=roll.pairs, pair_distances=roll.pair_distances
    )
    scores = [
        distortion_score(model.transform(roll.data), roll.pairs, roll.pair_distances)
        for model in (plain, regularised)
    ]
    assert scores[1] < scores[0]


def test_gfe_pair_gradient_matches_finite_differences(roll):
    """The adjoint replay gives d(pair loss)/d(decoder) through the codes z*."""
    gfe = GradientFlowEncoder(
        **dict(SMALL_GFE, flow_solver="euler", tau=2.0, max_iter=1)
    )
    gfe.fit(roll.data)
    X = torch.as_tensor(roll.data[:9])  # 3 first ends, 3 second ends, 3 midpoints
    distances = torch.full((3,), 0.3, dtype=torch.float64)

    def code_loss(codes):
        return pair_loss(codes, distances, 1.0, 0.5)

    def loss_at_current_decoder():
        return float(code_loss(gfe._solve_from_starts(X).z))

    gfe.decoder_.zero_grad()
    gfe._backward_code_loss(X, code_loss)
    weight = gfe.decoder_[0].weight
    analytic = weight.grad.clone()
    numeric = torch.zeros_like(weight)
    with torch.no_grad():
        for index in np.ndindex(*weight.shape):
            original = weight[index].item()
            weight[index] = original + 1e-6
            up = loss_at_current_decoder()
            weight[index] = original - 1e-6
            down = loss_at_current_decoder()
            weight[index] = original
            numeric[index] = (up - down) / 2e-6
    torch.testing.assert_close(analytic, numeric, rtol=1e-4, atol=1e-7)


def test_nearest_neighbour_fallback_without_pairs(roll):
    ae = AutoencoderBaseline(**SMALL, distortion_weight=1.0).fit(roll.data)
    plain = AutoencoderBaseline(**SMALL).fit(roll.data)
    assert ae.loss_curve_[0] > plain.loss_curve_[0]


@pytest.mark.parametrize(
    "weights, fit_params, match",
    [
        (
            dict(bending_weight=1.0),
            {},
            "bending_weight=1.0 needs the Riemannian midpoints",
        ),
        (dict(bending_weight=1.0), dict(pairs=[[0, 1]]), "needs midpoints"),
        (
            dict(distortion_weight=1.0),
            dict(midpoints=np.zeros((1, 3))),
            "pass the pairs",
        ),
        (dict(distortion_weight=1.0), dict(pairs=[[0, 1.5]]), "integer array"),
        (dict(distortion_weight=1.0), dict(pairs=[[0, 500]]), "index the rows of X"),
        (dict(distortion_weight=1.0), dict(pairs=[[3, 3]]), "two different rows"),
        (
            dict(distortion_weight=1.0),
            dict(pairs=[[0, 1]], pair_distances=[0.0]),
            "pair_distances must be positive",
        ),
        (
            dict(distortion_weight=1.0),
            dict(pairs=[[0, 1]], pair_distances=[1.0, 2.0]),
            r"pair_distances must have shape \(n_pairs,\) = \(1,\)",
        ),
        (
            dict(bending_weight=1.0),
            dict(pairs=[[0, 1]], midpoints=np.zeros((1, 2))),
            "midpoints must have shape",
        ),
        (dict(distortion_weight=-1.0), {}, "distortion_weight"),
    ],
)
def test_invalid_pair_data_raises(roll, weights, fit_params, match):
    with pytest.raises(ValueError, match=match):
        AutoencoderBaseline(**SMALL, **weights).fit(roll.data, **fit_params)


def test_geodesic_sources_need_the_distortion_term(roll):
    ae = AutoencoderBaseline(**SMALL, bending_weight=1.0, geodesic_sources=3)
    with pytest.raises(ValueError, match="geodesic_sources=3 adds long-range pairs"):
        ae.fit(roll.data, **_fit_params(roll))


@pytest.mark.parametrize(
    "estimator",
    [AutoencoderBaseline(**SMALL), GradientFlowEncoder(**SMALL_GFE)],
    ids=["AutoencoderBaseline", "GradientFlowEncoder"],
)
def test_geodesic_sources_change_the_fit_reproducibly(estimator, roll):
    local = clone(estimator).set_params(distortion_weight=1.0, bending_weight=0.5)
    with_geodesics = clone(local).set_params(geodesic_sources=5)
    fits = [
        model.fit(roll.data, **_fit_params(roll))
        for model in (local, with_geodesics, clone(with_geodesics))
    ]
    assert fits[0].loss_curve_ != fits[1].loss_curve_
    assert fits[1].loss_curve_ == fits[2].loss_curve_
    assert np.all(np.isfinite(fits[1].transform(roll.data)))


def test_geodesic_pairs_extend_the_nearest_neighbour_fallback(roll):
    """Without pairs, the kNN graph gives the long-range pairs: Isomap's graph."""
    ae = AutoencoderBaseline(**SMALL, distortion_weight=1.0, geodesic_sources=4)
    plain = AutoencoderBaseline(**SMALL, distortion_weight=1.0)
    assert ae.fit(roll.data).loss_curve_ != plain.fit(roll.data).loss_curve_


def test_gfe_pair_loss_needs_a_recording_solver(roll):
    gfe = GradientFlowEncoder(
        **dict(SMALL, flow_solver="dopri5"), distortion_weight=1.0
    )
    with pytest.raises(ValueError, match="needs a solver that records its steps"):
        gfe.fit(roll.data)


def test_fit_transform_and_pipelines_pass_the_pairs_on(roll):
    ae = AutoencoderBaseline(**SMALL, distortion_weight=1.0, bending_weight=1.0)
    expected = clone(ae).fit(roll.data, **_fit_params(roll)).transform(roll.data)
    np.testing.assert_array_equal(
        ae.fit_transform(roll.data, **_fit_params(roll)), expected
    )
    pipeline = Pipeline([("identity", FunctionTransformer()), ("ae", clone(ae))])
    pipeline.fit(roll.data, **{f"ae__{k}": v for k, v in _fit_params(roll).items()})
    np.testing.assert_array_equal(pipeline.transform(roll.data), expected)


def test_metadata_routing_passes_the_pairs_on(roll):
    ae = AutoencoderBaseline(**SMALL, distortion_weight=1.0, bending_weight=1.0)
    expected = clone(ae).fit(roll.data, **_fit_params(roll)).transform(roll.data)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = clone(ae).set_fit_request(
            pairs=True, pair_distances=True, midpoints=True
        )
        pipeline = Pipeline([("identity", FunctionTransformer()), ("ae", routed)])
        codes = pipeline.fit(roll.data, **_fit_params(roll)).transform(roll.data)
    np.testing.assert_array_equal(codes, expected)


@pytest.mark.parametrize(
    "estimator",
    [AutoencoderBaseline(**SMALL), GradientFlowEncoder(**SMALL_GFE)],
    ids=["AutoencoderBaseline", "GradientFlowEncoder"],
)
def test_float32_and_save_load_keep_the_weights(estimator, roll, tmp_path):
    estimator.set_params(distortion_weight=0.5, bending_weight=0.25)
    X = roll.data.astype(np.float32)
    estimator.fit(X, **_fit_params(roll))
    assert estimator.transform(X).dtype == np.float32
    estimator.save(tmp_path / "model.skgfe")
    restored = load(tmp_path / "model.skgfe")
    assert restored.get_params() == estimator.get_params()
    np.testing.assert_array_equal(restored.transform(X), estimator.transform(X))


@pytest.mark.slow
def test_regularised_autoencoder_recovers_the_blob_positions():
    """Blob images: codes within 5% of the true chart, flatter than AE's and PCA's."""
    blobs = make_blob_images(
        n_samples=600,
        image_size=12,
        blob_width=1.2,
        n_pairs=2000,
        epsilon=1.5,
        random_state=0,
    )
    params = dict(
        n_components=2,
        hidden_layer_sizes=(64,),
        max_iter=60,
        batch_size=32,
        learning_rate_init=3e-3,
        n_iter_no_change=60,
        device="cpu",
        random_state=0,
    )
    plain = AutoencoderBaseline(**params).fit(blobs.data)
    regularised = AutoencoderBaseline(
        **params, distortion_weight=1.0, bending_weight=1.0
    ).fit(blobs.data, **_fit_params(blobs))
    pca = PCA(n_components=2).fit(blobs.data)
    assert procrustes_error(regularised.transform(blobs.data), blobs.coordinates) < 0.05
    bending = {
        name: bending_score(
            model.transform(blobs.data), blobs.pairs, model.transform(blobs.midpoints)
        )
        for name, model in [
            ("plain", plain),
            ("regularised", regularised),
            ("pca", pca),
        ]
    }
    assert bending["regularised"] < min(bending["plain"], bending["pca"])


@pytest.mark.slow
def test_regularised_autoencoder_unrolls_the_swiss_roll():
    """Codes within 5% of the unrolling, flatter than the AE's and PCA's.

    Local pairs only (within 3 of a roll 89 long with layers 6.3 apart), plus
    long-range pairs along their graph. Seeds 0-7 gave Procrustes errors of
    0.011-0.031; the local pair loss alone folds the sheet (0.81-0.94).
    """
    roll = make_swiss_roll_manifold(
        n_samples=1000, n_pairs=6000, epsilon=3.0, random_state=0
    )
    # A uniform scale keeps the geometry and brings the data to order one.
    X, midpoints, distances = (
        roll.data / 10,
        roll.midpoints / 10,
        roll.pair_distances / 10,
    )
    params = dict(
        n_components=2,
        hidden_layer_sizes=(64, 64),
        max_iter=300,
        batch_size=64,
        n_iter_no_change=300,
        device="cpu",
        random_state=0,
    )
    plain = AutoencoderBaseline(**params).fit(X)
    regularised = AutoencoderBaseline(
        **params,
        distortion_weight=10.0,
        bending_weight=10.0,
        geodesic_sources=20,
    ).fit(X, pairs=roll.pairs, pair_distances=distances, midpoints=midpoints)
    pca = PCA(n_components=2).fit(X)
    assert procrustes_error(regularised.transform(X), roll.coordinates) < 0.05
    bending = {
        name: bending_score(model.transform(X), roll.pairs, model.transform(midpoints))
        for name, model in [
            ("plain", plain),
            ("regularised", regularised),
            ("pca", pca),
        ]
    }
    assert bending["regularised"] < min(bending["plain"], bending["pca"])
