"""OneBitAutoencoder: codes of one bit per component, sign(Bx), and their decoders."""

import math

import numpy as np
import torch

from . import _base
from ._base import BaseDecoderEstimator
from ._compat import StrOptions
from ._one_bit_engine import (
    BernoulliGaussianDenoiser,
    OneBitDecoder,
    PointwiseDenoiser,
    SignEncoder,
    random_frame,
)
from ._utils import batch_slices

_ENCODERS = ("learned", "random_rotation", "tight_frame")


def gaussian_1bit_mse(rate):
    """Mean squared error per feature of 1-bit codes of standard Gaussian data.

    For x ~ N(0, I_d) coded as sign(Bx) with k bits (rate r = k / d) and decoded
    linearly, the best mean squared error per feature is 1 - 2r/pi for r <= 1,
    reached when B's rows are orthonormal (a rotation) and the decoder is
    sqrt(2/pi) B^T. For r > 1, a random tight frame B with the decoder c B^T,
    c = sqrt(2 pi) / (pi - 2 + 2r), reaches (pi - 2) / (pi - 2 + 2r) as d grows.
    The two branches meet at r = 1.

    Parameters
    ----------
    rate : float or array-like of float
        Bits per feature, ``n_components / n_features``; positive.

    Returns
    -------
    mse : float or ndarray
        The mean squared error per feature, a float for a scalar rate.

    References
    ----------
    A. Kogler, A. Shevchenko, H. Hassani, M. Mondelli. *Compression of
    structured data with autoencoders: provable benefit of nonlinearities and
    depth*. ICML 2024.

    Examples
    --------
    >>> from skgfe import gaussian_1bit_mse
    >>> gaussian_1bit_mse([0.5, 1.0, 2.0]).shape
    (3,)
    """
    rates = np.asarray(rate, dtype=np.float64)
    if not np.all(rates > 0):
        raise ValueError(f"rate must be positive (bits per feature), got {rate!r}")
    with np.errstate(invalid="ignore"):
        mse = np.where(
            rates <= 1,
            1 - 2 * rates / math.pi,
            (math.pi - 2) / (math.pi - 2 + 2 * rates),
        )
    return float(mse) if mse.ndim == 0 else mse


