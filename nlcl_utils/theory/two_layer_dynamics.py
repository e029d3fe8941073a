"""Why a linear two-layer network cannot specialize: rotation symmetry and population dynamics.

Setting: the receptive-field (RF) network of ``docs/theory.md`` sections 4 and 6 on token data.
RF k has M filters, the rows of ``W_k = first[:, k]`` (``first [R, K, M, d]``); hidden unit
``(k, m)`` is ``h(w_km^T x_k)``; the top layer ``top [R, out, K*M]`` (column ``k*M + m`` reads
hidden unit (k, m)) gives ``f = sum_k V_k h(W_k x_k)`` with ``V_k = top[:, :, k*M:(k+1)*M]``
``[out, M]``. Replicas (seeds, inits, activations) are the leading dim R everywhere.

**Homogeneous activations, batched.** ``h(u) = slope * u + (1 - slope) * relu(u)`` with a
per-replica ``slope [R]``: 1 is linear, 0 is ReLU, in between LeakyReLU (same function as
:func:`nlcl_utils.engine.activations.get_activation`). One batch can hold linear and ReLU replicas.

1. Rotation symmetry (:func:`rotate_filters`, :func:`rotation_loss_change`, :func:`rotation_output_change`)
-----------------------------------------------------------------------------------------------------
Replace ``W_k`` by ``Q W_k`` with ``Q`` orthogonal ``[M, M]`` (it mixes the M filters of RF k).
The pre-activations become ``z_k -> Q z_k``. For linear h the hidden vector becomes ``Q h_k``;
mean-only BN subtracts ``E[Q h_k] = Q E[h_k]`` (a linear map commutes with the mean), so the
centred hidden vector also becomes ``Q (h_k - E h_k)``. The top layer sees ``V_k' Q h_k``, which
equals ``V_k h_k`` for every input exactly when ``V_k' Q = V_k``, i.e.

    **compensation:** ``V_k' = V_k Q^T`` (the RF's top-layer columns multiplied by ``Q^T`` on
    the right: new column j is ``sum_m Q[j, m] V_k[:, m]``).

Then every output f is unchanged, hence every loss built on f (InfoNCE, quadratic, with or
without L2-normalized outputs) is unchanged; weight decay too, since ``|Q W_k|_F = |W_k|_F``
and ``|V_k Q^T|_F = |V_k|_F``. Gradients transform covariantly
(``grad_W L(QW, VQ^T) = Q grad_W L(W, V)``, ``grad_V ... = grad_V L(W, V) Q^T``), so SGD with
momentum and weight decay started from the rotated point follows the rotated trajectory
(:func:`equivariance_gap`). The symmetry breaks for ReLU (``relu(Qz) != Q relu(z)`` unless Q is
a permutation) and for full BN (per-unit standard deviations: ``diag(std(Qz))^-1 Q !=
Q diag(std(z))^-1``). Nothing in a linear (no-BN or mean-only-BN) objective therefore prefers
token-aligned filters: any rotation of a solution is an equally good solution.

2. Population dynamics (:func:`enumerate_population`, :func:`population_energy`,
:func:`integrate_flow`)
-------------------------------------------------------------------------------
Exact expectations by **enumerating** the finite two-view distribution of a token task (every
pattern and every filler of every wildcard in both views, with its probability; no sampling).
Uniform alpha in the population limit gives the energy (``-`` the population quadratic loss of
unnormalized outputs)

    E(W, V) = tr Cov(f(x), f(x')) = sum_s p_s (f1_s - m1).(f2_s - m2),

the same with population mean-only BN or without BN (a constant shift of h leaves Cov
unchanged). Hidden unit (k, m) depends on the token at k only, so E is a contraction of the
hidden tables with the token cross-covariance table (:func:`cross_covariance_table`, computed
from the enumeration). Constraints standing in for BN's scale normalization: every filter on
its unit sphere, the top layer on the unit Frobenius sphere (its optimum is rank one, the top
eigenvector of the hidden cross-covariance). :func:`integrate_flow` is Riemannian gradient
ascent (Euler step ``dt``, then retraction by normalizing; ``dt`` must stay below the
stability limit of the problem, about 0.3 for the notebook's instance: check the recorded
gradient norm). With linear h, ``grad_{w_km} E = 2 sum_{k'm'} (V^T V)_{km,k'm'} Cov(x_k, x'_k') w_k'm'``
(views exchangeable): the same matrices for every filter m of RF k, so the filters of an RF are
pushed along the same directions and end parallel (the top direction); with ReLU the matrices
become the *gated* covariances of
``x~_km = 1[w_km^T x_k > 0] x_k``, different per filter, and the filters can lock onto
different tokens. Everything is float64.

What the flow reaches: :func:`riemannian_hessian_spectrum` (upward directions within the gate
pattern), :func:`dead_token_gain` (ascent directions hidden behind closed gates, one-hot tokens)
and :func:`polish_within_gates` (Newton steps inside the gate pattern: the ReLU flow's last
stretch is too slow to integrate, see its docstring).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nlcl_utils.data.tokens import TokenTasks, TokenTaskSpec, make_tasks
from nlcl_utils.engine.models import NORM_EPS, ReceptiveFieldNet
from nlcl_utils.engine.train import build_token_experiment, train

Tensor = torch.Tensor
F64 = torch.float64

BN_MODES = ("none", "mean", "full")
SLOPES = {"linear": 1.0, "relu": 0.0}
MAX_SUPPORT = 200_000


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------


def activation_slopes(names: Sequence[str]) -> Tensor:
    """Per-replica slopes ``[R]`` float64 for activation names ('linear' -> 1, 'relu' -> 0)."""
    bad = [n for n in names if n not in SLOPES]
    if bad or not names:
        raise ValueError(f"activations: each must be one of {', '.join(SLOPES)}, got {list(names)!r}")
    return torch.tensor([SLOPES[n] for n in names], dtype=F64)


def homogeneous(u: Tensor, slope: Tensor) -> Tensor:
    """``slope * u + (1 - slope) * relu(u)``; ``slope [R]`` broadcasts over ``u [R, ...]``."""
    s = slope.to(u.dtype).view((-1,) + (1,) * (u.dim() - 1))
    return s * u + (1 - s) * torch.relu(u)


def _check_bn(bn: str) -> None:
    if bn not in BN_MODES:
        raise ValueError(f"bn: unknown {bn!r}; allowed: {', '.join(BN_MODES)}")


def _check_net(first: Tensor, top: Tensor, embeddings: Tensor, slope: Tensor | None = None) -> None:
    if first.dim() != 4:
        raise ValueError(f"first: expected shape [R, K, M, d], got {tuple(first.shape)}")
    r, k, m, d = first.shape
    if top.dim() != 3 or top.shape[0] != r or top.shape[2] != k * m:
        raise ValueError(f"top: expected shape [R={r}, out, K*M={k * m}], got {tuple(top.shape)}")
    if embeddings.dim() != 3 or embeddings.shape[0] != r or embeddings.shape[2] != d:
        raise ValueError(f"embeddings: expected shape [R={r}, V, d={d}], got {tuple(embeddings.shape)}")
    if slope is not None and tuple(slope.shape) != (r,):
        raise ValueError(f"slope: expected shape [R={r}], got {tuple(slope.shape)}")


def hidden_table(first: Tensor, embeddings: Tensor, slope: Tensor) -> Tensor:
    """Hidden value of filter (k, m) for token t, ``h(w_km . e_t)``: ``[R, K, M, V]``."""
    pre = torch.einsum("rkmd,rvd->rkmv", first, embeddings.to(first.dtype))
    return homogeneous(pre, slope)


def _gather_hidden(table: Tensor, tokens: Tensor) -> Tensor:
    """Hidden vectors ``[R, N, K, M]`` of token ids ``tokens [R, N, K]`` from ``table [R, K, M, V]``."""
    r, k, m, _ = table.shape
    src = table.permute(0, 3, 1, 2)  # [R, V, K, M]
    idx = tokens.unsqueeze(-1).expand(r, tokens.shape[1], k, m)
    return src.gather(1, idx)


# ----------------------------------------------------------------------------------------------
# 1. Rotation symmetry
# ----------------------------------------------------------------------------------------------


def random_orthogonal(batch_shape: Sequence[int], n: int, gen: torch.Generator) -> Tensor:
    """Haar-random orthogonal matrices ``[*batch_shape, n, n]`` float64 (QR of a Gaussian, signs fixed)."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n: must be an integer >= 1, got {n!r}")
    z = torch.randn(*batch_shape, n, n, generator=gen, dtype=F64)
    q, r = torch.linalg.qr(z)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def rotation_path(skew: Tensor, theta: float) -> Tensor:
    """``exp(theta * A)`` for skew-symmetric ``A [..., n, n]``: orthogonal, the identity at theta = 0."""
    if (skew + skew.transpose(-1, -2)).abs().max() > 1e-12 * max(1.0, skew.abs().max().item()):
        raise ValueError("skew: must be skew-symmetric (A^T = -A)")
    return torch.linalg.matrix_exp(theta * skew)


