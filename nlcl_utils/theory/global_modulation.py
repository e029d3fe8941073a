"""Global modulation in closed form: two global classes, one homogeneous filter per RF.

Model (``docs/theory.md`` section 5). A global class ``z`` in {0, 1} with
``P(z=1) = p1``, ``p0 = 1 - p1``. Given z, the K receptive fields (RFs) are independent; RF k
shows one of T tokens, token t with probability ``probs[z, k, t]`` and embedding
``emb[k, t] in R^d``. RF k has a single filter ``w_k`` (M = 1) with a homogeneous activation
h (relu, leaky_relu or linear), so its hidden unit is ``f_k = h(w_k^T x_k) = w_k^T x~_k``
with the gated input ``x~_k = h'(w_k^T x_k) x_k``. Every moment below is exact (sums over
the discrete distribution, float64): nothing is sampled.

Shapes (any leading replica dims ``...`` broadcast through every function):

* ``emb``   [..., K, T, d]   token embeddings per RF
* ``probs`` [..., 2, K, T]   token distribution per class and RF (rows sum to 1)
* ``p1``    float or [...]    P(z = 1), strictly between 0 and 1
* ``w``     [..., K, d]      one filter per RF

Closed form (:func:`closed_form`). With C the plain population covariance,
``C[x~_k, x~_k'] = 1(k=k') L_k + p0 p1 Delta_k Delta_k'^T`` where
``L_k = E_z V[x~_k | z]`` and ``Delta_k = E[x~_k | z=1] - E[x~_k | z=0]`` (the k != k'
blocks have no within-class part because the RFs are conditionally independent). With
``d_k = w_k^T L_k w_k``, ``b_k = w_k^T Delta_k``, ``D = diag(d)``, the hidden layer's
covariance is ``V[f] = D + p0 p1 b b^T``. Its top eigenpair ``(lambda, s)``, ``|s| = 1``,
solves the secular equation ``1 + p0 p1 sum_k b_k^2 / (d_k - lambda) = 0`` with
``s_k = b_k / (Z (d_k - lambda))``, ``Z^2 = sum_k (b_k / (d_k - lambda))^2``. Then

    velocity_k = (s_k^2 V[x~_k] + delta_k Delta_k Delta_k^T) w_k,
    delta_k    = p0 p1 / (Z^2 (d_k - lambda)) * sum_{k' != k} b_k'^2 / (d_k' - lambda) >= 0.

Derivation (the identity the tests check). "Top layer aligned to s" means the top layer
``V_top`` (any number of outputs) satisfies ``V_top^T V_top = s s^T`` -- e.g. the single row
``s^T``, which is where the top layer's own Oja flow on ``1/2 tr V_top V[f] V_top^T`` goes --
and it is held fixed while we differentiate with respect to the filters. For
``E_cov(w) = 1/2 tr V[f_2]`` with ``f_2 = V_top f``:

    grad_{w_k} E_cov = sum_k' s_k s_k' C[x~_k, x~_k'] w_k'           (homogeneity: df_k/dw_k = x~_k)
                     = s_k^2 V[x~_k] w_k + p0 p1 s_k Delta_k sum_{k' != k} s_k' b_k'
                     = s_k^2 V[x~_k] w_k + delta_k Delta_k Delta_k^T w_k,

using ``V[x~_k] = L_k + p0 p1 Delta_k Delta_k^T`` and, with the eigenvector formula,
``p0 p1 s_k s_k' b_k' / b_k = p0 p1 b_k'^2 / (Z^2 (d_k - lambda)(d_k' - lambda))``.
``delta_k >= 0`` because ``lambda > d_k'`` for every informative RF (interlacing), so both
factors ``(d_k - lambda)`` and ``sum_{k' != k} b_k'^2 / (d_k' - lambda)`` are <= 0.

Normalization. The closed form is the gradient of ``E_cov = 1/2 tr V[f_2]``, the population
covariance objective. In the alpha-CL normalization of :mod:`nlcl_utils.engine.alpha_cl`, uniform
alpha over ordered pairs of independent samples (``alpha_uv = pi_u pi_v`` for support points
of probability ``pi``) without the augmentation term gives
``C_alpha[a] = E_{a, a' iid} (a - a')(a - a')^T = 2 V[a]``, so
``grad 1/2 tr C_alpha[f_2] = 2 * velocity``. Both references are implemented:
:func:`velocity_autograd` (``E_cov`` from exact per-token moments) and
:func:`velocity_autograd_enumerated` (``1/2 tr C_alpha[f_2]`` with
:func:`nlcl_utils.engine.alpha_cl.contrastive_covariance` on the enumerated joint support).

The augmentation (intra) term. Let the second view of each RF repeat the first view's token
with probability ``repeat`` and otherwise re-draw it from ``probs[z, k]`` (same z, RFs
independently). With uniform alpha, ``C_alpha[a] = E (a - a_other)(a - a_other)^T - E (a - a')(a - a')^T``
(independent sample minus augmented view) equals ``2 (V[a] - (1 - repeat) E_z V[a | z])``: the
augmentation removes the within-class covariance in proportion to how often it re-draws, and
the cross-RF blocks are untouched (given z the views of different RFs are independent). So
``C_alpha / 2`` has blocks ``1(k=k') repeat L_k + p0 p1 Delta_k Delta_k'^T``: the closed form
holds with ``L_k -> repeat * L_k`` (``closed_form(..., repeat=...)``; ``repeat = 1``: identical
views, the paper's appendix setting; :func:`velocity_autograd_views` is the enumerated
reference). With ``repeat = 0`` (the views share only z) ``d = 0``, ``s = b / |b|``,
``delta_k = p0 p1 (1 - s_k^2)`` and the velocity is ``p0 p1 b_k Delta_k`` for every RF: each RF is
driven along its own discriminative direction, and the top layer only moves weight between the
``s_k^2`` and the ``delta_k`` term without changing the total.

Degenerate case: if an RF with ``b_k = 0`` has ``d_k`` at least the secular root, the top
eigenvector is that RF's unit vector ``e_k``; then ``s = e_k``, ``lambda = d_k`` and
``delta = 0``, which keeps the velocity formula exact. If every ``b_k = 0`` the same rule
picks the RF with the largest ``d_k``.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch

from nlcl_utils.engine import alpha_cl
from nlcl_utils.engine.activations import HOMOGENEOUS_NAMES, Activation, get_activation

Tensor = torch.Tensor

MAX_ENUMERATED_SUPPORT = 200_000


# ----------------------------------------------------------------------------- validation
def _activation(activation: str | Activation) -> Activation:
    if isinstance(activation, Activation):
        act = activation
    elif isinstance(activation, str):
        if activation not in HOMOGENEOUS_NAMES:
            raise ValueError(
                f"activation: the closed form needs a homogeneous activation; allowed: "
                f"{', '.join(HOMOGENEOUS_NAMES)}; got {activation!r}"
            )
        act = get_activation(activation)
    else:
        raise ValueError(f"activation: expected a name ({', '.join(HOMOGENEOUS_NAMES)}), got {activation!r}")
    if not act.homogeneous:
        raise ValueError(f"activation: {act.name} is not homogeneous; allowed: {', '.join(HOMOGENEOUS_NAMES)}")
    return act


def _check_model(emb: Tensor, probs: Tensor, p1, w: Tensor | None = None) -> Tensor:
    """Validate shapes and values; returns p1 as a float64 tensor of shape [...] (or [])."""
    for name, t in (("emb", emb), ("probs", probs)) + ((("w", w),) if w is not None else ()):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dtype != torch.float64:
            raise ValueError(f"{name}: expected dtype float64 (exact identities), got {t.dtype}")
    if emb.dim() < 3:
        raise ValueError(f"emb: expected shape [..., K, T, d], got {tuple(emb.shape)}")
    if probs.dim() < 3 or probs.shape[-3] != 2:
        raise ValueError(f"probs: expected shape [..., 2, K, T] (two classes), got {tuple(probs.shape)}")
    k, t = emb.shape[-3], emb.shape[-2]
    if probs.shape[-2:] != (k, t):
        raise ValueError(f"probs: last dims must be (K, T) = ({k}, {t}) to match emb, got {tuple(probs.shape[-2:])}")
    if (probs < 0).any() or not torch.allclose(probs.sum(-1), torch.ones((), dtype=probs.dtype), atol=1e-12):
        raise ValueError("probs: every row probs[..., z, k, :] must be non-negative and sum to 1")
    if w is not None and w.shape[-2:] != (k, emb.shape[-1]):
        raise ValueError(f"w: expected shape [..., K, d] = [..., {k}, {emb.shape[-1]}], got {tuple(w.shape)}")
    p1 = torch.as_tensor(p1, dtype=torch.float64)
    if not ((p1 > 0) & (p1 < 1)).all():
        raise ValueError(f"p1: P(z=1) must lie strictly between 0 and 1, got {p1}")
    return p1


def _check_repeat(repeat) -> float:
    if isinstance(repeat, bool) or not isinstance(repeat, (int, float)) or not 0.0 <= repeat <= 1.0:
        raise ValueError(f"repeat: the probability that a view repeats a token must be in [0, 1], got {repeat!r}")
    return float(repeat)


# ----------------------------------------------------------------------------- moments
class Moments(NamedTuple):
    """Exact class-conditional moments of the gated inputs (float64).

    mean [..., 2, K, d] = E[x~_k | z]; second [..., 2, K, d, d] = E[x~_k x~_k^T | z].
    """

    mean: Tensor
    second: Tensor


def gated_tokens(emb: Tensor, w: Tensor, activation: str | Activation = "relu") -> Tensor:
    """Gated embeddings ``h'(w_k^T e_kt) e_kt``, shape [..., K, T, d]."""
    act = _activation(activation)
    pre = torch.einsum("...ktd,...kd->...kt", emb, w)
    return act.gate(pre).unsqueeze(-1) * emb


