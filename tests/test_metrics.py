"""Metrics on filters whose answer is known by construction."""

import math

import pytest
import torch

from nlcl_utils.data.tokens import TokenTaskSpec, make_tasks
from nlcl_utils.engine.metrics import (
    chi_scores,
    effective_rank,
    random_span_filters,
    selective_fraction,
    token_coverage,
    token_metrics,
)

SPEC = TokenTaskSpec()


def _perfect_filters(tasks, filters=25, noise=0.0):
    """RF k's first filters are the one-hot embeddings of its plus tokens; the rest negative (cosine < 0)."""
    plus = tasks.plus_mask()
    gen = torch.Generator().manual_seed(0)
    first = -1e-3 * torch.rand(tasks.replicas, SPEC.locations, filters, SPEC.vocab, generator=gen, dtype=torch.float64)
    for r in range(tasks.replicas):
        for k in range(SPEC.locations):
            for m, tok in enumerate(torch.nonzero(plus[r, k]).flatten().tolist()):
                first[r, k, m] = 0.0
                first[r, k, m, tok] = 1.0
    return first + noise * torch.randn(first.shape, generator=gen, dtype=torch.float64)


def test_chi_perfect_specialization():
    tasks = make_tasks(SPEC, [1, 2], dtype=torch.float64)
    metrics = token_metrics(_perfect_filters(tasks), tasks)
    assert torch.allclose(metrics["chi_plus"], torch.ones(2, dtype=torch.float64))
    assert torch.allclose(metrics["chi_minus"], torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(metrics["coverage"], torch.ones(2, dtype=torch.float64))
    plus_count = tasks.plus_mask().sum((1, 2)).double()
    assert torch.allclose(metrics["selective_fraction"], plus_count / (SPEC.locations * 25))
    assert metrics["scores"].shape == (2, SPEC.locations, SPEC.vocab)


def test_chi_definition_by_hand():
    scores = torch.tensor([[[0.9, 0.1, 0.5], [0.2, 0.8, 0.4]]], dtype=torch.float64)  # [R=1, K=2, V=3]
    plus = torch.tensor([[[True, False, True], [False, True, False]]])
    chi_p, chi_m = chi_scores(scores, plus)
    assert math.isclose(chi_p.item(), ((0.9 + 0.5) / 2 + 0.8) / 2)
    assert math.isclose(chi_m.item(), (0.1 + (0.2 + 0.4) / 2) / 2)
    assert math.isclose(token_coverage(scores, plus, 0.85).item(), 1 / 3)


def test_absolute_value_for_linear():
    tasks = make_tasks(SPEC, [1], dtype=torch.float64)
    first = -_perfect_filters(tasks)
    signed = token_metrics(first, tasks)["chi_plus"].item()
    assert signed < 0.5  # the specialized filters point away from their tokens
    assert torch.allclose(token_metrics(first, tasks, absolute=True)["chi_plus"], torch.ones(1, dtype=torch.float64))


def test_uniform_filters_score_low():
    tasks = make_tasks(SPEC, [1], dtype=torch.float64)
    first = torch.ones(1, SPEC.locations, 25, SPEC.vocab, dtype=torch.float64)  # cosine 1/sqrt(V) with every token
    m = token_metrics(first, tasks)
    assert torch.allclose(m["chi_plus"], m["chi_minus"])
    assert math.isclose(m["chi_plus"].item(), 1 / math.sqrt(SPEC.vocab), rel_tol=1e-12)
    assert m["selective_fraction"].item() == 0.0 and m["coverage"].item() == 0.0


def test_effective_rank():
    parallel = torch.randn(1, 1, 1, 6, dtype=torch.float64).expand(2, 3, 5, 6) * torch.arange(1.0, 6.0).view(1, 1, 5, 1)
    assert torch.allclose(effective_rank(parallel), torch.ones(2, 3, dtype=torch.float64))
    ortho = torch.eye(6, dtype=torch.float64)[:4].expand(1, 2, 4, 6) * 3.0
    assert torch.allclose(effective_rank(ortho), torch.full((1, 2), 4.0, dtype=torch.float64))
    two = torch.eye(6, dtype=torch.float64)[[0, 0, 1, 1]].view(1, 1, 4, 6)
    assert math.isclose(effective_rank(two).item(), 2.0, rel_tol=1e-12)


def test_selective_fraction_threshold():
    emb = torch.eye(3, dtype=torch.float64).unsqueeze(0)
    first = torch.tensor([[[[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]]], dtype=torch.float64)  # cos 1 and 1/sqrt(2)
    assert selective_fraction(first, emb).item() == 0.5
    assert selective_fraction(first, emb, threshold=0.7).item() == 1.0


def test_random_span_filters_stay_in_the_plus_span():
    tasks = make_tasks(SPEC, [1, 2], dtype=torch.float64)
    w = random_span_filters(tasks, 25, torch.Generator().manual_seed(0))
    assert w.shape == (2, 10, 25, 20) and torch.allclose(w.norm(dim=-1), torch.ones(2, 10, 25, dtype=torch.float64))
    m = token_metrics(w, tasks)
    assert (m["chi_minus"] == 0).all()  # one-hot: the span of the plus tokens is orthogonal to the others
    assert ((m["chi_plus"] > 0.3) & (m["chi_plus"] < 1)).all()  # random combinations: far from one token
    again = random_span_filters(tasks, 25, torch.Generator().manual_seed(0))
    assert torch.equal(w, again)


def test_random_filter_baseline_matches_the_chance_level():
    """In-span random unit filters are selective as often as the closed-form chance level says."""
    from nlcl_utils.engine.metrics import random_filter_baseline
    from nlcl_utils.theory import two_layer_dynamics as tld

    tasks = make_tasks(SPEC, [0, 1], dtype=torch.float64)
    plus = tasks.plus_mask()
    base = random_filter_baseline(
        tasks.embeddings, plus, 25, absolute=True, draws=400, generator=torch.Generator().manual_seed(0)
    )
    chance = torch.tensor([[tld.chance_selective_fraction(int(n)) for n in row] for row in plus.sum(-1).tolist()])
    expected = chance.mean(-1).double()  # [R]
    n_filters = 400 * SPEC.locations * 25
    se = (expected * (1 - expected) / n_filters).sqrt()
    assert ((base.selective_fraction - expected).abs() <= 5 * se).all()
    assert base.draws == 400 and base.chi_plus.shape == (2,)
    # signed cosines are never above absolute ones, and half the filters point away from every token
    signed = random_filter_baseline(
        tasks.embeddings, plus, 25, absolute=False, draws=400, generator=torch.Generator().manual_seed(0)
    )
    assert (signed.chi_plus < base.chi_plus).all()
    assert torch.allclose(signed.selective_fraction, base.selective_fraction / 2, atol=5 * se.max().item())


def test_random_filter_baseline_one_token_span_and_errors():
    """A one-token span leaves only +-e_t: |cos| = 1 with that token, whatever the draw."""
    from nlcl_utils.engine.metrics import random_filter_baseline

    emb = torch.eye(4, dtype=torch.float64).unsqueeze(0)
    plus = torch.zeros(1, 2, 4, dtype=torch.bool)
    plus[0, 0, 1] = plus[0, 1, 3] = True
    base = random_filter_baseline(emb, plus, 3, absolute=True, draws=5, generator=torch.Generator().manual_seed(1))
    assert base.chi_plus.item() == 1.0 and base.selective_fraction.item() == 1.0 and base.coverage.item() == 1.0
    with pytest.raises(ValueError, match="filters"):
        random_filter_baseline(emb, plus, 0, absolute=True, draws=5, generator=torch.Generator())
    with pytest.raises(ValueError, match="plus"):
        random_filter_baseline(emb, plus.float(), 3, absolute=True, draws=5, generator=torch.Generator())
