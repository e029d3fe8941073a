"""Closed form of global modulation (docs/theory.md section 5) against autograd on exact moments."""

import pytest
import torch

from nlcl_utils.theory import global_modulation as gm

torch.set_num_threads(1)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "linear"])
@pytest.mark.parametrize("embedding", ["gaussian", "onehot"])
def test_closed_form_matches_covariance_autograd(activation, embedding):
    emb, probs, w = gm.random_model(32, 6, 4, 5, embedding=embedding, generator=_gen(1))
    p1 = torch.linspace(0.1, 0.9, 32, dtype=torch.float64)  # a different class balance per replica
    cf = gm.closed_form(emb, probs, p1, w, activation)
    ref = gm.velocity_autograd(emb, probs, p1, w, cf.s, activation)
    assert gm.relative_error(cf.velocity, ref).max() <= 1e-6


def test_closed_form_matches_alpha_cl_enumeration_times_two():
    emb, probs, w = gm.random_model(16, 4, 3, 3, generator=_gen(2))
    cf = gm.closed_form(emb, probs, 0.3, w)
    ref = gm.velocity_autograd_enumerated(emb, probs, 0.3, w, cf.s)
    # 1/2 tr C_alpha with uniform alpha over ordered pairs equals tr V[f_2]: twice E_cov.
    assert gm.relative_error(2 * cf.velocity, ref).max() <= 1e-6
    assert gm.relative_error(cf.velocity, ref).min() > 0.4  # the factor 2 is real


def test_dropping_the_delta_term_breaks_the_match():
    emb, probs, w = gm.random_model(16, 6, 4, 5, generator=_gen(3))
    cf = gm.closed_form(emb, probs, 0.5, w)
    ref = gm.velocity_autograd(emb, probs, 0.5, w, cf.s)
    no_delta = (cf.s**2).unsqueeze(-1) * torch.einsum("...kde,...ke->...kd", cf.var, w)
    assert gm.relative_error(no_delta, ref).max() > 1e-3


def test_secular_equation_matches_eigh():
    emb, probs, w = gm.random_model(64, 8, 5, 6, generator=_gen(4))
    cf = gm.closed_form(emb, probs, 0.4, w)
    cov = torch.diag_embed(cf.d) + 0.24 * cf.b.unsqueeze(-1) * cf.b.unsqueeze(-2)
    vals, vecs = torch.linalg.eigh(cov)
    assert torch.allclose(cf.lam, vals[..., -1], rtol=1e-12, atol=1e-14)
    assert torch.allclose((vecs[..., -1] * cf.s).sum(-1).abs(), torch.ones(64, dtype=torch.float64), atol=1e-10)
    # sign convention s^T b >= 0
    assert ((cf.s * cf.b).sum(-1) >= 0).all()


def test_moments_decompose_the_covariance():
    """V[x~_k] = L_k + p0 p1 Delta_k Delta_k^T against the covariance from the enumerated support."""
    emb, probs, w = gm.random_model(4, 3, 3, 3, generator=_gen(5))
    cf = gm.closed_form(emb, probs, 0.3, w)
    tokens, pi = gm.enumerate_support(probs, 0.3)
    assert torch.allclose(pi.sum(-1), torch.ones(4, dtype=torch.float64))
    gx = gm.gated_tokens(emb, w)  # [n, K, T, d]
    x = gx[:, torch.arange(3), tokens]  # [n, U, K, d]
    mean = torch.einsum("nu,nukd->nkd", pi, x)
    var = torch.einsum("nu,nukd,nuke->nkde", pi, x, x) - torch.einsum("nkd,nke->nkde", mean, mean)
    assert torch.allclose(var, cf.var, atol=1e-13)


def test_delta_nonnegative_and_zero_without_other_informative_rfs():
    emb, probs, w = gm.random_model(128, 10, 5, 5, generator=_gen(6))
    assert gm.closed_form(emb, probs, 0.5, w).delta.min() >= 0
    only_first = torch.arange(10) == 0
    cf = gm.closed_form(emb, gm.remove_information(probs, 0.5, only_first), 0.5, w)
    assert cf.delta[:, 0].abs().max() == 0
    assert cf.b[:, 1:].abs().max() == 0


def test_identical_rfs_give_rho_times_fraction_of_others():
    """K identical informative RFs: s_k = 1/sqrt(K), delta_k = p0 p1 (K - 1) / K."""
    emb, probs, w = gm.random_model(1, 1, 4, 4, generator=_gen(7))
    for k in (1, 2, 5):
        cf = gm.closed_form(emb.expand(1, k, 4, 4), probs.expand(1, 2, k, 4), 0.2, w.expand(1, k, 4))
        assert torch.allclose(cf.delta, torch.full((1, k), 0.16 * (k - 1) / k, dtype=torch.float64), atol=1e-12)
        assert torch.allclose(cf.s, torch.full((1, k), k**-0.5, dtype=torch.float64), atol=1e-12)


def test_remove_information_keeps_marginals():
    _, probs, _ = gm.random_model(3, 5, 4, 4, generator=_gen(8))
    mask = torch.tensor([True, False, True, False, False])
    out = gm.remove_information(probs, 0.3, mask)
    marg = lambda p: 0.7 * p[:, 0] + 0.3 * p[:, 1]  # noqa: E731
    assert torch.allclose(marg(out), marg(probs))
    assert torch.equal(out[:, :, mask], probs[:, :, mask])
    assert torch.equal(out[:, 0, ~mask], out[:, 1, ~mask])


