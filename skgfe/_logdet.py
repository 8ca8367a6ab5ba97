"""The volume term log det(J^T J) of a decoder, exactly or by its stochastic gradient.

An injective decoder ``D`` maps the codes ``z`` (dimension k) onto a
k-dimensional manifold in the data space (dimension n_features >= k). A density
``p_Z`` on the codes pushed through ``D`` has, on that manifold, the density

    log p(D(z)) = log p_Z(z) - 1/2 log det(J(z)^T J(z)),   J = dD/dz,

where ``J`` is the n_features x k Jacobian (Caterini et al., 2021). This module
computes the volume term for a batch of codes, each row with its own Jacobian
(decoders treat rows independently):

- exactly: the Jacobian by forward-mode differentiation (k Jacobian-vector
  products per row), then a Cholesky factor of the k x k matrix ``J^T J``.
  Differentiable with respect to the decoder's parameters and the codes;
  cheap for small k.
- by its gradient only: Hutchinson's trace estimator with conjugate gradients,
  ``d log det(J^T J) = tr((J^T J)^{-1} d(J^T J))
  ~ 1/m sum_i u_i^T d(J^T J) eps_i`` with ``u_i`` the CG solution of
  ``J^T J u_i = eps_i`` held constant. A surrogate whose autograd gradient is
  this estimate costs Jacobian-vector products only, never the full Jacobian.

The module is torch only and knows nothing of scikit-learn.

References
----------
.. [1] A. L. Caterini, G. Loaiza-Ganem, G. Pleiss, J. P. Cunningham.
   "Rectangular flows for manifold learning". NeurIPS 2021.
.. [2] M. F. Hutchinson. "A stochastic estimator of the trace of the influence
   matrix for Laplacian smoothing splines". Communications in Statistics -
   Simulation and Computation 18(3), 1989.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.func import jacfwd, jvp, vjp, vmap

# Trials between convergence checks of the conjugate gradients: a check is a
# host sync on CUDA, an iteration a few decoder passes.
_CG_CHECK_EVERY = 4


class CGResult(NamedTuple):
    """Solution of a batch of conjugate-gradient solves."""

    solution: torch.Tensor  # (m, k)
    n_iter: int  # iterations run (the most any row needed, up to max_iter)
    residual_norm: torch.Tensor  # (m,) CG residual norm per row (by its recurrence)


def decoder_jacobian(decoder: Callable, z: torch.Tensor) -> torch.Tensor:
    """Jacobian of the decoder at every row of ``z``.

    Parameters
    ----------
    decoder : callable
        Maps (n, k) codes to (n, n_features) outputs, rows independently.
    z : Tensor of shape (n, k)
        Codes.

    Returns
    -------
    jacobian : Tensor of shape (n, n_features, k)
        ``d decoder(z)_i / d z_i`` for every row ``i``, by forward mode (k
        Jacobian-vector products per row), differentiable with respect to the
        decoder's parameters and ``z``.
    """

    def decode_row(row):
        return decoder(row.unsqueeze(0)).squeeze(0)

    return vmap(jacfwd(decode_row))(z)


def jacobian_logdet(jacobian: torch.Tensor) -> torch.Tensor:
    """``log det(J^T J)`` of a batch of Jacobians, by a Cholesky factor of ``J^T J``.

    Forming ``J^T J`` squares the condition number of ``J``: in float32 a
    Jacobian whose singular values span more than about 1e3 already gives a
    Gram matrix that Cholesky cannot factorise reliably, although ``J`` itself
    is of full rank to float32 precision, and its small singular values lose
    their digits long before. So float32 rows whose factorisation fails or has
    a squared pivot below ``sqrt(eps)`` times the largest diagonal entry are
    factorised again from ``J`` in float64. A Jacobian is rank-deficient to the
    precision it was computed in when a squared pivot is below the rounding
    level of its Gram matrix: ``n_features * eps`` times the scale for float64
    input, ``(n_features * eps)**2`` for a float32 row redone in float64. Then
    a ``torch.linalg.LinAlgError`` names the rows: the density is undefined
    there (the decoder collapses a latent direction).

    Parameters
    ----------
    jacobian : Tensor of shape (n, n_features, k)
        Jacobians ``J``, k <= n_features.

    Returns
    -------
    logdet : Tensor of shape (n,)
        ``log det(J^T J)`` in the dtype of ``jacobian``, differentiable.
    """
    gram = jacobian.mT @ jacobian
    n_features, k = jacobian.shape[-2:]
    # In float32 the small singular values lose their digits long before the
    # rounding level, so rows whose J^T J spans more than 1 / sqrt(eps) are
    # redone in float64.
    threshold = (
        singular_gram_threshold(jacobian.dtype, n_features)
        if jacobian.dtype == torch.float64
        else torch.finfo(jacobian.dtype).eps ** 0.5
    )
    unreliable = _unreliable_cholesky(gram.detach(), threshold)
    # One host sync per call (not per iteration) decides whether to retry.
    if not bool(unreliable.any()):
        return _cholesky_logdet(gram)
    rows = unreliable.nonzero().flatten()
    if jacobian.dtype == torch.float64:
        _raise_rank_deficient(rows)
    retry_jacobian = jacobian[rows].double()
    retry_gram = retry_jacobian.mT @ retry_jacobian
    still_unreliable = _unreliable_cholesky(
        retry_gram.detach(), singular_gram_threshold(jacobian.dtype, n_features)
    )
    if bool(still_unreliable.any()):
        _raise_rank_deficient(rows[still_unreliable])
    # Failed rows are factorised as identities and then overwritten, so their
    # partial factors never reach the backward pass.
    identity = torch.eye(k, dtype=gram.dtype, device=gram.device)
    logdet = _cholesky_logdet(torch.where(unreliable[:, None, None], identity, gram))
    return logdet.index_put((rows,), _cholesky_logdet(retry_gram).to(logdet.dtype))


def singular_gram_threshold(jacobian_dtype: torch.dtype, n_features: int) -> float:
    """Relative pivot level below which a float64 ``J^T J`` is singular.

    Forming ``J^T J`` perturbs it by up to about ``n_features * eps`` times its
    scale, so a float64 Jacobian whose Gram matrix has a squared Cholesky
    pivot below that (relative to its largest diagonal entry) is singular to
    working precision. A float32 Jacobian cast to float64 resolves its
    singular values down to the rounding level of its own float32 entries,
    which is the square of that level in the Gram matrix.

    Parameters
    ----------
    jacobian_dtype : torch.dtype
        The dtype the Jacobian was computed in.
    n_features : int
        Rows of the Jacobian.

    Returns
    -------
    threshold : float
        For :func:`_unreliable_cholesky` on the float64 Gram matrix.
    """
    rounding = n_features * torch.finfo(jacobian_dtype).eps
    return rounding if jacobian_dtype == torch.float64 else rounding**2


def _cholesky_logdet(gram: torch.Tensor) -> torch.Tensor:
    factor = torch.linalg.cholesky(gram)
    return 2 * factor.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)


def _unreliable_cholesky(gram: torch.Tensor, relative_threshold: float) -> torch.Tensor:
    """Rows whose Cholesky factorisation fails or has a pivot at rounding level."""
    factor, info = torch.linalg.cholesky_ex(gram)
    smallest_pivot = factor.diagonal(dim1=-2, dim2=-1).square().amin(dim=-1)
    scale = gram.diagonal(dim1=-2, dim2=-1).amax(dim=-1)
    # A squared pivot bounds the smallest eigenvalue from above, so a small one
    # proves near-singularity. Written so that NaN counts as unreliable.
    return (info != 0) | ~(smallest_pivot > relative_threshold * scale)


def _raise_rank_deficient(rows: torch.Tensor):
    bad = rows.tolist()
    raise torch.linalg.LinAlgError(
        f"the decoder Jacobian J is rank-deficient (or not finite) at {len(bad)} "
        f"code(s), batch rows {bad[:10]}: J^T J is singular to working precision, "
        "so the decoder collapses a latent direction there and the density is "
        "undefined. Use fewer n_components, or check the decoder and its input"
    )


def logdet_jtj(decoder: Callable, z: torch.Tensor) -> torch.Tensor:
    """``log det(J^T J)`` of the decoder Jacobian at every row of ``z``, exactly.

    Parameters
    ----------
    decoder : callable
        Maps (n, k) codes to (n, n_features) outputs, rows independently.
    z : Tensor of shape (n, k)
        Codes.

    Returns
    -------
    logdet : Tensor of shape (n,)
        Differentiable with respect to the decoder's parameters and ``z``.
        See :func:`jacobian_logdet` for ill-conditioned and rank-deficient
        Jacobians.
    """
    return jacobian_logdet(decoder_jacobian(decoder, z))


def gram_matvec(decoder: Callable, z: torch.Tensor) -> Callable:
    """The map ``v -> J^T J v`` at the rows of ``z``, with no graph to the parameters.

    Parameters
    ----------
    decoder : callable
        Maps (n, k) codes to (n, n_features) outputs, rows independently.
    z : Tensor of shape (n, k)
        Codes.

    Returns
    -------
    matvec : callable
        Takes ``v`` of shape (n, k) and returns ``J_i^T J_i v_i`` per row, one
        Jacobian-vector and one vector-Jacobian product, without building the
        Jacobian.
    """
    z = z.detach()
    with torch.no_grad():
        _, pullback = vjp(decoder, z)

    def matvec(v):
        with torch.no_grad():
            _, jv = jvp(decoder, (z,), (v,))
            return pullback(jv)[0]

    return matvec


def conjugate_gradient(
    matvec: Callable, b: torch.Tensor, *, tol=1e-6, max_iter=None
) -> CGResult:
    """Solve ``A x = b`` row by row for symmetric positive-definite ``A``.

    Parameters
    ----------
    matvec : callable
        Maps (m, k) to (m, k): row ``i`` of the output is ``A_i`` times row
        ``i`` of the input.
    b : Tensor of shape (m, k)
        Right-hand sides.
    tol : float, default=1e-6
        A row stops when ``||b_i - A_i x_i|| <= tol * ||b_i||``.
    max_iter : int, default=None
        Most iterations; None means ``2 * k`` (CG needs at most k in exact
        arithmetic).

    Returns
    -------
    result : CGResult
        ``solution`` (m, k), ``n_iter`` and the final ``residual_norm`` (m,).
    """
    max_iter = 2 * b.shape[-1] if max_iter is None else max_iter
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = residual.clone()
    squared_norm = residual.square().sum(dim=-1)
    threshold = tol**2 * b.square().sum(dim=-1)
    n_iter = 0
    while n_iter < max_iter:
        active = squared_norm > threshold
        if n_iter % _CG_CHECK_EVERY == 0 and not bool(active.any()):
            break
        a_direction = matvec(direction)
        curvature = (direction * a_direction).sum(dim=-1)
        # Finished rows take zero steps (their ratios may be 0/0, never used).
        step = torch.where(active, squared_norm / curvature, 0.0).unsqueeze(-1)
        x = x + step * direction
        residual = residual - step * a_direction
        new_squared_norm = residual.square().sum(dim=-1)
        ratio = torch.where(active, new_squared_norm / squared_norm, 0.0).unsqueeze(-1)
        direction = torch.where(
            active.unsqueeze(-1), residual + ratio * direction, direction
        )
        squared_norm = torch.where(active, new_squared_norm, squared_norm)
        n_iter += 1
    return CGResult(x, n_iter, squared_norm.sqrt())


def rademacher_probes(
    n_probes: int, z: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Random signs of shape (n_probes, n, k) for Hutchinson's estimator.

    Drawn on the CPU from ``generator`` (identical on every device), then moved
    to ``z``'s device and dtype. Their covariance is the identity, as the trace
    estimator needs, with the least variance among such probes.
    """
    signs = torch.randint(0, 2, (n_probes, *z.shape), generator=generator)
    return (2 * signs - 1).to(device=z.device, dtype=z.dtype)


