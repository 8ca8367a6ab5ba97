"""Tests of skgfe.plotting, drawn with matplotlib's Agg backend."""

import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.exceptions import ConvergenceWarning
from skgfe.plotting import (
    plot_flow_convergence,
    plot_latent,
    plot_loss_curves,
    plot_reconstructions,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

IMPORT_MESSAGE = r"pip install skgfe\[plots\]"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:60] / 16


def _fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


@pytest.fixture(scope="module")
def autoencoder(X):
    """Fitted with early stopping, so it has validation scores."""
    return _fit(
        AutoencoderBaseline(
            n_components=2,
            hidden_layer_sizes=(16,),
            max_iter=4,
            early_stopping=True,
            validation_fraction=0.2,
            device="cpu",
            random_state=0,
        ),
        X,
    )


@pytest.fixture(scope="module")
def gfe(X):
    return _fit(
        GradientFlowEncoder(
            n_components=2,
            hidden_layer_sizes=(16,),
            max_iter=2,
            batch_size=60,
            device="cpu",
            random_state=0,
        ),
        X,
    )


@pytest.fixture(scope="module")
def diagnostics(gfe, X):
    return gfe.flow_diagnostics(X[:6], return_trajectory=True)


# ------------------------------------------------------------ plot_loss_curves


def test_plot_loss_curves_single_estimator(gfe):
    ax = plot_loss_curves(gfe)
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, gfe.n_iter_ + 1))
    np.testing.assert_allclose(line.get_ydata(), gfe.loss_curve_)
    assert line.get_label() == "GradientFlowEncoder (training)"


def test_plot_loss_curves_dict_with_validation(gfe, autoencoder):
    ax = plot_loss_curves({"GFE": gfe, "AE": autoencoder})
    # GFE has no validation scores: three lines, not four.
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["GFE (training)", "AE (training)", "AE (validation)"]
    training, validation = ax.lines[1:]
    np.testing.assert_allclose(
        validation.get_ydata(), -np.asarray(autoencoder.validation_scores_)
    )
    assert validation.get_linestyle() == "--"
    assert validation.get_color() == training.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels


def test_plot_loss_curves_existing_ax(gfe):
    _, ax = plt.subplots()
    assert plot_loss_curves({"GFE": gfe}, ax=ax) is ax
    assert len(ax.lines) == 1


def test_plot_loss_curves_unfitted():
    with pytest.raises(NotFittedError, match="no loss_curve_"):
        plot_loss_curves(GradientFlowEncoder())


# ----------------------------------------------------------------- plot_latent


def test_plot_latent_without_labels():
    codes = np.random.default_rng(0).normal(size=(30, 2))
    ax = plot_latent(codes)
    (points,) = ax.collections
    np.testing.assert_allclose(points.get_offsets(), codes)
    assert ax.get_legend() is None
    assert ax.get_xlabel() == "component 1"


def test_plot_latent_class_labels_uses_first_two_components():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(40, 4))
    labels = np.array(["a", "b", "c", "d"])[rng.integers(4, size=40)]
    ax = plot_latent(codes, labels)
    (points,) = ax.collections
    np.testing.assert_allclose(points.get_offsets(), codes[:, :2])
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b", "c", "d"]
    # One colour per class.
    ax.figure.canvas.draw()
    assert len({tuple(c) for c in points.get_facecolors()}) == 4
    assert len(ax.figure.axes) == 1  # no colorbar


def test_plot_latent_float_labels_colorbar():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(30, 2))
    ax = plot_latent(codes, labels=rng.uniform(size=30))
    assert len(ax.collections) == 1
    assert ax.get_legend() is None
    assert len(ax.figure.axes) == 2  # the plot and its colorbar


@pytest.mark.parametrize("n_classes, legend", [(15, True), (30, False)])
def test_plot_latent_many_classes(n_classes, legend):
    """Up to 20 classes get a legend; more get a colorbar of the label values."""
    codes = np.random.default_rng(0).normal(size=(60, 2))
    labels = np.arange(60) % n_classes
    ax = plot_latent(codes, labels)
    assert (ax.get_legend() is not None) == legend
    if legend:
        assert len(ax.get_legend().get_texts()) == n_classes
        ax.figure.canvas.draw()
        assert len({tuple(c) for c in ax.collections[0].get_facecolors()}) == n_classes
    else:
        assert len(ax.figure.axes) == 2
        np.testing.assert_array_equal(ax.collections[0].get_array(), labels)


def test_plot_latent_dataframe_and_existing_ax():
    pd = pytest.importorskip("pandas")
    codes = pd.DataFrame(np.eye(3)[:, :2], columns=["gfe0", "gfe1"])
    _, ax = plt.subplots()
    assert plot_latent(codes, labels=[0, 1, 1], ax=ax) is ax
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("gfe0", "gfe1")
    assert len(ax.collections) == 1