def rotate_filters(first: Tensor, top: Tensor, q: Tensor) -> tuple[Tensor, Tensor]:
    """``(Q_k W_k, V_k Q_k^T)`` for every RF k (see the module docstring for why ``Q^T``).

    first [R, K, M, d]; top [R, out, K*M]; q [R, K, M, M] orthogonal (use the identity for RFs
    that should stay as they are). Returns new tensors of the same shapes.
    """
    r, k, m, _ = first.shape
    if tuple(q.shape) != (r, k, m, m):
        raise ValueError(f"q: expected shape [R={r}, K={k}, M={m}, M={m}], got {tuple(q.shape)}")
    if top.dim() != 3 or top.shape[0] != r or top.shape[2] != k * m:
        raise ValueError(f"top: expected shape [R={r}, out, K*M={k * m}], got {tuple(top.shape)}")
    q = q.to(first.dtype)
    new_first = q @ first
    blocks = top.reshape(r, top.shape[1], k, m)
    new_top = torch.einsum("rokm,rkjm->rokj", blocks, q).reshape(top.shape)
    return new_first, new_top


def rf_outputs(
    tokens: Tensor,
    first: Tensor,
    top: Tensor,
    embeddings: Tensor,
    slope: Tensor,
    bn: str = "none",
    bn_eps: float = 1e-5,
) -> Tensor:
    """Unnormalized outputs ``f [R, N, out]`` of one view ``tokens [R, N, K]`` (autograd-friendly).

    bn: ``"none"``; ``"mean"`` (subtract the batch mean of every hidden unit); ``"full"``
    (also divide by ``sqrt(biased batch variance + bn_eps)``, the forward of the engine's BN).
    Statistics are this view's batch, as in the engine.
    """
    _check_bn(bn)
    _check_net(first, top, embeddings, slope)
    hidden = _gather_hidden(hidden_table(first, embeddings, slope), tokens).flatten(2)  # [R, N, K*M]
    if bn != "none":
        hidden = hidden - hidden.mean(1, keepdim=True)
        if bn == "full":
            hidden = hidden / torch.sqrt((hidden * hidden).mean(1, keepdim=True) + bn_eps)
    return hidden @ top.transpose(1, 2)


