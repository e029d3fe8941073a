"""Which tokens are learned first: per-(location, token) statistics, lock-on steps, ranks.

Token task conventions (as in :mod:`nlcl_utils.data.tokens`): ``pattern_tokens [R, G, K]``
long, the token each of the G patterns puts at each of the K locations, ``-1`` at wildcards;
a sample picks a pattern uniformly and fills each wildcard of location k from the filler
distribution ``q_k`` (``wildcard_probs``: None = uniform over the V tokens, ``[K, V]`` shared
by all replicas, or ``[R, K, V]`` per replica). Everything here is exact (no sampling).

* :func:`token_statistics` -> frequency of token a at location k, the number of patterns that
  put a at k, the mutual information (bits) between "a is at k" and the pattern id, and
  whether a is a pattern token at k (``n_patterns > 0``; chi+ tokens) -- all ``[R, K, V]``.
* :func:`matched_filler_probs` -> per-replica filler tables ``[R, K, V]`` in which chosen
  filler-only tokens are exactly as frequent at a location as chosen pattern tokens there.
* :func:`first_lock_on` -> the first snapshot step at which a token's score reaches a
  threshold (``inf`` if never).
* :func:`rankdata`, :func:`spearman` -> average ranks (ties share their mean rank) and the
  Spearman rank correlation, in torch (no scipy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

Tensor = torch.Tensor


class TokenStats(NamedTuple):
    """Per (replica, location, token) statistics, each [R, K, V].

    frequency: P(token at k = a); n_patterns: number of patterns with a at k (long);
    mutual_info: I(1[token at k = a]; pattern id) in bits; is_pattern: n_patterns > 0.
    """

    frequency: Tensor
    n_patterns: Tensor
    mutual_info: Tensor
    is_pattern: Tensor


def _check_patterns(pattern_tokens: Tensor, vocab: int) -> None:
    if not isinstance(pattern_tokens, Tensor) or pattern_tokens.dtype != torch.long or pattern_tokens.dim() != 3:
        raise ValueError("pattern_tokens: expected a long tensor [R, G, K] (-1 at wildcards)")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1:
        raise ValueError(f"vocab: expected a positive integer, got {vocab!r}")
    if ((pattern_tokens < -1) | (pattern_tokens >= vocab)).any():
        raise ValueError(f"pattern_tokens: entries must be -1 (wildcard) or a token id in [0, {vocab - 1}]")


def _filler_table(wildcard_probs, r: int, k: int, vocab: int) -> Tensor:
    """The filler distribution as float64 [R, K, V]."""
    if wildcard_probs is None:
        return torch.full((r, k, vocab), 1.0 / vocab, dtype=torch.float64)
    q = torch.as_tensor(wildcard_probs, dtype=torch.float64)
    if q.dim() == 2:
        q = q.unsqueeze(0).expand(r, k, vocab) if q.shape == (k, vocab) else q
    if q.shape != (r, k, vocab):
        raise ValueError(f"wildcard_probs: expected shape [K, V] = [{k}, {vocab}] or [R, K, V], got {tuple(q.shape)}")
    if (q < 0).any() or not torch.allclose(q.sum(-1), torch.ones((), dtype=q.dtype), atol=1e-9):
        raise ValueError("wildcard_probs: rows must be non-negative and sum to 1")
    return q


def _binary_entropy(p: Tensor) -> Tensor:
    """H(p) in bits, elementwise, with 0 log 0 = 0."""
    p = p.clamp(0.0, 1.0)
    out = torch.zeros_like(p)
    for part in (p, 1 - p):
        nz = part > 0
        out = out - torch.where(
            nz, part * torch.log2(torch.where(nz, part, torch.ones_like(part))), torch.zeros_like(part)
        )
    return out


def presence_given_pattern(pattern_tokens: Tensor, vocab: int, wildcard_probs=None) -> Tensor:
    """``P(token at k = a | pattern g)``, float64 [R, G, K, V].

    1 if pattern g puts a at k, ``q_k(a)`` if k is a wildcard of g, else 0.
    """
    _check_patterns(pattern_tokens, vocab)
    r, g, k = pattern_tokens.shape
    q = _filler_table(wildcard_probs, r, k, vocab)
    wild = pattern_tokens < 0
    onehot = torch.nn.functional.one_hot(pattern_tokens.clamp_min(0), vocab).to(torch.float64)
    return torch.where(wild.unsqueeze(-1), q.unsqueeze(1).expand(r, g, k, vocab), onehot)


def token_statistics(pattern_tokens: Tensor, vocab: int, wildcard_probs=None) -> TokenStats:
    """Exact frequency, pattern count and mutual information of every (location, token).

    pattern_tokens [R, G, K] long (-1 at wildcards); wildcard_probs None, [K, V] or [R, K, V].
    Patterns are uniform. ``mutual_info = H(mean_g p_g) - mean_g H(p_g)`` with
    ``p_g = P(a at k | g)`` (bits). Filler-only tokens have a small positive MI (their
    presence says the pattern has a wildcard at k); pattern tokens have much more.
    """
    cond = presence_given_pattern(pattern_tokens, vocab, wildcard_probs)  # [R, G, K, V]
    freq = cond.mean(1)
    mi = (_binary_entropy(freq) - _binary_entropy(cond).mean(1)).clamp_min(0.0)
    wild = pattern_tokens < 0
    onehot = torch.nn.functional.one_hot(pattern_tokens.clamp_min(0), vocab) * (~wild).unsqueeze(-1)
    n_pat = onehot.sum(1)
    return TokenStats(freq, n_pat, mi, n_pat > 0)


def matched_filler_probs(
    pattern_tokens: Tensor, vocab: int, n_matched: int = 2, floor: float = 0.25
) -> tuple[Tensor, Tensor]:
    """Per-replica filler tables ``[R, K, V]`` that frequency-match filler-only tokens.

    Returns ``(table [R, K, V] float64, pairs [R, K, n_matched, 2] long)``; ``pairs[r, k, j]``
    is ``(a_j, b_j)`` (pattern token, its frequency-matched filler-only token), ``(-1, -1)``
    for unused slots.

    At each location k, the ``n_matched`` least-used pattern tokens ``a_1..a_m`` (ties by
    token id) are each paired with a filler-only token ``b_j`` (the lowest ids among tokens no
    pattern uses at k). With ``w_k`` the fraction of patterns that leave k a wildcard, the
    table is ``q(b_j) = n_k(a_j) / (G w_k) + e`` and ``q = e`` for every other token, with
    ``e = (1 - sum_j n_k(a_j) / (G w_k)) / V``; then
    ``freq(b_j) = w_k q(b_j) = n_k(a_j)/G + w_k e = freq(a_j)`` exactly. ``floor`` is the
    smallest allowed share ``V e`` of the uniform part (so every token stays possible);
    fewer pairs are matched at a location where the full ``n_matched`` would violate it.
    Locations that are never a wildcard (``w_k = 0``) or have no filler-only token keep the
    uniform table.
    """
    _check_patterns(pattern_tokens, vocab)
    if isinstance(n_matched, bool) or not isinstance(n_matched, int) or n_matched < 1:
        raise ValueError(f"n_matched: expected a positive integer, got {n_matched!r}")
    if not 0 < floor <= 1:
        raise ValueError(f"floor: the uniform share must be in (0, 1], got {floor}")
    stats = token_statistics(pattern_tokens, vocab)
    r, g, k = pattern_tokens.shape
    w = (pattern_tokens < 0).double().mean(1)  # [R, K]
    table = torch.full((r, k, vocab), 1.0 / vocab, dtype=torch.float64)
    pairs = torch.full((r, k, n_matched, 2), -1, dtype=torch.long)
    ids = torch.arange(vocab)
    for ri in range(r):  # tiny bookkeeping over R*K locations; no tensor compute here
        for ki in range(k):
            if w[ri, ki] == 0:
                continue
            counts = stats.n_patterns[ri, ki]
            pat = ids[counts > 0]
            fill = ids[counts == 0]
            pat = pat[torch.argsort(counts[pat] * vocab + pat)]  # least used first, then id
            m = min(n_matched, len(pat), len(fill))
            while m > 0:
                boost = counts[pat[:m]].double() / (g * w[ri, ki])
                if 1 - boost.sum() >= floor:
                    break
                m -= 1
            if m == 0:
                continue
            e = (1 - boost.sum()) / vocab
            row = torch.full((vocab,), float(e), dtype=torch.float64)
            row[fill[:m]] += boost
            table[ri, ki] = row
            pairs[ri, ki, :m, 0] = pat[:m]
            pairs[ri, ki, :m, 1] = fill[:m]
    return table, pairs


def first_lock_on(scores: Tensor, steps, threshold: float = 0.9) -> Tensor:
    """First step at which ``scores >= threshold``, ``inf`` where it never happens.

    scores: [S, ...] (snapshot dim first, e.g. [S, R, K, V] best cosines); steps: [S]
    increasing step numbers of the snapshots. Returns float64 [...].
    """
    steps = torch.as_tensor(steps, dtype=torch.float64)
    if steps.dim() != 1 or scores.shape[0] != steps.shape[0]:
        raise ValueError(f"steps: expected one step per snapshot ({scores.shape[0]}), got shape {tuple(steps.shape)}")
    if (steps.diff() <= 0).any():
        raise ValueError("steps: snapshot steps must be strictly increasing")
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: a cosine threshold must be in [-1, 1], got {threshold}")
    hit = scores >= threshold
    first = hit.to(torch.uint8).argmax(0)  # first True (0 if none)
    step = steps[first]
    return torch.where(hit.any(0), step, torch.full_like(step, math.inf))


def rankdata(x: Tensor) -> Tensor:
    """Average ranks (1-based) along the last dim; ties share the mean of their ranks.

    ``inf`` values rank last (tied among themselves); NaN is rejected.
    """
    if torch.isnan(x).any():
        raise ValueError("x: NaN values cannot be ranked")
    x = x.to(torch.float64)
    n = x.shape[-1]
    order = torch.argsort(x, dim=-1, stable=True)
    xs = torch.gather(x, -1, order)
    pos = torch.arange(1, n + 1, dtype=torch.float64).expand_as(xs)
    # Tie groups: a new group starts where the sorted value changes.
    new = torch.ones_like(xs, dtype=torch.bool)
    new[..., 1:] = xs[..., 1:] != xs[..., :-1]
    group = new.long().cumsum(-1) - 1  # [.., n] group id
    n_groups = n  # upper bound
    sums = torch.zeros(*xs.shape[:-1], n_groups, dtype=torch.float64).scatter_add(-1, group, pos)
    counts = torch.zeros_like(sums).scatter_add(-1, group, torch.ones_like(pos))
    avg = torch.gather(sums / counts.clamp_min(1), -1, group)
    return torch.empty_like(avg).scatter_(-1, order, avg)


def spearman(x: Tensor, y: Tensor) -> Tensor:
    """Spearman rank correlation along the last dim (Pearson correlation of average ranks).

    x, y: same shape [..., n], n >= 2. Returns [...] (NaN where a side is constant).
    """
    if x.shape != y.shape:
        raise ValueError(f"x, y: must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[-1] < 2:
        raise ValueError("x: need at least 2 values along the last dim")
    rx, ry = rankdata(x), rankdata(y)
    rx = rx - rx.mean(-1, keepdim=True)
    ry = ry - ry.mean(-1, keepdim=True)
    return (rx * ry).sum(-1) / (rx.norm(dim=-1) * ry.norm(dim=-1))


# ----------------------------------------------------------------------------- matched pairs, censoring
def pair_filler_mask(pairs: Tensor, vocab: int) -> Tensor:
    """bool [R, K, V]: the matched filler-only tokens ``b_j`` of :func:`matched_filler_probs`'s pairs."""
    return _pair_mask(pairs, vocab, 1)


