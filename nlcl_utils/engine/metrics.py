"""What the trained filters of the receptive-field network have learned (``docs/theory.md`` section 6).

Shapes: filters ``first [R, K, M, d]`` (filter m of RF k), token embeddings ``[R, V, d]``,
``plus [R, K, V]`` bool (token a appears at RF k in at least one global pattern, from
:meth:`nlcl_utils.data.tokens.TokenTasks.plus_mask`).

* cosine ``[R, K, M, V]``: cosine between filter (k, m) and token a's embedding (absolute value
  when ``absolute=True``, which the paper uses for the linear activation: a linear filter's
  sign is arbitrary).
* token score ``[R, K, V]``: max over the RF's filters of the cosine.
* chi+ ``[R]``: mean score over the plus tokens of each RF, then mean over RFs; chi- ``[R]``:
  the same over the other tokens. RFs with no plus (or no other) token are left out of that
  average.
* selective fraction ``[R]``: fraction of the K*M filters whose best token cosine is
  >= ``threshold`` (0.9).
* coverage ``[R]``: fraction of the (RF, plus token) pairs whose score is >= ``threshold``.
* effective rank ``[R, K]``: of RF k's filter matrix with unit-norm rows, ``exp(H(p))`` where
  ``p`` are its singular values divided by their sum and H the Shannon entropy (Roy &
  Vetterli 2007); 1 when all filters are parallel, ``min(M, d)`` when the normalized filters
  have equal singular values.

Baseline (:func:`random_filter_baseline`): the same metrics for filters with no token
preference that still know where the patterns live: ``M`` independent unit vectors per RF,
uniform on the unit sphere of the span of that RF's pattern-token embeddings (Gaussian vectors
projected on the span, normalized), averaged over ``draws`` independent filter banks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nlcl_utils.data.tokens import TokenTasks

Tensor = torch.Tensor
SELECTIVE_THRESHOLD = 0.9
_EPS = 1e-12


def filter_token_cosines(first: Tensor, embeddings: Tensor, absolute: bool = False) -> Tensor:
    """Cosine of every filter with every token embedding, [R, K, M, V]."""
    w = first / first.norm(dim=-1, keepdim=True).clamp(min=_EPS)
    e = embeddings / embeddings.norm(dim=-1, keepdim=True).clamp(min=_EPS)
    cos = torch.einsum("rkmd,rvd->rkmv", w.to(torch.float64), e.to(torch.float64))
    return cos.abs() if absolute else cos


def token_scores(first: Tensor, embeddings: Tensor, absolute: bool = False) -> Tensor:
    """score(k, a) = max over RF k's filters of the cosine with token a, [R, K, V]."""
    return filter_token_cosines(first, embeddings, absolute).amax(dim=2)


def _masked_mean_over_rfs(scores: Tensor, mask: Tensor) -> Tensor:
    """Per RF mean of ``scores`` over the tokens in ``mask``, then mean over the RFs that have any; [R]."""
    m = mask.to(scores.dtype)
    count = m.sum(-1)  # [R, K]
    per_rf = (scores * m).sum(-1) / count.clamp(min=1)
    has = (count > 0).to(scores.dtype)
    return (per_rf * has).sum(-1) / has.sum(-1)  # NaN if no RF has such tokens


def chi_scores(scores: Tensor, plus: Tensor) -> tuple[Tensor, Tensor]:
    """(chi+ [R], chi- [R]) from token scores [R, K, V] and the plus mask [R, K, V]."""
    return _masked_mean_over_rfs(scores, plus), _masked_mean_over_rfs(scores, ~plus)


def selective_fraction(
    first: Tensor, embeddings: Tensor, absolute: bool = False, threshold: float = SELECTIVE_THRESHOLD
) -> Tensor:
    """Fraction of filters whose best token cosine is >= threshold, [R]."""
    return _selective(filter_token_cosines(first, embeddings, absolute), threshold)


def _selective(cosines: Tensor, threshold: float) -> Tensor:
    best = cosines.amax(dim=-1)  # [R, K, M]
    return (best >= threshold).to(torch.float64).mean((1, 2))


def token_coverage(scores: Tensor, plus: Tensor, threshold: float = SELECTIVE_THRESHOLD) -> Tensor:
    """Fraction of (RF, plus-token) pairs with score >= threshold, [R]."""
    hit = (scores >= threshold) & plus
    return hit.sum((1, 2)).to(torch.float64) / plus.sum((1, 2)).clamp(min=1).to(torch.float64)


def effective_rank(first: Tensor) -> Tensor:
    """exp(entropy of normalized singular values) of each RF's unit-row filter matrix, [R, K]."""
    w = first.to(torch.float64)
    w = w / w.norm(dim=-1, keepdim=True).clamp(min=_EPS)
    sv = torch.linalg.svdvals(w)  # [R, K, min(M, d)]
    p = sv / sv.sum(-1, keepdim=True).clamp(min=_EPS)
    entropy = -(p * torch.log(p.clamp(min=1e-300))).sum(-1)
    return entropy.exp()


