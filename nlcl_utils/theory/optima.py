"""Distinct optima, their match to component centres, basin sizes and coverage predictions.

Conventions. Directions are rows of ``[B, d]`` tensors (or ``[..., n, d]`` for the nodes of
batched networks); only their direction matters (rows are normalized here). Two directions
are "the same optimum" when their cosine is ``>= threshold`` (default 0.99, i.e. within
``arccos(0.99) = 8.1`` degrees). ``sign_aware=True`` compares ``|cos|`` instead: use it for a
linear activation, where ``w`` and ``-w`` are the same solution (the energy is even in ``w``).

Coverage ("brute force" over-parameterization). If an init lands on component ``l``'s
optimum with probability ``p_l`` (its basin size) and ``n`` nodes start independently, the
expected fraction of components found by at least one node is
``mean_l [1 - (1 - p_l)^n]`` (:func:`coverage_prediction`), the coupon-collector curve with
unequal probabilities (mass ``1 - sum_l p_l`` lands on no component).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

Tensor = torch.Tensor


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, (int, float)) and 0.0 < threshold <= 1.0):
        raise ValueError(f"threshold: must be a cosine in (0, 1], got {threshold!r}")


def _unit(x: Tensor, name: str) -> Tensor:
    norms = x.norm(dim=-1, keepdim=True)
    if bool((norms == 0).any()) or not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name}: every row must be finite and non-zero")
    return x / norms


@dataclass
class Clusters:
    """Result of :func:`cluster_directions`.

    labels: ``[B]`` cluster index of every row; directions: ``[K, d]`` unit mean direction of each
    cluster (members sign-aligned with the leader when sign-aware); counts: ``[K]`` members;
    ``K`` clusters ordered by decreasing count (ties: by first member).
    """

    labels: Tensor
    directions: Tensor
    counts: Tensor

    @property
    def n(self) -> int:
        return int(self.counts.numel())

    @property
    def fractions(self) -> Tensor:
        """Basin size of each cluster: ``counts / B`` ``[K]`` (float64)."""
        return self.counts.to(torch.float64) / self.counts.sum()

    def max_spread(self, w: Tensor, sign_aware: bool = False) -> float:
        """Largest angle (degrees) between a member row of ``w`` ``[B, d]`` and its cluster direction."""
        u = _unit(w.to(self.directions.dtype), "w")
        cos = (u * self.directions[self.labels]).sum(-1)
        if sign_aware:
            cos = cos.abs()
        return float(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))).max())


def cluster_directions(w: Tensor, threshold: float = 0.99, sign_aware: bool = False) -> Clusters:
    """Group the rows of ``w`` ``[B, d]`` into distinct optima (leader clustering).

    Repeatedly take the first unassigned row as a leader and give its cluster every unassigned
    row with ``cos >= threshold`` to it (``|cos|`` if ``sign_aware``). Deterministic; for tight
    groups (converged fixed points) independent of the order. The loop runs once per cluster.
    """
    _check_threshold(threshold)
    if w.dim() != 2 or w.shape[0] < 1:
        raise ValueError(f"w: expected shape [B, d] with B >= 1, got {tuple(w.shape)}")
    u = _unit(w.to(torch.float64), "w")
    cos = u @ u.T
    sim = cos.abs() if sign_aware else cos
    b = u.shape[0]
    labels = torch.full((b,), -1, dtype=torch.long)
    dirs, firsts = [], []
    k = 0
    while True:
        free = (labels < 0).nonzero().flatten()
        if free.numel() == 0:
            break
        lead = int(free[0])
        members = (labels < 0) & (sim[lead] >= threshold)
        members[lead] = True
        labels[members] = k
        signs = torch.sign(cos[lead, members]) if sign_aware else torch.ones(int(members.sum()), dtype=u.dtype)
        mean = (signs.unsqueeze(1) * u[members]).sum(0)
        dirs.append(mean / mean.norm())
        firsts.append(lead)
        k += 1
    counts = torch.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda i: (-int(counts[i]), firsts[i]))
    remap = torch.empty(k, dtype=torch.long)
    remap[torch.tensor(order)] = torch.arange(k)
    return Clusters(labels=remap[labels], directions=torch.stack(dirs)[order], counts=counts[order])


@dataclass
class Match:
    """Result of :func:`match_to_centres`: for each direction (``[K]``) the nearest centre index,
    its cosine (``|cos|`` if sign-aware) and the angle in degrees."""

    centre: Tensor
    cosine: Tensor
    angle: Tensor


def match_to_centres(directions: Tensor, centres: Tensor, sign_aware: bool = False) -> Match:
    """Nearest component centre (by angle) of every row of ``directions`` ``[K, d]``; centres ``[C, d]``."""
    if directions.dim() != 2 or centres.dim() != 2 or directions.shape[1] != centres.shape[1]:
        raise ValueError(
            "directions, centres: expected [K, d] and [C, d] with the same d, "
            f"got {tuple(directions.shape)}, {tuple(centres.shape)}"
        )
    cos = _unit(directions.to(torch.float64), "directions") @ _unit(centres.to(torch.float64), "centres").T
    if sign_aware:
        cos = cos.abs()
    best, idx = cos.max(dim=1)
    return Match(centre=idx, cosine=best, angle=torch.rad2deg(torch.arccos(best.clamp(-1.0, 1.0))))


def best_cosine_to_centres(w: Tensor, centres: Tensor, sign_aware: bool = False) -> Tensor:
    """For every centre, the best cosine over the rows (nodes) of ``w``.

    w: ``[..., n, d]`` (e.g. ``[R, n, d]``: R networks of n nodes); centres: ``[C, d]``.
    Returns ``[..., C]``. A component is *captured* by a network when this is ``>= threshold``.
    """
    if w.dim() < 2 or centres.dim() != 2 or w.shape[-1] != centres.shape[1]:
        raise ValueError(
            f"w, centres: expected [..., n, d] and [C, d] with the same d, got {tuple(w.shape)}, {tuple(centres.shape)}"
        )
    cos = _unit(w.to(torch.float64), "w") @ _unit(centres.to(torch.float64), "centres").T  # [..., n, C]
    if sign_aware:
        cos = cos.abs()
    return cos.max(dim=-2).values


def component_basins(w: Tensor, centres: Tensor, threshold: float = 0.99, sign_aware: bool = False) -> Tensor:
    """Basin size of every component: the fraction of rows of ``w`` ``[B, d]`` (converged inits)
    whose nearest centre is ``l`` with cosine ``>= threshold``. Returns ``[C]`` (sums to <= 1)."""
    _check_threshold(threshold)
    if w.dim() != 2:
        raise ValueError(f"w: expected shape [B, d], got {tuple(w.shape)}")
    m = match_to_centres(w, centres, sign_aware)
    hit = m.cosine >= threshold
    counts = torch.bincount(m.centre[hit], minlength=centres.shape[0])
    return counts.to(torch.float64) / w.shape[0]


@dataclass
class OptimaSummary:
    """Distinct optima of one setting and how they sit relative to the centres (:func:`summarize_optima`).

    clusters: the :class:`Clusters` of the converged endpoints; centre_angle: ``[C]`` angle (degrees)
    from every centre to its nearest optimum; captured: centres with an optimum within the
    clustering angle ``arccos(threshold)``; converged: endpoints used (of ``total``).
    """

    clusters: Clusters
    centre_angle: Tensor
    captured: int
    converged: int
    total: int

    @property
    def n(self) -> int:
        return self.clusters.n

    @property
    def captured_fraction(self) -> float:
        return self.captured / int(self.centre_angle.numel())


def summarize_optima(
    w: Tensor, converged: Tensor, centres: Tensor, threshold: float = 0.99, sign_aware: bool = False
) -> OptimaSummary:
    """Cluster the converged rows of ``w`` ``[B, d]`` (``converged``: ``[B]`` bool) into distinct optima
    and measure each centre's angle to its nearest optimum (``centres`` ``[C, d]``)."""
    if converged.shape != w.shape[:1] or converged.dtype != torch.bool:
        raise ValueError(f"converged: expected a bool tensor of shape [{w.shape[0]}], got {tuple(converged.shape)}")
    if not bool(converged.any()):
        raise ValueError("converged: no converged endpoint to cluster")
    cl = cluster_directions(w[converged], threshold, sign_aware)
    best = best_cosine_to_centres(cl.directions, centres, sign_aware)
    angle = torch.rad2deg(torch.arccos(best.clamp(-1.0, 1.0)))
    return OptimaSummary(cl, angle, int((best >= threshold).sum()), int(converged.sum()), int(w.shape[0]))


