"""Hierarchical token generator: follows docs/theory.md section 6, per-replica seeding, clear errors."""

import pytest
import torch

from nlcl_utils.data.tokens import DATA_CHUNK_STEPS, TokenSampler, TokenTaskSpec, embed, make_tasks
from nlcl_utils.seeds import replica_generator

SEEDS = [3, 11]


def _chunk(spec: TokenTaskSpec, seeds=SEEDS, batch=128):
    tasks = make_tasks(spec, seeds)
    chunk, pattern = TokenSampler(tasks, batch).draw_chunk_with_patterns()
    return tasks, chunk, pattern  # chunk [C, 2, R, N, K], pattern [C, R, N]


def _pattern_rows(tasks, pattern):
    """Pattern tokens and mask of every sample, [C, R, N, K]."""
    r = torch.arange(tasks.replicas).view(1, -1, 1)
    return tasks.pattern_tokens[r, pattern], tasks.pattern_mask[r, pattern]


def _chi_square_uniform(tokens: torch.Tensor, vocab: int) -> float:
    counts = torch.bincount(tokens.reshape(-1), minlength=vocab).double()
    expected = counts.sum() / vocab
    return float(((counts - expected) ** 2 / expected).sum())


def test_task_definition():
    spec = TokenTaskSpec()
    tasks = make_tasks(spec, SEEDS)
    r, g, k = tasks.pattern_tokens.shape
    assert (r, g, k) == (2, spec.patterns, spec.locations)
    assert tasks.subsets.shape == (2, spec.locations, spec.per_location)
    # subsets: P distinct tokens per location
    assert all(len(set(row.tolist())) == spec.per_location for row in tasks.subsets.reshape(-1, spec.per_location))
    # every pattern has exactly L non-wildcard locations, each holding a token of that location's subset
    assert (tasks.pattern_mask.sum(-1) == spec.pattern_len).all()
    assert ((tasks.pattern_tokens >= 0) == tasks.pattern_mask).all()
    for rep in range(r):
        for loc in range(k):
            used = tasks.pattern_tokens[rep, :, loc][tasks.pattern_mask[rep, :, loc]]
            assert set(used.tolist()) <= set(tasks.subsets[rep, loc].tolist())
    # plus mask = brute force "appears at location k in some pattern"
    plus = tasks.plus_mask()
    for rep in range(r):
        for loc in range(k):
            used = set(tasks.pattern_tokens[rep, :, loc][tasks.pattern_mask[rep, :, loc]].tolist())
            assert set(torch.nonzero(plus[rep, loc]).flatten().tolist()) == used
    assert torch.equal(tasks.embeddings[0], torch.eye(spec.vocab))


def test_pattern_tokens_at_their_locations_and_shared_by_views():
    spec = TokenTaskSpec()
    tasks, chunk, pattern = _chunk(spec)
    ptok, pmask = _pattern_rows(tasks, pattern)
    view1, view2 = chunk[:, 0], chunk[:, 1]
    assert chunk.shape == (DATA_CHUNK_STEPS, 2, 2, 128, spec.locations)
    assert torch.equal(view1[pmask], ptok[pmask])
    assert torch.equal(view2[pmask], ptok[pmask])
    # default: every wildcard re-drawn independently -> the views agree there only by chance (1/V)
    agree = (view1 == view2)[~pmask].double().mean().item()
    assert abs(agree - 1 / spec.vocab) < 0.01


def test_wildcards_uniform_over_vocab():
    spec = TokenTaskSpec()
    tasks, chunk, pattern = _chunk(spec)
    _, pmask = _pattern_rows(tasks, pattern)
    for view in (0, 1):
        wild = chunk[:, view][~pmask]  # 64000 draws
        # chi-square with V-1 = 19 dof: P(chi2 > 60) < 1e-5 under the uniform law
        assert _chi_square_uniform(wild, spec.vocab) < 60
    # and a deliberately wrong law is rejected by the same statistic (the test can fail)
    skewed = torch.cat([wild, torch.zeros(2000, dtype=torch.long)])
    assert _chi_square_uniform(skewed, spec.vocab) > 60


