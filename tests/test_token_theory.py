"""Exact per-RF contrastive covariances of the token task: C_alpha = 2 V_g[E(x|g)] and the filler share."""

import torch

from nlcl_utils import token_theory
from nlcl_utils.data.tokens import TokenTaskSpec, make_tasks


def test_full_redraw_covariance_equals_its_pair_definition():
    tasks = make_tasks(TokenTaskSpec(), [1, 2])
    table = torch.rand(2, 10, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    table = table / table.sum(-1, keepdim=True)
    for q in (None, table):
        cond = token_theory.rf_contrastive_covariance(tasks.pattern_tokens, 20, q, "redraw")
        pairs = token_theory.rf_contrastive_covariance_pairs(tasks.pattern_tokens, 20, q)
        assert (cond - pairs).abs().max() < 1e-15


def test_identical_views_keep_the_whole_variance_and_fillers_lose_it_under_redraw():
    tasks = make_tasks(TokenTaskSpec(), [3])
    plus = tasks.plus_mask()
    same = token_theory.rf_contrastive_covariance(tasks.pattern_tokens, 20, None, "identical")
    redraw = token_theory.rf_contrastive_covariance(tasks.pattern_tokens, 20, None, "redraw")
    # uniform fillers: a filler-only token's conditional mean is q = 1/V at every wildcard, so its
    # variance over g is (1/V)^2 w (1 - w) with w the wildcard rate -- tiny, but not zero
    share_redraw = token_theory.filler_share(redraw, plus)
    share_same = token_theory.filler_share(same, plus)
    assert (share_same > 0.2).all() and (share_redraw < share_same / 10).all()  # measured: ~0.4 vs ~0.02
    assert (redraw.diagonal(dim1=-2, dim2=-1) <= same.diagonal(dim1=-2, dim2=-1) + 1e-15).all()