def moments(emb: Tensor, probs: Tensor, w: Tensor, activation: str | Activation = "relu") -> Moments:
    """Exact ``E[x~_k | z]`` and ``E[x~_k x~_k^T | z]`` (see :class:`Moments`)."""
    gx = gated_tokens(emb, w, activation)  # [..., K, T, d]
    mean = torch.einsum("...zkt,...ktd->...zkd", probs, gx)
    second = torch.einsum("...zkt,...ktd,...kte->...zkde", probs, gx, gx)
    return Moments(mean, second)


# ----------------------------------------------------------------------------- secular equation
def top_eigen_secular(d: Tensor, b: Tensor, rho: Tensor | float, iters: int = 200) -> tuple[Tensor, Tensor]:
    """Top eigenpair of ``diag(d) + rho b b^T`` (rho > 0) from the secular equation.

    d, b: [..., K] float64; rho: float or [...]. Returns ``(lam [...], s [..., K])`` with
    ``|s| = 1`` and the sign fixed by ``s^T b >= 0``. The root of
    ``1 + rho sum_k b_k^2 / (d_k - lam) = 0`` on ``(max_{b_k != 0} d_k, inf)`` is found by
    bisection (the left side increases there), batched; ``s_k = b_k / (d_k - lam)``
    normalized. See the module docstring for the degenerate case (an uninformative RF wins).
    """
    if d.shape != b.shape:
        raise ValueError(f"d, b: must have the same shape [..., K], got {tuple(d.shape)} and {tuple(b.shape)}")
    rho = torch.as_tensor(rho, dtype=d.dtype)
    if not (rho > 0).all():
        raise ValueError(f"rho: must be > 0, got {rho}")
    info = b != 0
    neg_inf = torch.tensor(-math.inf, dtype=d.dtype)
    lo = torch.where(info, d, neg_inf).amax(-1)  # [...]
    any_info = info.any(-1)
    lo = torch.where(any_info, lo, d.amax(-1))
    hi = lo + rho * (b * b).sum(-1)
    b2 = b * b
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        gap = d - mid.unsqueeze(-1)
        # Terms with b_k = 0 contribute nothing (and must not produce 0/0).
        terms = torch.where(info, b2 / torch.where(info, gap, torch.ones_like(gap)), torch.zeros_like(gap))
        val = 1 + rho * terms.sum(-1)
        go_up = val < 0
        lo = torch.where(go_up, mid, lo)
        hi = torch.where(go_up, hi, mid)
        if bool(((hi - lo) <= 4 * torch.finfo(d.dtype).eps * hi.abs().clamp_min(1e-300)).all()):
            break
    lam = 0.5 * (lo + hi)
    lam = torch.where(any_info, lam, d.amax(-1))
    gap = d - lam.unsqueeze(-1)
    safe = torch.where(info, gap, torch.ones_like(gap))
    s = torch.where(info, b / safe, torch.zeros_like(b))
    # Degenerate: an RF without global information has the largest eigenvalue.
    d_uninf = torch.where(info, neg_inf, d)
    k_uninf = d_uninf.argmax(-1)
    degenerate = d_uninf.amax(-1) >= lam
    lam = torch.where(degenerate, d_uninf.amax(-1), lam)
    e_k = torch.nn.functional.one_hot(k_uninf, d.shape[-1]).to(d.dtype)
    s = torch.where(degenerate.unsqueeze(-1), e_k, s)
    s = s / s.norm(dim=-1, keepdim=True)
    sign = torch.where((s * b).sum(-1) < 0, -1.0, 1.0).to(d.dtype)
    return lam, s * sign.unsqueeze(-1)


