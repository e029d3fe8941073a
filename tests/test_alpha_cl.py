"""alpha_cl against hand-computed tiny cases and autograd (float64)."""

import math

import pytest
import torch

from nlcl_utils.engine import alpha_cl

DT = torch.float64


def test_pair_distances_hand_case():
    f1 = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=DT)
    f2 = torch.tensor([[1.0, 0.0], [3.0, 2.0]], dtype=DT)
    d_pos, d_neg = alpha_cl.pair_distances(f1, f2)
    assert d_pos.tolist() == [0.5, 2.0]  # 1/2 * 1, 1/2 * 4
    assert d_neg.tolist() == [[0.0, 12.5], [12.5, 0.0]]  # 1/2 * 25


def test_infonce_and_alpha_hand_case():
    # N = 2: each row has one negative, z = (d_i - d_ij) / tau.
    f1 = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=DT)
    f2 = torch.tensor([[1.0, 0.0], [3.0, 2.0]], dtype=DT)
    tau, eps = 2.0, 1.0
    z0, z1 = (0.5 - 12.5) / tau, (2.0 - 12.5) / tau
    expected = tau * (math.log(eps + math.exp(z0)) + math.log(eps + math.exp(z1)))
    assert alpha_cl.infonce_loss(f1, f2, tau, eps).item() == pytest.approx(expected, rel=1e-14)
    alpha = alpha_cl.pairwise_importance(f1, f2, tau, eps)
    assert alpha[0, 1].item() == pytest.approx(math.exp(z0) / (eps + math.exp(z0)), rel=1e-14)
    assert alpha[1, 0].item() == pytest.approx(math.exp(z1) / (eps + math.exp(z1)), rel=1e-14)
    assert alpha[0, 0].item() == 0.0 and alpha[1, 1].item() == 0.0


def test_infonce_is_cross_entropy_for_normalized_outputs():
    gen = torch.Generator().manual_seed(1)
    f1 = torch.nn.functional.normalize(torch.randn(6, 3, generator=gen, dtype=DT), dim=-1)
    f2 = torch.nn.functional.normalize(torch.randn(6, 3, generator=gen, dtype=DT), dim=-1)
    tau = 0.3
    sim = f1 @ f1.T
    logits = sim.clone()
    logits.fill_diagonal_(-math.inf)
    positive = (f1 * f2).sum(-1)
    logits = torch.cat([positive[:, None], logits], dim=1) / tau
    ce = torch.nn.functional.cross_entropy(logits, torch.zeros(6, dtype=torch.long), reduction="sum")
    assert (alpha_cl.infonce_loss(f1, f2, tau, eps=1.0) / tau).item() == pytest.approx(ce.item(), rel=1e-12)


@pytest.mark.parametrize("tau,eps", [(0.05, 1.0), (1.0, 0.0), (3.0, 2.0)])
def test_gradient_identity_against_autograd(tau, eps):
    gen = torch.Generator().manual_seed(2)
    f1 = torch.randn(3, 9, 4, generator=gen, dtype=DT, requires_grad=True)
    f2 = torch.randn(3, 9, 4, generator=gen, dtype=DT, requires_grad=True)
    loss = alpha_cl.infonce_loss(f1, f2, tau, eps).sum()
    g_loss = torch.autograd.grad(loss, (f1, f2))
    alpha = alpha_cl.pairwise_importance(f1, f2, tau, eps)
    assert not alpha.requires_grad
    g_energy = torch.autograd.grad(alpha_cl.energy(f1, f2, alpha).sum(), (f1, f2))
    for a, b in zip(g_loss, g_energy):
        torch.testing.assert_close(a, -b, rtol=1e-10, atol=1e-12)


def test_quadratic_loss_is_minus_uniform_energy():
    gen = torch.Generator().manual_seed(3)
    f1, f2 = torch.randn(2, 7, 3, generator=gen, dtype=DT).unbind(0)
    alpha = alpha_cl.uniform_alpha(7)
    assert alpha_cl.quadratic_loss(f1, f2).item() == pytest.approx(-alpha_cl.energy(f1, f2, alpha).item(), rel=1e-12)
    f1n = torch.nn.functional.normalize(f1, dim=-1)
    f2n = torch.nn.functional.normalize(f2, dim=-1)
    sim = f1n @ f1n.T
    expected = -(f1n * f2n).sum(-1).mean() + (sim.sum() - sim.diagonal().sum()) / (7 * 6)
    assert alpha_cl.quadratic_loss(f1n, f2n).item() == pytest.approx(expected.item(), rel=1e-12)