def test_partial_redraw_keeps_the_other_wildcards():
    spec = TokenTaskSpec(redraw=2)
    tasks, chunk, pattern = _chunk(spec)
    _, pmask = _pattern_rows(tasks, pattern)
    differ = ((chunk[:, 0] != chunk[:, 1]) & ~pmask).sum(-1)  # [C, R, N]
    assert differ.max().item() <= 2
    assert abs(differ.double().mean().item() - 2 * (1 - 1 / spec.vocab)) < 0.03
    none = TokenTaskSpec(redraw=0)
    tasks, chunk, _ = _chunk(none)
    assert torch.equal(chunk[:, 0], chunk[:, 1])


def test_wildcard_skew_table():
    k, v = 10, 20
    table = torch.full((k, v), 0.5 / (v - 1))
    table[:, 0] = 0.5  # token 0 fills half of all wildcards
    table[3] = torch.full((v,), 1.0 / v)  # location 3 stays uniform
    spec = TokenTaskSpec(wildcard_probs=tuple(tuple(row.tolist()) for row in table))
    tasks, chunk, pattern = _chunk(spec)
    _, pmask = _pattern_rows(tasks, pattern)
    view = chunk[:, 0]
    wild_not3 = view[..., [0, 1, 2, 4, 5, 6, 7, 8, 9]][~pmask[..., [0, 1, 2, 4, 5, 6, 7, 8, 9]]]
    assert abs((wild_not3 == 0).double().mean().item() - 0.5) < 0.01
    assert _chi_square_uniform(view[..., 3][~pmask[..., 3]], v) < 60


def test_random_embeddings_and_magnitudes():
    mags = tuple(1.0 + 0.5 * i for i in range(20))
    spec = TokenTaskSpec(embedding="random", embed_dim=8, token_magnitudes=mags)
    tasks = make_tasks(spec, SEEDS, dtype=torch.float64)
    assert tasks.embeddings.shape == (2, 20, 8)
    assert torch.allclose(tasks.embeddings.norm(dim=-1), torch.tensor(mags, dtype=torch.float64).expand(2, 20))
    tok = torch.randint(20, (2, 5, 10))
    x = embed(tok, tasks.embeddings)
    assert torch.equal(x[1, 2, 3], tasks.embeddings[1, tok[1, 2, 3]])


def test_batching_never_changes_a_seed():
    spec = TokenTaskSpec(redraw=3)
    alone = make_tasks(spec, [11])
    batched = make_tasks(spec, [5, 11, 2])
    for name in ("subsets", "pattern_tokens", "pattern_mask", "embeddings"):
        assert torch.equal(getattr(alone, name)[0], getattr(batched, name)[1])
    s_alone, s_batched = TokenSampler(alone, 64), TokenSampler(batched, 64)
    for _ in range(DATA_CHUNK_STEPS + 3):  # crosses a chunk boundary
        a1, a2 = s_alone()
        b1, b2 = s_batched()
        assert torch.equal(a1[0], b1[1]) and torch.equal(a2[0], b2[1])
    # purposes give unrelated streams; the same seed and purpose the same stream
    draw = lambda s, p: torch.rand(4, generator=replica_generator(s, p))
    assert torch.equal(draw(7, "data"), draw(7, "data"))
    assert not torch.equal(draw(7, "data"), draw(7, "init"))
    assert not torch.equal(draw(7, "data"), draw(8, "data"))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"per_location": 21}, "per_location"),
        ({"pattern_len": 11}, "pattern_len"),
        ({"vocab": 0}, "vocab"),
        ({"embedding": "sparse"}, "embedding"),
        ({"embedding": "onehot", "embed_dim": 5}, "embed_dim"),
        ({"redraw": 6}, "redraw"),
        ({"token_magnitudes": (1.0, -1.0)}, "token_magnitudes"),
        ({"wildcard_probs": ((1.0,),)}, "wildcard_probs"),
        ({"patterns": 2.5}, "patterns"),
    ],
)
def test_bad_spec_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TokenTaskSpec(**kwargs)


