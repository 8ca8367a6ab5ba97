"""
Clustering digits on GFE codes, tuned with a grid search
========================================================

:class:`~skgfe.GradientFlowEncoder` is tuned with
:class:`~sklearn.model_selection.GridSearchCV` like any scikit-learn
transformer. Its ``score`` is minus the mean reconstruction loss, so a
``Pipeline(MinMaxScaler, GradientFlowEncoder)`` can be searched without a
supervised target: the search picks the settings that reconstruct held-out
digits best. (A pipeline ending in :class:`~sklearn.cluster.KMeans` would
instead be scored by minus the k-means inertia, which is not comparable across
code dimensions.)

The codes of the best pipeline are then clustered with k-means into 10
clusters, and the clusters are compared with the true digits by the adjusted
Rand index (ARI: 1 for a perfect match, about 0 for a random one), beside the
codes of PCA and of :class:`~skgfe.AutoencoderBaseline` of the same dimension.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# Searching the code dimension and the order of the flow
# ------------------------------------------------------
# The grid is small so that the example runs in about 20 s on one CPU
# thread: two code dimensions, and the first-order gradient flow against the
# second-order (Nesterov-like) one, with 2-fold cross-validation. Training is
# shortened too: few epochs of large batches with a larger learning rate, and
# a looser flow tolerance than the default ``flow_tol=1e-4``. Training stops at
# ``max_iter`` epochs before the loss has levelled off, so the
# ConvergenceWarning that says so is silenced.
import warnings

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.exceptions import ConvergenceWarning
from skgfe.plotting import plot_latent, plot_loss_curves

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)

# Shared training settings of the two neural encoders.
training = dict(max_iter=10, batch_size=256, learning_rate_init=1e-2, random_state=0)

pipeline = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("gfe", GradientFlowEncoder(flow_tol=1e-3, **training)),
    ]
)
search = GridSearchCV(
    pipeline,
    param_grid={"gfe__n_components": [4, 8], "gfe__ode_order": [1, 2]},
    cv=2,
)
search.fit(X)

results = pd.DataFrame(search.cv_results_)[
    [
        "param_gfe__n_components",
        "param_gfe__ode_order",
        "mean_test_score",
        "mean_fit_time",
        "rank_test_score",
    ]
]
print(results.to_string(index=False))
print("Best parameters:", search.best_params_)

# %%
# More code dimensions always reconstruct better, so the search favours the
# larger code; the order of the flow changes the held-out loss much less,
# since both flows head for the same minima of the reconstruction loss.
#
# Clustering the codes
# --------------------
# The best pipeline, refitted on all digits by the search, encodes them. PCA
# and the autoencoder get the same code dimension and the same scaled data.
n_components = search.best_params_["gfe__n_components"]
X_scaled = MinMaxScaler().fit_transform(X)
encoders = {
    "GFE": search.best_estimator_["gfe"],
    "PCA": PCA(n_components=n_components, random_state=0).fit(X_scaled),
    "Autoencoder": AutoencoderBaseline(n_components=n_components, **training).fit(
        X_scaled
    ),
}
codes = {name: encoder.transform(X_scaled) for name, encoder in encoders.items()}

for name, code in codes.items():
    clusters = KMeans(n_clusters=10, n_init=10, random_state=0).fit_predict(code)
    print(
        f"ARI of k-means on {name} codes ({n_components} dims): "
        f"{adjusted_rand_score(y, clusters):.3f}"
    )

# %%
# The first two code dimensions, coloured by the true digit, and the training
# curves of the two neural encoders.
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
for ax, name in zip(axes[:2], ["GFE", "PCA"]):
    plot_latent(codes[name], labels=y, ax=ax)
    ax.set_title(f"{name} codes")
plot_loss_curves(
    {"GFE": encoders["GFE"], "Autoencoder": encoders["Autoencoder"]}, ax=axes[2]
)
axes[2].set_title("Training loss")
fig.tight_layout()
plt.show()