def test_contrastive_covariance_matches_explicit_double_sum():
    gen = torch.Generator().manual_seed(4)
    n, p, q = 5, 3, 2
    a1, a2 = torch.randn(n, p, generator=gen, dtype=DT), torch.randn(n, p, generator=gen, dtype=DT)
    b1, b2 = torch.randn(n, q, generator=gen, dtype=DT), torch.randn(n, q, generator=gen, dtype=DT)
    alpha = torch.rand(n, n, generator=gen, dtype=DT)  # diagonal must be ignored
    explicit = torch.zeros(p, q, dtype=DT)
    for i in range(n):
        beta_i = sum(alpha[i, j] for j in range(n) if j != i)
        explicit -= beta_i * torch.outer(a1[i] - a2[i], b1[i] - b2[i])
        for j in range(n):
            if i != j:
                explicit += alpha[i, j] * torch.outer(a1[i] - a1[j], b1[i] - b1[j])
    torch.testing.assert_close(alpha_cl.contrastive_covariance(a1, a2, alpha, b1, b2), explicit, rtol=1e-12, atol=1e-12)


def test_energy_is_half_trace():
    gen = torch.Generator().manual_seed(5)
    f1, f2 = torch.randn(2, 4, 8, 3, generator=gen, dtype=DT).unbind(0)
    alpha = alpha_cl.pairwise_importance(f1, f2, 0.7)
    c = alpha_cl.contrastive_covariance(f1, f2, alpha)
    torch.testing.assert_close(alpha_cl.energy(f1, f2, alpha), 0.5 * c.diagonal(dim1=-2, dim2=-1).sum(-1))


def test_kernel_lemma_and_fit():
    gen = torch.Generator().manual_seed(6)
    phi = torch.rand(10, 4, generator=gen, dtype=DT)
    a = torch.randn(10, 3, generator=gen, dtype=DT)
    torch.testing.assert_close(alpha_cl.kernel_inter_term(phi @ phi.T, a), alpha_cl.kernel_local_variances(phi, a))
    # A matrix that is exactly a non-negative kernel is fitted almost exactly at its rank ...
    _, resid = alpha_cl.fit_kernel_features(phi @ phi.T, rank=4, iters=3000)
    assert resid < 1e-2
    # ... while two disjoint clusters cannot be one non-negative feature (rank 1), but are two.
    blocks = torch.block_diag(torch.ones(4, 4, dtype=DT), torch.ones(4, 4, dtype=DT))
    assert alpha_cl.fit_kernel_features(blocks, rank=1, iters=500)[1] > 0.3
    assert alpha_cl.fit_kernel_features(blocks, rank=2, iters=3000)[1] < 1e-3
    # Any non-negative alpha is a kernel with one feature per pair (the inter term ignores the diagonal).
    alpha = torch.rand(6, 6, generator=gen, dtype=DT)
    pairs = alpha_cl.pair_features(alpha)
    torch.testing.assert_close(alpha_cl.kernel_inter_term(alpha, a[:6]), alpha_cl.kernel_local_variances(pairs, a[:6]))
    with pytest.raises(ValueError, match="phi"):
        alpha_cl.kernel_local_variances(-phi, a)


def test_asymmetry():
    sym = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=DT)
    assert alpha_cl.asymmetry(sym).item() == 0.0
    assert alpha_cl.asymmetry(torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=DT)).item() == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda f: alpha_cl.infonce_loss(f, f, tau=0.0), "tau"),
        (lambda f: alpha_cl.infonce_loss(f, f, eps=-1.0), "eps"),
        (lambda f: alpha_cl.pair_distances(f, f[:2]), "f1, f2"),
        (lambda f: alpha_cl.uniform_alpha(1), "n"),
    ],
)
def test_bad_input_names_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.zeros(4, 2, dtype=DT))


