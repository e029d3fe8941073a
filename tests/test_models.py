"""Networks: hand-written fast path == autograd reference (float64), init, one-layer net, errors."""

import math

import pytest
import torch

from nlcl_utils.data.tokens import TokenSampler, TokenTaskSpec, make_tasks
from nlcl_utils.engine import alpha_cl
from nlcl_utils.engine.models import (
    OneLayerNet,
    ReceptiveFieldNet,
    contrastive_head,
    default_uniform,
    infonce_head,
    quadratic_head,
)
from nlcl_utils.seeds import replica_generator

F64 = torch.float64


def _setup(spec=None, filters=7, out=6, batch=16, seeds=(1, 2), **options):
    spec = spec or TokenTaskSpec()
    tasks = make_tasks(spec, seeds, dtype=F64)
    net = ReceptiveFieldNet.init(seeds, tasks.embeddings, spec.locations, filters, out, dtype=F64, **options)
    return net, TokenSampler(tasks, batch)


CASES = [
    (TokenTaskSpec(), dict()),  # paper default: relu, BN (mean grad, no var grad), InfoNCE
    (TokenTaskSpec(), dict(activation="linear", loss="quadratic")),
    (TokenTaskSpec(), dict(activation="leaky_relu", slope=0.2, bn_var_grad=True)),
    (TokenTaskSpec(), dict(activation="sigmoid", bn_mean_grad=False)),
    (TokenTaskSpec(), dict(activation="relu", bn_scale=False)),  # mean-only BN
    (TokenTaskSpec(), dict(activation="linear", bn_scale=False, bn_mean_grad=False)),
    (TokenTaskSpec(), dict(activation="quadratic", bn=False, tau=0.5)),
    (
        TokenTaskSpec(embedding="random", embed_dim=8, token_magnitudes=tuple(0.5 + 0.1 * i for i in range(20))),
        dict(activation="tanh", bn_var_grad=True),
    ),
    (
        TokenTaskSpec(vocab=9, locations=4, per_location=3, patterns=5, pattern_len=2),
        dict(activation="gelu", loss="quadratic"),
    ),
]


@pytest.mark.parametrize("spec, options", CASES)
def test_fast_gradient_equals_autograd_float64(spec, options):
    net, sampler = _setup(spec, **options)
    batch = sampler()
    loss, grads = net.loss_and_grads(batch)
    ref_loss, ref_grads = net.reference_loss_and_grads(batch)
    assert torch.allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        assert g.shape == r.shape
        assert torch.allclose(g, r, rtol=1e-10, atol=1e-12 * r.abs().max().item())
    assert grads[0].abs().max() > 0 and grads[1].abs().max() > 0


def test_fast_gradient_main_setting_size():
    net, sampler = _setup(filters=25, out=50, batch=128, seeds=(4,))
    batch = sampler()
    loss, grads = net.loss_and_grads(batch)
    ref_loss, ref_grads = net.reference_loss_and_grads(batch)
    assert torch.allclose(loss, ref_loss, rtol=1e-12)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-9, atol=1e-12 * r.abs().max().item())


def test_bn_switches_change_the_gradient():
    """The mean/variance switches are not no-ops (the equality test above could not see that)."""
    grads = {}
    for mean_grad, var_grad in [(True, False), (False, False), (True, True)]:
        net, sampler = _setup(bn_mean_grad=mean_grad, bn_var_grad=var_grad)
        grads[mean_grad, var_grad] = net.loss_and_grads(sampler())[1][0]
    assert not torch.allclose(grads[True, False], grads[False, False])
    assert not torch.allclose(grads[True, False], grads[True, True])


def test_heads_match_alpha_cl():
    gen = torch.Generator().manual_seed(0)
    u1 = torch.nn.functional.normalize(torch.randn(3, 12, 5, generator=gen, dtype=F64), dim=-1)
    u2 = torch.nn.functional.normalize(torch.randn(3, 12, 5, generator=gen, dtype=F64), dim=-1)
    for tau in (0.1, 0.02):  # small tau: the stabilized exp must not overflow
        loss, _, _ = infonce_head(u1, u2, tau)
        assert torch.allclose(loss, alpha_cl.infonce_loss(u1, u2, tau=tau) / (tau * 12))
    loss, _, _ = quadratic_head(u1, u2)
    assert torch.allclose(loss, alpha_cl.quadratic_loss(u1, u2))


