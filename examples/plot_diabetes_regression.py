"""
GFE codes as features for regression
====================================

The diabetes data of scikit-learn has ten standardised measurements of 442
patients and a measure of disease progression one year later. Here the ten
features are compressed into a few codes, by PCA, by
:class:`~skgfe.AutoencoderBaseline` or by
:class:`~skgfe.GradientFlowEncoder`, and a ridge regression predicts the
target from the codes. Each choice is a
``Pipeline(StandardScaler, encoder, Ridge)`` evaluated by 5-fold
cross-validation with :func:`~sklearn.model_selection.cross_validate`, so the
encoders are fitted on the training folds only.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# Three pipelines, one cross-validation
# -------------------------------------
# The neural encoders are trained briefly (20 epochs, a larger learning rate
# than the default) so that the example runs in about 20 s on one CPU
# thread; GFE also gets a looser flow tolerance than its default
# (``flow_tol=1e-4``). The ConvergenceWarning saying that training stopped at
# ``max_iter`` is silenced.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skgfe import AutoencoderBaseline, GradientFlowEncoder
from skgfe.exceptions import ConvergenceWarning

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_diabetes(return_X_y=True)
n_components = 5
training = dict(max_iter=20, batch_size=64, learning_rate_init=1e-2, random_state=0)

encoders = {
    "PCA": PCA(n_components=n_components, random_state=0),
    "Autoencoder": AutoencoderBaseline(n_components=n_components, **training),
    "GFE": GradientFlowEncoder(n_components=n_components, flow_tol=1e-2, **training),
}
cv = KFold(n_splits=5, shuffle=True, random_state=0)
scores = {}
for name, encoder in encoders.items():
    pipeline = Pipeline(
        [("scale", StandardScaler()), ("encode", encoder), ("ridge", Ridge())]
    )
    result = cross_validate(pipeline, X, y, cv=cv, scoring="r2")
    scores[name] = result["test_score"]
    print(
        f"{name:>11}: R^2 = {scores[name].mean():.3f} +/- {scores[name].std():.3f}"
        f" (fit {result['fit_time'].mean():.1f} s per fold)"
    )

# %%
# For reference, ridge regression on all ten standardised features:
reference = cross_validate(
    Pipeline([("scale", StandardScaler()), ("ridge", Ridge())]),
    X,
    y,
    cv=cv,
    scoring="r2",
)["test_score"]
print(f"All 10 features: R^2 = {reference.mean():.3f} +/- {reference.std():.3f}")

# %%
# R^2 of each fold: five codes keep much, but not all, of what the ten
# features say about the target.
fig, ax = plt.subplots(figsize=(6, 4))
names = [*scores, "all features"]
values = [*scores.values(), reference]
ax.boxplot(values)
ax.set_xticks(np.arange(1, len(names) + 1), names)
for position, fold_scores in enumerate(values, start=1):
    ax.plot(
        np.full(len(fold_scores), position),
        fold_scores,
        "o",
        color="tab:blue",
        alpha=0.6,
    )
ax.set_ylabel("test R^2 (5 folds)")
ax.set_title(f"Ridge regression on {n_components} codes")
fig.tight_layout()
plt.show()