# ----------------------------------------------------------------------------- closed form
class GlobalModulation(NamedTuple):
    """Every quantity of the closed form (float64); shapes for leading dims ``...``.

    L [..., K, d, d], Delta [..., K, d], var [..., K, d, d] (= V[x~_k]), d [..., K], b [..., K],
    lam [...], s [..., K], delta [..., K], velocity [..., K, d].
    """

    L: Tensor
    Delta: Tensor
    var: Tensor
    d: Tensor
    b: Tensor
    lam: Tensor
    s: Tensor
    delta: Tensor
    velocity: Tensor


def closed_form(
    emb: Tensor, probs: Tensor, p1, w: Tensor, activation: str | Activation = "relu", repeat: float = 1.0
) -> GlobalModulation:
    """The closed form of the module docstring, batched over leading dims, float64.

    ``repeat`` in [0, 1]: probability that an RF's second view repeats the first view's token
    (1: identical views, no augmentation term; 0: views i.i.d. given z). Quantities are those
    of ``C_alpha / 2``, so ``L`` and ``var`` hold ``repeat * L_k`` and ``repeat * L_k + p0 p1 Delta Delta^T``.
    """
    p1 = _check_model(emb, probs, p1, w)
    repeat = _check_repeat(repeat)
    pz = torch.stack([1 - p1, p1], dim=-1)  # [..., 2]
    rho = (1 - p1) * p1
    mom = moments(emb, probs, w, activation)
    cond_var = mom.second - torch.einsum("...zkd,...zke->...zkde", mom.mean, mom.mean)
    L = repeat * torch.einsum("...z,...zkde->...kde", pz, cond_var)
    delta_vec = mom.mean[..., 1, :, :] - mom.mean[..., 0, :, :]
    rho_kdd = rho[..., None, None, None] if rho.dim() else rho
    var = L + rho_kdd * torch.einsum("...kd,...ke->...kde", delta_vec, delta_vec)
    dk = torch.einsum("...kd,...kde,...ke->...k", w, L, w)
    bk = torch.einsum("...kd,...kd->...k", w, delta_vec)
    lam, s = top_eigen_secular(dk, bk, rho)
    delta = modulation_coefficients(dk, bk, lam, s, rho)
    velocity = (s * s).unsqueeze(-1) * torch.einsum("...kde,...ke->...kd", var, w) + (delta * bk).unsqueeze(
        -1
    ) * delta_vec
    return GlobalModulation(L, delta_vec, var, dk, bk, lam, s, delta, velocity)