def test_init_is_pytorch_default_and_per_seed():
    spec = TokenTaskSpec()
    tasks = make_tasks(spec, [1, 7, 3])
    net = ReceptiveFieldNet.init([1, 7, 3], tasks.embeddings, 10, 25, 50)
    alone = ReceptiveFieldNet.init([7], tasks.embeddings[1:2], 10, 25, 50)
    assert torch.equal(net.first[1], alone.first[0]) and torch.equal(net.top[1], alone.top[0])
    assert net.first.abs().max() <= 1 / math.sqrt(20) and net.top.abs().max() <= 1 / math.sqrt(250)
    assert net.first.abs().max() > 0.9 / math.sqrt(20)
    # same numbers as torch's own kaiming_uniform_(a=sqrt(5)) (nn.Linear's default) with the same generator
    w = torch.empty(50, 250)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=torch.Generator().manual_seed(5))
    assert torch.equal(w, default_uniform((50, 250), 250, torch.Generator().manual_seed(5), torch.float32))
    gen = replica_generator(7, "init")
    default_uniform((10, 25, 20), 20, gen, torch.float32)
    assert torch.equal(net.top[1], default_uniform((50, 250), 250, gen, torch.float32))


def test_top_is_a_view_of_the_fast_storage():
    net, _ = _setup()
    before = net.top.clone()
    net.params[1].add_(1.0)
    assert torch.equal(net.top, before + 1)
    r, out, km = net.top.shape
    assert torch.equal(net._top_kmo.permute(0, 3, 1, 2).reshape(r, out, km), net.top)


def test_one_layer_net():
    seeds = [1, 2]
    net = OneLayerNet.init(seeds, nodes=6, dim=4, dtype=F64, weight_norm=True)
    assert net.weights.shape == (2, 6, 4) and net.weights.abs().max() <= 0.5
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(2, 32, 4, generator=gen, dtype=F64)
    x2 = x1 + 0.1 * torch.randn(2, 32, 4, generator=gen, dtype=F64)
    loss, (grad,) = net.loss_and_grads((x1, x2))
    # weight normalization: gradient orthogonal to each w (scale invariance)
    assert torch.allclose((grad * net.weights).sum(-1), torch.zeros(2, 6, dtype=F64), atol=1e-12)
    f1 = torch.relu(x1 @ (net.weights / net.weights.norm(dim=-1, keepdim=True)).transpose(1, 2))
    f2 = torch.relu(x2 @ (net.weights / net.weights.norm(dim=-1, keepdim=True)).transpose(1, 2))
    assert torch.allclose(loss, alpha_cl.infonce_loss(f1, f2, tau=0.1) / (0.1 * 32))
    quad = OneLayerNet(net.weights, activation="linear", weight_norm=False, normalize_output=True, loss="quadratic")
    u1 = torch.nn.functional.normalize(x1 @ net.weights.transpose(1, 2), dim=-1)
    u2 = torch.nn.functional.normalize(x2 @ net.weights.transpose(1, 2), dim=-1)
    assert torch.allclose(quad.loss((x1, x2)), alpha_cl.quadratic_loss(u1, u2))


def test_model_errors_name_the_parameter():
    net, _ = _setup()
    emb = net.embeddings
    with pytest.raises(ValueError, match="loss"):
        ReceptiveFieldNet(net.first, net.top, emb, loss="hinge")
    with pytest.raises(ValueError, match="tau"):
        ReceptiveFieldNet(net.first, net.top, emb, tau=0.0)
    with pytest.raises(ValueError, match="activation"):
        ReceptiveFieldNet(net.first, net.top, emb, activation="swish")
    with pytest.raises(ValueError, match="top"):
        ReceptiveFieldNet(net.first, net.top[:, :, :5], emb)
    with pytest.raises(ValueError, match="weights"):
        OneLayerNet(torch.zeros(3, 4))


HEAD_CASES = [
    (TokenTaskSpec(), dict(head="per_rf")),  # decoupled top layer, paper defaults otherwise
    (TokenTaskSpec(), dict(head="per_rf", loss="quadratic_tau", tau=0.3, bn=False)),
    (TokenTaskSpec(vocab=9, locations=4, per_location=3, patterns=5, pattern_len=2), dict(head="per_rf", out=2)),
    (TokenTaskSpec(), dict(loss="quadratic_tau", tau=0.2, bn_var_grad=True)),
    (TokenTaskSpec(), dict(out=2)),  # the smallest output that L2 normalization leaves alive
]


