"""alpha-CL: contrastive losses, pairwise importance alpha, contrastive covariance C_alpha.

Conventions (``docs/theory.md`` sections 1-2). A batch holds N samples with two views;
``f1, f2`` are the outputs of the first and second view, shape ``[..., N, D]`` (any leading
replica dims). Distances are halved squared norms:

* positive pair ``d_i^2 = 1/2 |f1_i - f2_i|^2``      -> :func:`pair_distances` ``[..., N]``
* negative pair ``d_ij^2 = 1/2 |f1_i - f1_j|^2``     -> ``[..., N, N]`` (first view only)

InfoNCE (paper form, summed over the batch, temperature tau, constant eps):
``L = tau * sum_i log(eps + sum_{j != i} exp((d_i^2 - d_ij^2) / tau))``.
With L2-normalized outputs and eps = 1, ``L / (tau N)`` is the usual mean cross-entropy.

Pairwise importance ``alpha_ij = exp((d_i^2 - d_ij^2)/tau) / (eps + sum_{k != i} ...)``
(zero diagonal), ``beta_i = sum_j alpha_ij``. With alpha held fixed (stop-gradient),
``grad L = -grad E_alpha`` where ``E_alpha = sum_{i != j} alpha_ij (d_ij^2 - d_i^2)
= 1/2 tr C_alpha[f]`` and

``C_alpha[a, b] = sum_{i != j} alpha_ij (a_i - a_j)(b_i - b_j)^T
               - sum_i beta_i (a_i - a_i')(b_i - b_i')^T``.

The quadratic loss is the uniform-alpha case, ``alpha_ij = 1 / (N (N - 1))``:
``L_quad = mean_i d_i^2 - mean_{i != j} d_ij^2 = -E_uniform``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def _check_views(f1: Tensor, f2: Tensor) -> None:
    if f1.shape != f2.shape:
        raise ValueError(f"f1, f2: the two views must have the same shape, got {tuple(f1.shape)} and {tuple(f2.shape)}")
    if f1.dim() < 2 or f1.shape[-2] < 2:
        raise ValueError(f"f1: expected shape [..., N, D] with N >= 2, got {tuple(f1.shape)}")


def _check_alpha(alpha: Tensor, batch_shape: tuple[int, ...], n: int) -> None:
    """alpha must be a floating [..., N, N] tensor whose leading dims broadcast with the features' ones.

    A shared alpha [N, N] for features [R, N, p] is fine; an alpha that is not N x N (a vector,
    a 1 x 1 "scalar" that would silently broadcast) or whose leading dims do not broadcast is not.
    """
    if not isinstance(alpha, Tensor) or not alpha.is_floating_point():
        raise TypeError(f"alpha: expected a floating-point tensor [..., N, N], got {getattr(alpha, 'dtype', alpha)!r}")
    try:
        if alpha.dim() < 2 or tuple(alpha.shape[-2:]) != (n, n):
            raise RuntimeError
        torch.broadcast_shapes(tuple(alpha.shape[:-2]), batch_shape)
    except RuntimeError:
        raise ValueError(
            f"alpha: expected shape [..., {n}, {n}] (N = {n} samples) with leading dims that broadcast with the "
            f"features' {list(batch_shape)}, got {list(alpha.shape)}"
        ) from None


def _check_features(name: str, *tensors: Tensor) -> None:
    """Feature tensors [..., N, p] of one shape family: floating point, at least 2-D."""
    for t in tensors:
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name}: expected floating-point tensors [..., N, p], got {getattr(t, 'dtype', type(t))}")
        if t.dim() < 2:
            raise ValueError(f"{name}: expected shape [..., N, p], got {list(t.shape)}")


def _check_tau_eps(tau: float, eps: float) -> None:
    """tau must be positive with a finite inverse (logits are distances / tau); eps finite and >= 0."""
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0 and math.isfinite(1.0 / tau)):
        raise ValueError(f"tau: must be a finite number > 0 whose inverse is finite (e.g. 0.01 to 100), got {tau}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps: must be a finite number >= 0, got {eps}")


def pair_distances(f1: Tensor, f2: Tensor) -> tuple[Tensor, Tensor]:
    """Positive and negative halved squared distances.

    Returns ``(d_pos [..., N], d_neg [..., N, N])`` with ``d_pos_i = 1/2|f1_i - f2_i|^2`` and
    ``d_neg_ij = 1/2|f1_i - f1_j|^2`` (zero diagonal).
    """
    _check_views(f1, f2)
    d_pos = 0.5 * ((f1 - f2) ** 2).sum(-1)
    sq = (f1 * f1).sum(-1)
    gram = f1 @ f1.transpose(-1, -2)
    d_neg = 0.5 * (sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2 * gram)
    eye = torch.eye(f1.shape[-2], dtype=torch.bool, device=f1.device)
    d_neg = d_neg.masked_fill(eye, 0.0)
    return d_pos, d_neg


def _logits(f1: Tensor, f2: Tensor, tau: float) -> Tensor:
    """``z_ij = (d_i^2 - d_ij^2)/tau`` with the diagonal set to -inf, shape [..., N, N]."""
    d_pos, d_neg = pair_distances(f1, f2)
    z = (d_pos.unsqueeze(-1) - d_neg) / tau
    eye = torch.eye(f1.shape[-2], dtype=torch.bool, device=f1.device)
    return z.masked_fill(eye, -math.inf)


def _log_normalizer(z: Tensor, eps: float) -> Tensor:
    """``log(eps + sum_j exp(z_ij))`` over the last dim, computed stably."""
    if eps == 0:
        return torch.logsumexp(z, dim=-1)
    log_eps = torch.full_like(z[..., :1], math.log(eps))
    return torch.logsumexp(torch.cat([log_eps, z], dim=-1), dim=-1)


def infonce_loss(f1: Tensor, f2: Tensor, tau: float = 0.1, eps: float = 1.0) -> Tensor:
    """Paper-form InfoNCE ``tau * sum_i log(eps + sum_{j != i} exp((d_i^2 - d_ij^2)/tau))``.

    f1, f2: [..., N, D]. Returns [...] (one value per leading index).
    """
    _check_tau_eps(tau, eps)
    return tau * _log_normalizer(_logits(f1, f2, tau), eps).sum(-1)


def pairwise_importance(f1: Tensor, f2: Tensor, tau: float = 0.1, eps: float = 1.0) -> Tensor:
    """InfoNCE's pairwise importance alpha, shape [..., N, N], zero diagonal, rows sum to < 1.

    Computed from the values of f1, f2 (no gradient flows through it: the stop-gradient alpha).
    """
    _check_tau_eps(tau, eps)
    with torch.no_grad():
        z = _logits(f1.detach(), f2.detach(), tau)
        return torch.exp(z - _log_normalizer(z, eps).unsqueeze(-1))


def uniform_alpha(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The uniform importance of the quadratic loss: ``1/(N(N-1))`` off the diagonal, [N, N]."""
    if n < 2:
        raise ValueError(f"n: the batch needs at least 2 samples, got {n}")
    alpha = torch.full((n, n), 1.0 / (n * (n - 1)), dtype=dtype)
    return alpha.fill_diagonal_(0.0)


