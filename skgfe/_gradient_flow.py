"""GradientFlowEncoder: decoder-only encoding by integrating a gradient flow."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import Bunch

from . import _base
from ._adjoint import ADJOINTS, add_integral_term
from ._compat import Interval, StrOptions
from ._differentiable import DifferentiableCodesEstimator
from ._solvers import (
    CONVERGED,
    MAX_STEPS,
    NONFINITE,
    REACHED_TAU,
    SOLVERS,
    STALLED,
    STATUS_NAMES,
    FlowSolver,
    make_flow_solver,
    recording_solvers,
)
from ._utils import batch_slices, to_numpy, warn_at_caller
from .exceptions import FlowSolverError, FlowSolverWarning

# A flow that stopped for these reasons found its code; MAX_STEPS did not.
_FINISHED = (CONVERGED, REACHED_TAU, STALLED)

# flow_diagnostics' per-sample fields: name, SolveResult field, dtype.
_DIAGNOSTIC_FIELDS = (
    ("loss", "loss", np.float64),
    ("grad_norm", "grad_norm", np.float64),
    ("flow_time", "t", np.float64),
    ("n_steps", "n_steps", np.int64),
    ("n_fev", "n_fev", np.int64),
)


class GradientFlowEncoder(DifferentiableCodesEstimator):
    """Gradient Flow Encoding (GFE): codes found by a gradient flow on the decoder.

    GFE has no encoder. The code of a sample ``y`` is the end point of the
    gradient flow ``dz/dt = -r * grad_z l(y, D(z))`` (``r``: ``flow_rate``)
    started at ``z0`` (or of its second-order, Nesterov-like variant), i.e. the
    code the current decoder ``D`` reconstructs best. The decoder is trained on
    the loss at those codes, its gradient given by the adjoint method. Each
    sample's flow is solved on its own (per-sample step sizes and stopping), so
    a code depends only on its row and on the fitted decoder.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the codes.
    decoder : torch.nn.Module or callable, default=None
        Decoder mapping (n, n_components) to (n, n_features), treating rows
        independently. A module is deep-copied in ``fit``; a callable is called
        as ``decoder(n_components, n_features)``. None builds an MLP from
        ``hidden_layer_sizes`` and ``activation``.
    hidden_layer_sizes : int or tuple of int, default=(64,)
        Hidden widths of the default decoder, code side first.
    activation : {'elu', 'relu', 'tanh', 'sigmoid', 'softplus', 'gelu', 'silu'}, \
