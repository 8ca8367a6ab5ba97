"""
Isometric, flat codes of translating-blob images
================================================

Each image shows a Gaussian blob at a random position. The images form a 2-D
manifold in the 144-D pixel space: curved in pixel space but intrinsically
flat, with the blob position (times a constant) as an isometric chart. The
generator :func:`~skgfe.datasets.make_blob_images` returns the images with
that ground truth: pairs of nearby images, their geodesic distances and the
images at their Riemannian midpoints.

An autoencoder trained on reconstruction alone finds *some* 2-D code of the
images. With the pair loss (``distortion_weight`` and ``bending_weight``,
after Braunsmann, Rajkovic, Rumpf and Wirth) it is pushed towards a code that
keeps the local distances and maps midpoints to midpoints, that is, towards
the blob positions themselves. :mod:`skgfe.metrics` measures both properties
and the distance to the true positions.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# Data and models
# ---------------
# 600 images of 12 x 12 pixels and 2,000 pairs at geodesic distance at most
# 1.5 (a shift of about 1.2 pixels). The two autoencoders are identical except
# for the pair loss; the ConvergenceWarning that training stopped at
# ``max_iter`` is silenced to keep the example short.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.decomposition import PCA

from skgfe import AutoencoderBaseline
from skgfe.datasets import make_blob_images
from skgfe.exceptions import ConvergenceWarning
from skgfe.metrics import (
    bending_score,
    distortion_score,
    interpolation_error,
    procrustes_error,
)

warnings.filterwarnings("ignore", category=ConvergenceWarning)

blobs = make_blob_images(
    n_samples=600,
    image_size=12,
    blob_width=1.2,
    n_pairs=2000,
    epsilon=1.5,
    random_state=0,
)
X = blobs.data
params = dict(
    n_components=2,
    hidden_layer_sizes=(64,),
    max_iter=60,
    batch_size=32,
    learning_rate_init=3e-3,
    random_state=0,
)
models = {
    "PCA": PCA(n_components=2).fit(X),
    "autoencoder": AutoencoderBaseline(**params).fit(X),
    "autoencoder + pair loss": AutoencoderBaseline(
        **params, distortion_weight=1.0, bending_weight=1.0
    ).fit(
        X,
        pairs=blobs.pairs,
        pair_distances=blobs.pair_distances,
        midpoints=blobs.midpoints,
    ),
}

# %%
# Scores
# ------
# Distortion and bending are scale-free (0 is best); the Procrustes error is
# the distance to the true positions after the best rotation, translation and
# scaling, relative to their extent; the interpolation error is the RMS pixel
# error of decoding the mean of two codes, against the midpoint image.
codes = {name: model.transform(X) for name, model in models.items()}
for name, model in models.items():
    midpoint_codes = model.transform(blobs.midpoints)
    distortion = distortion_score(codes[name], blobs.pairs, blobs.pair_distances)
    interpolation = interpolation_error(
        codes[name], blobs.pairs, blobs.midpoints, model
    )
    print(
        f"{name:>24}: "
        f"distortion {distortion:.3f}, "
        f"bending {bending_score(codes[name], blobs.pairs, midpoint_codes):.3f}, "
        f"Procrustes {procrustes_error(codes[name], blobs.coordinates):.3f}, "
        f"interpolation {interpolation:.4f}"
    )

# %%
# The codes
# ---------
# Each code coloured by the true horizontal (top) and vertical (bottom)
# position of its blob. The regularised codes form the square grid of
# positions; PCA and the plain autoencoder fold and stretch it.
fig, axes = plt.subplots(2, 3, figsize=(11, 7))
for column, (name, z) in enumerate(codes.items()):
    for row in range(2):
        ax = axes[row, column]
        ax.scatter(z[:, 0], z[:, 1], c=blobs.coordinates[:, row], s=5, cmap="viridis")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, column].set_title(name)
axes[0, 0].set_ylabel("coloured by column")
axes[1, 0].set_ylabel("coloured by row")
fig.tight_layout()

# %%
# A few images and the decoded midpoints of the regularised model: the mean
# of two codes decodes to the blob halfway between.
model = models["autoencoder + pair loss"]
z = codes["autoencoder + pair loss"]
fig, axes = plt.subplots(3, 5, figsize=(8, 5))
for k, (i, j) in enumerate(blobs.pairs[np.argsort(blobs.pair_distances)[-5:]]):
    decoded = model.inverse_transform((z[[i]] + z[[j]]) / 2)[0]
    for row, image in enumerate([X[i], decoded, X[j]]):
        axes[row, k].imshow(image.reshape(12, 12), cmap="gray_r")
        axes[row, k].axis("off")
axes[1, 0].set_title("decoded mean of the codes", loc="left", fontsize=9)
fig.tight_layout()
plt.show()
