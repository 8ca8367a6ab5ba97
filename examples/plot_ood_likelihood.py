"""
Out-of-distribution detection with likelihoods
==============================================

A decoder-only model can give every sample a log-likelihood: the code ``z`` that
the gradient flow finds acts as the left inverse of the decoder, and, after
rectangular flows (Caterini et al., 2021),

    log p(x) = log p_Z(z) - 1/2 log det(J^T J) + log p_noise(x - D(z)),

with ``J`` the decoder Jacobian at ``z``, ``p_Z`` a Gaussian mixture fitted to
the training codes and Gaussian noise off the decoded manifold (see
:ref:`likelihood`). Here :class:`~skgfe.GradientFlowEncoder` learns
Fashion-MNIST, and its log-likelihood and its reconstruction error alone are
compared as scores that tell Fashion-MNIST test images from two kinds of
outliers: scikit-learn's 8 x 8 digits resized to 28 x 28, and uniform noise.

The data are read from local files by
:func:`skgfe.datasets.load_fashion_mnist` (nothing is downloaded); without
them the example prints where it looked and stops.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# In-distribution images and two kinds of outliers
# ------------------------------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from skgfe import GradientFlowEncoder
from skgfe.datasets import load_fashion_mnist
from skgfe.exceptions import ConvergenceWarning

try:
    X_train, _ = load_fashion_mnist(subset="train", n_samples=1000, return_X_y=True)
    X_test, _ = load_fashion_mnist(subset="test", n_samples=300, return_X_y=True)
except FileNotFoundError as exc:
    print(f"Fashion-MNIST is not available, so this example stops here.\n{exc}")
    raise SystemExit(0) from None

# Digits: 8 x 8 pixels in 0..16, zoomed by 3.5 to 28 x 28 and scaled to [0, 1].
digits = load_digits().images[:300] / 16
X_digits = np.clip(zoom(digits, (1, 3.5, 3.5), order=1), 0, 1).reshape(300, -1)
X_noise = np.random.default_rng(0).uniform(size=(300, 784))
outliers = {"digits": X_digits.astype(np.float32), "noise": X_noise.astype(np.float32)}

# %%
# Fitting the model and its density
# ---------------------------------
# ``scoring='likelihood'`` makes ``fit`` end by fitting the density: the
# variance of the Gaussian noise on the training residuals and, with
# ``prior='gmm'``, a Gaussian mixture on the training codes (the two-step
# baseline: reconstruction first, then a density on the codes). The training
# budget is small to keep the example short, so the warning that training
# stopped at ``max_iter`` is silenced.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

gfe = GradientFlowEncoder(
    n_components=8,
    hidden_layer_sizes=(64, 256),
    scoring="likelihood",
    prior="gmm",
    flow_tol=1e-3,
    max_iter=5,
    random_state=0,
).fit(X_train)

# %%
# Two scores per image
# --------------------
# ``score_samples`` returns the log-likelihood in nats; switching ``scoring``
# back to 'reconstruction' gives minus the mean squared error per pixel, from
# the same fitted model. Higher means "more like the training data" for both.
sets = {"Fashion-MNIST test": X_test, **outliers}
likelihood = {name: gfe.score_samples(X) for name, X in sets.items()}
gfe.set_params(scoring="reconstruction")
reconstruction = {name: gfe.score_samples(X) for name, X in sets.items()}

for name in outliers:
    labels = np.r_[np.ones(len(X_test)), np.zeros(len(outliers[name]))]
    auc = {
        score: roc_auc_score(labels, np.r_[values["Fashion-MNIST test"], values[name]])
        for score, values in [
            ("likelihood", likelihood),
            ("reconstruction", reconstruction),
        ]
    }
    print(
        f"Fashion-MNIST vs {name:>6}: ROC AUC {auc['likelihood']:.3f} by "
        f"log-likelihood, {auc['reconstruction']:.3f} by reconstruction error"
    )

# %%
# The scores side by side
# -----------------------
# Each panel shows how the three sets spread on one score; a good score puts
# the Fashion-MNIST test images to the right of the outliers.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, (title, values) in zip(
    axes,
    [
        ("log-likelihood (nats)", likelihood),
        ("minus reconstruction MSE", reconstruction),
    ],
):
    low, high = np.percentile(np.concatenate(list(values.values())), [1, 100])
    for name, score in values.items():
        ax.hist(
            np.clip(score, low, high), bins=40, range=(low, high), alpha=0.5, label=name
        )
    ax.set_title(title)
axes[0].legend()
fig.tight_layout()
plt.show()