def equiangular_tilt(cosine: float, n_components: int) -> float:
    """Angle (degrees) between a centre and the nearest direction that gates out every other centre,
    for ``C`` centres with pairwise cosine ``cosine`` (the sigma -> 0 tilt of a single-component
    ReLU optimum, derived in docs/theory.md section 3): 0 for ``cosine <= 0``, else
    ``arccos sqrt(1 - (C - 1) c^2 / (1 + (C - 2) c))``."""
    c, k = float(cosine), int(n_components)
    if k < 2 or not (-1.0 / (k - 1) - 1e-12 <= c < 1.0):
        raise ValueError(f"cosine: must lie in [-1/(C-1), 1) for C = {k}, got {cosine!r}")
    if c <= 0:
        return 0.0
    return math.degrees(math.acos(math.sqrt(1.0 - (k - 1) * c * c / (1.0 + (k - 2) * c))))


def _check_probs(p: Tensor) -> Tensor:
    p = torch.as_tensor(p, dtype=torch.float64)
    if p.dim() != 1 or p.numel() < 1 or bool((p < 0).any()) or float(p.sum()) > 1 + 1e-12:
        raise ValueError("p: need a 1-D tensor of basin sizes, each >= 0, summing to <= 1")
    return p


def _check_widths(widths: Sequence[int]) -> Tensor:
    n = torch.as_tensor(list(widths), dtype=torch.float64)
    if n.dim() != 1 or n.numel() < 1 or bool((n < 0).any()) or bool((n != n.round()).any()):
        raise ValueError(f"widths: need a non-empty list of non-negative ints, got {widths!r}")
    return n


