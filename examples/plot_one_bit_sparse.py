"""
1-bit codes of sparse data: when a denoiser helps
=================================================

:class:`~skgfe.OneBitAutoencoder` compresses a sample x of d values to k bits,
sign(Bx), and decodes them linearly, optionally followed by a denoiser applied
to each feature. For Gaussian data the best such code has a known error,
:func:`~skgfe.gaussian_1bit_mse` of the rate r = k/d (Kogler et al., ICML
2024). Here we compress sparse Bernoulli-Gaussian data at several rates and
sparsities and compare the two decoders with that curve: the linear decoder
stays on it whatever the sparsity, while the denoiser goes below it, and more
so the sparser the data.
"""

# Authors: skgfe developers
# License: BSD-3-Clause

# %%
# Sparse data with unit variance
# ------------------------------
# Each entry is non-zero with probability ``sparsity`` and then drawn from
# N(0, 1/sparsity), so every entry has variance 1 and the Gaussian curve is the
# reference at every sparsity.
import matplotlib.pyplot as plt
import numpy as np

from skgfe import OneBitAutoencoder, gaussian_1bit_mse
from skgfe.datasets import make_sparse_gaussian

n_features = 500
sparsities = [0.1, 0.3]
rates = [0.25, 0.5, 1.0, 1.5, 2.0]

# %%
# Fixed frames, decoders in closed form
# -------------------------------------
# A random tight frame (a random rotation up to one bit per feature) needs no
# training: ``fit`` sets the linear decoder to the least-squares multiple of
# B^T and estimates the denoiser's prior (the sparsity) and noise from the
# training data in one pass. Errors are measured on held-out samples.
errors = {}
for sparsity in sparsities:
    X_train = make_sparse_gaussian(1000, n_features, sparsity, random_state=0)
    X_test = make_sparse_gaussian(1000, n_features, sparsity, random_state=1)
    for decoder in ("linear", "linear+denoiser"):
        errors[sparsity, decoder] = [
            -OneBitAutoencoder(
                round(rate * n_features),
                encoder="tight_frame",
                decoder=decoder,
                random_state=0,
            )
            .fit(X_train)
            .score(X_test)
            for rate in rates
        ]

# %%
# Error against rate
# ------------------
# The linear decoder (circles) follows the Gaussian curve at both sparsities:
# it does not use the structure of the data. (Its small excess at sparsity 0.1
# shrinks as d grows: the bits drop the norm of x, which varies more between
# sparse samples.) The MMSE denoiser (squares) shrinks the decoded values of
# entries that are probably zero, and its gain grows with the sparsity.
fine_rates = np.linspace(0.1, 2.0, 200)
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(
    fine_rates,
    gaussian_1bit_mse(fine_rates),
    color="black",
    label="gaussian_1bit_mse(r)",
)
for sparsity, color in zip(sparsities, ["tab:blue", "tab:orange"]):
    ax.plot(
        rates,
        errors[sparsity, "linear"],
        "o",
        color=color,
        label=f"linear, sparsity {sparsity}",
    )
    ax.plot(
        rates,
        errors[sparsity, "linear+denoiser"],
        "s--",
        color=color,
        label=f"linear + MMSE denoiser, sparsity {sparsity}",
    )
ax.set_xlabel("rate r = bits per feature")
ax.set_ylabel("held-out MSE per feature")
ax.set_title(f"1-bit codes of sparse Gaussian data (d = {n_features})")
ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

# %%
# At one bit per feature:
for (sparsity, decoder), values in errors.items():
    print(
        f"sparsity {sparsity}, {decoder}: {values[rates.index(1.0)]:.3f} "
        f"(Gaussian value {gaussian_1bit_mse(1.0):.3f})"
    )