def modulation_coefficients(d: Tensor, b: Tensor, lam: Tensor, s: Tensor, rho) -> Tensor:
    """``delta_k = rho / (Z^2 (d_k - lam)) sum_{k' != k} b_k'^2 / (d_k' - lam)``, [..., K].

    Uses the secular-equation form (valid for ``b_k = 0`` too); 0 in the degenerate case
    where an uninformative RF carries the top eigenvalue (``s`` is then a unit vector with
    ``s^T b = 0``).
    """
    rho = torch.as_tensor(rho, dtype=d.dtype)
    rho_k = rho.unsqueeze(-1) if rho.dim() else rho
    info = b != 0
    gap = d - lam.unsqueeze(-1)
    safe = torch.where(info, gap, torch.ones_like(gap))
    r = torch.where(info, b * b / safe, torch.zeros_like(b))  # b_k^2 / (d_k - lam)
    u = torch.where(info, b / safe, torch.zeros_like(b))  # unnormalized eigenvector
    z2 = (u * u).sum(-1, keepdim=True)
    others = r.sum(-1, keepdim=True) - r
    gap_nz = torch.where(gap == 0, torch.ones_like(gap), gap)
    delta = rho_k / (z2.clamp_min(1e-300) * gap_nz) * others
    degenerate = ((s * b).sum(-1).abs() == 0) | (z2.squeeze(-1) == 0)
    # "+ 0.0" turns the -0.0 of an empty sum over other RFs into +0.0.
    return torch.where(degenerate.unsqueeze(-1), torch.zeros_like(delta), delta) + 0.0