def coverage_prediction(p: Tensor, widths: Sequence[int]) -> Tensor:
    """Expected fraction of components captured by ``n`` independent nodes, for each ``n`` in widths.

    p: ``[C]`` basin sizes. Returns ``[len(widths)]``: ``mean_l [1 - (1 - p_l)^n]``.
    """
    p, n = _check_probs(p), _check_widths(widths)
    return (1 - (1 - p).unsqueeze(0) ** n.unsqueeze(1)).mean(1)


def coverage_variance(p: Tensor, widths: Sequence[int]) -> Tensor:
    """Variance of one network's captured fraction under the independent-node model, ``[len(widths)]``.

    With ``X_l = 1[component l captured]``, ``P(X_l = 0) = (1 - p_l)^n`` and
    ``P(X_l = 0, X_m = 0) = (1 - p_l - p_m)^n``, the variance of ``mean_l X_l`` is
    ``(1/C^2) sum_{l, m} Cov(X_l, X_m)`` with ``Cov(X_l, X_m) = P(X_l = 0, X_m = 0) - P(X_l = 0) P(X_m = 0)``
    (the diagonal uses ``P(X_l = 0)``). The standard error of a mean over R networks is
    ``sqrt(variance / R)``.
    """
    p, n = _check_probs(p), _check_widths(widths)
    c = p.numel()
    nn = n.view(-1, 1, 1)
    miss = (1 - p).view(1, -1) ** n.view(-1, 1)  # [W, C]
    both = (1 - p.view(-1, 1) - p.view(1, -1)).clamp(min=0.0).unsqueeze(0) ** nn  # [W, C, C]
    eye = torch.eye(c, dtype=torch.bool)
    both = torch.where(eye, miss.unsqueeze(-1).expand(-1, c, c), both)
    cov = both - miss.unsqueeze(2) * miss.unsqueeze(1)
    return cov.sum((1, 2)) / c**2


def all_covered_probability(p: Tensor, widths: Sequence[int]) -> Tensor:
    """Probability that ``n`` independent nodes capture *every* component, ``[len(widths)]``.

    Inclusion-exclusion over subsets S of components: ``sum_S (-1)^|S| (1 - p_S)^n`` (needs
    ``C <= 16``).
    """
    p, n = _check_probs(p), _check_widths(widths)
    c = p.numel()
    if c > 16:
        raise ValueError(f"p: inclusion-exclusion is limited to 16 components, got {c}")
    subsets = torch.tensor(list(itertools.product([0.0, 1.0], repeat=c)), dtype=torch.float64)  # [2^C, C]
    sign = (-1.0) ** subsets.sum(1)
    miss = (1 - subsets @ p).clamp(min=0.0)  # probability a node avoids every component of S
    return (sign.unsqueeze(0) * miss.unsqueeze(0) ** n.unsqueeze(1)).sum(1)


def expected_width_to_cover_all(p: Tensor, max_width: int = 100000) -> float:
    """Expected number of independent nodes until every component is captured (coupon collector
    with unequal probabilities): ``sum_{n >= 0} (1 - P(all covered by n nodes))``, summed until
    the tail is below 1e-12 or ``max_width``; ``inf`` if some ``p_l = 0``."""
    p = _check_probs(p)
    if bool((p == 0).any()):
        return math.inf
    total, n0, chunk = 0.0, 0, 256
    while n0 < max_width:
        miss = 1 - all_covered_probability(p, range(n0, n0 + chunk))
        total += float(miss.sum())
        if float(miss[-1]) < 1e-12:
            break
        n0 += chunk
    return total