@pytest.mark.parametrize(
    "codes, labels, match",
    [
        (np.zeros((5, 1)), None, "n_components >= 2"),
        (np.zeros(5), None, "n_components >= 2"),
        (np.zeros((5, 2)), np.zeros(4), r"labels must have shape \(5,\)"),
    ],
)
def test_plot_latent_invalid(codes, labels, match):
    with pytest.raises(ValueError, match=match):
        plot_latent(codes, labels)


# -------------------------------------------------------- plot_reconstructions


def test_plot_reconstructions_grid():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(12, 6))  # 2x3 images
    ax = plot_reconstructions(images, images * 0.5, (2, 3), n=4)
    (image,) = ax.images
    grid = image.get_array()
    # Two rows of 4 tiles, separated by one blank pixel.
    assert grid.shape == (2 * 3 - 1, 4 * 4 - 1)
    np.testing.assert_allclose(grid[:2, :3], images[0].reshape(2, 3))
    np.testing.assert_allclose(grid[3:, 4:7], 0.5 * images[1].reshape(2, 3))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["original", "reconstruction"]


def test_plot_reconstructions_dict_existing_ax_and_small_n():
    images = np.random.default_rng(0).uniform(size=(3, 4))
    _, ax = plt.subplots()
    returned = plot_reconstructions(
        images, {"GFE": images, "AE": images}, (2, 2), n=10, ax=ax
    )
    assert returned is ax
    (image,) = ax.images
    # All 3 samples (fewer than n), three rows: originals, GFE, AE.
    assert image.get_array().shape == (3 * 3 - 1, 3 * 3 - 1)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "GFE", "AE"]


@pytest.mark.parametrize(
    "reconstructions, n, match",
    [
        (np.zeros((5, 5)), 3, "reconstruction: expected flattened images of 2x2"),
        (np.zeros((2, 4)), 3, "reconstruction: has 2 rows, fewer than n=3"),
        (np.zeros((5, 4)), 0, "n must be at least 1"),
    ],
)
def test_plot_reconstructions_invalid(reconstructions, n, match):
    with pytest.raises(ValueError, match=match):
        plot_reconstructions(np.zeros((5, 4)), reconstructions, (2, 2), n=n)


# ------------------------------------------------------- plot_flow_convergence


def test_plot_flow_convergence_real_diagnostics(diagnostics):
    ax = plot_flow_convergence(diagnostics)
    assert len(ax.lines) == len(diagnostics.trajectories) == 6
    times, _, losses = diagnostics.trajectories[0]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), times)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), losses)


def test_plot_flow_convergence_first_n_existing_ax(diagnostics):
    _, ax = plt.subplots()
    assert plot_flow_convergence(diagnostics, n=2, ax=ax) is ax
    assert len(ax.lines) == 2
    assert ax.get_title().startswith("2 samples")


def _synthetic(times, converged):
    times = np.asarray(times, dtype=float)
    losses = 1.0 - times / (2 * times.max())
    path = (times, np.zeros((len(times), 2)), losses)
    return Bunch(trajectories=[path] * len(converged), converged=np.asarray(converged))


def test_plot_flow_convergence_scales_and_unfinished():
    # Times spanning 4 decades: symlog time axis; losses span under 2 decades.
    ax = plot_flow_convergence(_synthetic([0, 1, 3, 7, 1e4], [True, False]))
    assert ax.get_xscale() == "symlog"
    assert ax.get_yscale() == "linear"
    assert [line.get_linestyle() for line in ax.lines] == ["-", ":"]
    assert ax.get_title() == "2 samples, 1 finished"
    # A short flow keeps linear axes.
    ax = plot_flow_convergence(_synthetic([0, 1, 2, 3], [True]))
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "linear")


def test_plot_flow_convergence_log_loss():
    times = np.array([0.0, 1.0, 2.0])
    path = (times, np.zeros((3, 2)), np.array([1, 1e-2, 1e-4]))
    diagnostics = Bunch(trajectories=[path], converged=np.array([True]))
    assert plot_flow_convergence(diagnostics).get_yscale() == "log"


def test_plot_flow_convergence_without_trajectories(gfe, X):
    with pytest.raises(ValueError, match="return_trajectory=True"):
        plot_flow_convergence(gfe.flow_diagnostics(X[:3]))


# ------------------------------------------------------------ missing matplotlib


@pytest.mark.parametrize(
    "plot",
    [
        lambda: plot_loss_curves({}),
        lambda: plot_latent(np.zeros((3, 2))),
        lambda: plot_reconstructions(np.zeros((3, 4)), np.zeros((3, 4)), (2, 2)),
        lambda: plot_flow_convergence(Bunch(trajectories=[], converged=[])),
    ],
    ids=["loss_curves", "latent", "reconstructions", "flow_convergence"],
)
def test_import_error_without_matplotlib(monkeypatch, plot):
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=IMPORT_MESSAGE):
        plot()