@pytest.mark.parametrize("spec, options", HEAD_CASES)
def test_fast_gradient_equals_autograd_heads_and_losses(spec, options):
    options = dict(options)
    out = options.pop("out", 6)
    net, sampler = _setup(spec, out=out, **options)
    batch = sampler()
    loss, grads = net.loss_and_grads(batch)
    ref_loss, ref_grads = net.reference_loss_and_grads(batch)
    assert torch.allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-10, atol=1e-12 * r.abs().max().item())


def test_fast_gradient_with_persistent_fillers():
    spec = TokenTaskSpec()
    tasks = make_tasks(spec, (1, 2), dtype=F64)
    net = ReceptiveFieldNet.init((1, 2), tasks.embeddings, spec.locations, 7, 6, dtype=F64)
    persistent = torch.zeros(spec.locations, spec.vocab, dtype=torch.bool)
    persistent[:, :4] = True
    batch = TokenSampler(tasks, 16, persistent=persistent)()
    loss, grads = net.loss_and_grads(batch)
    ref_loss, ref_grads = net.reference_loss_and_grads(batch)
    assert torch.allclose(loss, ref_loss, rtol=1e-12, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, rtol=1e-10, atol=1e-12 * r.abs().max().item())


def test_per_rf_head_has_no_cross_rf_gradient():
    """Decoupled head: RF k's filters get no gradient from changing what the other RFs see."""
    net, sampler = _setup(head="per_rf")
    tok1, tok2 = sampler()
    g = net.loss_and_grads((tok1, tok2))[1][0]
    other1, other2 = tok1.clone(), tok2.clone()
    other1[..., 1:], other2[..., 1:] = sampler()[0][..., 1:], sampler()[1][..., 1:]  # change RFs 1..K-1 only
    g_other = net.loss_and_grads((other1, other2))[1][0]
    assert torch.allclose(g[:, 0], g_other[:, 0], rtol=1e-12, atol=1e-15)
    joint, _ = _setup()
    g_joint, g_joint_other = (joint.loss_and_grads(b)[1][0][:, 0] for b in ((tok1, tok2), (other1, other2)))
    assert not torch.allclose(g_joint, g_joint_other)  # the joint head does couple the RFs


def test_quadratic_tau_is_infonce_large_tau_limit():
    """infonce(M; tau) = log N + (N - 1)/N * quadratic(M) / tau + O(1/tau^2) (models docstring)."""
    gen = torch.Generator().manual_seed(3)
    u1 = torch.nn.functional.normalize(torch.randn(2, 16, 5, generator=gen, dtype=F64), dim=-1)
    u2 = torch.nn.functional.normalize(torch.randn(2, 16, 5, generator=gen, dtype=F64), dim=-1)
    tau, n = 1e4, 16
    loss_i, g1_i, g2_i = infonce_head(u1, u2, tau)
    loss_q, g1_q, g2_q = contrastive_head(u1, u2, "quadratic_tau", tau)
    assert torch.allclose(loss_i - math.log(n), (n - 1) / n * loss_q, rtol=1e-3)
    assert torch.allclose(g1_i, (n - 1) / n * g1_q, rtol=1e-3, atol=1e-3 * g1_q.abs().max().item())
    assert torch.allclose(g2_i, (n - 1) / n * g2_q, rtol=1e-3, atol=1e-3 * g2_q.abs().max().item())
    base, _, _ = quadratic_head(u1, u2)
    assert torch.allclose(loss_q, base / tau)


def test_head_errors_name_the_parameter():
    net, _ = _setup()
    with pytest.raises(ValueError, match="head"):
        ReceptiveFieldNet(net.first, net.top, net.embeddings, head="blocks")


@pytest.mark.parametrize("head", ["joint", "per_rf"])
def test_one_dimensional_output_has_no_gradient(head):
    """out = 1: the L2-normalized output is +-1, so the loss is locally constant (documented degenerate case)."""
    net, sampler = _setup(out=1, head=head)
    _, grads = net.loss_and_grads(sampler())
    assert all(torch.count_nonzero(g) == 0 for g in grads)