def rotation_loss_change(
    batch: tuple[Tensor, Tensor],
    first: Tensor,
    top: Tensor,
    embeddings: Tensor,
    activation: str,
    bn: str,
    q: Tensor,
    loss: str = "infonce",
    tau: float = 0.1,
) -> Tensor:
    """Relative loss change ``|L(QW, VQ^T) - L(W, V)| / |L(W, V)|`` per replica, [R].

    Every ``bn`` mode evaluates the engine's own network
    (:meth:`nlcl_utils.engine.models.ReceptiveFieldNet.reference_loss`; ``"mean"`` is its
    ``bn_scale=False``). Work in float64 for the symmetry to show at round-off.
    """
    _check_bn(bn)
    if activation not in SLOPES:
        raise ValueError(f"activation: must be one of {', '.join(SLOPES)}, got {activation!r}")
    rot_first, rot_top = rotate_filters(first, top, q)
    net = ReceptiveFieldNet(
        first.clone(),
        top.clone(),
        embeddings,
        activation=activation,
        bn=bn != "none",
        bn_scale=bn == "full",
        loss=loss,
        tau=tau,
    )
    before = net.reference_loss(batch, first, top)
    after = net.reference_loss(batch, rot_first, rot_top)
    return ((after - before).abs() / before.abs()).detach()


def rotation_output_change(
    tokens: Tensor, first: Tensor, top: Tensor, embeddings: Tensor, activation: str, bn: str, q: Tensor
) -> Tensor:
    """Relative change of the unnormalized outputs, ``|f(QW, VQ^T) - f(W, V)|_F / |f(W, V)|_F`` over a
    batch ``tokens [R, N, K]``, per replica [R] (:func:`rf_outputs`, float64 advised)."""
    if activation not in SLOPES:
        raise ValueError(f"activation: must be one of {', '.join(SLOPES)}, got {activation!r}")
    slope = activation_slopes([activation] * first.shape[0])
    before = rf_outputs(tokens, first, top, embeddings, slope, bn)
    after = rf_outputs(tokens, *rotate_filters(first, top, q), embeddings, slope, bn)
    return ((after - before).flatten(1).norm(dim=1) / before.flatten(1).norm(dim=1)).detach()


