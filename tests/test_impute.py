"""GradientFlowImputer: scikit-learn's imputer contract, on a gradient flow encoder."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skgfe import GradientFlowEncoder
from skgfe._impute import _principal_axes_decoder, auto_n_components
from skgfe.impute import GradientFlowImputer

# Tiny max_iter ends training early on purpose; tests of the warnings catch
# them with pytest.warns.
pytestmark = [
    pytest.mark.filterwarnings("ignore::skgfe.exceptions.FlowSolverWarning"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

SMALL = dict(max_iter=5, device="cpu", random_state=0)


@parametrize_with_checks([GradientFlowImputer(**SMALL)])
def test_sklearn_compatible_imputer(estimator, check):
    check(estimator)


def _low_rank_table(n=120, n_features=6, rank=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, n_features))
    X += 0.05 * rng.normal(size=X.shape)
    return X * np.arange(1, n_features + 1) + 10.0  # columns of different scales


def _with_holes(X, fraction, seed=1, missing_value=np.nan):
    holes = np.random.default_rng(seed).random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    return np.where(holes, missing_value, X), holes


@pytest.fixture(scope="module")
def table():
    X = _low_rank_table()
    X_missing, holes = _with_holes(X, 0.3)
    return X, X_missing, holes


@pytest.fixture(scope="module")
def fitted(table):
    _, X_missing, _ = table
    return GradientFlowImputer(random_state=0, device="cpu").fit(X_missing)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_observed_entries_are_returned_bit_for_bit_and_holes_filled(
    fitted, table, dtype
):
    _, X_missing, holes = table
    imputed = fitted.transform(X_missing.astype(dtype))
    assert imputed.dtype == dtype and np.isfinite(imputed).all()
    np.testing.assert_array_equal(
        imputed[~holes], X_missing.astype(dtype)[~holes], strict=True
    )


def test_imputes_a_low_rank_table_far_better_than_the_means(fitted, table):
    X, X_missing, holes = table
    scale = X.std(axis=0)
    errors = {
        name: np.sqrt(np.mean(((imputed - X) / scale)[holes] ** 2))
        for name, imputed in [
            ("gfe", fitted.transform(X_missing)),
            ("mean", SimpleImputer().fit_transform(X_missing)),
        ]
    }
    assert errors["gfe"] < 0.5 * errors["mean"], errors


def test_complete_rows_pass_through_and_input_is_not_changed(fitted, table):
    X, X_missing, _ = table
    np.testing.assert_array_equal(fitted.transform(X), X, strict=True)
    before = X_missing.copy()
    fitted.transform(X_missing)
    np.testing.assert_array_equal(X_missing, before)


def test_row_with_nothing_observed_gets_the_training_means(fitted, table):
    _, X_missing, _ = table
    rows = np.vstack([np.full(X_missing.shape[1], np.nan), X_missing[:3]])
    imputed = fitted.transform(rows)
    np.testing.assert_array_equal(imputed[0], fitted.statistics_)
    np.testing.assert_allclose(fitted.statistics_, np.nanmean(X_missing, axis=0))
    np.testing.assert_array_equal(imputed[1:], fitted.transform(X_missing[:3]))


def test_training_rows_with_nothing_observed_are_left_out_of_training(table):
    _, X_missing, _ = table
    X = np.vstack([X_missing[:40], np.full((2, X_missing.shape[1]), np.nan)])
    imputer = GradientFlowImputer(**SMALL).fit(X)
    assert np.isfinite(imputer.transform(X)).all()


def test_column_with_nothing_observed_in_fit_is_refused(table):
    _, X_missing, _ = table
    X = X_missing.copy()
    X[:, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"1 column\(s\) with no observed entry.*\[2\]"
    ):
        GradientFlowImputer(**SMALL).fit(X)


def test_codes_come_from_the_observed_entries_of_the_encoder(fitted, table):
    _, X_missing, holes = table
    row = np.flatnonzero(holes.any(axis=1))[0]
    standardised = (X_missing[row] - fitted.mean_) / fitted.scale_
    encoder = fitted.encoder_
    reconstruction = encoder.inverse_transform(encoder.transform(standardised[None]))
    expected = reconstruction[0] * fitted.scale_ + fitted.mean_
    np.testing.assert_allclose(
        fitted.transform(X_missing[row : row + 1])[0, holes[row]],
        expected[holes[row]],
        rtol=1e-12,
    )
    assert isinstance(encoder, GradientFlowEncoder)
    assert encoder.n_components == fitted.n_components_


def test_early_stopping_keeps_the_best_encoder_of_the_held_out_entries(table):
    _, X_missing, _ = table
    imputer = GradientFlowImputer(**{**SMALL, "max_iter": 200}, n_iter_no_change=3)
    imputer.fit(X_missing)
    scores = imputer.validation_scores_
    assert imputer.n_iter_ == len(scores) < 200
    assert imputer.best_validation_score_ == max(scores)
    assert scores.index(max(scores)) == len(scores) - 1 - 3


def test_held_out_entries_leave_every_row_an_observed_entry():
    rng = np.random.RandomState(0)
    observed = np.random.default_rng(0).random((500, 3)) < 0.5
    held_out = GradientFlowImputer(validation_fraction=0.9)._held_out_entries(
        observed, rng
    )
    assert not (held_out & ~observed).any()
    kept = (observed & ~held_out).sum(axis=1)
    assert (kept[observed.any(axis=1)] >= 1).all()
    assert held_out.sum() > 0.3 * observed.sum()


def test_without_early_stopping_it_trains_max_iter_epochs_on_all_entries(table):
    _, X_missing, _ = table
    with pytest.warns(ConvergenceWarning):
        imputer = GradientFlowImputer(
            **{**SMALL, "max_iter": 3}, early_stopping=False
        ).fit(X_missing)
    assert imputer.n_iter_ == 3 and imputer.validation_scores_ is None


def test_max_iter_reached_before_early_stopping_warns(table):
    _, X_missing, _ = table
    with pytest.warns(ConvergenceWarning, match="GradientFlowImputer: max_iter=2"):
        GradientFlowImputer(**{**SMALL, "max_iter": 2}).fit(X_missing)


def test_single_column_trains_without_held_out_entries():
    X = np.array([[1.0], [np.nan], [3.0], [2.0]])
    imputer = GradientFlowImputer(**SMALL)
    with pytest.warns(ConvergenceWarning):
        imputed = imputer.fit_transform(X)
    assert imputer.validation_scores_ is None and np.isfinite(imputed).all()


def test_missing_values_other_than_nan(table):
    _, X_missing, holes = table
    X_coded = np.where(holes, -1.0, X_missing)
    nan_imputer = GradientFlowImputer(**SMALL).fit(X_missing)
    coded_imputer = GradientFlowImputer(missing_values=-1, **SMALL).fit(X_coded)
    np.testing.assert_array_equal(
        coded_imputer.transform(X_coded), nan_imputer.transform(X_missing)
    )
    assert not coded_imputer.__sklearn_tags__().input_tags.allow_nan
    with pytest.raises(ValueError, match="NaN"):
        coded_imputer.transform(X_missing)


def test_add_indicator_appends_sklearns_missing_indicator(table):
    _, X_missing, holes = table
    X = X_missing.copy()
    X[:, 0] = np.where(np.isnan(X[:, 0]), 0.0, X[:, 0])  # a column without holes
    imputer = GradientFlowImputer(add_indicator=True, **SMALL).fit(X)
    output = imputer.transform(X)
    indicator = MissingIndicator(error_on_new=False).fit_transform(X)
    n = X.shape[1]
    np.testing.assert_array_equal(output[:, n:], indicator)
    np.testing.assert_array_equal(output[:, :n], imputer.transform(X)[:, :n])
    assert output.shape[1] == n + n - 1
    names = imputer.get_feature_names_out()
    assert names[0] == "x0" and names[n] == "missingindicator_x1"


def test_pandas_output_and_feature_names(table):
    pd = pytest.importorskip("pandas")
    _, X_missing, _ = table
    frame = pd.DataFrame(X_missing, columns=[f"c{i}" for i in range(6)])
    imputer = GradientFlowImputer(add_indicator=True, **SMALL).set_output(
        transform="pandas"
    )
    output = imputer.fit_transform(frame)
    assert isinstance(output, pd.DataFrame)
    assert list(output.columns[:6]) == list(frame.columns)
    assert output.columns[6] == "missingindicator_c0"
    assert not output.iloc[:, :6].isna().any().any()


def test_binary_columns_by_name_are_imputed_with_probabilities():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(150, 1))
    frame = pd.DataFrame(
        {
            "real": latent[:, 0] * 3 + 1,
            "flag": (latent[:, 0] + 0.3 * rng.normal(size=150) > 0).astype(float),
            "other": -2 * latent[:, 0] + 0.1 * rng.normal(size=150),
        }
    )
    holes = rng.random(frame.shape) < 0.2
    holes[:, 0] &= ~holes[:, 2]
    frame_missing = frame.mask(holes)
    imputer = GradientFlowImputer(binary_columns=["flag"], **SMALL)
    imputed = imputer.fit_transform(frame_missing)
    flag = imputed[holes[:, 1], 1]
    assert ((flag >= 0) & (flag <= 1)).all() and not np.isin(flag, [0, 1]).all()
    np.testing.assert_array_equal(imputer.encoder_.binary_columns, [False, True, False])
    assert imputer.mean_[1] == 0 and imputer.scale_[1] == 1
    assert imputer.statistics_[1] == pytest.approx(frame_missing["flag"].mean())


def test_binary_columns_outside_zero_one_are_refused(table):
    _, X_missing, _ = table
    with pytest.raises(ValueError, match="binary_columns must hold values in"):
        GradientFlowImputer(binary_columns=[0], **SMALL).fit(X_missing)


def test_in_a_pipeline_before_a_model_with_cross_validation(table):
    _, X_missing, _ = table
    y = (np.nan_to_num(X_missing[:, 1], nan=0.0) > np.nanmean(X_missing[:, 1])).astype(
        int
    )
    pipeline = make_pipeline(GradientFlowImputer(**SMALL), LogisticRegression())
    scores = cross_val_score(pipeline, X_missing, y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()


def test_pickle_round_trip_imputes_the_same(fitted, table):
    _, X_missing, _ = table
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(
        restored.transform(X_missing), fitted.transform(X_missing)
    )


def test_same_random_state_fits_the_same_imputer(table):
    _, X_missing, _ = table
    imputer = GradientFlowImputer(**SMALL)
    first = imputer.fit_transform(X_missing)
    np.testing.assert_array_equal(clone(imputer).fit_transform(X_missing), first)


def test_verbose_prints_the_held_out_error(table, capsys):
    _, X_missing, _ = table
    GradientFlowImputer(**{**SMALL, "max_iter": 2}, verbose=1).fit(X_missing)
    assert "held-out entries' MSE=" in capsys.readouterr().out


@pytest.mark.parametrize(
    "n_samples, n_features, expected", [(178, 13, 4), (569, 30, 10), (1797, 64, 21)]
)
def test_auto_code_size(n_samples, n_features, expected):
    assert auto_n_components(n_samples, n_features) == expected


def test_auto_code_size_stays_below_the_features_and_at_least_one():
    assert auto_n_components(5, 1) == 1
    assert auto_n_components(100, 2) == 1


def test_linear_decoder_starts_at_the_principal_axes():
    X = _low_rank_table()
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    decoder = _principal_axes_decoder(X, 3, np.zeros(6, dtype=bool))
    weight = decoder.weight.detach().numpy()
    _, singular_values, axes = np.linalg.svd(X, full_matrices=False)
    np.testing.assert_allclose(
        np.abs(weight.T), np.abs(axes[:3]) * singular_values[:3, None] / np.sqrt(120)
    )
    np.testing.assert_array_equal(decoder.bias.detach().numpy(), 0.0)


def test_a_hidden_layer_decoder_is_built_by_the_encoder(table):
    _, X_missing, _ = table
    imputer = GradientFlowImputer(hidden_layer_sizes=(8,), **SMALL).fit(X_missing)
    assert imputer.encoder_.decoder is None
    assert np.isfinite(imputer.transform(X_missing)).all()


INVALID = [
    ({"n_components": 0}, "'n_components' parameter"),
    ({"hidden_layer_sizes": "big"}, "'hidden_layer_sizes' parameter"),
    ({"hidden_layer_sizes": (4, 0)}, "hidden_layer_sizes must be a positive"),
    ({"max_iter": 0}, "'max_iter' parameter"),
    ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
    ({"n_iter_no_change": 0}, "'n_iter_no_change' parameter"),
    ({"tol": -1.0}, "'tol' parameter"),
    ({"tau": 0.0}, "'tau' parameter"),
    ({"learning_rate_init": 0.0}, "'learning_rate_init' parameter"),
    ({"batch_size": 0}, "'batch_size' parameter"),
    ({"missing_values": "?"}, "'missing_values' parameter"),
    ({"add_indicator": "yes"}, "'add_indicator' parameter"),
    ({"early_stopping": "yes"}, "'early_stopping' parameter"),
    ({"activation": "swish"}, "'activation' parameter"),
    ({"device": "tpu"}, "device='tpu' is not a device"),
    ({"n_threads": 0}, "'n_threads' parameter"),
    ({"binary_columns": [9]}, "binary_columns has column index"),
    ({"binary_columns": ["a"]}, "binary_columns gives column names"),
    ({"verbose": "loud"}, "'verbose' parameter"),
    ({"random_state": "seed"}, "'random_state' parameter"),
]


@pytest.mark.parametrize("params, message", INVALID)
def test_invalid_parameters_are_refused_in_fit_naming_them(table, params, message):
    _, X_missing, _ = table
    imputer = GradientFlowImputer(**SMALL).set_params(**params)
    with pytest.raises((ValueError, TypeError), match=message):
        imputer.fit(X_missing)


def test_the_invalid_parameter_table_covers_every_parameter():
    tested = {name for params, _ in INVALID for name in params}
    assert tested == set(GradientFlowImputer().get_params())