class OneBitAutoencoder(BaseDecoderEstimator):
    """Autoencoder whose codes are bits: sign(Bx), decoded linearly and denoised.

    A sample x of n_features values is compressed to ``n_components`` bits
    ``sign(B x)`` in {-1, +1} (a zero maps to +1) and decoded by a linear map
    W, optionally followed by a denoiser applied to each feature on its own:
    ``x_hat = f(W sign(B x))``. This is the shallow autoencoder of Kogler et
    al. (2024): for standard Gaussian data the best such code has the mean
    squared error :func:`gaussian_1bit_mse` of the rate
    ``n_components / n_features``, and a linear decoder reaches the same error
    on sparse data, ignoring its structure; a pointwise denoiser after the
    linear decoder exploits sparsity and goes below it.

    ``fit`` first sets, in closed form from the training data, W to the
    least-squares multiple of B^T (optimal for a rotation or a tight frame B)
    and, with the MMSE denoiser, estimates the data's sparsity and the
    decoder's effective noise. A fixed encoder needs nothing more (unless the
    denoiser is learned): such a fit is a single pass over the data, with
    ``n_iter_ = 1``. A learned encoder then trains B, W and the denoiser by
    mini-batch gradient descent, the sign being differentiated by the
    straight-through estimator (its gradient taken as the identity).

    The data should be centred: the codes are signs of projections through the
    origin, and the decoders have no offset.

    Parameters
    ----------
    n_components : int, default=2
        Number of bits per sample.
    encoder : {'learned', 'random_rotation', 'tight_frame'}, default='learned'
        B. 'learned': trained, starting from independent N(0, 1/n_features)
        entries. 'random_rotation': n_components orthonormal rows drawn
        uniformly, needs ``n_components <= n_features``. 'tight_frame': a random
        tight frame, ``B^T B = (n_components / n_features) I``, for any number
        of bits (the same as 'random_rotation' up to ``n_features`` bits). The
        fixed encoders are drawn from ``random_state``.
    decoder : {'linear', 'linear+denoiser'}, default='linear'
        'linear': ``W bits``. 'linear+denoiser': ``W bits`` followed by the
        pointwise ``denoiser``.
    denoiser : {'mmse', 'learned'}, default='mmse'
        The pointwise denoiser of ``decoder='linear+denoiser'`` (unused with
        'linear'). 'mmse': the posterior mean of a Bernoulli-Gaussian entry
        observed through Gaussian noise; its prior (the fraction of non-zero
        entries and their variance, pooled over features) is estimated from
        the training data, its noise from the linear decoder's residual, and
        with a learned encoder the noise is trained too. 'learned': ``y + g(y)``
        with g an MLP of one input and output (``hidden_layer_sizes``,
        ``activation``), starting from the identity.
    hidden_layer_sizes : int or tuple of int, default=(32,)
        Hidden widths of the learned denoiser.
    activation : {'elu', 'relu', 'tanh', 'sigmoid', 'softplus', 'gelu', 'silu'}, \
default='elu'
        Activation of the learned denoiser.
    optimizer : {'adam', 'rmsprop', 'sgd'} or torch optimizer class, default='adam'
        Optimizer of the trained parameters.
    optimizer_params : dict, default=None
        Extra keyword arguments of the optimizer (e.g. ``{'alpha': 0.9}``).
    learning_rate_init : float, default=1e-2
        Learning rate.
    batch_size : int, default=64
        Mini-batch size (capped at n_samples).
    max_iter : int, default=200
        Maximum number of epochs of training (a fit with nothing to train is
        one pass).
    shuffle : bool, default=True
        Shuffle the samples at every epoch.
    tol : float, default=1e-5
        Improvement of the training loss (or of the validation score with
        ``early_stopping``) below which an epoch counts as no improvement.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its score stops
        improving and keep the best parameters.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    warm_start : bool, default=False
        Continue from the fitted modules at the next ``fit``.
    device : {'auto', 'cpu', 'cuda', 'cuda:N'} or torch.device, default='auto'
        Where to compute; 'auto' uses CUDA when available. Resolved in ``fit``.
    random_state : int, RandomState instance or None, default=None
        Seeds the encoder's draw, the denoiser's initialisation, shuffling and
        the validation split through a local torch.Generator.
    verbose : int, default=0
        0 silent, 1 a line per epoch, 2 a progress bar.
    n_threads : int or 'auto', default='auto'
        CPU threads torch uses for this estimator's work, set for the duration
        of each call (``fit``, ``transform``, ...) and restored after it, also
        when several threads call one fitted estimator. 'auto' takes one
        thread for small decoders, where a second thread mostly adds
        synchronisation, and more for large ones (see :ref:`threads`).
        Leaves torch alone on a CUDA device.

    Attributes
    ----------
    encoder_ : torch.nn.Module
        The sign encoder; ``encoder_.weight`` is B, of shape
        (n_components, n_features).
    decoder_ : torch.nn.Module
        The decoder; ``decoder_.weight`` is W, of shape (n_features,
        n_components), and ``decoder_.denoiser`` the pointwise denoiser
        (``torch.nn.Identity`` for ``decoder='linear'``).
    sparsity_ : float
        Fraction of non-zero entries in the training data, the MMSE denoiser's
        prior (only with ``decoder='linear+denoiser'``, ``denoiser='mmse'``).
    slab_variance_ : float
        Mean square of the non-zero training entries, the variance of the MMSE
        denoiser's prior (same condition).
    device_ : torch.device
        Device the modules live on.
    n_iter_ : int
        Epochs run (1 for a closed-form fit).
    loss_curve_ : list of float
        Mean training loss per epoch.
    best_loss_ : float
        Lowest training loss seen.
    validation_scores_ : list of float or None
        Validation score (minus the mean loss) per epoch with early stopping.
    best_validation_score_ : float or None
        Best validation score with early stopping.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen in ``fit``, when X had string column names.

    See Also
    --------
    gaussian_1bit_mse : The error of the best 1-bit code of Gaussian data.
    AutoencoderBaseline : An autoencoder with real-valued codes.

    References
    ----------
    A. Kogler, A. Shevchenko, H. Hassani, M. Mondelli. *Compression of
    structured data with autoencoders: provable benefit of nonlinearities and
    depth*. ICML 2024.

    Examples
    --------
    >>> from skgfe import OneBitAutoencoder
    >>> from skgfe.datasets import make_sparse_gaussian
    >>> X = make_sparse_gaussian(200, 50, sparsity=0.1, random_state=0)
    >>> model = OneBitAutoencoder(50, encoder="random_rotation",
    ...                           decoder="linear+denoiser", random_state=0)
    >>> bits = model.fit_transform(X)
    >>> bits.shape
    (200, 50)
    >>> model.inverse_transform(bits).shape
    (200, 50)
    """

    _parameter_constraints = {
        **BaseDecoderEstimator._parameter_constraints,
        "encoder": [StrOptions(set(_ENCODERS))],
        "decoder": [StrOptions({"linear", "linear+denoiser"})],
        "denoiser": [StrOptions({"mmse", "learned"})],
    }
    _module_names = ("encoder_", "decoder_")

    def __init__(
        self,
        n_components=2,
        *,
        encoder="learned",
        decoder="linear",
        denoiser="mmse",
        hidden_layer_sizes=(32,),
        activation="elu",
        optimizer="adam",
        optimizer_params=None,
        learning_rate_init=1e-2,
        batch_size=64,
        max_iter=200,
        shuffle=True,
        tol=1e-5,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        device="auto",
        random_state=None,
        verbose=0,
        n_threads="auto",
    ):
        super().__init__(
            n_components,
            decoder=decoder,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            optimizer=optimizer,
            optimizer_params=optimizer_params,
            learning_rate_init=learning_rate_init,
            batch_size=batch_size,
            max_iter=max_iter,
            shuffle=shuffle,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            warm_start=warm_start,
            device=device,
            random_state=random_state,
            verbose=verbose,
            n_threads=n_threads,
        )
        self.encoder = encoder
        self.denoiser = denoiser

    def transform(self, X):
        """Encode X as bits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        bits : ndarray of shape (n_samples, n_components)
            ``sign(B x)`` as floats in {-1.0, +1.0} (a zero projection gives
            +1), in the dtype of X (float32 or float64).
        """
        return super().transform(X)

    def inverse_transform(self, X):
        """Decode bits back to data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Bits in {-1, +1}, as returned by :meth:`transform`. Other values
            are decoded by the same formula.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructions ``f(W bits)``, in the dtype of X.
        """
        return super().inverse_transform(X)

    @property
    def sparsity_(self):
        return float(self._mmse_denoiser().sparsity)

    @property
    def slab_variance_(self):
        return float(self._mmse_denoiser().slab_variance)

    def _check_params(self, n_features):
        super()._check_params(n_features)
        if self.encoder == "random_rotation" and self.n_components > n_features:
            raise ValueError(
                f"encoder='random_rotation' has at most n_features={n_features} "
                f"orthonormal rows, got n_components={self.n_components}; use "
                "encoder='tight_frame' for more bits than features"
            )

    def _n_parameters_estimate(self, n_features):
        # The encoder's B and the decoder's W, each n_components x n_features.
        return 2 * self.n_components * n_features

    def _build_modules(self, n_features, generator):
        learned = self.encoder == "learned"
        if learned:
            weight = torch.randn(
                self.n_components, n_features, generator=generator, dtype=torch.float64
            ) / math.sqrt(n_features)
        else:
            weight = random_frame(self.n_components, n_features, generator)
        self.encoder_ = SignEncoder(weight, trainable=learned)
        self.decoder_ = OneBitDecoder(weight.T.clone(), self._make_denoiser(generator))
        if not learned:
            # A fixed frame's linear decoder and MMSE channel are set in closed form.
            for name, parameter in self.decoder_.named_parameters():
                parameter.requires_grad_(name.startswith("denoiser.correction"))

    def _make_denoiser(self, generator):
        if self.decoder == "linear":
            return None
        if self.denoiser == "mmse":
            return BernoulliGaussianDenoiser()
        sizes = np.atleast_1d(self.hidden_layer_sizes).tolist()
        return PointwiseDenoiser(sizes, self.activation, generator)

    def _train_batch(self, X, generator):
        loss = self._sample_loss(X)(self.decoder_(self.encoder_(X)), X).mean()
        loss.backward()
        return loss

    def _encode_batch(self, X):
        with torch.no_grad():
            return self.encoder_(X)

    def _trainable_parameters(self):
        return [p for p in super()._trainable_parameters() if p.requires_grad]

    def _make_optimizer(self):
        # A fixed frame without a learned denoiser has nothing to train.
        return super()._make_optimizer() if self._trainable_parameters() else None

    def _fit_epochs(
        self, X_train, X_val, generator, auxiliary_step=None, incremental=False
    ):
        if self.n_iter_ == 0 or self.encoder != "learned":
            # partial_fit adds each call's rows to the closed form's sums, so a
            # fixed frame's decoder is the one fit gives on all rows seen.
            self._fit_closed_form(X_train, accumulate=incremental and self.n_iter_ > 0)
        if self._optimizer is not None:
            super()._fit_epochs(X_train, X_val, generator, auxiliary_step, incremental)
            return
        loss = float(self._map_batches(self._reconstruction_loss, X_train).mean())
        self.n_iter_ += 1
        self.loss_curve_.append(loss)
        self._record_progress(loss, X_val)

    def _fit_closed_form(self, X, accumulate=False):
        """W = c B^T with c by least squares; the MMSE denoiser's prior and channel.

        One pass over X collects sum <x, B^T s>, sum |B^T s|^2, sum |x|^2 and the
        number of non-zero entries, s being the bits of x. With ``accumulate``,
        the sums go on from those of the previous call (partial_fit), in the
        order one pass over the concatenated rows would add them.
        """
        decoder = self.decoder_
        previous = getattr(self, "_closed_form_sums_", None) if accumulate else None
        n_entries = X.numel() + (0 if previous is None else previous[1])
        with torch.no_grad():
            sums = sum(
                (
                    self._closed_form_statistics(X[rows])
                    for rows in batch_slices(X.shape[0], _base.INFERENCE_BATCH_SIZE)
                ),
                0 if previous is None else previous[0],
            )
            self._closed_form_sums_ = (sums, n_entries)
            x_dot_u, u_squared, x_squared, n_nonzero = sums
            scale = x_dot_u / u_squared
            decoder.weight.copy_(scale * self.encoder_.weight.T)
            if isinstance(decoder.denoiser, BernoulliGaussianDenoiser):
                self._calibrate_mmse(
                    decoder.denoiser,
                    scale * x_dot_u,
                    scale**2 * u_squared,
                    x_squared,
                    n_nonzero,
                    n_entries,
                )

    def _closed_form_statistics(self, X):
        u = self.encoder_(X) @ self.encoder_.weight
        return torch.stack(
            [
                (X * u).sum(),
                u.square().sum(),
                X.square().sum(),
                (X != 0).sum().to(X.dtype),
            ]
        )

    @staticmethod
    def _calibrate_mmse(denoiser, x_dot_y, y_squared, x_squared, n_nonzero, n_entries):
        """Fit y = gain * x + noise by least squares; set the prior from x."""
        tiny = torch.finfo(x_squared.dtype).tiny
        gain = torch.where(x_squared > 0, x_dot_y / x_squared.clamp_min(tiny), 1.0)
        noise_variance = ((y_squared - gain * x_dot_y) / n_entries).clamp_min(tiny)
        denoiser.sparsity.copy_(n_nonzero / n_entries)
        denoiser.slab_variance.copy_(
            (x_squared / n_nonzero.clamp_min(1)).clamp_min(tiny)
        )
        denoiser.gain.copy_(gain)
        # log_noise_std is the noise of y / gain.
        denoiser.log_noise_std.copy_(
            0.5 * torch.log(noise_variance) - torch.log(gain.abs().clamp_min(tiny))
        )

    def _mmse_denoiser(self):
        denoiser = getattr(getattr(self, "decoder_", None), "denoiser", None)
        if isinstance(denoiser, BernoulliGaussianDenoiser):
            return denoiser
        raise AttributeError(
            "sparsity_ and slab_variance_ exist after fitting with "
            "decoder='linear+denoiser' and denoiser='mmse'"
        )