def token_metrics(
    first: Tensor, tasks: TokenTasks, absolute: bool = False, threshold: float = SELECTIVE_THRESHOLD
) -> dict[str, Tensor]:
    """All metrics of trained filters ``first [R, K, M, d]`` on ``tasks``.

    Returns chi_plus [R], chi_minus [R], selective_fraction [R], coverage [R],
    effective_rank [R] (mean over RFs), effective_rank_per_rf [R, K], scores [R, K, V].
    """
    cosines = filter_token_cosines(first, tasks.embeddings, absolute)  # computed once, [R, K, M, V]
    scores = cosines.amax(dim=2)
    plus = tasks.plus_mask()
    chi_plus, chi_minus = chi_scores(scores, plus)
    erank = effective_rank(first)
    return {
        "chi_plus": chi_plus,
        "chi_minus": chi_minus,
        "selective_fraction": _selective(cosines, threshold),
        "coverage": token_coverage(scores, plus, threshold),
        "effective_rank": erank.mean(-1),
        "effective_rank_per_rf": erank,
        "scores": scores,
    }


def random_span_filters(tasks: TokenTasks, filters: int, generator: torch.Generator) -> Tensor:
    """Reference filters for chi+/chi-: random unit vectors in the span of each RF's pattern tokens.

    Filter (k, m) of replica r is ``sum_a c_a e_a`` over the tokens a of RF k's plus set (the
    tokens some global pattern puts at k), ``c ~ N(0, I)`` i.i.d., normalized; float64,
    ``[R, K, filters, d]``. Their :func:`token_metrics` are what a network gets that knows
    *which* tokens matter at each RF but has not specialized its filters to single tokens (with
    one-hot embeddings chi- = 0 exactly and chi+ < 1). Draws come from ``generator`` in a fixed
    order, so the same tasks and generator state give the same filters.
    """
    plus = tasks.plus_mask().to(torch.float64)  # [R, K, V]
    r, k, v = plus.shape
    coeff = torch.randn(r, k, filters, v, generator=generator, dtype=torch.float64) * plus.unsqueeze(2)
    w = torch.einsum("rkmv,rvd->rkmd", coeff, tasks.embeddings.to(torch.float64))
    return w / w.norm(dim=-1, keepdim=True).clamp(min=_EPS)


@dataclass
class FilterBaseline:
    """Token metrics of random in-span filter banks, each [R] (mean over the draws).

    chi_plus, selective_fraction, coverage: as :func:`token_metrics`; draws: number of banks.
    """

    chi_plus: Tensor
    selective_fraction: Tensor
    coverage: Tensor
    draws: int


def random_filter_baseline(
    embeddings: Tensor,
    plus: Tensor,
    filters: int,
    *,
    absolute: bool,
    draws: int,
    generator: torch.Generator,
    threshold: float = SELECTIVE_THRESHOLD,
) -> FilterBaseline:
    """Metrics of ``filters`` random unit filters per RF, uniform in the span of the RF's plus tokens.

    embeddings [R, V, d]; plus [R, K, V] bool (:meth:`TokenTasks.plus_mask`); ``absolute`` as in
    :func:`filter_token_cosines` (True for the linear activation's metric). Each of ``draws`` banks
    draws a standard Gaussian ``g [d]`` per filter and projects it on the span (``A A^+`` with
    ``A = [e_t, t plus]``): the projection of an isotropic Gaussian is isotropic in the span, so the
    normalized filter is uniform on its unit sphere. float64; deterministic given ``generator``.
    An RF without plus tokens gets zero filters (left out of chi+, never selective).
    """
    if embeddings.dim() != 3 or plus.dim() != 3 or plus.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"embeddings, plus: expected [R, V, d] and [R, K, V], got {tuple(embeddings.shape)}, {tuple(plus.shape)}"
        )
    if plus.shape[2] != embeddings.shape[1] or plus.dtype != torch.bool:
        raise ValueError(
            f"plus: expected a bool mask [R, K, V={embeddings.shape[1]}], got {plus.dtype} {tuple(plus.shape)}"
        )
    for name, value in (("filters", filters), ("draws", draws)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    emb = embeddings.to(torch.float64)
    r, k, _ = plus.shape
    d = emb.shape[2]
    spanning = emb.transpose(1, 2).unsqueeze(1) * plus.unsqueeze(2).to(torch.float64)  # [R, K, d, V]
    projector = spanning @ torch.linalg.pinv(spanning)  # [R, K, d, d]
    totals = torch.zeros(3, r, dtype=torch.float64)
    for _ in range(draws):
        gauss = torch.randn(r, k, filters, d, generator=generator, dtype=torch.float64)
        bank = gauss @ projector.transpose(-1, -2)  # rows: projected Gaussians, [R, K, M, d]
        cosines = filter_token_cosines(bank, emb, absolute)
        scores = cosines.amax(dim=2)
        totals[0] += chi_scores(scores, plus)[0]
        totals[1] += _selective(cosines, threshold)
        totals[2] += token_coverage(scores, plus, threshold)
    chi_plus, selective, coverage = totals / draws
    return FilterBaseline(chi_plus, selective, coverage, draws)
