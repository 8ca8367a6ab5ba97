"""
How sure is a code? Error ellipses and reconstruction intervals
===============================================================

The code that :class:`~skgfe.GradientFlowEncoder` finds for a sample is the
minimiser of the sample's reconstruction loss, so the curvature of that loss
says how well the sample pins its code down.
:meth:`~skgfe.GradientFlowEncoder.code_uncertainty` turns the curvature into
a covariance per code (the Laplace approximation, see :ref:`uncertainty`),
and :meth:`~skgfe.GradientFlowEncoder.reconstruct` with ``return_std=True``
carries it to the reconstructions.

Here eight sensors respond smoothly, and nonlinearly, to two hidden factors,
with Gaussian noise. We fit a 2-D GFE, draw the codes of held-out samples with
their 90% error ellipses, and compare the 90% intervals of their
reconstructions with the noise-free sensor values.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# Eight sensors driven by two hidden factors
# ------------------------------------------
# Each sensor reads ``tanh`` of its own mix of the two factors: sensitive in
# the middle of its range, saturated at its ends.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse
from scipy.stats import chi2, norm

from skgfe import GradientFlowEncoder
from skgfe.exceptions import ConvergenceWarning

rng = np.random.default_rng(0)
n_sensors, noise_std = 8, 0.05
gains = rng.uniform(0.5, 1.5, size=(n_sensors, 2))
offsets = rng.uniform(-1, 1, size=n_sensors)


def sensor_readings(factors):
    return np.tanh(factors @ gains.T + offsets)


factors = rng.uniform(-1, 1, size=(1300, 2))
clean = sensor_readings(factors)
X = clean + noise_std * rng.normal(size=clean.shape)
X_train, X_test = X[:1000], X[1000:]
factors_test, clean_test = factors[1000:], clean[1000:]

# %%
# A 2-D GFE
# ---------
# Training is kept short for the gallery (the ConvergenceWarning saying that
# it stopped at ``max_iter`` is silenced).
warnings.filterwarnings("ignore", category=ConvergenceWarning)
gfe = GradientFlowEncoder(
    n_components=2,
    hidden_layer_sizes=(32,),
    activation="tanh",
    max_iter=40,
    batch_size=128,
    learning_rate_init=1e-2,
    random_state=0,
).fit(X_train)

# %%
# Codes with error ellipses
# -------------------------
# ``code_uncertainty`` returns the codes of ``transform`` and their Laplace
# covariances. The noise variance is not given, and the model was not fitted
# with ``scoring='likelihood'``, so it is estimated from the residuals of
# ``X_test`` itself. A 90% ellipse of a 2-D Gaussian is the set of points at
# Mahalanobis distance up to ``sqrt(chi2.ppf(0.9, 2))`` from the code.
codes, code_cov = gfe.code_uncertainty(X_test, return_cov=True)
radius = np.sqrt(chi2.ppf(0.9, df=2))

fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(codes[:, 0], codes[:, 1], c=factors_test[:, 0], s=8, cmap="viridis")
for code, covariance in zip(codes[:60], code_cov[:60]):
    variances, axes = np.linalg.eigh(covariance)
    width, height = 2 * radius * np.sqrt(variances[::-1])
    angle = np.degrees(np.arctan2(axes[1, -1], axes[0, -1]))
    ax.add_patch(
        Ellipse(code, width, height, angle=angle, fill=False, color="0.3", lw=0.8)
    )
fig.colorbar(points, label="first hidden factor")
ax.set(xlabel="code 1", ylabel="code 2", title="Held-out codes, 90% ellipses")
ax.set_aspect("equal", adjustable="datalim")

# %%
# The ellipses are widest where the sensors saturate: there a change of the
# factors barely changes the readings, so the readings pin the code down
# least. The area of each ellipse against the true factors shows it.
area = np.pi * radius**2 * np.sqrt(np.linalg.det(code_cov))
fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(*factors_test.T, c=area, s=14, cmap="magma", norm="log")
fig.colorbar(points, label="area of the 90% ellipse (code units)")
ax.set(xlabel="first hidden factor", ylabel="second hidden factor")
ax.set_title("Where the codes are least certain")

# %%
# Reconstructions with intervals
# ------------------------------
# ``reconstruct(X, return_std=True)`` gives every reconstructed entry a
# standard deviation (the delta method through the decoder). It is the
# uncertainty of the noise-free value that the code determines, so we compare
# the 90% intervals with the noise-free sensor values.
X_reconstructed, X_std = gfe.reconstruct(X_test, return_std=True)
inside = np.abs(X_reconstructed - clean_test) <= norm.ppf(0.95) * X_std
print(f"nominal 90% intervals cover {inside.mean():.1%} of the noise-free values")

# %%
# Left: for four held-out samples, the error of every reconstructed sensor
# value with its 90% interval; the interval contains the noise-free value
# where it crosses zero. Right: all the errors divided by their standard
# deviations, against the standard normal they would follow if the intervals
# were exact.
z_90 = norm.ppf(0.95)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
sensors = np.arange(n_sensors)
for row in range(4):
    shift = (row - 1.5) * 0.18
    left.errorbar(
        sensors + shift,
        X_reconstructed[row] - clean_test[row],
        yerr=z_90 * X_std[row],
        fmt="o",
        ms=3,
        capsize=2,
        label=f"held-out sample {row}",
    )
left.axhline(0, color="k", lw=0.8)
left.set(xlabel="sensor", ylabel="reconstruction - noise-free value")
left.set_title("Reconstruction errors, 90% intervals")
left.legend(fontsize=8)

standardized = ((X_reconstructed - clean_test) / X_std).ravel()
grid = np.linspace(-5, 5, 200)
right.hist(standardized, bins=np.linspace(-5, 5, 41), density=True, alpha=0.6)
right.plot(grid, norm.pdf(grid), "k", label="standard normal")
for edge in (-z_90, z_90):
    right.axvline(edge, color="0.4", ls="--", lw=0.8)
right.set(xlabel="error / standard deviation", ylabel="density")
right.set_title(f"{inside.mean():.0%} inside the nominal 90% intervals")
right.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %%
# Imputed values with intervals
# -----------------------------
# A flow needs only the observed entries of a row, so a held-out sample with
# missing sensors (NaN) still gets a code, and the decoder fills the holes
# in. The missing entries carry no information about the code, so the fewer
# sensors a row keeps, the wider its code's ellipse and the intervals of its
# imputed values. Here every held-out sample loses three or six of its eight
# sensors. With two sensors left for a 2-D code, a few rows (where both
# saturate) pin their code down hardly at all: their standard deviations run
# to thousands, hence the log scale.
X_holes = X_test.copy()
n_missing = np.where(np.arange(len(X_test)) % 2 == 0, 3, 6)
for row, count in enumerate(n_missing):
    X_holes[row, rng.choice(n_sensors, size=count, replace=False)] = np.nan
missing = np.isnan(X_holes)
imputed, imputed_std = gfe.reconstruct(X_holes, return_std=True)
imputed_inside = np.abs(imputed - clean_test) <= z_90 * imputed_std

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
for count, color in ((3, "tab:blue"), (6, "tab:orange")):
    holes = missing & (n_missing == count)[:, None]
    left.errorbar(
        clean_test[holes][:40],
        imputed[holes][:40],
        yerr=z_90 * imputed_std[holes][:40],
        fmt="o",
        ms=3,
        capsize=2,
        color=color,
        label=f"{count} of 8 sensors missing",
    )
    print(
        f"{count} missing: median std of the imputed values "
        f"{np.median(imputed_std[holes]):.3f}, 90% intervals cover "
        f"{imputed_inside[holes].mean():.0%} of the noise-free values"
    )
left.plot([-1, 1], [-1, 1], "k", lw=0.8)
left.set(xlabel="noise-free value", ylabel="imputed value")
left.set_title("Imputed sensor values, 90% intervals")
left.legend(fontsize=8)
right.boxplot(
    [imputed_std[missing & (n_missing == count)[:, None]] for count in (3, 6)],
    tick_labels=["3 missing", "6 missing"],
)
right.set_yscale("log")
right.set(ylabel="standard deviation of an imputed value")
right.set_title("Fewer observed sensors, wider intervals")
fig.tight_layout()
plt.show()

# %%
# What the intervals leave out
# ----------------------------
# The Laplace approximation treats the fitted decoder as exact: the
# intervals carry the noise's effect on the code, not the decoder's own
# error. After this short training the decoder's error adds to the
# reconstruction errors, so the nominal 90% intervals cover fewer of the
# noise-free values (the title of the histogram; 81% in our run). With the
# true decoder in place of a fitted one, nominal 90% intervals covered 89-92%
# of the noise-free values in the tests' calibration check. The approximation
# is also local: it assumes that the code minimises the loss and that the
# loss is nearly quadratic over the ellipse.
