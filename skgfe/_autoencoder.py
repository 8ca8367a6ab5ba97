"""AutoencoderBaseline: an encoder and a decoder trained together, the baseline."""

import numpy as np
import torch

from ._base import _mlp_parameters
from ._differentiable import DifferentiableCodesEstimator
from .decoders import make_mlp


class AutoencoderBaseline(DifferentiableCodesEstimator):
    """Autoencoder with a mirrored MLP encoder, the baseline for GFE.

    The encoder maps a sample to its code and the decoder maps the code back;
    both are trained together on the per-sample reconstruction loss. It shares
    the decoder, loss, training loop and scoring of
    :class:`~skgfe.GradientFlowEncoder`, so the two differ only in how a code
    is found: by a learned encoder here, by a gradient flow there.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the codes.
    decoder : torch.nn.Module or callable, default=None
        Decoder mapping (n, n_components) to (n, n_features). A module is
        deep-copied in ``fit``; a callable is called as
        ``decoder(n_components, n_features)`` and must return a module. None
        builds an MLP from ``hidden_layer_sizes`` and ``activation``.
    encoder : torch.nn.Module or callable, default=None
        Encoder mapping (n, n_features) to (n, n_components); a callable is
        called as ``encoder(n_features, n_components)``. None builds the mirror
        of the default decoder (hidden sizes reversed).
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Hidden widths of the default decoder, code side first.
    activation : {'elu', 'relu', 'tanh', 'sigmoid', 'softplus', 'gelu', 'silu'}, \
default='elu'
        Activation of the default MLPs.
    loss : {'mse', 'bce'}, default='mse'
        Per-sample reconstruction loss (mean over features). 'bce' needs data in
        [0, 1]; the decoder then outputs logits and ``inverse_transform``
        returns probabilities.
    binary_columns : array-like of int, str or bool, default=None
        With ``loss='mse'``, the columns of binary (or [0, 1]) data, by index,
        by name (when X has string column names) or as a boolean mask over the
        features: their loss is the cross-entropy of ``sigmoid(output)`` (a
        Bernoulli noise model), the other columns' the squared error, and
        ``inverse_transform`` returns probabilities for them. None: ``loss``
        for every column.
    distortion_weight : float, default=0.0
        Weight of the distortion term of the pair loss, which pulls the code
        distance of each pair of nearby samples towards their local distance
        (isometric codes). The pairs are given to ``fit`` (``pairs``,
        ``pair_distances``) or, without them, are each sample and its nearest
        neighbours. See :ref:`geometry`.
    bending_weight : float, default=0.0
        Weight of the bending term of the pair loss, which pulls the code of
        each pair's Riemannian midpoint towards the mean of the pair's codes
        (extrinsically flat codes). Needs ``midpoints`` in ``fit``.
    geodesic_sources : int, default=0
        With a positive ``distortion_weight``, also pair this many random
        samples with every sample they reach through the graph of the pairs,
        at their shortest-path distance (Isomap's graph geodesics), and add
        these long-range pairs to the distortion term. A purely local loss lets
        the codes fold a sheet over itself; the long distances rule folds out
        (on the Swiss roll, Procrustes errors of 0.012-0.031 instead of
        0.81-0.94). The distortion term is then the stress over the given and
        the long-range pairs, and the given pairs keep the bending term only.
        Adds up to ``geodesic_sources * n_samples`` pairs and a second batch
        of pairs per mini-batch. 0: the given pairs only.
    scoring : {'reconstruction', 'likelihood'}, default='reconstruction'
        What :meth:`score_samples` and :meth:`score` return: minus the
        reconstruction loss, or the log-likelihood in nats
        ``log p_Z(z) - 1/2 log det(J^T J) + log p_noise(x - decoder(z))`` at
        the code ``z = encoder(x)``, the encoder acting as the decoder's left
        inverse. 'likelihood' fits the prior and the noise model at the end of
        ``fit`` and needs ``n_components < n_features``. See :ref:`likelihood`.
    prior : {'normal', 'gmm'} or GaussianMixture, default='normal'
        Latent density ``p_Z`` of ``scoring='likelihood'``: the standard
        normal, or a Gaussian mixture fitted to the training codes at the end
        of ``fit`` (up to 10 full-covariance components for 'gmm'; a given
        ``GaussianMixture`` or ``BayesianGaussianMixture`` is cloned).
    density_weight : float, default=0.0
        Weight of the density term ``-(log N(z; 0, I) - 1/2 log det(J^T J))``
        (nats per sample, averaged over the batch) added to the training loss;
        0 trains on the reconstruction alone. ``loss_curve_`` still records
        the reconstruction loss.
    density_warmup : int, default=10
        Epochs over which ``density_weight`` ramps up linearly (0: the full
        weight from the first epoch).
    logdet_method : {'auto', 'exact', 'stochastic'}, default='auto'
        Log-determinant of the density term in training: 'exact' (forward-mode
        Jacobian and Cholesky), 'stochastic' (its gradient only, by one
        Hutchinson probe and conjugate gradients per sample, cheaper for many
        components), 'auto' exact up to 16 components. Scoring is always exact.
    optimizer : {'adam', 'rmsprop', 'sgd'} or torch optimizer class, default='adam'
        Optimizer of the network parameters.
    optimizer_params : dict, default=None
        Extra keyword arguments of the optimizer (e.g. ``{'alpha': 0.9}``).
    learning_rate_init : float, default=1e-3
        Learning rate.
    batch_size : int, default=32
        Mini-batch size (capped at n_samples).
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples at every epoch.
    tol : float, default=1e-5
        Improvement of the training loss (or of the validation score with
        ``early_stopping``) below which an epoch counts as no improvement. It is
        absolute, and the losses are means over features, hence the small value.
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
        Seeds initialisation, shuffling and the validation split through a local
        torch.Generator (the global RNGs are left untouched).
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
        Fitted encoder.
    decoder_ : torch.nn.Module
        Fitted decoder.
    device_ : torch.device
        Device the modules live on.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch.
    best_loss_ : float
        Lowest training loss seen.
    validation_scores_ : list of float or None
        Validation score (minus the mean loss) per epoch with early stopping.
    best_validation_score_ : float or None
        Best validation score with early stopping.
    noise_variance_ : float or None
        With ``scoring='likelihood'`` and ``loss='mse'``: variance of the
        Gaussian noise normal to the decoded manifold, fitted to the training
        residuals; None for ``loss='bce'``.
    prior_weights_ : ndarray of shape (n_mix,)
        With ``scoring='likelihood'``: weights of the latent prior's mixture
        components (one component for ``prior='normal'``).
    prior_means_ : ndarray of shape (n_mix, n_components)
        Means of the prior's components.
    prior_covariances_ : ndarray of shape (n_mix, n_components, n_components)
        Covariances of the prior's components.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen in ``fit``, when X had string column names.

    See Also
    --------
    GradientFlowEncoder : Decoder-only encoding by gradient flow.
    sklearn.decomposition.PCA : Linear codes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgfe import AutoencoderBaseline
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderBaseline(n_components=5, max_iter=3, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 5)
    """

    _parameter_constraints = {
        **DifferentiableCodesEstimator._parameter_constraints,
        "encoder": [callable, None],
    }
    _module_names = ("encoder_", "decoder_")

    def __init__(
        self,
        n_components=2,
        *,
        decoder=None,
        encoder=None,
        hidden_layer_sizes=(64,),
        activation="elu",
        loss="mse",
        binary_columns=None,
        distortion_weight=0.0,
        bending_weight=0.0,
        geodesic_sources=0,
        scoring="reconstruction",
        prior="normal",
        density_weight=0.0,
        density_warmup=10,
        logdet_method="auto",
        optimizer="adam",
        optimizer_params=None,
        learning_rate_init=1e-3,
        batch_size=32,
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
            loss=loss,
            binary_columns=binary_columns,
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
            distortion_weight=distortion_weight,
            bending_weight=bending_weight,
            geodesic_sources=geodesic_sources,
            scoring=scoring,
            prior=prior,
            density_weight=density_weight,
            density_warmup=density_warmup,
            logdet_method=logdet_method,
        )
        self.encoder = encoder

    def _build_modules(self, n_features, generator):
        if self.encoder is None:
            sizes = np.atleast_1d(self.hidden_layer_sizes).tolist()[::-1]
            self.encoder_ = make_mlp(
                n_features, sizes, self.n_components, self.activation, generator
            )
        else:
            self.encoder_ = self._user_module(
                self.encoder, (n_features, self.n_components), generator, "encoder"
            )
        self.decoder_ = self._make_decoder(n_features, generator)

    def _n_parameters_estimate(self, n_features):
        encoder = (
            0
            if self.encoder is not None
            else _mlp_parameters(
                n_features,
                np.atleast_1d(self.hidden_layer_sizes)[::-1],
                self.n_components,
            )
        )
        return super()._n_parameters_estimate(n_features) + encoder

    def _train_batch(self, X, generator):
        codes = self.encoder_(X)
        loss = self._sample_loss(X)(self.decoder_(codes), X).mean()
        self._add_density_loss(loss, codes, generator).backward()
        return loss

    def _encode_batch(self, X):
        with torch.no_grad():
            return self.encoder_(X)

    def _backward_code_loss(self, X, code_loss):
        loss = code_loss(self.encoder_(X))
        loss.backward()
        return loss.detach()
