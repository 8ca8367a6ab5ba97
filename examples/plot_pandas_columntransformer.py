"""
GFE codes in a ColumnTransformer with pandas output
===================================================

:class:`~skgfe.GradientFlowEncoder` is a scikit-learn transformer, so it fits
in a :class:`~sklearn.compose.ColumnTransformer` beside other transformers and
follows ``set_output(transform="pandas")``. Here a table of patients (the
diabetes data of scikit-learn, unscaled) has nine numeric columns and one
categorical column, ``sex``. The numeric block is standardised and encoded
into three GFE codes; the categorical column is one-hot encoded. The result is
a DataFrame with named columns, which then feeds a ridge regression.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# A DataFrame with numeric and categorical columns
# ------------------------------------------------
import warnings

import matplotlib.pyplot as plt
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skgfe import GradientFlowEncoder
from skgfe.exceptions import ConvergenceWarning
from skgfe.plotting import plot_latent

frame = load_diabetes(as_frame=True, scaled=False).frame
frame["sex"] = frame["sex"].astype(int).astype("category")
X, y = frame.drop(columns="target"), frame["target"]
numeric = X.columns.drop("sex").tolist()
print(X.dtypes.value_counts().to_string())
X.head()

# %%
# GFE on the numeric block, one-hot encoding on the categorical one
# -----------------------------------------------------------------
# GFE is trained on standardised features with the mean squared error. To keep
# the example quick, training is short (so the ConvergenceWarning saying that
# it stopped at ``max_iter`` is silenced) and the flow tolerance is looser than
# its default ``flow_tol=1e-4``.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

columns = ColumnTransformer(
    [
        (
            "gfe",
            make_pipeline(
                StandardScaler(),
                GradientFlowEncoder(
                    n_components=3,
                    max_iter=10,
                    batch_size=64,
                    learning_rate_init=1e-2,
                    flow_tol=1e-2,
                    random_state=0,
                ),
            ),
            numeric,
        ),
        ("onehot", OneHotEncoder(sparse_output=False), ["sex"]),
    ]
).set_output(transform="pandas")

X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
model = make_pipeline(columns, Ridge()).fit(X_train, y_train)
codes = columns.transform(X_train)
print("Output columns:", codes.columns.tolist())
codes.head()

# %%
# The DataFrame feeds a regression
# --------------------------------
# In the pipeline, the ridge regression was fitted on these columns; it
# predicts the target of the test patients from their codes.
print(f"Test R^2 of ridge regression on the codes: {model.score(X_test, y_test):.3f}")

# %%
# The first two GFE codes of the training patients, coloured by sex.
ax = plot_latent(
    codes[["gfe__gradientflowencoder0", "gfe__gradientflowencoder1"]],
    labels=X_train["sex"],
)
ax.set_title("GFE codes of the numeric columns")
plt.show()