def quadratic_loss(f1: Tensor, f2: Tensor) -> Tensor:
    """Uniform-alpha loss ``mean_i d_i^2 - mean_{i != j} d_ij^2``, shape [...].

    For L2-normalized outputs this is ``-mean_i <f1_i, f2_i> + mean_{i != j} <f1_i, f1_j>``.
    """
    d_pos, d_neg = pair_distances(f1, f2)
    n = f1.shape[-2]
    return d_pos.mean(-1) - d_neg.sum((-1, -2)) / (n * (n - 1))


def energy(f1: Tensor, f2: Tensor, alpha: Tensor) -> Tensor:
    """``E_alpha = sum_{i != j} alpha_ij (d_ij^2 - d_i^2)``, shape [...]; alpha is used as given.

    f1, f2: [..., N, D]; alpha: [..., N, N] (leading dims broadcast with the features').
    """
    _check_features("f1, f2", f1, f2)
    _check_views(f1, f2)
    _check_alpha(alpha, tuple(f1.shape[:-2]), f1.shape[-2])
    d_pos, d_neg = pair_distances(f1, f2)
    return (alpha * (d_neg - d_pos.unsqueeze(-1))).sum((-1, -2))


def contrastive_covariance(
    a1: Tensor, a2: Tensor, alpha: Tensor, b1: Tensor | None = None, b2: Tensor | None = None
) -> Tensor:
    """Contrastive covariance ``C_alpha[a, b]``, shape [..., p, q].

    a1, a2: [..., N, p] features of the first/second view; b1, b2: [..., N, q] (default a).
    alpha: [..., N, N]; its diagonal is ignored (the sums run over i != j). The leading dims of
    a1, a2, b1, b2 must agree; alpha's broadcast with them (one alpha for every replica is fine).
    """
    if b1 is None:
        b1, b2 = a1, a2
    if b2 is None:
        raise ValueError("b2: give both b1 and b2, or neither")
    _check_features("a1, a2, b1, b2", a1, a2, b1, b2)
    if a1.shape != a2.shape or b1.shape != b2.shape or a1.shape[:-1] != b1.shape[:-1]:
        raise ValueError(
            "a1, a2, b1, b2: expected a1, a2 of shape [..., N, p] and b1, b2 of shape [..., N, q] with the same "
            f"[..., N], got {[list(t.shape) for t in (a1, a2, b1, b2)]}"
        )
    _check_alpha(alpha, tuple(a1.shape[:-2]), a1.shape[-2])
    n = a1.shape[-2]
    off = ~torch.eye(n, dtype=torch.bool, device=alpha.device)
    alpha = alpha * off
    rows, cols = alpha.sum(-1), alpha.sum(-2)
    # sum_ij alpha_ij (a_i - a_j)(b_i - b_j)^T expanded into four products.
    inter = (
        torch.einsum("...i,...ip,...iq->...pq", rows, a1, b1)
        + torch.einsum("...j,...jp,...jq->...pq", cols, a1, b1)
        - torch.einsum("...ij,...ip,...jq->...pq", alpha, a1, b1)
        - torch.einsum("...ij,...jp,...iq->...pq", alpha, a1, b1)
    )
    intra = torch.einsum("...i,...ip,...iq->...pq", rows, a1 - a2, b1 - b2)
    return inter - intra