def equivariance_gap(config, seeds: Sequence[int], q: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Train from ``(W, V)`` and from ``(QW, VQ^T)`` on the same data; how far apart they end.

    config: a :class:`nlcl_utils.engine.train.TokenConfig` (use ``dtype="float64"``); q [R, K, M, M].
    Both runs use the engine (:func:`nlcl_utils.engine.train.build_token_experiment` and
    :func:`nlcl_utils.engine.train.train`), the second with its init rotated in place. Returns
    ``(gap [R], rotated_first [R, K, M, d])``: ``gap = |Q W(T) - W_rot(T)|_F / |W(T)|_F`` (0 in
    exact arithmetic when the objective is rotation invariant) and the rotated run's filters.
    """

    runs = []
    for rotate in (False, True):
        _, model, sampler = build_token_experiment(config, seeds)
        if rotate:
            new_first, new_top = rotate_filters(model.first, model.top, q)
            model.first.copy_(new_first)
            model.top.copy_(new_top)  # in place: the engine's top is a view of its own storage
        train(
            model,
            sampler,
            steps,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            progress=False,
        )
        runs.append(model.first.detach().to(F64))
    plain, rotated = runs
    expected = q.to(F64) @ plain
    gap = (expected - rotated).flatten(1).norm(dim=1) / plain.flatten(1).norm(dim=1)
    return gap, rotated


def chance_selective_fraction(n: int, threshold: float = 0.9, grid: int = 200_001) -> float:
    """Probability that a uniformly random unit vector of an n-dim space has ``|cos| >= threshold``
    with one of n orthonormal directions (the tokens spanning it).

    For ``threshold > 1/sqrt(2)`` at most one coordinate can pass, so the events are disjoint
    and the answer is ``n * P(|u_1| >= threshold)``; ``u_1`` has density proportional to
    ``(1 - t^2)^((n - 3)/2)`` on [-1, 1] (integrated numerically, Simpson, float64). n = 1 gives 1.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: must be an integer >= 1, got {n!r}")
    if not (1 / math.sqrt(2) < threshold <= 1):
        raise ValueError(f"threshold: must be in (1/sqrt(2), 1] (disjoint events), got {threshold!r}")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 3 or grid % 2 == 0:
        raise ValueError(f"grid: Simpson's rule needs an odd integer >= 3, got {grid!r}")
    if n == 1:
        return 1.0
    if n == 2:  # u_1 = cos(angle), angle uniform
        return 2 * (2 * math.acos(threshold) / math.pi)
    # substitute t = sin(phi): the density in phi is cos(phi)^(n - 2) on [-pi/2, pi/2] (smooth, Simpson-friendly)
    phi = torch.linspace(0, math.pi / 2, grid, dtype=F64)
    dens = torch.cos(phi) ** (n - 2)
    weights = torch.ones(grid, dtype=F64)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    h = (math.pi / 2) / (grid - 1)
    total = (weights * dens).sum() * h / 3
    cut = math.asin(threshold)
    tail_phi = torch.linspace(cut, math.pi / 2, grid, dtype=F64)
    tail = (weights * torch.cos(tail_phi) ** (n - 2)).sum() * ((math.pi / 2 - cut) / (grid - 1)) / 3
    return float(n * tail / total)


# ----------------------------------------------------------------------------------------------
# 2. Population dynamics on an enumerated token distribution
# ----------------------------------------------------------------------------------------------


@dataclass
class TokenPopulation:
    """The exact two-view distribution of R token tasks.

    tok1, tok2 [R, S, K] long (views of support point s); prob [R, S] float64 (sums to 1);
    embeddings [R, V, d] float64; plus [R, K, V] bool (token appears at RF k in a pattern).
    """

    tok1: Tensor
    tok2: Tensor
    prob: Tensor
    embeddings: Tensor
    plus: Tensor

    @property
    def support(self) -> int:
        return self.tok1.shape[1]


def support_size(spec: TokenTaskSpec) -> int:
    """``G * V^(2 (K - L))``: patterns times the fillers of every wildcard in both views."""
    return spec.patterns * spec.vocab ** (2 * spec.wildcards)


def enumerate_population(tasks: TokenTasks, max_support: int = MAX_SUPPORT) -> TokenPopulation:
    """Every (pattern, first-view fillers, second-view fillers) of every replica, with its probability.

    The pattern is uniform over the G patterns; every wildcard of each view is filled
    independently (uniform over the V tokens, or the spec's ``wildcard_probs`` row of that
    location). Only the default augmentation (every wildcard re-drawn) is supported. Raises
    ValueError (before any compute) if the support exceeds ``max_support``.
    """
    spec = tasks.spec
    if spec.redraw_count != spec.wildcards:
        raise ValueError(
            f"redraw: only the default (all {spec.wildcards} wildcards re-drawn) is enumerated, got {spec.redraw}"
        )
    size = support_size(spec)
    if size > max_support:
        raise ValueError(
            f"tasks: the support has G*V^(2(K-L)) = {size} points, more than max_support={max_support}; "
            "use fewer tokens, patterns or wildcards"
        )
    r, g, k = tasks.pattern_tokens.shape
    v, w = spec.vocab, spec.wildcards
    fills = torch.tensor(list(itertools.product(range(v), repeat=w)), dtype=torch.long).view(-1, w)  # [F, w]
    nf = fills.shape[0]
    # wildcard locations of every pattern, in increasing order: [R, G, w]
    order = torch.argsort(tasks.pattern_mask.to(torch.int8), dim=-1, stable=True)
    wild = order[..., :w]
    tok = tasks.pattern_tokens.unsqueeze(2).expand(r, g, nf, k).clone()
    if w:
        tok.scatter_(3, wild.unsqueeze(2).expand(r, g, nf, w), fills.view(1, 1, nf, w).expand(r, g, nf, w))
    tok1 = tok.unsqueeze(3).expand(r, g, nf, nf, k).reshape(r, -1, k)
    tok2 = tok.unsqueeze(2).expand(r, g, nf, nf, k).reshape(r, -1, k)
    if spec.wildcard_probs is None:
        pf = torch.full((r, g, nf), float(v) ** -w, dtype=F64)
    else:
        table = torch.tensor(spec.wildcard_probs, dtype=F64)  # [K, V]
        pf = table[wild.unsqueeze(2).expand(r, g, nf, w), fills.view(1, 1, nf, w).expand(r, g, nf, w)].prod(-1)
    prob = (pf.unsqueeze(3) * pf.unsqueeze(2) / g).reshape(r, -1)
    return TokenPopulation(tok1, tok2, prob, tasks.embeddings.to(F64), tasks.plus_mask())


def pair_table(pop: TokenPopulation) -> Tensor:
    """``J[k, k', t, t'] = P(x1_k = t, x2_k' = t')`` summed over the support, ``[R, K, K, V, V]`` float64."""
    r, s, k = pop.tok1.shape
    v = pop.embeddings.shape[1]
    one1 = F.one_hot(pop.tok1, v).to(F64) * pop.prob.view(r, s, 1, 1)  # [R, S, K, V]
    one2 = F.one_hot(pop.tok2, v).to(F64)
    return torch.einsum("rskt,rslu->rkltu", one1, one2)


def cross_covariance_table(pop: TokenPopulation) -> Tensor:
    """``C[k, k', t, t'] = J[k, k', t, t'] - P(x1_k = t) P(x2_k' = t')``: ``Cov(onehot(x_k), onehot(x'_k'))``,
    ``[R, K, K, V, V]``. Every population moment of the two-layer network is a contraction of it."""
    joint = pair_table(pop)
    q1 = joint.sum(-1)[:, :, 0]  # [R, K, V]: marginal of x1_k (sum over t' of any k')
    q2 = joint.sum(-2)[:, 0]  # [R, K', V]: marginal of x2_k'
    return joint - torch.einsum("rkt,rlu->rkltu", q1, q2)


def population_energy(
    first: Tensor, top: Tensor, pop: TokenPopulation, slope: Tensor, cov: Tensor | None = None
) -> Tensor:
    """``E = tr Cov(f(x), f(x'))`` over the enumerated population, [R].

    Since hidden unit (k, m) is a function of the token at k, ``h_km = H[k, m, x_k]`` with the
    table ``H = h(W E^T)``, exactly ``Cov(h_km, h'_k'm') = sum_{t,t'} H[k,m,t] C[k,k',t,t'] H[k',m',t']``
    with ``C`` from :func:`cross_covariance_table` (pass it as ``cov`` to avoid recomputing), and
    ``E = tr(V G V^T)`` with that ``G [K*M, K*M]``. Mean-only BN shifts h by a constant and
    leaves E unchanged, so this is the energy with or without it. Uniform alpha: for unnormalized
    outputs the population quadratic loss ``E[d_i^2] - E_{i != j}[d_ij^2]`` equals ``-E`` (views
    exchangeable), see :func:`population_energy_direct`.
    """
    _check_net(first, top, pop.embeddings, slope)
    cov = cross_covariance_table(pop) if cov is None else cov
    table = hidden_table(first, pop.embeddings, slope)  # [R, K, M, V]
    r, k, m, _ = table.shape
    g = torch.einsum("rkmt,rkjtu,rjnu->rkmjn", table, cov, table).reshape(r, k * m, k * m)
    return torch.einsum("rop,rpq,roq->r", top, g, top)


def population_energy_direct(
    first: Tensor, top: Tensor, pop: TokenPopulation, slope: Tensor, bn: str = "mean"
) -> Tensor:
    """Same energy as a plain sum over the support: ``sum_s p_s f1_s.f2_s - m1.m2``, [R] (slow; for checks).

    bn: ``"mean"`` (population mean-only BN: subtract each view's ``E[h]``) or ``"none"``.
    """
    if bn not in ("none", "mean"):
        raise ValueError(f"bn: population energy supports 'none' or 'mean', got {bn!r}")
    _check_net(first, top, pop.embeddings, slope)
    table = hidden_table(first, pop.embeddings, slope)
    h1 = _gather_hidden(table, pop.tok1).flatten(2)  # [R, S, K*M]
    h2 = _gather_hidden(table, pop.tok2).flatten(2)
    p = pop.prob.unsqueeze(-1)
    if bn == "mean":
        h1 = h1 - (p * h1).sum(1, keepdim=True)
        h2 = h2 - (p * h2).sum(1, keepdim=True)
    f1, f2 = h1 @ top.transpose(1, 2), h2 @ top.transpose(1, 2)
    m1, m2 = (p * f1).sum(1), (p * f2).sum(1)
    return (p * f1 * f2).sum((1, 2)) - (m1 * m2).sum(-1)


def gated_covariances(first: Tensor, pop: TokenPopulation, slope: Tensor) -> Tensor:
    """``Cov(x~_km, x~'_k'm')`` for every pair of hidden units, ``[R, K*M, K*M, d, d]`` (enumerated).

    ``x~_km = h'(w_km^T x_k) x_k`` is filter (k, m)'s gated input (x' its second view); for linear
    h every filter of RF k has the same gated input ``x_k``, hence the same matrices.
    """
    _check_net(first, first.new_zeros(first.shape[0], 1, first.shape[1] * first.shape[2]), pop.embeddings, slope)
    r, k, m, d = first.shape
    s = pop.tok1.shape[1]
    views = []
    for tok in (pop.tok1, pop.tok2):
        x = pop.embeddings.gather(1, tok.reshape(r, s * k, 1).expand(r, s * k, d)).view(r, s, k, d)
        pre = torch.einsum("rskd,rkmd->rskm", x, first)
        sl = slope.view(r, 1, 1, 1)
        gate = sl + (1 - sl) * (pre > 0).to(first.dtype)  # h'(pre), ReLU's gate 0 at the kink as autograd
        xt = (gate.unsqueeze(-1) * x.unsqueeze(3)).flatten(2, 3)  # [R, S, K*M, d]
        views.append(xt - torch.einsum("rs,rsad->rad", pop.prob, xt).unsqueeze(1))
    return torch.einsum("rs,rsad,rsbe->rabde", pop.prob, views[0], views[1])


def energy_gradient_closed_form(first: Tensor, top: Tensor, pop: TokenPopulation, slope: Tensor) -> Tensor:
    """``grad_{w_km} E = 2 sum_{k'm'} (V^T V)_{km,k'm'} Cov(x~_km, x~'_k'm') w_k'm'``, [R, K, M, d].

    Holds for homogeneous h (``h(u) = h'(u) u``) and exchangeable views; compare with autograd of
    :func:`population_energy` (the tests and notebook 02 do).
    """
    _check_net(first, top, pop.embeddings, slope)
    r, k, m, d = first.shape
    gram = top.transpose(1, 2) @ top
    cov = gated_covariances(first, pop, slope)
    return 2 * torch.einsum("rab,rabde,rbe->rad", gram, cov, first.reshape(r, k * m, d)).view(r, k, m, d)


def normalize_constraints(first: Tensor, top: Tensor) -> tuple[Tensor, Tensor]:
    """Project onto the constraint set: unit filters, unit-Frobenius top layer (new tensors)."""
    first = first / first.norm(dim=-1, keepdim=True).clamp(min=NORM_EPS)
    top = top / top.flatten(1).norm(dim=1).clamp(min=NORM_EPS).view(-1, 1, 1)
    return first, top


def riemannian_gradient(
    first: Tensor, top: Tensor, pop: TokenPopulation, slope: Tensor, cov: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Energy [R] and its gradients projected on the tangent spaces of the constraints.

    Filter (k, m): ``g - (g.w) w``; top layer: ``G - <G, V>_F V``.
    """
    w = first.detach().requires_grad_(True)
    v = top.detach().requires_grad_(True)
    energy = population_energy(w, v, pop, slope, cov)
    gw, gv = torch.autograd.grad(energy.sum(), [w, v])
    gw = gw - (gw * w).sum(-1, keepdim=True) * w
    gv = gv - (gv * v).sum((1, 2), keepdim=True) * v
    return energy.detach(), gw.detach(), gv.detach()


def population_slice(pop: TokenPopulation, index: int | Sequence[int]) -> TokenPopulation:
    """Replica ``index`` of ``pop`` as a one-replica population, or replicas ``[i, j, ...]`` in that order."""
    rows = [index] if isinstance(index, int) else list(index)
    return TokenPopulation(*(getattr(pop, f.name)[rows] for f in dataclasses.fields(pop)))


def _energy_of_raw(z: Tensor, shapes: tuple, pop: TokenPopulation, slope: Tensor, cov: Tensor) -> Tensor:
    """Energy of one replica at the raw parameters ``z = [first, top]`` (flat), constraints applied."""
    n_first = math.prod(shapes[0])
    x, y = normalize_constraints(z[:n_first].view(shapes[0]), z[n_first:].view(shapes[1]))
    return population_energy(x, y, pop, slope, cov)[0]


def riemannian_hessian(first: Tensor, top: Tensor, pop: TokenPopulation, slope: Tensor) -> Tensor:
    """The energy's Riemannian Hessian on the constraint set, per replica, [R, P, P] (float64).

    first [R, K, M, d] (unit filters), top [R, out, K*M] (unit Frobenius norm); coordinates: the
    filters then the top layer, flattened, P = K*M*d + out*K*M. It is the Hessian of
    ``E(w/|w|, v/|v|)`` in the raw coordinates projected on the tangent space (``P H P``, with P the
    per-filter and top-layer tangent projectors). It has a zero eigenvalue for every normal
    direction (K*M + 1) and for every symmetry of E (e.g. rotations of the outputs). For ReLU
    it is the Hessian within the current gate pattern (autograd's second derivative of ReLU is 0).
    """
    _check_net(first, top, pop.embeddings, slope)
    r, k, m, d = first.shape
    hessians = []
    for index in range(r):
        one = population_slice(pop, index)
        w, v = normalize_constraints(first[index : index + 1].to(F64), top[index : index + 1].to(F64))
        energy = functools.partial(
            _energy_of_raw, shapes=(w.shape, v.shape), pop=one, slope=slope[index : index + 1],
            cov=cross_covariance_table(one),
        )  # fmt: skip
        hess = torch.autograd.functional.hessian(energy, torch.cat([w.flatten(), v.flatten()]), vectorize=True)
        filters = w.view(k * m, d)
        proj_first = torch.eye(d, dtype=F64) - filters.unsqueeze(-1) * filters.unsqueeze(-2)  # [K*M, d, d]
        top_flat = v.flatten()
        proj = torch.block_diag(*proj_first, torch.eye(top_flat.numel(), dtype=F64) - torch.outer(top_flat, top_flat))
        tangent = proj @ hess @ proj
        hessians.append((tangent + tangent.T) / 2)
    return torch.stack(hessians)


def riemannian_hessian_spectrum(first: Tensor, top: Tensor, pop: TokenPopulation, slope: Tensor) -> Tensor:
    """Eigenvalues of :func:`riemannian_hessian`, per replica, [R, P] ascending.

    A positive eigenvalue is a direction in which E curves upward: a critical point with one is a
    saddle, not a local maximum.
    """
    return torch.linalg.eigvalsh(riemannian_hessian(first, top, pop, slope))


@dataclass
class DeadTokenGain:
    """:func:`dead_token_gain` per replica, each field [R].

    energy: E at the given point; energy_projected: E after moving its live filters (those with
    a positive weight) onto the non-negative orthant (negative weights set to 0, renormalized);
    gain: the largest first-order increase of E per unit step when one zero weight of a live
    filter of the projected point is made positive (0 if none would increase E); dead_filters:
    filters with no positive weight (no output, no gradient: left out, reviving one is not a
    small step).
    """

    energy: Tensor
    energy_projected: Tensor
    gain: Tensor
    dead_filters: Tensor


def _require_one_hot(pop: TokenPopulation, caller: str) -> None:
    """Raise ValueError unless the embeddings are one-hot (token t's pre-activation is weight t)."""
    eye = torch.eye(pop.embeddings.shape[1], dtype=pop.embeddings.dtype)
    if pop.embeddings.shape[1] != pop.embeddings.shape[2] or not bool((pop.embeddings == eye).all()):
        raise ValueError(f"pop: {caller} needs one-hot embeddings (pre-activation = filter weight)")


def dead_token_gain(first: Tensor, top: Tensor, pop: TokenPopulation) -> DeadTokenGain:
    """Would switching on a dead (filter, token) weight raise a ReLU network's energy? Per replica.

    One-hot embeddings only: the pre-activation of filter (k, m) on token t is its weight
    ``w_km[t]``, so a negative weight is a dead gate and E depends on it only through the filter's
    norm. Setting negative weights to 0 (and renormalizing) scales the filter's live hidden values
    up; whether E rises with them depends on the point (it does near the flow's endpoints, where
    the notebook reports the change). On the orthant ``relu(W) = W``, so the one-sided
    derivative of E along ``+e_t`` at a zero weight is the *linear* network's Riemannian gradient
    component there (the tangent projection vanishes since ``w[t] = 0``). A positive value
    means the point is not a local maximum of the ReLU energy, although the ReLU gradient (gate 0)
    cannot see it.
    """
    _check_net(first, top, pop.embeddings)
    r = first.shape[0]
    _require_one_hot(pop, "dead_token_gain")
    relu, linear = torch.zeros(r, dtype=F64), torch.ones(r, dtype=F64)
    w, v = normalize_constraints(first.to(F64), top.to(F64))
    cov = cross_covariance_table(pop)
    energy = population_energy(w, v, pop, relu, cov)
    live = (w > 0).any(-1, keepdim=True)  # [R, K, M, 1]; a filter with no positive weight stays as it is
    w_proj = torch.where(live, normalize_constraints(w.clamp(min=0), v)[0], w)
    energy_projected = population_energy(w_proj, v, pop, relu, cov)
    _, grad_linear, _ = riemannian_gradient(w_proj, v, pop, linear, cov)
    candidates = live & (w_proj == 0)
    gain = torch.where(candidates, grad_linear, torch.zeros_like(grad_linear)).clamp(min=0).flatten(1).amax(1)
    return DeadTokenGain(energy, energy_projected, gain, (~live).flatten(1).sum(1))


@dataclass
class PolishedPoint:
    """:func:`polish_within_gates` per replica.

    first [R, K, M, d]; top [R, out, K*M]; energy [R]; grad_norm [R] (Riemannian gradient, filters
    and top together); iterations: Newton iterations run (the batch stops when every replica is
    below ``tol``); gates_kept [R] bool: no weight opened or closed a gate during the polish.
    """

    first: Tensor
    top: Tensor
    energy: Tensor
    grad_norm: Tensor
    iterations: int
    gates_kept: Tensor


def polish_within_gates(
    first: Tensor,
    top: Tensor,
    pop: TokenPopulation,
    slope: Tensor,
    max_iter: int = 30,
    tol: float = 1e-13,
    rcond: float = 1e-9,
) -> PolishedPoint:
    """Finish a flow's convergence with Newton steps inside its ReLU gate pattern (float64).

    One-hot tokens only; slope 0 (ReLU) or 1 (linear) per replica. Why it is needed: a ReLU weight
    with no gradient of its own (``g[t] = 0``: a closed gate, i.e. a negative weight, or a token
    with no covariance) moves only through the filter's normalization, ``dw[t]/dt = -(g.w) w[t]``
    (``g.w``: the filter's gradient along itself), so on a filter with ``g.w > 0`` the flow takes
    it to 0 and never past it — but on a filter with a small top-layer weight ``g.w`` is tiny, and
    this decay, with the equally slow motion of such a filter's open weights, is the flow's slow
    tail. The polish first sets those weights to 0 (renormalizing the filter; filters with
    ``g.w <= 0`` are left as they are); the energy is then smooth in the open weights and the top
    layer, and Newton steps on the Riemannian Hessian restricted to them converge there. Zero
    weights are held at exactly 0: any positive step, however small, would open a gate. A weight
    that would close is clamped at 0 and reported in ``gates_kept``.

    The step is ``sum_i q_i q_i^T g / |lambda_i|`` over the Hessian's eigenpairs with
    ``|lambda_i| > rcond * max |lambda|`` (uphill in every direction; the constraints' normal
    directions and the energy's symmetries, with lambda = 0, are left alone), capped at norm 1.
    Newton converges to a nearby critical point; whether it is a maximum within the gates is
    for :func:`riemannian_hessian_spectrum` to say.
    """
    _check_net(first, top, pop.embeddings, slope)
    if not bool(((slope == 0) | (slope == 1)).all()):
        raise ValueError(f"slope: polish_within_gates supports ReLU (0) or linear (1) replicas, got {slope.tolist()}")
    _require_one_hot(pop, "polish_within_gates")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ValueError(f"max_iter: must be an integer >= 0, got {max_iter!r}")
    for name, value in (("tol", tol), ("rcond", rcond)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
    relu = (slope == 0).view(-1, 1, 1, 1)
    w, v = normalize_constraints(first.to(F64), top.to(F64))
    cov = cross_covariance_table(pop)
    w_req = w.clone().requires_grad_(True)
    (grad_raw,) = torch.autograd.grad(population_energy(w_req, v, pop, slope, cov).sum(), w_req)
    shrinking = relu & ((grad_raw * w).sum(-1, keepdim=True) > 0) & (grad_raw == 0)  # the flow takes these to 0
    w = normalize_constraints(torch.where(shrinking, torch.zeros_like(w), w), v)[0]
    movable = ~relu | (w > 0)  # [R, K, M, d]: weights Newton may move (ReLU: the open gates)
    gates_kept = torch.ones(w.shape[0], dtype=torch.bool)
    n_first = w[0].numel()
    iterations = 0
    while True:
        energy, gw, gv = riemannian_gradient(w, v, pop, slope, cov)
        grad = torch.cat([gw.flatten(1), gv.flatten(1)], 1)
        grad_norm = grad.norm(dim=1)
        active = (grad_norm > tol).nonzero().flatten().tolist()
        if not active or iterations == max_iter:
            break
        iterations += 1
        lam, vecs = torch.linalg.eigh(
            riemannian_hessian(w[active], v[active], population_slice(pop, active), slope[active])
        )
        keep = lam.abs() > rcond * lam.abs().amax(-1, keepdim=True)
        inverse = torch.where(keep, 1 / lam.abs().clamp(min=torch.finfo(F64).tiny), torch.zeros_like(lam))  # [A, P]
        step = torch.zeros_like(grad)
        step[active] = torch.einsum("apq,aq,abq,ab->ap", vecs, inverse, vecs, grad[active])
        step[:, :n_first] *= movable.flatten(1)
        step = step / step.norm(dim=1, keepdim=True).clamp(min=1.0)
        w_new = w + step[:, :n_first].view_as(w)
        closed = relu & movable & (w_new <= 0)
        gates_kept &= ~closed.flatten(1).any(1)
        movable &= ~closed
        w_new = torch.where(closed, torch.zeros_like(w_new), w_new)
        w, v = normalize_constraints(w_new, v + step[:, n_first:].view_as(v))
    return PolishedPoint(w, v, energy, grad_norm, iterations, gates_kept)


@dataclass
class FlowTrajectory:
    """Recorded states of :func:`integrate_flow`.

    steps: list of T step counts; first [T, R, K, M, d]; top [T, R, out, K*M]; energy [T, R];
    grad_norm [T, R] (norm of the Riemannian gradient, filters and top together).
    """

    steps: list[int]
    first: Tensor
    top: Tensor
    energy: Tensor
    grad_norm: Tensor


def integrate_flow(
    pop: TokenPopulation,
    first0: Tensor,
    top0: Tensor,
    slope: Tensor,
    steps: int,
    dt: float = 0.25,
    record_every: int = 10,
) -> FlowTrajectory:
    """Riemannian gradient ascent of :func:`population_energy` (Euler step ``dt``, then retraction).

    first0 [R, K, M, d], top0 [R, out, K*M] (projected onto the constraints first); slope [R].
    Records the state every ``record_every`` steps and at the end.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: must be an integer >= 1, got {steps!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt: must be a finite number > 0, got {dt!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every: must be an integer >= 1, got {record_every!r}")
    _check_net(first0, top0, pop.embeddings, slope)
    w, v = normalize_constraints(first0.to(F64), top0.to(F64))
    cov = cross_covariance_table(pop)
    rec_steps, firsts, tops, energies, norms = [], [], [], [], []
    for step in range(steps + 1):
        energy, gw, gv = riemannian_gradient(w, v, pop, slope, cov)
        if step % record_every == 0 or step == steps:
            rec_steps.append(step)
            firsts.append(w.clone())
            tops.append(v.clone())
            energies.append(energy)
            norms.append((gw.flatten(1).square().sum(1) + gv.flatten(1).square().sum(1)).sqrt())
        if step == steps:
            break
        w, v = normalize_constraints(w + dt * gw, v + dt * gv)
    return FlowTrajectory(rec_steps, torch.stack(firsts), torch.stack(tops), torch.stack(energies), torch.stack(norms))


def population_instance(
    spec: TokenTaskSpec,
    task_seed: int,
    init_seeds: Sequence[int],
    activations: Sequence[str],
    filters: int,
    out_dim: int,
) -> tuple[TokenPopulation, Tensor, Tensor, Tensor]:
    """One task, every init crossed with every activation, as one replica batch.

    Replica order: activation-major (``activations[0]`` with every init, then the next). All
    replicas share the task of ``task_seed``; replica (a, i) starts from the engine's init of
    ``init_seeds[i]`` (PyTorch default), projected on the constraints. Returns
    ``(population, first0, top0, slope [R])``.
    """
    slopes = activation_slopes(list(activations))
    init_seeds = list(init_seeds)
    if not init_seeds:
        raise ValueError("init_seeds: give at least one seed")
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"filters: must be an integer >= 1, got {filters!r}")
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
        raise ValueError(f"out_dim: must be an integer >= 1, got {out_dim!r}")
    if support_size(spec) > MAX_SUPPORT:
        raise ValueError(f"spec: support G*V^(2(K-L)) = {support_size(spec)} exceeds {MAX_SUPPORT}; use a smaller task")
    n_act = len(activations)
    tasks = make_tasks(spec, [task_seed] * (n_act * len(init_seeds)), dtype=F64)
    net = ReceptiveFieldNet.init(init_seeds * n_act, tasks.embeddings, spec.locations, filters, out_dim, dtype=F64)
    first0, top0 = normalize_constraints(net.first, net.top)
    slope = slopes.repeat_interleave(len(init_seeds))
    return enumerate_population(tasks), first0, top0, slope


def distinct_selected_tokens(cosines: Tensor, threshold: float = 0.9) -> Tensor:
    """Per RF, how many different tokens are some filter's best token with cosine >= threshold.

    cosines [..., K, M, V] (e.g. :func:`nlcl_utils.engine.metrics.filter_token_cosines`); returns [..., K].
    Parallel filters can select at most one token between them.
    """
    best, arg = cosines.max(-1)  # [..., K, M]
    hit = torch.zeros(cosines.shape, dtype=torch.bool)
    hit.scatter_(-1, arg.unsqueeze(-1), (best >= threshold).unsqueeze(-1))
    return hit.any(-2).sum(-1)
