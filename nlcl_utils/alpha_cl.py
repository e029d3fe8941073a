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

import torch

Tensor = torch.Tensor


def _check_views(f1: Tensor, f2: Tensor) -> None:
    if f1.shape != f2.shape:
        raise ValueError(f"f1, f2: the two views must have the same shape, got {tuple(f1.shape)} and {tuple(f2.shape)}")
    if f1.dim() < 2 or f1.shape[-2] < 2:
        raise ValueError(f"f1: expected shape [..., N, D] with N >= 2, got {tuple(f1.shape)}")


def _check_tau_eps(tau: float, eps: float) -> None:
    if not tau > 0:
        raise ValueError(f"tau: must be > 0, got {tau}")
    if not eps >= 0:
        raise ValueError(f"eps: must be >= 0, got {eps}")


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
    """``E_alpha = sum_{i != j} alpha_ij (d_ij^2 - d_i^2)``, shape [...]; alpha is used as given."""
    d_pos, d_neg = pair_distances(f1, f2)
    return (alpha * (d_neg - d_pos.unsqueeze(-1))).sum((-1, -2))


def contrastive_covariance(
    a1: Tensor, a2: Tensor, alpha: Tensor, b1: Tensor | None = None, b2: Tensor | None = None
) -> Tensor:
    """Contrastive covariance ``C_alpha[a, b]``, shape [..., p, q].

    a1, a2: [..., N, p] features of the first/second view; b1, b2: [..., N, q] (default a).
    alpha: [..., N, N]; its diagonal is ignored (the sums run over i != j).
    """
    if b1 is None:
        b1, b2 = a1, a2
    if b2 is None:
        raise ValueError("b2: give both b1 and b2, or neither")
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
) -> tuple[Tensor, float]:
    """Best non-negative kernel approximation of alpha's symmetric off-diagonal part.

    Fits ``phi >= 0`` ([N, rank], default rank N) minimizing
    ``sum_{i != j} (S_ij - (phi phi^T)_ij)^2`` with ``S = (alpha + alpha^T)/2`` by damped
    multiplicative updates (symmetric NMF; the diagonal is free because the contrastive
    covariance never uses it). Returns ``(phi, relative_residual)`` where the residual is
    ``|off(S - phi phi^T)|_F / |off(alpha)|_F``. Asymmetry of alpha is not fitted: measure
    it separately (it is what no kernel can represent).
    """
    n = alpha.shape[-1]
    rank = n if rank is None else rank
    off = 1.0 - torch.eye(n, dtype=alpha.dtype)
    sym = 0.5 * (alpha + alpha.T) * off
    gen = torch.Generator().manual_seed(seed)
    scale = math.sqrt(max(sym.mean().item(), 1e-30) / rank)
    phi = scale * (0.5 + torch.rand(n, rank, generator=gen, dtype=alpha.dtype))
    for _ in range(iters):
        # Target with the diagonal filled by the current model, so only off-diagonal entries drive the fit.
        gram = phi @ phi.T
        target = sym + torch.diag(torch.diagonal(gram))
        numer = target @ phi
        denom = gram @ phi + 1e-300
        phi = phi * (0.5 + 0.5 * numer / denom)
    resid = ((sym - phi @ phi.T) * off).norm() / (alpha * off).norm()
    return phi, float(resid)


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