# ----------------------------------------------------------------------------- autograd references
def velocity_autograd(
    emb: Tensor, probs: Tensor, p1, w: Tensor, s: Tensor, activation: str | Activation = "relu"
) -> Tensor:
    """``grad_w 1/2 tr V[f_2]`` with ``f_2 = s^T f`` (top layer aligned to s, held fixed).

    ``V[f]`` is assembled from exact per-token moments of the hidden units
    (``E[f_k f_k'] = sum_z p_z E[f_k | z] E[f_k' | z]`` for k != k', ``sum_z p_z E[f_k^2 | z]``
    on the diagonal); nothing from the closed form is used. Returns [..., K, d], equal to
    ``closed_form(...).velocity`` (module docstring).
    """
    p1 = _check_model(emb, probs, p1, w)
    act = _activation(activation)
    pz = torch.stack([1 - p1, p1], dim=-1)
    w = w.detach().clone().requires_grad_(True)
    hid = act(torch.einsum("...ktd,...kd->...kt", emb, w))  # [..., K, T] hidden value per token
    m1 = torch.einsum("...zkt,...kt->...zk", probs, hid)  # E[f_k | z]
    m2 = torch.einsum("...zkt,...kt->...zk", probs, hid * hid)  # E[f_k^2 | z]
    second = torch.einsum("...z,...zk,...zl->...kl", pz, m1, m1)
    second = (
        second
        - torch.diag_embed(torch.einsum("...z,...zk->...k", pz, m1 * m1))
        + torch.diag_embed(torch.einsum("...z,...zk->...k", pz, m2))
    )
    mean = torch.einsum("...z,...zk->...k", pz, m1)
    cov = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    energy = 0.5 * torch.einsum("...k,...kl,...l->...", s, cov, s)
    (grad,) = torch.autograd.grad(energy.sum(), w)
    return grad