def kernel_local_variances(phi: Tensor, a: Tensor) -> Tensor:
    """Right side of the kernel-structure lemma: ``2 sum_l S_l^2 V_{p_l}[a]``, shape [p, p].

    phi: [N, L] non-negative features (``alpha_ij = sum_l phi_il phi_jl``); a: [N, p].
    ``S_l = sum_i phi_il``, ``p_l(i) = phi_il / S_l`` and ``V_p`` is the covariance of a under p.
    Features with ``S_l = 0`` contribute nothing.
    """
    _check_features("phi, a", phi, a)
    if phi.dim() != 2 or a.dim() != 2 or phi.shape[0] != a.shape[0]:
        raise ValueError(
            f"phi, a: expected phi [N, L] and a [N, p] with the same N, got {list(phi.shape)}, {list(a.shape)}"
        )
    if not bool(torch.isfinite(phi).all()) or not bool(torch.isfinite(a).all()):
        raise ValueError("phi, a: contain NaN or inf; the lemma's sums need finite values")
    if (phi < 0).any():
        raise ValueError("phi: the kernel lemma needs non-negative features")
    s = phi.sum(0)  # [L]
    keep = s > 0
    phi, s = phi[:, keep], s[keep]
    p = phi / s  # [N, L]
    mean = p.T @ a  # [L, p]
    second = torch.einsum("il,ip,iq->lpq", p, a, a)
    var = second - torch.einsum("lp,lq->lpq", mean, mean)
    return 2 * torch.einsum("l,lpq->pq", s * s, var)