def pair_pattern_mask(pairs: Tensor, vocab: int) -> Tensor:
    """bool [R, K, V]: the pattern tokens ``a_j`` of :func:`matched_filler_probs`'s pairs."""
    return _pair_mask(pairs, vocab, 0)


def _pair_mask(pairs: Tensor, vocab: int, column: int) -> Tensor:
    if pairs.dim() != 4 or pairs.shape[-1] != 2 or pairs.dtype != torch.long:
        raise ValueError(f"pairs: expected a long tensor [R, K, n_matched, 2], got {tuple(pairs.shape)}")
    r, k, _, _ = pairs.shape
    mask = torch.zeros(r, k, vocab + 1, dtype=torch.bool)
    mask.scatter_(2, torch.where(pairs[..., column] >= 0, pairs[..., column], vocab), True)
    return mask[..., :vocab]


class PairOutcome(NamedTuple):
    """Per replica [R]: matched pairs used, and the fractions where the pattern token / the
    matched filler locks on strictly first (``inf`` = never; both never or the same snapshot =
    tie), ``preference = pattern_first - filler_first`` in [-1, 1], and the mean final-score
    difference (pattern minus filler)."""

    n_pairs: Tensor
    pattern_first: Tensor
    filler_first: Tensor
    preference: Tensor
    score_gap: Tensor


