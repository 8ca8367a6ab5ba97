"""Plots of fitted skgfe estimators: training curves, codes, reconstructions, flows.

matplotlib is an optional dependency (``pip install skgfe[plots]``); it is
imported only when a function of this module is called.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

import numpy as np
from sklearn.exceptions import NotFittedError

__all__ = [
    "plot_flow_convergence",
    "plot_latent",
    "plot_loss_curves",
    "plot_reconstructions",
]

# Discrete labels with at most this many classes get a legend; more classes,
# and float labels, get a colorbar.
_MAX_LEGEND_CLASSES = 20
# A positive range wider than this ratio is drawn on a logarithmic axis.
_LOG_SCALE_RATIO = 100.0


def _pyplot():
    """Import matplotlib.pyplot, or say how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skgfe.plotting needs matplotlib, which is not installed; install it "
            "with `pip install skgfe[plots]` (or `pip install matplotlib`)"
        ) from exc
    return plt


def _get_ax(ax, figsize=None):
    """The given Axes, or the Axes of a new figure."""
    if ax is None:
        _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def plot_loss_curves(estimators, ax=None):
    """Plot the training loss, and the validation loss, per epoch.

    The training curve is ``loss_curve_``. With ``early_stopping=True`` the
    estimators also record ``validation_scores_`` (minus the validation loss);
    it is drawn as a dashed line after changing its sign back to a loss.

    Parameters
    ----------
    estimators : estimator or dict of str to estimator
        A fitted :class:`~skgfe.GradientFlowEncoder` or
        :class:`~skgfe.AutoencoderBaseline`, or several keyed by the name to
        show in the legend. A single estimator is named by its class.
    ax : matplotlib Axes, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on: one line per training curve and one per validation
        curve.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If an estimator has no ``loss_curve_``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgfe import AutoencoderBaseline, GradientFlowEncoder
    >>> from skgfe.plotting import plot_loss_curves
    >>> X = load_digits().data / 16
    >>> models = {
    ...     "GFE": GradientFlowEncoder(n_components=4, max_iter=5, random_state=0),
    ...     "AE": AutoencoderBaseline(n_components=4, max_iter=5, random_state=0),
    ... }
    >>> for model in models.values():
    ...     model.fit(X)  # doctest: +SKIP
    >>> ax = plot_loss_curves(models)  # doctest: +SKIP
    """
    if not isinstance(estimators, dict):
        estimators = {type(estimators).__name__: estimators}
    ax = _get_ax(ax)
    for name, estimator in estimators.items():
        losses = getattr(estimator, "loss_curve_", None)
        if losses is None:
            raise NotFittedError(
                f"{name} ({type(estimator).__name__}) has no loss_curve_; fit it "
                "before plotting its loss curves"
            )
        epochs = np.arange(1, len(losses) + 1)
        (line,) = ax.plot(epochs, losses, label=f"{name} (training)")
        validation = getattr(estimator, "validation_scores_", None)
        if validation:
            ax.plot(
                np.arange(1, len(validation) + 1),
                -np.asarray(validation),
                linestyle="--",
                color=line.get_color(),
                label=f"{name} (validation)",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction loss")
    ax.legend()
    return ax


def plot_latent(codes, labels=None, ax=None):
    """Scatter plot of codes, coloured by label.

    Parameters
    ----------
    codes : array-like of shape (n_samples, n_components)
        Codes, e.g. from ``transform``; with more than two components the
        first two are plotted. The axes are named after the columns of a
        pandas DataFrame, else "component 1" and "component 2".
    labels : array-like of shape (n_samples,), default=None
        Colour of each point. Integer, boolean or string labels are classes:
        with at most 20 classes each gets its own colour and a legend entry.
        Float labels (a continuous quantity) and more classes are mapped to a
        colormap shown in a colorbar. None draws every point in one colour.
    ax : matplotlib Axes, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, holding one scatter collection.

    Raises
    ------
    ValueError
        If the codes have fewer than two columns, or ``labels`` is not one
        value per row of ``codes``.

    Examples
    --------
    >>> import numpy as np
    >>> from skgfe.plotting import plot_latent
    >>> rng = np.random.default_rng(0)
    >>> codes = rng.normal(size=(100, 3))
    >>> ax = plot_latent(codes, labels=rng.integers(3, size=100))  # doctest: +SKIP
    """
    names = getattr(codes, "columns", None)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise ValueError(
            "plot_latent needs codes of shape (n_samples, n_components) with "
            f"n_components >= 2, got shape {codes.shape}"
        )
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (codes.shape[0],):
            raise ValueError(
                f"labels must have shape ({codes.shape[0]},), one per row of "
                f"codes, got shape {labels.shape}"
            )
    ax = _get_ax(ax)
    x, y = codes[:, 0], codes[:, 1]
    if labels is None:
        ax.scatter(x, y, s=10)
    else:
        classes, index = np.unique(labels, return_inverse=True)
        if labels.dtype.kind != "f" and len(classes) <= _MAX_LEGEND_CLASSES:
            # Class i gets colour i of a qualitative colormap.
            n_colours = 10 if len(classes) <= 10 else 20
            points = ax.scatter(
                x, y, c=index, cmap=f"tab{n_colours}", vmin=0, vmax=n_colours - 1, s=10
            )
            handles, _ = points.legend_elements(num=None)
            ax.legend(
                handles,
                [str(c) for c in classes],
                title="label",
                loc="best",
                fontsize="small",
            )
        else:
            values = labels if labels.dtype.kind in "fiu" else index
            points = ax.scatter(x, y, c=values, cmap="viridis", s=10)
            ax.figure.colorbar(points, ax=ax)
    xlabel, ylabel = (
        (str(names[0]), str(names[1]))
        if names is not None
        else ("component 1", "component 2")
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def plot_reconstructions(images, reconstructions, image_shape, n=10, ax=None):
    """Show images above their reconstructions, as one grid.

    The grid is a single image drawn in one Axes: the first row holds the
    first ``n`` samples, each following row their reconstructions by one
    model. All tiles share one grey scale.

    Parameters
    ----------
    images : array-like of shape (n_samples, n_features)
        Original samples, one flattened image per row.
    reconstructions : array-like of shape (n_samples, n_features) or dict
        Reconstructions of ``images``, e.g.
        ``model.inverse_transform(model.transform(images))``, or several
        keyed by a name shown at the start of their row.
    image_shape : tuple of int (height, width)
        Shape of one image; ``height * width`` must be ``n_features``.
    n : int, default=10
        Number of samples shown (all of them if fewer).
    ax : matplotlib Axes, default=None
        Axes to draw on; None draws on a new figure sized to the grid.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, holding one image.

    Raises
    ------
    ValueError
        If ``n < 1``, if the arrays do not hold ``height * width`` features,
        or if a reconstruction has fewer rows than the samples shown.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skgfe.plotting import plot_reconstructions
    >>> X = load_digits().data / 16
    >>> pca = PCA(n_components=8).fit(X)
    >>> X_hat = pca.inverse_transform(pca.transform(X))
    >>> ax = plot_reconstructions(X, {"PCA": X_hat}, (8, 8))  # doctest: +SKIP
    """
    if not isinstance(reconstructions, dict):
        reconstructions = {"reconstruction": reconstructions}
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    height, width = image_shape
    rows = [("original", np.asarray(images, dtype=float))]
    rows += [(name, np.asarray(r, dtype=float)) for name, r in reconstructions.items()]
    n = min(n, rows[0][1].shape[0])
    for name, array in rows:
        if array.ndim != 2 or array.shape[1] != height * width:
            raise ValueError(
                f"{name}: expected flattened images of {height}x{width} = "
                f"{height * width} features, got shape {array.shape}"
            )
        if array.shape[0] < n:
            raise ValueError(f"{name}: has {array.shape[0]} rows, fewer than n={n}")

    # Tiles separated by one pixel of NaN, which imshow leaves blank.
    pad = 1
    grid = np.full((len(rows) * (height + pad) - pad, n * (width + pad) - pad), np.nan)
    for i, (_, array) in enumerate(rows):
        for j in range(n):
            top, left = i * (height + pad), j * (width + pad)
            grid[top : top + height, left : left + width] = array[j].reshape(
                height, width
            )

    ax = _get_ax(ax, figsize=(n * 0.8 + 1, len(rows) * 0.8 + 0.4))
    ax.imshow(
        grid,
        cmap="gray",
        vmin=np.nanmin(grid),
        vmax=np.nanmax(grid),
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([i * (height + pad) + (height - 1) / 2 for i in range(len(rows))])
    ax.set_yticklabels([name for name, _ in rows])
    ax.tick_params(left=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def _auto_scale(set_scale, values, *, symmetric_zero=False):
    """Make an axis logarithmic when its positive values span >= 2 decades.

    With ``symmetric_zero`` the axis is 'symlog', linear below the smallest
    positive value, so that zeros (the start of a flow) stay visible.
    """
    positive = values[values > 0]
    if positive.size == 0 or positive.max() < _LOG_SCALE_RATIO * positive.min():
        return
    if symmetric_zero:
        set_scale("symlog", linthresh=positive.min())
    elif positive.size == values.size:
        set_scale("log")


def plot_flow_convergence(diagnostics, n=20, ax=None):
    """Plot each sample's reconstruction loss along its gradient flow.

    One line per sample, loss against flow time, for the first ``n`` samples
    of ``flow_diagnostics(X, return_trajectory=True)``. Samples whose flow did
    not finish (status 'max_steps' or 'nonfinite') are dotted. The time axis is
    'symlog' (linear near 0, logarithmic beyond) and the loss axis logarithmic
    when their values span two decades or more.

    Parameters
    ----------
    diagnostics : Bunch
        The result of :meth:`GradientFlowEncoder.flow_diagnostics
        <skgfe.GradientFlowEncoder.flow_diagnostics>` called with
        ``return_trajectory=True``.
    n : int, default=20
        Number of samples plotted (all of them if fewer).
    ax : matplotlib Axes, default=None
        Axes to draw on; None draws on a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The Axes drawn on, holding one line per sample.

    Raises
    ------
    ValueError
        If ``diagnostics`` holds no trajectories.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgfe import GradientFlowEncoder
    >>> from skgfe.plotting import plot_flow_convergence
    >>> X = load_digits().data / 16
    >>> gfe = GradientFlowEncoder(n_components=4, max_iter=5, random_state=0)
    >>> diagnostics = gfe.fit(X).flow_diagnostics(  # doctest: +SKIP
    ...     X[:20], return_trajectory=True)
    >>> ax = plot_flow_convergence(diagnostics)  # doctest: +SKIP
    """
    if "trajectories" not in diagnostics:
        raise ValueError(
            "diagnostics holds no trajectories; get them with "
            "GradientFlowEncoder.flow_diagnostics(X, return_trajectory=True)"
        )
    ax = _get_ax(ax)
    shown = diagnostics["trajectories"][:n]
    converged = np.asarray(diagnostics["converged"][: len(shown)])
    for (times, _, losses), finished in zip(shown, converged):
        ax.plot(times, losses, linestyle="-" if finished else ":", linewidth=1)
    if shown:
        _auto_scale(
            ax.set_xscale, np.concatenate([t for t, _, _ in shown]), symmetric_zero=True
        )
        _auto_scale(ax.set_yscale, np.concatenate([loss for _, _, loss in shown]))
    ax.set_xlabel("flow time")
    ax.set_ylabel("reconstruction loss")
    ax.set_title(f"{len(shown)} samples, {int(converged.sum())} finished")
    return ax