def test_degenerate_uninformative_rf_on_top():
    """An uninformative RF with the largest variance takes the top eigenvector; formula stays exact."""
    emb, probs, w = gm.random_model(8, 4, 3, 3, generator=_gen(9))
    probs = gm.remove_information(probs, 0.5, torch.tensor([True, True, True, False]))
    w = w.clone()
    w[:, 3] *= 100.0  # huge d_3, no global information at RF 3
    cf = gm.closed_form(emb, probs, 0.5, w)
    alive = cf.d[:, 3] > 0
    assert alive.any()
    assert torch.allclose(
        cf.s[alive].abs(), torch.tensor([0.0, 0, 0, 1], dtype=torch.float64).expand(int(alive.sum()), 4)
    )
    assert (cf.delta[alive] == 0).all()
    ref = gm.velocity_autograd(emb, probs, 0.5, w, cf.s)
    assert gm.relative_error(cf.velocity, ref).max() <= 1e-6


def test_bad_input_raises_before_compute():
    emb, probs, w = gm.random_model(2, 3, 3, 3, generator=_gen(10))
    with pytest.raises(ValueError, match="activation"):
        gm.closed_form(emb, probs, 0.5, w, "sigmoid")
    with pytest.raises(ValueError, match="p1"):
        gm.closed_form(emb, probs, 1.0, w)
    with pytest.raises(ValueError, match="probs"):
        gm.closed_form(emb, probs * 2, 0.5, w)
    with pytest.raises(ValueError, match="w"):
        gm.closed_form(emb, probs, 0.5, w[..., :2])
    with pytest.raises(ValueError, match="float64"):
        gm.closed_form(emb.float(), probs, 0.5, w)
    with pytest.raises(ValueError, match="embedding"):
        gm.random_model(2, 3, 3, 3, embedding="random")
    big_emb, big_probs, big_w = gm.random_model(1, 12, 5, 2, generator=_gen(11))
    with pytest.raises(ValueError, match="support"):
        gm.velocity_autograd_enumerated(big_emb, big_probs, 0.5, big_w, torch.ones(1, 12, dtype=torch.float64))


def test_flow_single_rf_linear_is_oja():
    """K = 1, linear h: s = 1 and the flow is Oja's, converging to the top eigenvector of V[x]."""
    emb, probs, w = gm.random_model(8, 1, 5, 4, generator=_gen(12))
    out = gm.normalized_flow(emb, probs, 0.5, w, steps=600, lr=1.0, activation="linear")
    assert torch.allclose(out.norm(dim=-1), torch.ones(8, 1, dtype=torch.float64))
    var = gm.closed_form(emb, probs, 0.5, out, "linear").var[:, 0]
    top = torch.linalg.eigh(var).eigenvectors[..., -1]
    assert (top * out[:, 0]).sum(-1).abs().min() > 1 - 1e-6
    with pytest.raises(ValueError, match="steps"):
        gm.normalized_flow(emb, probs, 0.5, w, steps=-1, lr=1.0)


def test_matched_pair_model_marginals_and_delta():
    emb, probs = gm.matched_pair_model(4, T=6, c=0.2)
    marg = 0.5 * probs[0] + 0.5 * probs[1]
    assert torch.allclose(marg[:, :4], torch.full((4, 4), 0.2, dtype=torch.float64))
    w = torch.full((1, 4, 6), 1.0, dtype=torch.float64)  # all gates open
    cf = gm.closed_form(emb.unsqueeze(0), probs.unsqueeze(0), 0.5, w)
    # Delta lives on the informative tokens only
    assert cf.Delta[..., [1, 3, 4, 5]].abs().max() == 0 and cf.Delta[..., [0, 2]].abs().min() > 0
    with pytest.raises(ValueError, match="c"):
        gm.matched_pair_model(4, c=0.3)


@pytest.mark.parametrize("repeat", [1.0, 0.35, 0.0])
def test_closed_form_with_augmentation_term_matches_view_enumeration(repeat):
    emb, probs, w = gm.random_model(6, 3, 3, 3, generator=_gen(11))
    cf = gm.closed_form(emb, probs, 0.3, w, repeat=repeat)
    ref = gm.velocity_autograd_views(emb, probs, 0.3, w, cf.s, repeat)
    assert gm.relative_error(cf.velocity, ref).max() < 1e-10


def test_views_sharing_only_z_drive_each_rf_along_its_own_direction():
    """repeat = 0: velocity_k = p0 p1 b_k Delta_k and delta_k = p0 p1 (1 - s_k^2) (module docstring)."""
    emb, probs, w = gm.random_model(8, 5, 4, 4, generator=_gen(12))
    cf = gm.closed_form(emb, probs, 0.3, w, repeat=0.0)
    rho = 0.3 * 0.7
    assert torch.allclose(cf.velocity, rho * cf.b.unsqueeze(-1) * cf.Delta, atol=1e-14)
    assert torch.allclose(cf.delta, rho * (1 - cf.s**2), atol=1e-14)
    with pytest.raises(ValueError, match="repeat"):
        gm.closed_form(emb, probs, 0.3, w, repeat=1.5)