def kernel_inter_term(alpha: Tensor, a: Tensor) -> Tensor:
    """Left side of the lemma: ``sum_{i != j} alpha_ij (a_i - a_j)(a_i - a_j)^T``, [..., p, p]."""
    # With identical views the intra (augmentation) term of C_alpha vanishes.
    return contrastive_covariance(a, a, alpha)


def fit_kernel_features(
    alpha: Tensor, rank: int | None = None, iters: int = 2000, seed: int = 0
) -> tuple[Tensor, float | Tensor]:
    """Best non-negative kernel approximation of alpha's symmetric off-diagonal part.

    alpha: [N, N] or batched [..., N, N] (one independent fit per leading index).
    Fits ``phi >= 0`` ([..., N, rank], default rank N) minimizing
    ``sum_{i != j} (S_ij - (phi phi^T)_ij)^2`` with ``S = (alpha + alpha^T)/2`` by damped
    multiplicative updates (symmetric NMF; the diagonal is free because the contrastive
    covariance never uses it). Returns ``(phi, relative_residual)`` where the residual is
    ``|off(S - phi phi^T)|_F / |off(alpha)|_F`` (a float for a single alpha, a tensor [...]
    for a batch). Asymmetry of alpha is not fitted: measure it separately (it is what no
    kernel can represent). The start is drawn from ``seed`` for the whole batch at once.
    """
    n = alpha.shape[-1]
    rank = n if rank is None else rank
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank: must be an integer >= 1, got {rank!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters: must be an integer >= 0, got {iters!r}")
    off = 1.0 - torch.eye(n, dtype=alpha.dtype)
    sym = symmetric_off_diagonal(alpha)
    gen = torch.Generator().manual_seed(seed)
    scale = (sym.mean((-1, -2), keepdim=True).clamp(min=1e-30) / rank).sqrt()
    phi = scale * (0.5 + torch.rand(*alpha.shape[:-2], n, rank, generator=gen, dtype=alpha.dtype))
    for _ in range(iters):
        # Target with the diagonal filled by the current model, so only off-diagonal entries drive the fit.
        gram = phi @ phi.transpose(-1, -2)
        target = sym + torch.diag_embed(torch.diagonal(gram, dim1=-2, dim2=-1))
        numer = target @ phi
        denom = gram @ phi + 1e-300
        phi = phi * (0.5 + 0.5 * numer / denom)
    resid = ((sym - phi @ phi.transpose(-1, -2)) * off).norm(dim=(-2, -1)) / (alpha * off).norm(dim=(-2, -1))
    return phi, float(resid) if alpha.dim() == 2 else resid


def pair_features(alpha: Tensor) -> Tensor:
    """Exact non-negative features of any non-negative alpha, one per pair i < j: [N, N(N-1)/2].

    Feature (i, j) is ``sqrt(S_ij)`` at samples i and j and 0 elsewhere, ``S = (alpha +
    alpha^T)/2``, so ``phi phi^T`` equals S off the diagonal. Since the inter-sample term of
    C_alpha ignores the diagonal and the asymmetry, the kernel lemma then holds exactly: its
    content lies in how *few* features suffice, not in whether a kernel exists.
    """
    n = alpha.shape[-1]
    if (alpha < 0).any():
        raise ValueError("alpha: pair features need a non-negative alpha")
    i, j = torch.triu_indices(n, n, offset=1)
    root = (0.5 * (alpha[i, j] + alpha[j, i])).sqrt()
    phi = torch.zeros(n, i.numel(), dtype=alpha.dtype)
    cols = torch.arange(i.numel())
    phi[i, cols] = root
    phi[j, cols] = root
    return phi


def asymmetry(alpha: Tensor) -> Tensor:
    """``|alpha - alpha^T|_F / |alpha|_F`` over the last two dims: 0 for a kernel."""
    return (alpha - alpha.transpose(-1, -2)).norm(dim=(-2, -1)) / alpha.norm(dim=(-2, -1))


def symmetric_off_diagonal(alpha: Tensor) -> Tensor:
    """``(alpha + alpha^T)/2`` with a zero diagonal, [..., N, N]: the only part of alpha the
    inter-sample term of C_alpha sees."""
    off = 1.0 - torch.eye(alpha.shape[-1], dtype=alpha.dtype, device=alpha.device)
    return 0.5 * (alpha + alpha.transpose(-1, -2)) * off


def constant_features(alpha: Tensor) -> Tensor:
    """The best constant kernel for alpha: one feature ``sqrt(c)`` at every sample, [..., N, 1].

    ``c`` is the mean of alpha's symmetric off-diagonal entries, the entrywise least-squares
    constant (the criterion :func:`fit_kernel_features` uses). The baseline of the kernel fits.
    """
    n = alpha.shape[-1]
    c = symmetric_off_diagonal(alpha).sum((-1, -2)) / (n * (n - 1))
    return c.sqrt()[..., None, None].expand(*alpha.shape[:-2], n, 1)


def covariance_error(alpha: Tensor, approx: Tensor, a: Tensor) -> Tensor:
    """How much of alpha's inter-sample covariance ``approx`` misses, [...].

    ``|I(alpha) - I(approx)|_F / |I(alpha)|_F`` with ``I(.) = sum_{i != j} (.)_ij (a_i - a_j)(a_i - a_j)^T``
    (:func:`kernel_inter_term`). alpha, approx: [..., N, N]; a: [..., N, p]. 0 means the
    approximation gives the same inter-sample covariance; 1 is what ``approx = 0`` gives.
    """
    if alpha.shape != approx.shape:
        raise ValueError(f"approx: must have alpha's shape {tuple(alpha.shape)}, got {tuple(approx.shape)}")
    exact = kernel_inter_term(alpha, a)
    return (exact - kernel_inter_term(approx, a)).norm(dim=(-2, -1)) / exact.norm(dim=(-2, -1))


@dataclass(frozen=True)
class AugmentationTerms:
    """The expectation of ``C_alpha[f]`` over the views, split into three terms, each [..., D, D].

    ``shared``: ``sum_{i != j} alpha_ij (m_i - m_j)(m_i - m_j)^T`` (the augmentation-averaged
    representation ``m_i = E[f | z_i]``); ``asymmetry``: ``sum_i (col_i - row_i) S_i`` (zero for a
    symmetric alpha); ``cross_view``: ``sum_i row_i (K_i + K_i^T)`` (zero when the two views are
    independent given z). ``S_i = Cov(f | z_i)``, ``K_i = Cov(f, f' | z_i)``, ``row_i = beta_i``
    and ``col_i`` are alpha's row and column sums.
    """

    shared: Tensor
    asymmetry: Tensor
    cross_view: Tensor

    @property
    def total(self) -> Tensor:
        return self.shared + self.asymmetry + self.cross_view


def augmentation_terms(alpha: Tensor, mean: Tensor, within: Tensor, cross: Tensor | None = None) -> AugmentationTerms:
    """``E[C_alpha[f] | z_1..z_N]`` when alpha depends only on the contents z (``docs/theory.md`` section 1).

    Both views of sample i have mean ``mean [..., N, D]`` and covariance ``within [..., N, D, D]``
    given z_i; ``cross [..., N, D, D]`` is the covariance between the two views given z_i (default
    zero: views independent given z). Samples are independent given their contents. alpha:
    [..., N, N] (diagonal ignored). For a symmetric alpha and independent views only
    :attr:`AugmentationTerms.shared` remains.
    """
    n = alpha.shape[-1]
    if mean.shape[-2] != n or within.shape[-3:] != (n, mean.shape[-1], mean.shape[-1]):
        raise ValueError(
            f"mean, within: expected [..., N={n}, D] and [..., N={n}, D, D], "
            f"got {tuple(mean.shape)} and {tuple(within.shape)}"
        )
    if cross is not None and cross.shape != within.shape:
        raise ValueError(f"cross: must have within's shape {tuple(within.shape)}, got {tuple(cross.shape)}")
    off = alpha * (1.0 - torch.eye(n, dtype=alpha.dtype, device=alpha.device))
    rows, cols = off.sum(-1), off.sum(-2)
    shared = kernel_inter_term(off, mean)
    asym = torch.einsum("...i,...ipq->...pq", cols - rows, within)
    cross_term = torch.zeros_like(shared)
    if cross is not None:
        cross_term = torch.einsum("...i,...ipq->...pq", rows, cross + cross.transpose(-1, -2))
    return AugmentationTerms(shared, asym, cross_term)


def view_moments(values: Tensor, joint: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Exact moments of a finite view distribution: ``(mean [N, D], within [N, D, D], cross [N, D, D])``.

    values: [N, V, D], ``f`` at each of the V possible views of sample i (given its content
    z_i); joint: [N, V, V], the probability that the first view is v and the second v'. Both
    views must have the same marginal (rows and columns of each ``joint[i]`` sum alike).
    """
    _check_joint(values, joint)
    marginal = joint.sum(-1)  # [N, V]
    mean = torch.einsum("nv,nvd->nd", marginal, values)
    centred = values - mean.unsqueeze(1)
    within = torch.einsum("nv,nvp,nvq->npq", marginal, centred, centred)
    cross = torch.einsum("nvw,nvp,nwq->npq", joint, centred, centred)
    return mean, within, cross


def enumerated_view_average(alpha: Tensor, values: Tensor, joint: Tensor, chunk: int = 4096) -> Tensor:
    """``E[C_alpha[f]]`` by enumerating every joint choice of the two views of all N samples, [D, D].

    Samples are independent; sample i's pair of views is (v, v') with probability
    ``joint[i, v, v']`` and outputs ``values[i, v]``, ``values[i, v']``. There are ``(V^2)^N``
    configurations, each weighted by its probability and passed to :func:`contrastive_covariance`
    (in chunks of ``chunk``), so this is the definition of the expectation, with no algebra.
    alpha: [N, N], fixed (it must not depend on the views for the result to be meaningful).
    """
    _check_joint(values, joint)
    n, v, d = values.shape
    pairs = v * v
    if pairs**n > 10**7:
        raise ValueError(f"values: (V^2)^N = {pairs}^{n} configurations is too many to enumerate (max 1e7)")
    total = torch.zeros(d, d, dtype=values.dtype)
    flat_joint = joint.reshape(n, pairs)
    for start in range(0, pairs**n, chunk):
        codes = torch.arange(start, min(start + chunk, pairs**n))
        digits = torch.stack([(codes // pairs**i) % pairs for i in range(n)], dim=1)  # [B, N]
        prob = flat_joint.gather(1, digits.T).prod(0)  # [B]
        first, second = digits // v, digits % v
        idx = torch.arange(n)
        f1, f2 = values[idx, first], values[idx, second]  # [B, N, D]
        total += torch.einsum("b,bpq->pq", prob, contrastive_covariance(f1, f2, alpha.expand(len(codes), n, n)))
    return total


def _check_joint(values: Tensor, joint: Tensor) -> None:
    if values.dim() != 3 or joint.shape != (values.shape[0], values.shape[1], values.shape[1]):
        raise ValueError(
            f"values, joint: expected [N, V, D] and [N, V, V], got {tuple(values.shape)} and {tuple(joint.shape)}"
        )
    if (joint < 0).any() or (joint.sum((-1, -2)) - 1).abs().max() > 1e-12:
        raise ValueError("joint: each sample's view distribution must be non-negative and sum to 1")
    if (joint.sum(-1) - joint.sum(-2)).abs().max() > 1e-12:
        raise ValueError("joint: the two views must have the same marginal (row sums = column sums)")
