"""Per-(location, token) statistics, lock-on steps and rank correlation."""

import math

import pytest
import torch

from nlcl_utils.theory import priority

torch.set_num_threads(1)


def _h(p):
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def test_statistics_by_hand():
    # One location, V = 2, pattern 0 puts token 0, pattern 1 is a wildcard (uniform filler).
    pt = torch.tensor([[[0], [-1]]])
    st = priority.token_statistics(pt, 2)
    assert torch.allclose(st.frequency[0, 0], torch.tensor([0.75, 0.25], dtype=torch.float64))
    assert st.n_patterns[0, 0].tolist() == [1, 0]
    assert st.is_pattern[0, 0].tolist() == [True, False]
    # I = H(freq) - mean_g H(P(a | g)); for token 0: H(0.75) - (H(1) + H(0.5)) / 2
    assert st.mutual_info[0, 0, 0].item() == pytest.approx(_h(0.75) - 0.5, abs=1e-12)
    assert st.mutual_info[0, 0, 1].item() == pytest.approx(_h(0.25) - 0.5, abs=1e-12)


def test_statistics_against_engine_samples():
    tokens = pytest.importorskip("nlcl_utils.data.tokens")
    spec = tokens.TokenTaskSpec(vocab=8, locations=4, per_location=3, patterns=6, pattern_len=2)
    tasks = tokens.make_tasks(spec, [3, 4])
    st = priority.token_statistics(tasks.pattern_tokens, spec.vocab)
    assert torch.allclose(st.frequency.sum(-1), torch.ones(2, 4, dtype=torch.float64))
    assert torch.equal(st.is_pattern, tasks.plus_mask())
    sampler = tokens.TokenSampler(tasks, batch_size=256)
    views = torch.cat([sampler.draw_chunk()[:, 0] for _ in range(4)], 0)  # [C, R, N, K] first views
    counts = torch.nn.functional.one_hot(views, spec.vocab).double().mean((0, 2))  # [R, K, V]
    n = views.shape[0] * views.shape[2]
    assert (counts - st.frequency).abs().max() < 5 * math.sqrt(0.25 / n)


def test_matched_filler_probs_match_exactly():
    tokens = pytest.importorskip("nlcl_utils.data.tokens")
    spec = tokens.TokenTaskSpec()
    tasks = tokens.make_tasks(spec, [0, 1, 2])
    table, pairs = priority.matched_filler_probs(tasks.pattern_tokens, spec.vocab, n_matched=2)
    assert torch.allclose(table.sum(-1), torch.ones(3, spec.locations, dtype=torch.float64))
    assert (table > 0).all()
    st = priority.token_statistics(tasks.pattern_tokens, spec.vocab, table)
    used = pairs[..., 0] >= 0
    assert used.any(-1).all()  # at least one pair at every location
    r, k, _ = torch.nonzero(used, as_tuple=True)
    a, b = pairs[used][:, 0], pairs[used][:, 1]
    assert st.is_pattern[r, k, a].all() and not st.is_pattern[r, k, b].any()
    assert (st.frequency[r, k, a] - st.frequency[r, k, b]).abs().max() <= 1e-12
    # only the matched fillers are boosted: every other token keeps the common floor value
    boosted = table > table.amin(-1, keepdim=True) + 1e-15
    assert boosted.sum() == used.sum()
    # the uniform default gives clearly unequal frequencies (the control is needed)
    uni = priority.token_statistics(tasks.pattern_tokens, spec.vocab)
    assert (uni.frequency[r, k, a] / uni.frequency[r, k, b]).min() > 1.5


def test_first_lock_on():
    steps = torch.tensor([0, 10, 20, 30])
    scores = torch.tensor([[0.1, 0.95, 0.2], [0.5, 0.2, 0.3], [0.91, 0.99, 0.4], [0.2, 0.99, 0.5]])
    out = priority.first_lock_on(scores, steps, 0.9)
    assert out.tolist() == [20.0, 0.0, math.inf]
    with pytest.raises(ValueError, match="steps"):
        priority.first_lock_on(scores, torch.tensor([0, 10, 10, 30]))


def test_rankdata_and_spearman():
    x = torch.tensor([10.0, 20.0, 20.0, 30.0, math.inf, math.inf])
    assert priority.rankdata(x).tolist() == [1.0, 2.5, 2.5, 4.0, 5.5, 5.5]
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, generator=g, dtype=torch.float64)
    b = a + 0.8 * torch.randn(50, generator=g, dtype=torch.float64)
    # No ties: Spearman = 1 - 6 sum d^2 / (n (n^2 - 1)).
    d = priority.rankdata(a) - priority.rankdata(b)
    expected = 1 - 6 * (d * d).sum() / (50 * (50**2 - 1))
    assert priority.spearman(a, b).item() == pytest.approx(expected.item(), abs=1e-12)
    assert priority.spearman(a, a.exp()).item() == pytest.approx(1.0)
    assert priority.spearman(a, -a).item() == pytest.approx(-1.0)
    batched = priority.spearman(torch.stack([a, a]), torch.stack([b, -a]))
    assert batched[0].item() == pytest.approx(expected.item()) and batched[1].item() == pytest.approx(-1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="pattern_tokens"):
        priority.token_statistics(torch.tensor([[[0, 5]]]), 3)
    with pytest.raises(ValueError, match="vocab"):
        priority.token_statistics(torch.tensor([[[0]]]), 0)
    with pytest.raises(ValueError, match="wildcard_probs"):
        priority.token_statistics(torch.tensor([[[0, -1]]]), 3, torch.ones(2, 3))
    with pytest.raises(ValueError, match="n_matched"):
        priority.matched_filler_probs(torch.tensor([[[0, -1]]]), 3, n_matched=0)
    with pytest.raises(ValueError, match="NaN"):
        priority.rankdata(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="x, y"):
        priority.spearman(torch.ones(3), torch.ones(4))


def test_pair_outcomes_count_censoring_correctly():
    inf = math.inf
    lock = torch.full((1, 2, 6), inf, dtype=torch.float64)
    lock[0, 0, 0], lock[0, 0, 1] = 100.0, 200.0  # pattern 0 first
    lock[0, 0, 3] = 50.0  # filler 3 locks, pattern 2 never: filler first
    lock[0, 1, 0] = 300.0  # pattern 0 locks, filler 1 never: pattern first
    # location 1, pair (2, 3): both never -> tie
    pairs = torch.tensor([[[[0, 1], [2, 3]], [[0, 1], [2, 3]]]])
    scores = torch.zeros(1, 2, 6, dtype=torch.float64)
    scores[0, :, 0] = 1.0
    out = priority.pair_outcomes(lock, scores, pairs)
    assert out.n_pairs.tolist() == [4]
    assert out.pattern_first.tolist() == [0.5] and out.filler_first.tolist() == [0.25]
    assert out.preference.tolist() == [0.25] and out.score_gap.tolist() == [0.5]
    mask = priority.pair_filler_mask(pairs, 6)
    assert mask[0, 0].tolist() == [False, True, False, True, False, False]
    assert priority.pair_pattern_mask(pairs, 6)[0, 1].tolist() == [True, False, True, False, False, False]


def test_kaplan_meier_without_early_censoring_is_the_fraction_not_yet_locked():
    times = torch.tensor([10.0, 20.0, 20.0, math.inf, 40.0, math.inf])
    km = priority.kaplan_meier(times, [0, 10, 15, 20, 40, 100])
    expected = torch.tensor([6, 5, 5, 3, 2, 2], dtype=torch.float64) / 6
    assert torch.allclose(km, expected)