def logdet_gradient_surrogate(
    decoder: Callable, z: torch.Tensor, probes: torch.Tensor, *, tol=1e-6, max_iter=None
) -> torch.Tensor:
    """A per-row value whose gradient estimates d log det(J^T J) (Hutchinson + CG).

    For probes ``eps_1 .. eps_m`` the value of row ``i`` is
    ``1/m sum_j (J u_j) . (J eps_j)`` where ``u_j`` solves
    ``J^T J u_j = eps_j`` by conjugate gradients and is held constant (a stop
    gradient). Its gradient with respect to the decoder's parameters and ``z``
    is therefore ``1/m sum_j u_j^T d(J^T J) eps_j``, an unbiased estimate of
    ``tr((J^T J)^{-1} d(J^T J)) = d log det(J^T J)`` up to the CG error.

    The value itself is not the log-determinant: with an exact solve it is
    ``1/m sum_j ||eps_j||^2`` (k for Rademacher probes). Use it in a loss only
    for its gradient.

    Parameters
    ----------
    decoder : callable
        Maps (n, k) codes to (n, n_features) outputs, rows independently.
    z : Tensor of shape (n, k)
        Codes.
    probes : Tensor of shape (n_probes, n, k)
        Probe vectors with identity covariance (:func:`rademacher_probes`).
    tol, max_iter : float, int
        Of :func:`conjugate_gradient`.

    Returns
    -------
    surrogate : Tensor of shape (n,)
    """
    n_probes, n_rows, k = probes.shape
    probes = probes.reshape(n_probes * n_rows, k)
    # Probe j of row i sits at flat row j * n_rows + i.
    z_repeated = z.repeat(n_probes, 1)
    solves = conjugate_gradient(
        gram_matvec(decoder, z_repeated), probes, tol=tol, max_iter=max_iter
    ).solution
    # One forward-mode pass gives J u and J eps together.
    _, tangents = jvp(
        decoder, (torch.cat([z_repeated, z_repeated]),), (torch.cat([solves, probes]),)
    )
    j_solves, j_probes = tangents.chunk(2)
    per_probe = (j_solves * j_probes).sum(dim=-1).reshape(n_probes, n_rows)
    return per_probe.mean(dim=0)