def pair_outcomes(lock: Tensor, final_scores: Tensor, pairs: Tensor) -> PairOutcome:
    """Censoring-aware comparison of each pattern token with its frequency-matched filler.

    lock, final_scores: [R, K, V]; pairs [R, K, n_matched, 2] (``-1`` = unused slot). A locked
    token beats a never-locked one (the censoring is at the last snapshot for both, so the order
    is known); two never-locked tokens are a tie. Replicas without any pair give NaN.
    """
    used = pairs[..., 0] >= 0  # [R, K, J]
    r_idx, k_idx, _ = torch.nonzero(used, as_tuple=True)
    a, b = pairs[used][:, 0], pairs[used][:, 1]
    la, lb = lock[r_idx, k_idx, a], lock[r_idx, k_idx, b]
    r = lock.shape[0]

    def per_replica(values: Tensor) -> Tensor:
        total = torch.zeros(r, dtype=torch.float64).index_add_(0, r_idx, values.to(torch.float64))
        return total / used.sum((1, 2)).to(torch.float64)

    pattern_first = per_replica(la < lb)
    filler_first = per_replica(lb < la)
    gap = per_replica(final_scores[r_idx, k_idx, a] - final_scores[r_idx, k_idx, b])
    return PairOutcome(used.sum((1, 2)), pattern_first, filler_first, pattern_first - filler_first, gap)


def kaplan_meier(times: Tensor, grid: Sequence[float]) -> Tensor:
    """Kaplan-Meier estimate of P(lock-on step > t) at each t of ``grid``, from times [n].

    ``inf`` marks a token censored at the end of training (never locked). All tokens are
    observed from step 0 and censored at the same final step, so the estimate equals the
    fraction not yet locked at t; it is computed by the product-limit formula anyway (the
    helper stays correct if censoring times ever differ). Returns float64 [len(grid)].
    """
    times = torch.as_tensor(times, dtype=torch.float64).flatten()
    if times.numel() == 0:
        raise ValueError("times: need at least one lock-on time")
    events = torch.unique(times[torch.isfinite(times)])
    surv, out, grid_t = 1.0, [], torch.as_tensor(list(grid), dtype=torch.float64)
    curve = []
    for t in events.tolist():
        at_risk = (times >= t).sum().item()
        died = (times == t).sum().item()
        surv *= 1 - died / at_risk
        curve.append((t, surv))
    for g in grid_t.tolist():
        value = 1.0
        for t, s_t in curve:
            if t <= g:
                value = s_t
            else:
                break
        out.append(value)
    return torch.tensor(out, dtype=torch.float64)