default='elu'
        Activation of the default decoder. Prefer smooth activations: the flow
        follows the decoder's gradient.
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
    ode_order : {1, 2}, default=1
        1: the gradient flow. 2: the accelerated flow
        ``z'' + (3/t) z' + r grad_z l = 0`` (Su, Boyd and Candes).
    flow_solver : str, default='amd'
        'amd': the adaptive solver, per sample, that accepts a step only if it
        lowers the loss (with momentum and adaptive restart for ``ode_order=2``).
        'euler', 'rk4': fixed steps of ``step_size``, each sample stopping on
        ``flow_tol`` (or at ``tau``). Any other torchdiffeq method name (e.g.
        'dopri5', 'midpoint') is run by torchdiffeq: its one-step fixed-grid
        methods ('midpoint', 'heun2', 'heun3') stop on ``flow_tol`` too, its
        Adams methods run to ``tau``, and its adaptive methods solve one sample
        at a time (slow).
    flow_rate : float, default=1.0
        Rate ``r`` of the flow (called alpha in the GFE paper; not a penalty,
        unlike scikit-learn's ``alpha``).
    tau : float, default=1e4
        Largest flow time. Every solver but torchdiffeq's adaptive and Adams
        methods usually stops a sample earlier, when ``flow_tol`` is met; the
        fixed-step solvers take at most ``ceil(tau / step_size)`` steps (and
        at most ``max_flow_steps``).
    step_size : float, default=1.0
        Initial step of 'amd' (it adapts per sample), the step of fixed-step
        solvers.
    flow_tol : float, default=1e-4
        'amd' and the fixed-step solvers stop a sample when its relative loss
        decrease stays below ``flow_tol`` for ``patience`` (3) accepted steps
        in a row (0: never, the flow runs to ``tau``); torchdiffeq's adaptive
        methods use it as rtol and atol.
    max_flow_steps : int, default=1000
        Most solver steps (trials for 'amd') per sample.
    flow_solver_options : dict, default=None
        Rarely needed solver settings. For 'amd': 'max_step_size' (float in
        (0, inf], default 1e4), 'shrink' (step factor after a rejected trial,
        in (0, 1), default 0.5), 'grow' (step factor after an accepted one, in
        [1, inf), default 2.0), 'sigma' (sufficient-decrease margin, in [0, 1),
        default 1e-4), 'patience' (accepted steps below ``flow_tol`` in a row
        to stop, int >= 1, default 3), 'sync_every' (trials between removals
        of finished samples, int >= 1 or None: 1 on CPU, 8 on GPU, where fewer
        host syncs pay), 'step_rule' ('bb', Barzilai-Borwein steps, or
        'grow'), 'direction' and 'memory' (below). For 'euler', 'rk4',
        'midpoint', 'heun2' and 'heun3': 'patience'. For torchdiffeq's
        adaptive methods: 'atol' and 'first_step' (float > 0 or None). Unknown keys
        raise a ValueError, values of the wrong type a TypeError and values
        out of range a ValueError.

        Which settings follow the ODE and which only minimise: 'euler', 'rk4'
        and torchdiffeq's methods integrate the flow (up to ``tau``, or until
        it has converged); 'amd' with ``direction='gradient'`` takes explicit
        Euler steps of the flow with adaptive step sizes; ``direction=
        'lbfgs'`` minimises the same per-sample loss along each sample's own
        L-BFGS direction ('memory' curvature pairs, default 8), in about half
        the decoder passes, without following the flow's path. The default
        ``direction='auto'`` takes L-BFGS to encode (``transform``, first
        order) and the flow to train and for every solve the full adjoint or
        the pair loss replays; the second order always follows its
        accelerated flow. See :ref:`encoding_lbfgs`.
    z0 : 'zeros', float or array-like, default='zeros'
        Start of the flow when encoding (``transform``): a fixed point, so the
        code is a deterministic function of the row. An array has shape
        ``(n_components,)``, or ``(n_starts, n_components)`` for several
        starts: each sample then flows from every row, and its code is the end
        with the lowest loss (the first row on ties), for ``n_starts`` times
        the cost: a single flow stops at the first local minimum of the loss
        it meets, which on a manifold that nearly touches itself can lie on the
        wrong layer (see :ref:`geometry`). The pair loss and ``adjoint='full'``
        replay the flow from each sample's best start.
    train_z0 : {'random', 'z0'}, default='random'
        Start of the flow during training: 'random' draws U[0, 1) afresh for
        every batch, as in the paper; 'z0' uses ``z0``.
    adjoint : {'approximate', 'full'}, default='approximate'
        'approximate' trains the decoder at the detached codes; 'full' adds the
        adjoint integral along the flow (exact gradient of the unrolled solver,
        about twice the cost and one stored state per step; needs solver 'amd',
        'euler' or 'rk4').
    distortion_weight : float, default=0.0
        Weight of the distortion term of the pair loss on the codes ``z*``,
        which pulls the code distance of each pair of nearby samples towards
        their local distance (isometric codes). The pairs are given to ``fit``
        (``pairs``, ``pair_distances``) or, without them, are each sample and
        its nearest neighbours. See :ref:`geometry`.
    bending_weight : float, default=0.0
        Weight of the bending term of the pair loss, which pulls the code of
        each pair's Riemannian midpoint towards the mean of the pair's codes
        (extrinsically flat codes). Needs ``midpoints`` in ``fit``.

        The pair loss reaches the decoder only through the flow, so a positive
        weight needs a recording solver ('amd', 'euler' or 'rk4'): every
        mini-batch also solves the flow of ``2 * batch_size`` pair ends (plus
        ``batch_size`` midpoints with bending) from ``z0``, recording its
        steps, and replays them backwards (the 'full' adjoint's integral
        term). With fixed-step 'rk4' we measured 4 times the time per epoch
        of a fit without it (5.4 times with bending); with 'amd' the time is
        set by how long the flows run (see :ref:`geometry`).
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
        of pairs per mini-batch. 0: the given pairs only. The flows still end
        in the basin they start in: on a manifold that nearly touches itself
        (the Swiss roll) some stop on the wrong layer; several starts in
        ``z0`` help encoding (see :ref:`geometry`).
    scoring : {'reconstruction', 'likelihood'}, default='reconstruction'
        What :meth:`score_samples` and :meth:`score` return: minus the
        reconstruction loss, or the log-likelihood in nats
        ``log p_Z(z) - 1/2 log det(J^T J) + log p_noise(x - decoder(z))`` at
        the code ``z`` of ``transform``, the flow acting as the decoder's left
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
        With ``adjoint='approximate'`` the codes ``z*`` are held constant, so
        only ``-1/2 log det(J^T J)`` at ``z*`` shapes the decoder (as in
        rectangular flows); ``adjoint='full'`` also carries the density's
        gradient in ``z*`` through the flow into the decoder.
    density_warmup : int, default=10
        Epochs over which ``density_weight`` ramps up linearly (0: the full
        weight from the first epoch).
    logdet_method : {'auto', 'exact', 'stochastic'}, default='auto'
        Log-determinant of the density term in training: 'exact' (forward-mode
        Jacobian and Cholesky), 'stochastic' (its gradient only, by one
        Hutchinson probe and conjugate gradients per sample, cheaper for many
        components), 'auto' exact up to 16 components. Scoring is always exact.
    optimizer : {'adam', 'rmsprop', 'sgd'} or torch optimizer class, default='adam'
        Optimizer of the decoder.
    optimizer_params : dict, default=None
        Extra keyword arguments of the optimizer.
    learning_rate_init : float, default=1e-3
        Learning rate.
    batch_size : int, default=32
        Mini-batch size for training (capped at n_samples). Encoding results do
        not depend on it.
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Shuffle the samples at every epoch.
    tol : float, default=1e-5
        Improvement of the training loss (or validation score) below which an
        epoch counts as no improvement. It is absolute, and the losses are means
        over features, hence the small value.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its score stops
        improving and keep the best decoder.
    validation_fraction : float, default=0.1
        Share of the data held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    warm_start : bool, default=False
        Continue from the fitted decoder at the next ``fit``.
    device : {'auto', 'cpu', 'cuda', 'cuda:N'} or torch.device, default='auto'
        Where to compute; 'auto' uses CUDA when available. Resolved in ``fit``.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling, training z0 and the validation split
        through a local torch.Generator (the global RNGs are left untouched).
    verbose : int, default=0
        0 silent, 1 a line per epoch, 2 progress bars over epochs and, within
        fit and transform, over batches (each batch is a flow solve).
    n_threads : int or 'auto', default='auto'
        CPU threads torch uses for this estimator's work, set for the duration
        of each call (``fit``, ``transform``, ...) and restored after it, also
        when several threads call one fitted estimator. 'auto' takes one
        thread for small decoders, where a second thread mostly adds
        synchronisation, and more for large ones (see :ref:`threads`).
        Leaves torch alone on a CUDA device.

    Attributes
    ----------
    decoder_ : torch.nn.Module
        Fitted decoder.
    device_ : torch.device
        Device the decoder lives on.
    n_iter_ : int
        Epochs run.
    loss_curve_ : list of float
        Mean training loss per epoch (at the codes found during training).
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
    AutoencoderBaseline : The same decoder with a learned encoder.
    sklearn.decomposition.PCA : Linear codes.

    References
    ----------
    .. [1] K. Flouris, A. Volokitin, G. Bredell, E. Konukoglu. "Explicit and
       data-efficient encoding via gradient flow". arXiv:2412.00864.
    .. [2] W. Su, S. Boyd, E. Candes. "A differential equation for modeling
       Nesterov's accelerated gradient method". JMLR 17, 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skgfe import GradientFlowEncoder
    >>> X = load_digits().data[:100] / 16
    >>> gfe = GradientFlowEncoder(n_components=4, max_iter=2, random_state=0)
    >>> gfe.fit(X).transform(X).shape
    (100, 4)
    """

    _slow_batches = True  # a flow solve per batch
    _allows_missing = True  # a flow needs only the observed entries

    _parameter_constraints = {
        **DifferentiableCodesEstimator._parameter_constraints,
        "ode_order": [Interval(Integral, 1, 2, closed="both")],
        "flow_solver": [StrOptions(set(SOLVERS))],
        "flow_rate": [Interval(Real, 0, None, closed="neither")],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "step_size": [Interval(Real, 0, None, closed="neither")],
        "flow_tol": [Interval(Real, 0, None, closed="left")],
        "max_flow_steps": [Interval(Integral, 1, None, closed="left")],
        "flow_solver_options": [dict, None],
        "z0": [StrOptions({"zeros"}), Real, "array-like"],
        "train_z0": [StrOptions({"random", "z0"})],
        "adjoint": [StrOptions(set(ADJOINTS))],
    }

    def __init__(
        self,
        n_components=2,
        *,
        decoder=None,
        hidden_layer_sizes=(64,),
        activation="elu",
        loss="mse",
        binary_columns=None,
        ode_order=1,
        flow_solver="amd",
        flow_rate=1.0,
        tau=1e4,
        step_size=1.0,
        flow_tol=1e-4,
        max_flow_steps=1000,
        flow_solver_options=None,
        z0="zeros",
        train_z0="random",
        adjoint="approximate",
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
        self.ode_order = ode_order
        self.flow_solver = flow_solver
        self.flow_rate = flow_rate
        self.tau = tau
        self.step_size = step_size
        self.flow_tol = flow_tol
        self.max_flow_steps = max_flow_steps
        self.flow_solver_options = flow_solver_options
        self.z0 = z0
        self.train_z0 = train_z0
        self.adjoint = adjoint

    @_base._inference_threads
    def flow_diagnostics(self, X, *, return_trajectory=False):
        """Encode X and report how each sample's flow went.

        The codes are those of :meth:`transform`; the estimator is not changed.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        return_trajectory : bool, default=False
            Also return every sample's path (needs solver 'amd', 'euler' or
            'rk4'; costs one stored code per step).

        Returns
        -------
        diagnostics : Bunch
            ``codes`` (n_samples, n_components), ``loss`` (final per-sample
            loss), ``grad_norm``, ``flow_time``, ``n_steps`` (accepted steps),
            ``n_fev`` (decoder forward+backward evaluations), ``status`` (str per
            sample: 'converged', 'reached_tau', 'stalled', 'max_steps' or
            'nonfinite') and ``converged`` (bool: every status but 'max_steps' and
            'nonfinite'). With ``return_trajectory``, ``trajectories``: a list with
            one ``(times, codes, losses)`` tuple of arrays per sample.
        """
        X, X_t = self._validate_for_inference(X)
        n = X.shape[0]
        # Filled batch by batch, as transform does: no list of per-batch results.
        codes = np.empty((n, self.n_components), dtype=X.dtype)
        fields = {
            name: np.empty(n, dtype=dtype) for name, _, dtype in _DIAGNOSTIC_FIELDS
        }
        status = np.empty(n, dtype=np.int64)
        trajectories = [] if return_trajectory else None
        slices = batch_slices(n, _base.INFERENCE_BATCH_SIZE)
        for rows in self._batch_progress(slices, n, _base.INFERENCE_BATCH_SIZE, "rows"):
            batch = X_t[rows].to(self.device_, self._dtype)
            result = self._solve_from_starts(batch, record=return_trajectory)
            codes[rows] = to_numpy(result.z)
            for name, field, _ in _DIAGNOSTIC_FIELDS:
                fields[name][rows] = to_numpy(getattr(result, field))
            status[rows] = to_numpy(result.status)
            if return_trajectory:
                trajectories.extend(
                    tuple(to_numpy(array, np.float64) for array in path)
                    for path in result.trajectory.paths(result.z, result.t, result.loss)
                )
        diagnostics = Bunch(
            codes=codes,
            **fields,
            status=np.array([STATUS_NAMES[int(s)] for s in status]),
            converged=np.isin(status, _FINISHED),
        )
        if return_trajectory:
            diagnostics.trajectories = trajectories
        return diagnostics

    def _check_params(self, n_features):
        super()._check_params(n_features)
        self._flow_solver()  # checks flow_solver_options once per fit
        if self.adjoint == "full" and not SOLVERS[self.flow_solver].records:
            raise ValueError(
                f"adjoint='full' needs a solver that records its steps, one of "
                f"{recording_solvers()}; got flow_solver={self.flow_solver!r}"
            )
        replayed = self.adjoint == "full" or self._uses_pair_loss
        if replayed and (self.flow_solver_options or {}).get("direction") == "lbfgs":
            raise ValueError(
                "flow_solver_options={'direction': 'lbfgs'} does not follow the flow, "
                "which adjoint='full' and the pair loss replay; use direction "
                "'auto' (L-BFGS to encode, the flow to train) or 'gradient'"
            )
        if self._uses_pair_loss and not SOLVERS[self.flow_solver].records:
            raise ValueError(
                f"distortion_weight={self.distortion_weight!r} and bending_weight="
                f"{self.bending_weight!r}: the pair loss is backpropagated through "
                f"the flow, which needs a solver that records its steps, one of "
                f"{recording_solvers()}; got flow_solver={self.flow_solver!r}"
            )
        if not isinstance(self.z0, (str, Real)):
            shape = np.shape(self.z0)
            if shape != (self.n_components,) and not (
                len(shape) == 2 and shape[0] >= 1 and shape[1] == self.n_components
            ):
                raise ValueError(
                    f"z0 must be 'zeros', a float, an array of shape (n_components,) = "
                    f"({self.n_components},) or an array of starts of shape (n_starts, "
                    f"n_components) = (n_starts, {self.n_components}), got shape "
                    f"{shape}"
                )
        if not isinstance(self.z0, str) and not np.all(
            np.isfinite(np.asarray(self.z0, dtype=float))
        ):
            raise ValueError(f"z0 must be finite, got {self.z0!r}")

    def _floats_per_row(self, n_features):
        # A flow keeps a handful of codes per row (code, gradient, trial), and
        # L-BFGS two per curvature pair.
        memory = (self.flow_solver_options or {}).get(
            "memory", SOLVERS["amd"].defaults["memory"]
        )
        return super()._floats_per_row(n_features) + self.n_components * (
            2 * memory + 8
        )

    def _build_modules(self, n_features, generator):
        self.decoder_ = self._make_decoder(n_features, generator)

    def _train_batch(self, X, generator):
        full = ADJOINTS[self.adjoint]
        purpose = "adjoint" if full else "train"
        if self.train_z0 == "random":
            z0 = torch.rand(
                X.shape[0], self.n_components, generator=generator, dtype=X.dtype
            ).to(X.device)
            result = self._solve(X, z0, record=full, purpose=purpose)
        else:
            result = self._solve_from_starts(X, record=full, purpose=purpose)
        codes = result.z.detach().requires_grad_(full)
        loss = self._sample_loss(X)(self.decoder_(codes), X).mean()
        # With adjoint='full', the density term's gradient in z* also reaches
        # the decoder through the flow; otherwise z* is held constant.
        self._add_density_loss(loss, codes, generator).backward()
        if full:
            add_integral_term(
                result.trajectory, X, codes.grad, list(self.decoder_.parameters())
            )
        return loss

    def _encode_batch(self, X):
        result = self._solve_from_starts(X)
        self._check_flow(result)
        return result.z

    def _backward_code_loss(self, X, code_loss):
        # The codes of transform (flows from z0) are the ones regularised. The
        # loss depends on the decoder only through z*, so its gradient is the
        # adjoint integral alone, with dL/dz* as the final adjoint.
        result = self._solve_from_starts(X, record=True, purpose="adjoint")
        codes = result.z.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = code_loss(codes)
            (code_grad,) = torch.autograd.grad(loss, codes)
        add_integral_term(
            result.trajectory, X, code_grad, list(self.decoder_.parameters())
        )
        return loss.detach()

    def _starts(self) -> torch.Tensor:
        """The encoding starts, shape (n_starts, n_components)."""
        values = np.asarray(
            0.0 if isinstance(self.z0, str) else self.z0, dtype=np.float64
        )
        if values.ndim < 2:
            values = np.broadcast_to(values, (1, self.n_components))
        return torch.tensor(values, device=self.device_, dtype=self._dtype)

    def _solve_from_starts(self, X, record=False, purpose="encode"):
        """Flows of X from the encoding starts; each row keeps its lowest end.

        With several starts, the flows from all of them run unrecorded; with
        ``record``, the flow from each row's best start is then run again,
        recorded (see :meth:`_flow_solver` for ``purpose``). ``n_fev`` counts
        every flow.
        """
        starts = self._starts()
        n_starts, n = starts.shape[0], X.shape[0]
        if n_starts == 1:
            return self._solve(X, starts.expand(n, -1).clone(), record, purpose)
        # Which start is best is a question of minimising, not of replaying.
        flows = self._solve(
            X.repeat(n_starts, 1),
            starts.repeat_interleave(n, dim=0),
            purpose="encode" if purpose == "adjoint" else purpose,
        )
        losses = flows.loss.reshape(n_starts, n)
        # A start whose flow broke down only loses; if all did, the row reports it.
        best = torch.where(torch.isfinite(losses), losses, torch.inf).argmin(dim=0)
        chosen = best * n + torch.arange(n, device=best.device)
        result = flows._replace(
            **{
                field: getattr(flows, field)[chosen]
                for field in ("z", "loss", "grad_norm", "t", "n_steps", "status")
            },
            n_fev=flows.n_fev.reshape(n_starts, n).sum(dim=0),
        )
        if record:
            replayed = self._solve(X, starts[best], record=True, purpose=purpose)
            result = replayed._replace(n_fev=result.n_fev + replayed.n_fev)
        return result

    def _flow_solver(self, purpose="encode") -> FlowSolver:
        """The solver resolved from the current parameters (set_params applies).

        ``purpose`` is 'encode', 'train' (codes that train the decoder) or
        'adjoint' (a solve the full adjoint or the pair loss replays): the
        solver's defaults for it fill in the options not set (for AMD under
        the adjoint, gradient steps that grow by a factor; see
        skgfe._solvers). Resolutions are cached by value in skgfe._solvers,
        so batches do not check the options again.
        """
        return make_flow_solver(
            self.flow_solver,
            self.flow_solver_options,
            ode_order=self.ode_order,
            alpha=self.flow_rate,
            tau=self.tau,
            step_size=self.step_size,
            tol=self.flow_tol,
            max_steps=self.max_flow_steps,
            purpose=purpose,
        )

    def _solve(self, X, z0, record=False, purpose="encode"):
        return self._flow_solver(purpose).solve(
            self.decoder_, self._sample_loss(X), X, z0, record=record
        )

    def _check_flow(self, result) -> None:
        status = to_numpy(result.status)
        bad = np.flatnonzero(status == NONFINITE)
        if bad.size:
            raise FlowSolverError(
                f"the gradient flow gave non-finite codes or losses for {bad.size} "
                f"sample(s) (batch rows {bad[:10].tolist()}); lower flow_rate or "
                "step_size, or check the decoder and X for extreme values"
            )
        capped = int((status == MAX_STEPS).sum())
        if capped:
            hint = (
                "increase max_flow_steps or loosen flow_tol"
                if not SOLVERS[self.flow_solver].fixed_step
                else f"tau / step_size = {self.tau / self.step_size:.3g} steps are "
                "needed: lower tau, raise step_size, loosen flow_tol or increase "
                "max_flow_steps"
            )
            warn_at_caller(
                f"flow_solver={self.flow_solver!r} hit max_flow_steps="
                f"{self.max_flow_steps} for "
                f"{capped} of {status.size} samples; {hint}",
                FlowSolverWarning,
            )