def test_bad_seeds_and_batch():
    with pytest.raises(ValueError, match="seeds"):
        make_tasks(TokenTaskSpec(), [-1])
    with pytest.raises(ValueError, match="seeds"):
        make_tasks(TokenTaskSpec(), [])
    with pytest.raises(ValueError, match="batch_size"):
        TokenSampler(make_tasks(TokenTaskSpec(), [1]), 1)
    with pytest.raises(ValueError, match="purpose"):
        replica_generator(1, "weights")


def test_per_replica_filler_tables_match_each_seed_alone():
    """wildcard_probs [R, K, V]: replica r's stream is the one its seed draws with its own table."""
    import dataclasses

    spec = TokenTaskSpec(vocab=8, locations=4, per_location=3, patterns=6, pattern_len=2)
    tasks = make_tasks(spec, [5, 6])
    gen = torch.Generator().manual_seed(0)
    table = torch.rand(2, 4, 8, generator=gen, dtype=torch.float64) ** 4
    table = table / table.sum(-1, keepdim=True)
    v1, v2 = TokenSampler(tasks, batch_size=16, wildcard_probs=table)()
    for r, seed in enumerate([5, 6]):
        alone_spec = dataclasses.replace(spec, wildcard_probs=tuple(tuple(row) for row in table[r].tolist()))
        a1, a2 = TokenSampler(make_tasks(alone_spec, [seed]), batch_size=16)()
        assert torch.equal(v1[r], a1[0]) and torch.equal(v2[r], a2[0])
    with pytest.raises(ValueError, match="wildcard_probs"):
        TokenSampler(tasks, batch_size=16, wildcard_probs=table[:1])
    with pytest.raises(ValueError, match="wildcard_probs"):
        TokenSampler(tasks, batch_size=16, wildcard_probs=table * 2)


def test_persistent_fillers_stay_and_keep_the_marginal():
    """Persistent tokens are kept by the second view; both views have the same filler distribution."""
    spec = TokenTaskSpec()
    tasks = make_tasks(spec, SEEDS)
    table = torch.full((2, spec.locations, spec.vocab), 0.5 / spec.vocab, dtype=torch.float64)
    table[:, :, 3] += 0.25
    table[:, :, 7] += 0.25
    persistent = torch.zeros(2, spec.locations, spec.vocab, dtype=torch.bool)
    persistent[:, :, 3] = True  # token 3 persistent everywhere, token 7 equally frequent but re-drawn
    sampler = TokenSampler(tasks, 256, wildcard_probs=table, persistent=persistent)
    plain = TokenSampler(tasks, 256, wildcard_probs=table)
    chunk, pattern = sampler.draw_chunk_with_patterns()
    assert torch.equal(chunk[:, 0], plain.draw_chunk()[:, 0])  # the first view is unchanged
    _, mask = _pattern_rows(tasks, pattern)
    v1, v2 = chunk[:, 0], chunk[:, 1]
    wild = ~mask
    assert torch.equal(v2[(v1 == 3) & wild], v1[(v1 == 3) & wild])  # persistent: always kept
    assert not ((v2 == 3) & (v1 != 3) & wild).any()  # never appears newly in the second view
    frac7_kept = ((v2 == 7) & (v1 == 7) & wild).sum() / ((v1 == 7) & wild).sum()
    assert frac7_kept < 0.4  # re-drawn: kept only by chance (probability 0.25 / 0.75 = 1/3)
    for token in (3, 7, 0):  # same marginal frequency in both views (binomial sd ~ 0.004)
        f1 = ((v1 == token) & wild).double().sum() / wild.sum()
        f2 = ((v2 == token) & wild).double().sum() / wild.sum()
        assert abs(f1 - f2) < 0.02 and abs(f1 - table[0, 0, token]) < 0.02


def test_persistent_errors_name_the_parameter():
    tasks = make_tasks(TokenTaskSpec(), SEEDS)
    with pytest.raises(ValueError, match="persistent"):
        TokenSampler(tasks, 8, persistent=torch.zeros(3, 10, 20, dtype=torch.bool))
    with pytest.raises(ValueError, match="persistent"):
        TokenSampler(tasks, 8, persistent=torch.ones(10, 20, dtype=torch.bool))