def enumerate_support(probs: Tensor, p1) -> tuple[Tensor, Tensor]:
    """The joint support of (z, tokens): ``(tokens [U, K] long, pi [..., U])``, U = 2 T^K.

    Row u = (z, t_1..t_K) in lexicographic order (z first), ``pi_u = p_z prod_k probs[z, k, t_k]``.
    """
    k, t = probs.shape[-2], probs.shape[-1]
    n_support = 2 * t**k
    if n_support > MAX_ENUMERATED_SUPPORT:
        raise ValueError(
            f"probs: the joint support 2*T^K = {n_support} exceeds {MAX_ENUMERATED_SUPPORT}; "
            f"use velocity_autograd (per-token moments) for K={k}, T={t}"
        )
    p1 = torch.as_tensor(p1, dtype=probs.dtype)
    combos = torch.tensor(list(itertools.product(range(t), repeat=k)), dtype=torch.long)  # [T^K, K]
    per_class = []
    for z, pz in ((0, 1 - p1), (1, p1)):
        pk = probs[..., z, :, :]  # [..., K, T]
        picked = pk[..., torch.arange(k), combos]  # [..., T^K, K]
        per_class.append((pz.unsqueeze(-1) if pz.dim() else pz) * picked.prod(-1))
    tokens = torch.cat([combos, combos], dim=0)
    return tokens, torch.cat(per_class, dim=-1)


def velocity_autograd_enumerated(
    emb: Tensor, probs: Tensor, p1, w: Tensor, s: Tensor, activation: str | Activation = "relu"
) -> Tensor:
    """``grad_w 1/2 tr C_alpha[f_2]`` on the enumerated joint support, uniform alpha.

    alpha over support points is ``pi_u pi_v`` (two independent draws), the second view
    equals the first (no augmentation term), ``f_2 = s^T f`` with s held fixed; C_alpha is
    :func:`nlcl_utils.engine.alpha_cl.contrastive_covariance`. Equals ``2 * closed_form(...).velocity``
    (module docstring). Only for small K and T (support 2 T^K, at most
    ``MAX_ENUMERATED_SUPPORT``). Returns [..., K, d].
    """
    p1 = _check_model(emb, probs, p1, w)
    act = _activation(activation)
    tokens, pi = enumerate_support(probs, p1)  # [U, K], [..., U]
    k = emb.shape[-3]
    w = w.detach().clone().requires_grad_(True)
    hid = act(torch.einsum("...ktd,...kd->...kt", emb, w))  # [..., K, T]
    f = hid[..., torch.arange(k), tokens]  # [..., U, K]
    f2 = torch.einsum("...uk,...k->...u", f, s).unsqueeze(-1)  # [..., U, 1]
    alpha = pi.unsqueeze(-1) * pi.unsqueeze(-2)
    energy = 0.5 * torch.diagonal(alpha_cl.contrastive_covariance(f2, f2, alpha), dim1=-2, dim2=-1).sum(-1)
    (grad,) = torch.autograd.grad(energy.sum(), w)
    return grad


def relative_error(a: Tensor, b: Tensor) -> Tensor:
    """``|a - b| / |b|`` with norms over the last two dims ([K, d]), shape [...]."""
    return (a - b).flatten(-2).norm(dim=-1) / b.flatten(-2).norm(dim=-1)