def test_batched_fit_matches_single_fit_and_finds_blocks():
    gen = torch.Generator().manual_seed(3)
    phi = torch.rand(12, 3, generator=gen, dtype=torch.float64)
    kernel = phi @ phi.T
    batch = torch.stack([kernel, 2 * kernel])
    phis, resid = alpha_cl.fit_kernel_features(batch, rank=3, iters=300, seed=5)
    single, single_resid = alpha_cl.fit_kernel_features(kernel, rank=3, iters=300, seed=5)
    assert resid.shape == (2,)
    assert torch.allclose(phis[0], single, rtol=0, atol=1e-14) and abs(resid[0].item() - single_resid) < 1e-14


def test_constant_features_and_covariance_error():
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(2, 6, 3, generator=gen, dtype=torch.float64)
    uniform = alpha_cl.uniform_alpha(6).expand(2, 6, 6)
    phi = alpha_cl.constant_features(uniform)
    assert phi.shape == (2, 6, 1)
    assert alpha_cl.covariance_error(uniform, phi @ phi.transpose(-1, -2), a).max() < 1e-14
    assert torch.allclose(
        alpha_cl.covariance_error(uniform, torch.zeros_like(uniform), a), torch.ones(2, dtype=torch.float64)
    )


def _random_views(gen, n=3, v=2, d=2, correlated=False):
    values = torch.randn(n, v, d, generator=gen, dtype=torch.float64)
    marginal = torch.rand(n, v, generator=gen, dtype=torch.float64) + 0.2
    marginal = marginal / marginal.sum(-1, keepdim=True)
    joint = marginal.unsqueeze(-1) * marginal.unsqueeze(-2)
    if correlated:  # keep the marginals, move mass onto equal views
        joint = 0.5 * joint + 0.5 * torch.diag_embed(marginal)
    return values, joint


@pytest.mark.parametrize("correlated", [False, True])
def test_augmentation_terms_equal_enumerated_expectation(correlated):
    gen = torch.Generator().manual_seed(6 + correlated)
    values, joint = _random_views(gen, correlated=correlated)
    alpha = torch.rand(3, 3, generator=gen, dtype=torch.float64)  # asymmetric on purpose
    terms = alpha_cl.augmentation_terms(alpha, *alpha_cl.view_moments(values, joint))
    exact = alpha_cl.enumerated_view_average(alpha, values, joint, chunk=7)
    assert (terms.total - exact).abs().max() < 1e-12
    assert terms.asymmetry.abs().max() > 1e-3
    assert (terms.cross_view.abs().max() > 1e-3) == correlated


def test_augmentation_terms_symmetric_independent_keep_only_shared():
    gen = torch.Generator().manual_seed(8)
    values, joint = _random_views(gen)
    alpha = torch.rand(3, 3, generator=gen, dtype=torch.float64)
    terms = alpha_cl.augmentation_terms(alpha + alpha.T, *alpha_cl.view_moments(values, joint))
    assert terms.asymmetry.abs().max() < 1e-15 and terms.cross_view.abs().max() < 1e-15


def test_view_distribution_checks():
    values = torch.zeros(2, 2, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="joint"):
        alpha_cl.view_moments(values, torch.full((2, 2, 2), 0.3, dtype=torch.float64))
    skew = torch.tensor([[0.5, 0.5], [0.0, 0.0]], dtype=torch.float64).expand(2, 2, 2)
    with pytest.raises(ValueError, match="same marginal"):
        alpha_cl.view_moments(values, skew)
    with pytest.raises(ValueError, match="rank"):
        alpha_cl.fit_kernel_features(torch.eye(3, dtype=torch.float64), rank=0)


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf, math.nan, 1e-320])
def test_a_temperature_without_a_finite_inverse_is_refused_by_name(tau):
    f = torch.randn(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="^tau: must be a finite number > 0 whose inverse is finite"):
        alpha_cl.infonce_loss(f, f, tau)
    with pytest.raises(ValueError, match="^tau:"):
        alpha_cl.pairwise_importance(f, f, tau)
