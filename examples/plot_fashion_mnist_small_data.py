"""
Learning from 1% of Fashion-MNIST
=================================

Gradient Flow Encoding was proposed as a data-efficient alternative to the
autoencoder: without an encoder to train, the decoder can learn from few
samples. Here :class:`~skgfe.GradientFlowEncoder` and
:class:`~skgfe.AutoencoderBaseline`, with the same decoder (hidden widths 150,
300 and 600, as in the GFE paper), the same 20-dimensional codes and the same
training budget, learn from 600 training images of Fashion-MNIST (1% of the
training set). They are compared by their binary cross-entropy on 1,000 test
images and by the reconstructions they give.

The data are read from local files by
:func:`skgfe.datasets.load_fashion_mnist` (nothing is downloaded); without
them the example prints where it looked and stops.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# Loading 600 training and 1,000 test images
# ------------------------------------------
import warnings

import matplotlib.pyplot as plt

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.datasets import load_fashion_mnist
from skgfe.exceptions import ConvergenceWarning
from skgfe.plotting import plot_loss_curves, plot_reconstructions

try:
    X_train, _ = load_fashion_mnist(subset="train", n_samples=600, return_X_y=True)
    X_test, _ = load_fashion_mnist(subset="test", n_samples=1000, return_X_y=True)
except FileNotFoundError as exc:
    print(f"Fashion-MNIST is not available, so this example stops here.\n{exc}")
    raise SystemExit(0) from None
print(f"{len(X_train)} training and {len(X_test)} test images of 28x28 pixels")

# %%
# Training both models on the small set
# -------------------------------------
# Pixels lie in [0, 1], so both models use the binary cross-entropy loss with
# small batches of 16 images. To keep the example near 20 s on one CPU
# thread, both are trained for only a few epochs (so the ConvergenceWarning
# saying training stopped at ``max_iter`` is silenced) and GFE's flow tolerance
# is looser than its default ``flow_tol=1e-4``.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

common = dict(
    n_components=20,
    hidden_layer_sizes=(150, 300, 600),
    loss="bce",
    batch_size=16,
    max_iter=5,
    random_state=0,
)
models = {
    "GFE": GradientFlowEncoder(flow_tol=1e-3, **common),
    "Autoencoder": AutoencoderBaseline(**common),
}
for name, model in models.items():
    model.fit(X_train)
    # score is minus the mean per-image BCE (mean over pixels).
    print(
        f"{name:>11}: training BCE {model.loss_curve_[-1]:.4f}, "
        f"test BCE {-model.score(X_test):.4f}"
    )

# %%
# Reconstructions of test images
# ------------------------------
# The first ten test images (top row) and their reconstructions by each model.
reconstructions = {
    name: model.inverse_transform(model.transform(X_test[:10]))
    for name, model in models.items()
}
ax = plot_reconstructions(X_test, reconstructions, (28, 28), n=10)
ax.set_title("Test images and their reconstructions")

# %%
# Training curves
# ---------------
ax = plot_loss_curves(models)
ax.set_title("Training BCE per epoch, 600 images")
plt.show()
