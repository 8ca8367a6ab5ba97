"""Missing entries (NaN): GradientFlowEncoder skips them, the others refuse them."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from skgfe import AutoencoderBaseline, GradientFlowEncoder, OneBitAutoencoder
from skgfe._losses import bce_loss, mse_loss, reconstruction_link, sample_loss

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
]

SMALL = dict(
    n_components=2, hidden_layer_sizes=(16,), max_iter=5, device="cpu", random_state=0
)


@pytest.fixture(scope="module")
def X():
    return StandardScaler().fit_transform(load_wine().data)[:80]


def _with_holes(X, fraction, seed=0):
    holes = np.random.default_rng(seed).random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False  # every row keeps an observed entry
    return np.where(holes, np.nan, X), holes


@pytest.fixture(scope="module")
def fitted(X):
    X_missing, _ = _with_holes(X, 0.3)
    return GradientFlowEncoder(**SMALL).fit(X_missing)


# ---------------------------------------------------------------- the losses


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["mse", "bce"]),
    st.floats(0.0, 0.9),
)
def test_loss_with_missing_entries_is_the_mean_over_the_observed_ones(
    seed, name, fraction
):
    rng = np.random.default_rng(seed)
    output = torch.tensor(rng.normal(size=(5, 7)))
    target = torch.tensor(rng.uniform(size=(5, 7)))
    holes = rng.random((5, 7)) < fraction
    holes[:, 0] = False
    with_holes = target.masked_fill(torch.tensor(holes), float("nan"))
    plain = {"mse": mse_loss, "bce": bce_loss}[name]
    expected = torch.stack(
        [
            plain(output[i : i + 1, ~holes[i]], target[i : i + 1, ~holes[i]])[0]
            for i in range(5)
        ]
    )
    losses = sample_loss(name, missing=True)(output, with_holes)
    torch.testing.assert_close(losses, expected, rtol=1e-12, atol=1e-14)


def test_loss_without_missing_entries_or_mixed_columns_is_the_plain_loss():
    assert sample_loss("mse") is mse_loss
    assert sample_loss("bce") is bce_loss


def test_gradient_of_a_missing_entry_is_zero_and_finite():
    output = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([[1.0, float("nan"), 2.0]], dtype=torch.float64)
    sample_loss("mse", missing=True)(output, target).sum().backward()
    torch.testing.assert_close(
        output.grad, torch.tensor([[-1.0, 0.0, -2.0]], dtype=torch.float64)
    )


def test_mixed_columns_take_cross_entropy_where_binary_and_squared_error_elsewhere():
    output = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    target = torch.tensor([[1.0, 0.0, 1.5]], dtype=torch.float64)
    binary = torch.tensor([False, True, False])
    entries = [
        (0.5 - 1.0) ** 2,
        bce_loss(output[:, 1:2], target[:, 1:2]).item(),
        (2.0 - 1.5) ** 2,
    ]
    loss = sample_loss("mse", binary)(output, target)
    torch.testing.assert_close(loss, torch.tensor([np.mean(entries)]).double())
    reconstruction = reconstruction_link("mse", binary)(output)
    torch.testing.assert_close(
        reconstruction,
        torch.tensor([[0.5, 1 / (1 + np.exp(1.0)), 2.0]], dtype=torch.float64),
    )


# ------------------------------------------------------ the encoder with holes


def test_fit_transform_score_and_inverse_transform_accept_missing_entries(fitted, X):
    X_missing, holes = _with_holes(X, 0.3, seed=1)
    codes = fitted.transform(X_missing)
    assert codes.shape == (len(X), 2) and np.isfinite(codes).all()
    reconstructions = fitted.inverse_transform(codes)
    assert reconstructions.shape == X.shape and np.isfinite(reconstructions).all()
    scores = fitted.score_samples(X_missing)
    assert np.isfinite(scores).all() and fitted.score(X_missing) == scores.mean()
    assert np.isfinite(fitted.loss_curve_).all()
    assert fitted.__sklearn_tags__().input_tags.allow_nan


def test_code_of_an_incomplete_row_minimises_the_loss_on_its_observed_entries(
    fitted, X
):
    # The loss of a row with holes is the loss of the decoder restricted to the
    # observed columns, so the flow finds the same code.
    row = X[:1].copy()
    row[0, [1, 4, 5, 9]] = np.nan
    observed = torch.tensor(~np.isnan(row[0]))

    class Restricted(torch.nn.Module):
        def forward(self, z):
            return fitted.decoder_(z)[:, observed]

    z0 = torch.zeros(1, 2, dtype=torch.float64)
    restricted = fitted._flow_solver().solve(
        Restricted(), mse_loss, torch.tensor(row[:, ~np.isnan(row[0])]), z0
    )
    np.testing.assert_allclose(
        fitted.transform(row), restricted.z.numpy(), rtol=0, atol=1e-8
    )


def test_training_with_missing_entries_skips_them(X):
    # The values in the holes must not matter: fill them with anything.
    X_missing, holes = _with_holes(X, 0.3)
    filled = np.where(holes, 1e6, X)
    masked = GradientFlowEncoder(**SMALL).fit(X_missing)
    other = GradientFlowEncoder(**SMALL).fit(np.where(holes, np.nan, filled))
    np.testing.assert_array_equal(masked.loss_curve_, other.loss_curve_)
    assert masked.loss_curve_[-1] < masked.loss_curve_[0]


def test_early_stopping_with_missing_entries_scores_the_observed_ones(X):
    X_missing, _ = _with_holes(X, 0.3)
    gfe = GradientFlowEncoder(**{**SMALL, "early_stopping": True}).fit(X_missing)
    assert np.isfinite(gfe.validation_scores_).all()


def test_rows_without_any_observed_entry_are_refused_naming_them(fitted, X):
    X_missing = X[:5].copy()
    X_missing[[1, 3]] = np.nan
    with pytest.raises(ValueError, match=r"2 row\(s\) with no observed.*\[1, 3\]"):
        fitted.transform(X_missing)
    with pytest.raises(ValueError, match="no observed entry"):
        GradientFlowEncoder(**SMALL).fit(X_missing)


def test_infinite_values_are_still_refused(fitted, X):
    X_inf = X[:5].copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fitted.transform(X_inf)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"scoring": "likelihood"}, "scoring='likelihood'"),
        ({"distortion_weight": 1.0, "flow_solver": "rk4"}, "the pair loss"),
    ],
)
def test_settings_that_need_complete_rows_refuse_missing_entries(X, settings, message):
    X_missing, _ = _with_holes(X, 0.1)
    with pytest.raises(ValueError, match=f"contains NaN, which {message}"):
        GradientFlowEncoder(**SMALL, **settings).fit(X_missing)


def test_a_model_fitted_with_the_pair_loss_encodes_rows_with_missing_entries(X):
    gfe = GradientFlowEncoder(
        **{**SMALL, "max_iter": 1}, distortion_weight=1.0, flow_solver="rk4", tau=2.0
    ).fit(X)
    codes = gfe.transform(_with_holes(X, 0.2)[0])
    assert np.isfinite(codes).all()


@pytest.mark.parametrize("estimator", [AutoencoderBaseline, OneBitAutoencoder])
def test_estimators_with_an_encoder_refuse_missing_entries_pointing_to_gfe(
    estimator, X
):
    X_missing, _ = _with_holes(X, 0.1)
    with pytest.raises(ValueError, match="contains NaN.*GradientFlowEncoder.*impute"):
        estimator(n_components=2, max_iter=1).fit(X_missing)


# ------------------------------------------------------------- mixed columns


@pytest.fixture(scope="module")
def mixed(X):
    table = X[:, :6].copy()
    table[:, [1, 4]] = table[:, [1, 4]] > 0
    return table


@pytest.mark.parametrize(
    "binary_columns", [[1, 4], [-5, 4], [False, True, False, False, True, False]]
)
def test_binary_columns_by_index_or_mask_reconstruct_probabilities(
    mixed, binary_columns
):
    gfe = GradientFlowEncoder(**SMALL, binary_columns=binary_columns).fit(mixed)
    reconstructions = gfe.inverse_transform(gfe.transform(mixed))
    probabilities = reconstructions[:, [1, 4]]
    assert ((probabilities > 0) & (probabilities < 1)).all()
    # The real-valued columns are not squashed into (0, 1).
    assert (reconstructions[:, [0, 2, 3, 5]] < 0).any()


def test_binary_columns_by_name_and_missing_entries_together(mixed):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(mixed, columns=[f"c{i}" for i in range(6)])
    frame.iloc[::3, 1] = np.nan
    frame.iloc[1::4, 2] = np.nan
    by_name = GradientFlowEncoder(**SMALL, binary_columns=["c1", "c4"]).fit(frame)
    by_index = GradientFlowEncoder(**SMALL, binary_columns=[1, 4]).fit(frame)
    np.testing.assert_array_equal(by_name.transform(frame), by_index.transform(frame))


def test_binary_columns_change_the_loss(mixed):
    plain = GradientFlowEncoder(**SMALL).fit(mixed)
    binary = GradientFlowEncoder(**SMALL, binary_columns=[1, 4]).fit(mixed)
    assert plain.loss_curve_ != binary.loss_curve_


@pytest.mark.parametrize(
    "binary_columns, settings, message",
    [
        ([0], {}, r"binary_columns must hold values in \[0, 1\]"),
        (["c1"], {}, "binary_columns gives column names, but X has no string"),
        ([1], {"loss": "bce"}, "with loss='bce' every column does"),
        ([1], {"scoring": "likelihood"}, "does not combine with binary_columns"),
        ([[1]], {}, "binary_columns must be a 1-d list"),
        ([True, False], {}, r"one entry per feature \(6\), got 2"),
        ([1.5], {}, "column indices \\(int\\), names \\(str\\) or booleans"),
    ],
)
def test_bad_binary_columns_are_refused(mixed, binary_columns, settings, message):
    data = np.clip(mixed, 0, 1) if settings.get("loss") == "bce" else mixed
    gfe = GradientFlowEncoder(**SMALL, binary_columns=binary_columns, **settings)
    with pytest.raises(ValueError, match=message):
        gfe.fit(data)


def test_unknown_binary_column_name_is_refused(mixed):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(mixed, columns=[f"c{i}" for i in range(6)])
    with pytest.raises(ValueError, match=r"unknown column name\(s\) \['c9'\]"):
        GradientFlowEncoder(**SMALL, binary_columns=["c1", "c9"]).fit(frame)


def test_binary_columns_survive_save_and_load(mixed, tmp_path):
    import skgfe

    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(mixed, columns=[f"c{i}" for i in range(6)])
    gfe = GradientFlowEncoder(**SMALL, binary_columns=["c1", "c4"]).fit(frame)
    gfe.save(tmp_path / "model.skgfe")
    loaded = skgfe.load(tmp_path / "model.skgfe")
    codes = gfe.transform(frame)
    np.testing.assert_array_equal(loaded.transform(frame), codes)
    np.testing.assert_array_equal(
        loaded.inverse_transform(codes), gfe.inverse_transform(codes)
    )


def test_warm_start_trains_one_epoch_per_fit_on_missing_entries(X):
    # skgfe.impute.GradientFlowImputer trains this way, scoring held-out
    # entries between epochs: each fit continues the last one.
    X_missing, _ = _with_holes(X, 0.3)
    encoder = GradientFlowEncoder(**{**SMALL, "max_iter": 1}, warm_start=True)
    for epoch in range(3):
        with pytest.warns(ConvergenceWarning):
            encoder.set_params(random_state=epoch).fit(X_missing)
    assert encoder.n_iter_ == 3 and len(encoder.loss_curve_) == 3
    assert np.isfinite(encoder.transform(X_missing)).all()


def test_flow_time_set_after_fit_changes_the_codes_not_the_decoder(fitted, X):
    # The imputer chooses its encoding flow time after training this way.
    X_missing, _ = _with_holes(X, 0.3, seed=2)
    encoder = clone(fitted).fit(X_missing)
    weights = [p.detach().clone() for p in encoder.decoder_.parameters()]
    long_codes = encoder.transform(X_missing)
    short_codes = encoder.set_params(tau=0.01).transform(X_missing)
    assert np.linalg.norm(short_codes) < 0.1 * np.linalg.norm(long_codes)
    for before, after in zip(weights, encoder.decoder_.parameters(), strict=True):
        torch.testing.assert_close(before, after, rtol=0, atol=0)