# ----------------------------------------------------------------------------- random configurations
def random_model(
    n: int,
    K: int,
    T: int,
    d: int,
    p1: float = 0.5,
    embedding: str = "gaussian",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """n random two-class models and filters, float64: ``(emb [n,K,T,d], probs [n,2,K,T], w [n,K,d])``.

    ``embedding``: "gaussian" (i.i.d. N(0, 1/d) entries) or "onehot" (needs T <= d; token t is
    e_t). Token distributions are uniform draws from the simplex (Dirichlet(1)), independently
    per class and RF, so every RF carries some global information; use :func:`remove_information` to make
    RFs uninformative. Filters are N(0, 1/d). ``p1`` is only validated here (the models
    do not depend on it).
    """
    for name, v in (("n", n), ("K", K), ("T", T), ("d", d)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    if embedding not in ("gaussian", "onehot"):
        raise ValueError(f"embedding: allowed 'gaussian', 'onehot'; got {embedding!r}")
    if embedding == "onehot" and T > d:
        raise ValueError(f"d: one-hot embeddings need d >= T = {T}, got d = {d}")
    if not 0 < p1 < 1:
        raise ValueError(f"p1: must lie strictly between 0 and 1, got {p1}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    f64 = torch.float64
    if embedding == "gaussian":
        emb = torch.randn(n, K, T, d, generator=g, dtype=f64) / math.sqrt(d)
    else:
        emb = torch.eye(d, dtype=f64)[:T].expand(n, K, T, d).clone()
    expo = -torch.log(torch.rand(n, 2, K, T, generator=g, dtype=f64).clamp_min(1e-300))  # Exp(1) draws
    probs = expo / expo.sum(-1, keepdim=True)  # normalized Exp(1) = Dirichlet(1)
    w = torch.randn(n, K, d, generator=g, dtype=f64) / math.sqrt(d)
    return emb, probs, w


def remove_information(probs: Tensor, p1, informative: Tensor) -> Tensor:
    """Make the RFs where ``informative`` is False carry no global information.

    probs [..., 2, K, T]; informative: bool [K] or [..., K]. An uninformative RF gets the
    class-averaged distribution ``p0 probs[0] + p1 probs[1]`` for both classes, so its
    marginal token frequencies are unchanged (only the information about z is removed).
    """
    if informative.dtype != torch.bool or informative.shape[-1] != probs.shape[-2]:
        raise ValueError(f"informative: expected a bool tensor [..., K] with K = {probs.shape[-2]}")
    p1 = torch.as_tensor(p1, dtype=probs.dtype)
    marginal = (1 - p1) * probs[..., 0, :, :] + p1 * probs[..., 1, :, :]  # [..., K, T]
    mixed = marginal.unsqueeze(-3).expand_as(probs)
    return torch.where(informative.unsqueeze(-1).unsqueeze(-3), probs, mixed)


# ----------------------------------------------------------------------------- the closed-form flow
def normalized_flow(
    emb: Tensor, probs: Tensor, p1, w0: Tensor, steps: int, lr: float, activation: str | Activation = "relu"
) -> Tensor:
    """Euler steps of the unit-norm low-layer flow ``w_k' = (I - w_k w_k^T) velocity_k``.

    ``velocity`` is :func:`closed_form`'s, i.e. the top layer is assumed to track the top
    eigenvector s of ``V[f]`` at every step (it is recomputed from the current filters).
    Each step is ``w_k <- normalize(w_k + lr * (I - w_k w_k^T) velocity_k)``; w0 is normalized
    first. Returns the final filters [..., K, d].
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr: expected a finite number > 0, got {lr!r}")
    _check_model(emb, probs, p1, w0)
    w = w0 / w0.norm(dim=-1, keepdim=True)
    for _ in range(steps):
        v = closed_form(emb, probs, p1, w, activation).velocity
        v = v - (v * w).sum(-1, keepdim=True) * w
        w = w + lr * v
        w = w / w.norm(dim=-1, keepdim=True)
    return w


INFORMATIVE_TOKENS = (0, 2)
MATCHED_TOKENS = (1, 3)


def matched_pair_model(K: int, T: int = 6, c: float = 0.2) -> tuple[Tensor, Tensor]:
    """A frequency-matched two-class token model: ``(emb [K, T, T] one-hot, probs [2, K, T])``.

    At every RF, tokens 0 and 2 (:data:`INFORMATIVE_TOKENS`) carry the class: token 0 has
    probability 2c under z = 1 and 0 under z = 0, token 2 the reverse; tokens 1 and 3
    (:data:`MATCHED_TOKENS`) have probability c under both classes; the other T - 4 tokens
    share 1 - 4c equally. With p1 = 1/2 all four tokens have marginal frequency c, so the
    marginal covariance ``V[x~_k]`` cannot tell informative from matched tokens: only the
    ``delta_k Delta_k Delta_k^T`` term can. Use :func:`remove_information` to switch RFs off.
    """
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K: expected a positive integer, got {K!r}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 5:
        raise ValueError(f"T: expected an integer >= 5 (4 paired tokens + background), got {T!r}")
    if not 0 < c < 0.25:
        raise ValueError(f"c: the paired token frequency must lie in (0, 0.25), got {c}")
    probs = torch.full((2, K, T), (1 - 4 * c) / (T - 4), dtype=torch.float64)
    probs[:, :, list(MATCHED_TOKENS)] = c
    probs[1, :, INFORMATIVE_TOKENS[0]], probs[0, :, INFORMATIVE_TOKENS[0]] = 2 * c, 0.0
    probs[0, :, INFORMATIVE_TOKENS[1]], probs[1, :, INFORMATIVE_TOKENS[1]] = 2 * c, 0.0
    emb = torch.eye(T, dtype=torch.float64).expand(K, T, T).clone()
    return emb, probs


def velocity_autograd_views(
    emb: Tensor, probs: Tensor, p1, w: Tensor, s: Tensor, repeat: float, activation: str | Activation = "relu"
) -> Tensor:
    """``grad_w 1/4 tr C_alpha[f_2]`` with the augmentation term, on the enumerated view pairs.

    Support: (z, first-view tokens, second-view tokens), ``pi = p_z prod_k q_k(t_k | z)
    (repeat 1[t'_k = t_k] + (1 - repeat) q_k(t'_k | z))``. With uniform alpha over independent
    samples, ``C_alpha[f_2] = sum_uv pi_u pi_v (f_u - f_v)^2 - sum_u pi_u (f_u - f'_u)^2``, written
    out as these two sums (nothing from the closed form). ``f_2 = s^T f`` with s fixed. Equals
    ``closed_form(..., repeat=repeat).velocity`` (module docstring). Support 2 T^(2K): small K, T
    only. Returns [..., K, d].
    """
    p1 = _check_model(emb, probs, p1, w)
    repeat = _check_repeat(repeat)
    act = _activation(activation)
    k, t = probs.shape[-2], probs.shape[-1]
    if 2 * t ** (2 * k) > MAX_ENUMERATED_SUPPORT:
        raise ValueError(f"probs: the view-pair support 2*T^(2K) exceeds {MAX_ENUMERATED_SUPPORT} for K={k}, T={t}")
    combos = torch.tensor(list(itertools.product(range(t), repeat=k)), dtype=torch.long)  # [T^K, K]
    rfs = torch.arange(k)
    same = (combos.unsqueeze(1) == combos.unsqueeze(0)).to(probs.dtype)  # [T^K, T^K, K]
    w = w.detach().clone().requires_grad_(True)
    hid = act(torch.einsum("...ktd,...kd->...kt", emb, w))  # [..., K, T]
    f = torch.einsum("...uk,...k->...u", hid[..., rfs, combos], s)  # f_2 of every token tuple [..., T^K]
    augmentation = torch.zeros_like(f)[..., 0]  # sum_u pi_u (f_u - f'_u)^2, [...]
    pi = torch.zeros_like(f)  # marginal probability of each first-view token tuple
    gap = f.unsqueeze(-1) - f.unsqueeze(-2)  # f_u - f'_u' [..., T^K, T^K]
    for z, pz in ((0, 1 - p1), (1, p1)):
        pz = pz.unsqueeze(-1) if pz.dim() else pz
        q = probs[..., z, :, :][..., rfs, combos]  # [..., T^K, K]: q_k(t_k | z)
        first = pz * q.prod(-1)  # [..., T^K]
        second = (repeat * same + (1 - repeat) * q.unsqueeze(-3)).prod(-1)  # [..., T^K, T^K]: P(t' | t, z)
        augmentation = augmentation + (first.unsqueeze(-1) * second * gap * gap).sum((-1, -2))
        pi = pi + first
    inter = (pi.unsqueeze(-1) * pi.unsqueeze(-2) * gap * gap).sum((-1, -2))  # independent samples
    energy = 0.25 * (inter - augmentation)
    (grad,) = torch.autograd.grad(energy.sum(), w)
    return grad
