"""Exact per-RF contrastive covariances of the token task: C_alpha = 2 V_g[E(x|g)] and the filler share."""

import torch

from nlcl_utils.data.tokens import TokenTaskSpec, make_tasks
from nlcl_utils.theory import token_theory


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


def test_cross_rf_gradient_parts_sum_to_the_autograd_gradient():
    """block + cross = autograd of 1/2 tr(A C_alpha[f_1]) with population BN statistics held fixed."""
    tasks = make_tasks(TokenTaskSpec(), [1, 2], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    first = torch.randn(2, 10, 4, 20, generator=gen, dtype=torch.float64)
    top = torch.randn(2, 6, 40, generator=gen, dtype=torch.float64)
    block, cross = token_theory.cross_rf_gradient(first, top, tasks.pattern_tokens)
    _, _, _, inv_std = token_theory.hidden_alpha_covariance(first, tasks.pattern_tokens)
    w = first.clone().requires_grad_(True)
    cond = token_theory.priority.presence_given_pattern(tasks.pattern_tokens, 20)
    means = torch.einsum("rgkv,rkmv->rgkm", cond, torch.relu(w)) * inv_std.unsqueeze(1)  # std held fixed
    centred = (means - means.mean(1, keepdim=True)).reshape(2, 40, 40)
    cov = 2 * torch.einsum("rgi,rgj->rij", centred, centred) / 40
    energy = 0.5 * torch.einsum("roi,rij,roj->r", top, cov, top).sum()
    (grad,) = torch.autograd.grad(energy, w)
    assert (block + cross - grad).abs().max() < 1e-12 * grad.abs().max()
    assert cross.abs().max() > 0 and block.abs().max() > 0
    alignment = token_theory.top_alignment(top, cov.detach(), 5)
    assert ((alignment > 0) & (alignment < 1)).all()
