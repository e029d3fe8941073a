"""Rotation symmetry of the linear two-layer network, exact population dynamics on token data."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from nlcl_utils.data.tokens import TokenSampler, TokenTaskSpec, make_tasks
from nlcl_utils.engine import alpha_cl, metrics
from nlcl_utils.engine.models import ReceptiveFieldNet
from nlcl_utils.engine.train import TokenConfig
from nlcl_utils.theory import two_layer_dynamics as tld

F64 = torch.float64
TINY = TokenTaskSpec(vocab=5, locations=3, per_location=2, patterns=4, pattern_len=2)


def _net(spec=TINY, seeds=(1, 2), filters=4, out=3, batch=12):
    tasks = make_tasks(spec, list(seeds), dtype=F64)
    net = ReceptiveFieldNet.init(list(seeds), tasks.embeddings, spec.locations, filters, out, dtype=F64)
    return tasks, net, TokenSampler(tasks, batch)()


def _rotations(net, seed=0):
    r, k, m, _ = net.first.shape
    return tld.random_orthogonal((r, k), m, torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# Rotation symmetry
# ---------------------------------------------------------------------------------------------


def test_random_orthogonal_and_rotation_path():
    q = tld.random_orthogonal((3, 2), 5, torch.Generator().manual_seed(0))
    eye = torch.eye(5, dtype=F64)
    assert torch.allclose(q @ q.transpose(-1, -2), eye.expand_as(q), atol=1e-13)
    a = torch.randn(5, 5, dtype=F64)
    skew = a - a.T
    assert torch.allclose(tld.rotation_path(skew, 0.0), eye)
    path = tld.rotation_path(skew, 0.7)
    assert torch.allclose(path @ path.T, eye, atol=1e-12)
    with pytest.raises(ValueError, match="skew"):
        tld.rotation_path(a, 0.5)
    with pytest.raises(ValueError, match="n:"):
        tld.random_orthogonal((2,), 0, torch.Generator())


@pytest.mark.parametrize("bn", ["none", "mean"])
def test_linear_outputs_invariant_under_compensated_rotation(bn):
    tasks, net, (tok1, _) = _net()
    slope = tld.activation_slopes(["linear", "linear"])
    q = _rotations(net)
    f = tld.rf_outputs(tok1, net.first, net.top, tasks.embeddings, slope, bn)
    rf, rt = tld.rotate_filters(net.first, net.top, q)
    assert torch.allclose(tld.rf_outputs(tok1, rf, rt, tasks.embeddings, slope, bn), f, rtol=0, atol=1e-13)
    # The other compensation (V Q instead of V Q^T) is wrong: the check above can fail.
    wrong = torch.einsum("rokm,rkmj->rokj", net.top.reshape(2, 3, 3, 4), q).reshape(net.top.shape)
    assert (tld.rf_outputs(tok1, rf, wrong, tasks.embeddings, slope, bn) - f).abs().max() > 1e-3


@pytest.mark.parametrize("activation, bn", [("relu", "none"), ("relu", "mean"), ("linear", "full"), ("relu", "full")])
def test_rotation_breaks_for_relu_and_full_bn(activation, bn):
    tasks, net, batch = _net()
    change = tld.rotation_loss_change(batch, net.first, net.top, tasks.embeddings, activation, bn, _rotations(net))
    assert change.shape == (2,) and (change > 1e-4).all()


def test_rotation_output_change():
    tasks, net, (tok1, _) = _net()
    q = _rotations(net)
    for bn in ("none", "mean"):
        assert (tld.rotation_output_change(tok1, net.first, net.top, tasks.embeddings, "linear", bn, q) <= 1e-13).all()
    assert (tld.rotation_output_change(tok1, net.first, net.top, tasks.embeddings, "relu", "none", q) > 1e-2).all()
    assert (tld.rotation_output_change(tok1, net.first, net.top, tasks.embeddings, "linear", "full", q) > 1e-3).all()
    with pytest.raises(ValueError, match="activation"):
        tld.rotation_output_change(tok1, net.first, net.top, tasks.embeddings, "gelu", "none", q)


@pytest.mark.parametrize("bn", ["none", "mean"])
@pytest.mark.parametrize("loss", ["infonce", "quadratic"])
def test_linear_loss_invariant(bn, loss):
    tasks, net, batch = _net()
    change = tld.rotation_loss_change(
        batch, net.first, net.top, tasks.embeddings, "linear", bn, _rotations(net), loss=loss
    )
    assert (change <= 1e-12).all()


@pytest.mark.parametrize("activation", ["linear", "relu"])
@pytest.mark.parametrize("bn", ["none", "mean", "full"])
def test_rf_outputs_match_engine_reference(activation, bn):
    tasks, _, batch = _net()
    net = ReceptiveFieldNet.init(
        [1, 2], tasks.embeddings, 3, 4, 3, dtype=F64, activation=activation, bn=bn != "none", bn_scale=bn == "full"
    )
    slope = tld.activation_slopes([activation] * 2)
    u = F.normalize(tld.rf_outputs(batch[0], net.first, net.top, tasks.embeddings, slope, bn), dim=-1)
    assert torch.allclose(u, net.reference_outputs(batch[0]), atol=1e-13)


def test_homogeneous_matches_leaky_relu():
    from nlcl_utils.engine.activations import get_activation

    u = torch.randn(3, 7, dtype=F64)
    slope = torch.tensor([0.0, 1.0, 0.3], dtype=F64)
    out = tld.homogeneous(u, slope)
    assert torch.equal(out[0], torch.relu(u[0])) and torch.equal(out[1], u[1])
    assert torch.allclose(out[2], get_activation("leaky_relu", slope=0.3)(u[2]))


def test_equivariance_gap_linear_zero_relu_not():
    cfg = dict(
        vocab=6,
        locations=3,
        per_location=2,
        patterns=4,
        pattern_len=2,
        beta=2,
        out_dim=4,
        batch_size=16,
        bn=False,
        dtype="float64",
    )
    seeds = [3, 4]
    q = tld.random_orthogonal((2, 3), 4, torch.Generator().manual_seed(1))
    gap_lin, rotated = tld.equivariance_gap(TokenConfig(activation="linear", **cfg), seeds, q, 30)
    gap_relu, _ = tld.equivariance_gap(TokenConfig(activation="relu", **cfg), seeds, q, 30)
    assert rotated.shape == (2, 3, 4, 6)
    assert (gap_lin <= 1e-12).all() and (gap_relu >= 1e-3).all()


def test_chance_selective_fraction_exact_cases_and_monte_carlo():
    assert tld.chance_selective_fraction(1) == 1.0
    assert math.isclose(tld.chance_selective_fraction(3), 0.3, rel_tol=1e-9)  # u_1 uniform on [-1, 1]
    assert math.isclose(tld.chance_selective_fraction(5), 0.0725, rel_tol=1e-9)  # density ~ (1 - t^2)
    u = torch.randn(200_000, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    u = u / u.norm(dim=1, keepdim=True)
    mc = (u.abs().max(1).values >= 0.9).double().mean().item()
    assert abs(mc - tld.chance_selective_fraction(4)) < 4e-3
    with pytest.raises(ValueError, match="threshold"):
        tld.chance_selective_fraction(4, threshold=0.7)
    with pytest.raises(ValueError, match="n:"):
        tld.chance_selective_fraction(0)


def test_distinct_selected_tokens():
    cos = torch.zeros(1, 2, 3, 4, dtype=F64)
    cos[0, 0, 0, 1] = cos[0, 0, 1, 1] = 0.95  # two filters on token 1
    cos[0, 0, 2, 3] = 0.99
    cos[0, 1, :, 2] = 0.5  # below threshold
    assert tld.distinct_selected_tokens(cos).tolist() == [[2, 0]]


# ---------------------------------------------------------------------------------------------
# Population
# ---------------------------------------------------------------------------------------------


def _brute_force(tasks, r):
    """Python loops over patterns and fillers: {(tok1, tok2): prob}."""
    spec = tasks.spec
    out = {}
    for g in range(spec.patterns):
        base = tasks.pattern_tokens[r, g].tolist()
        wild = [i for i, t in enumerate(base) if t < 0]
        for a in itertools.product(range(spec.vocab), repeat=len(wild)):
            for b in itertools.product(range(spec.vocab), repeat=len(wild)):
                x1, x2 = list(base), list(base)
                for i, j in enumerate(wild):
                    x1[j], x2[j] = a[i], b[i]
                key = (tuple(x1), tuple(x2))
                out[key] = out.get(key, 0.0) + 1.0 / spec.patterns / spec.vocab ** (2 * len(wild))
    return out


def test_enumeration_matches_brute_force():
    tasks = make_tasks(TINY, [5, 6], dtype=F64)
    pop = tld.enumerate_population(tasks)
    assert pop.support == tld.support_size(TINY) == 4 * 5**2
    for r in range(2):
        got = {}
        for t1, t2, p in zip(pop.tok1[r].tolist(), pop.tok2[r].tolist(), pop.prob[r].tolist()):
            got[(tuple(t1), tuple(t2))] = got.get((tuple(t1), tuple(t2)), 0.0) + p
        want = _brute_force(tasks, r)
        assert got.keys() == want.keys()
        assert all(math.isclose(got[key], want[key], rel_tol=1e-12) for key in want)


def test_enumeration_with_wildcard_table():
    probs = tuple(
        tuple(row) for row in torch.softmax(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)), 1).tolist()
    )
    spec = TokenTaskSpec(vocab=5, locations=3, per_location=2, patterns=4, pattern_len=1, wildcard_probs=probs)
    pop = tld.enumerate_population(make_tasks(spec, [1], dtype=F64))
    assert torch.allclose(pop.prob.sum(1), torch.ones(1, dtype=F64))
    joint = tld.pair_table(pop)  # marginal of a location's token in view 1 vs the definition
    tasks = make_tasks(spec, [1], dtype=F64)
    for k in range(3):
        expected = torch.zeros(5, dtype=F64)
        for g in range(4):
            tok = tasks.pattern_tokens[0, g, k].item()
            if tok >= 0:
                expected[tok] += 0.25
            else:
                expected += 0.25 * torch.tensor(probs[k], dtype=F64)
        assert torch.allclose(joint[0, k, k].sum(1), expected, atol=1e-12)


def test_enumeration_errors():
    tasks = make_tasks(TokenTaskSpec(), [1])
    with pytest.raises(ValueError, match="max_support"):
        tld.enumerate_population(tasks)
    spec = TokenTaskSpec(vocab=5, locations=4, per_location=2, patterns=3, pattern_len=2, redraw=1)
    with pytest.raises(ValueError, match="redraw"):
        tld.enumerate_population(make_tasks(spec, [1]))


def _instance(activations=("linear", "relu"), inits=(1, 2), filters=3, out=4):
    return tld.population_instance(TINY, 0, list(inits), list(activations), filters, out)


@pytest.mark.parametrize("bn", ["none", "mean"])
def test_population_energy_table_equals_direct_sum(bn):
    pop, w, v, slope = _instance()
    w = w + 0.3 * torch.randn(w.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    fast = tld.population_energy(w, v, pop, slope)
    direct = tld.population_energy_direct(w, v, pop, slope, bn)
    assert torch.allclose(fast, direct, rtol=1e-12, atol=1e-15)


def test_population_energy_is_minus_quadratic_loss():
    """Uniform support (uniform fillers): E = -L_quad - tr V[f] / (S - 1) on the batch of all S points."""
    pop, w, v, slope = _instance()
    assert torch.allclose(pop.prob, pop.prob[:, :1].expand_as(pop.prob))
    table = tld.hidden_table(w, pop.embeddings, slope)
    f1 = tld._gather_hidden(table, pop.tok1).flatten(2) @ v.transpose(1, 2)
    f2 = tld._gather_hidden(table, pop.tok2).flatten(2) @ v.transpose(1, 2)
    s = pop.support
    trace_var = ((f1 - f1.mean(1, keepdim=True)) ** 2).sum(-1).mean(1)
    expected = -alpha_cl.quadratic_loss(f1, f2) - trace_var / (s - 1)
    assert torch.allclose(tld.population_energy(w, v, pop, slope), expected, rtol=1e-11)


def test_linear_gated_covariances_are_the_same_for_every_filter():
    pop, w, _, slope = _instance(activations=("linear", "relu"), inits=(2,))
    cov = tld.gated_covariances(w, pop, slope)  # [R, K*M, K*M, d, d], K=3, M=3
    lin, relu = cov[0].view(3, 3, 3, 3, 5, 5), cov[1].view(3, 3, 3, 3, 5, 5)
    assert torch.allclose(lin, lin[:, :1, :, :1].expand_as(lin), rtol=0, atol=1e-15)  # independent of m, m'
    assert (relu - relu[:, :1, :, :1]).abs().max() > 1e-3


def test_energy_gradient_is_gated_covariance_times_filters():
    """grad_{w_km} E = 2 sum_{k'm'} (V^T V)_{km,k'm'} Cov(x~_km, x~'_k'm') w_k'm' (homogeneous h).

    For linear h, x~ = x: the same matrices drive every filter of a receptive field."""
    pop, w, v, _ = _instance(activations=("linear", "relu", "relu"), inits=(3,))
    slope = torch.tensor([1.0, 0.0, 0.3], dtype=F64)  # linear, ReLU, LeakyReLU(0.3)
    w = w.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(tld.population_energy(w, v, pop, slope).sum(), [w])
    closed = tld.energy_gradient_closed_form(w.detach(), v, pop, slope)
    assert torch.allclose(grad, closed, rtol=1e-10, atol=1e-13)


def test_flow_keeps_constraints_increases_energy_and_linear_collapses():
    pop, w, v, slope = _instance(inits=(1, 2, 3))
    traj = tld.integrate_flow(pop, w, v, slope, steps=600, dt=0.25, record_every=100)
    assert traj.steps == [0, 100, 200, 300, 400, 500, 600]
    assert torch.allclose(traj.first.norm(dim=-1), torch.ones((), dtype=F64), atol=1e-12)
    assert torch.allclose(traj.top.flatten(2).norm(dim=-1), torch.ones((), dtype=F64), atol=1e-12)
    assert (traj.energy[-1] > traj.energy[0]).all() and (traj.energy.diff(dim=0) > -1e-9).all()
    erank = metrics.effective_rank(traj.first[-1])  # [R, K]
    assert (erank[:3] < 1.01).all()  # linear replicas: every RF's filters parallel
    assert traj.grad_norm[-1, :3].max() < 1e-6


def test_population_errors():
    pop, w, v, slope = _instance()
    with pytest.raises(ValueError, match="activations"):
        tld.activation_slopes(["relu", "tanh"])
    with pytest.raises(ValueError, match="steps"):
        tld.integrate_flow(pop, w, v, slope, steps=0)
    with pytest.raises(ValueError, match="dt"):
        tld.integrate_flow(pop, w, v, slope, steps=5, dt=-1.0)
    with pytest.raises(ValueError, match="slope"):
        tld.population_energy(w, v, pop, slope[:1])
    with pytest.raises(ValueError, match="top"):
        tld.population_energy(w, v[:, :, :-1], pop, slope)
    with pytest.raises(ValueError, match="bn"):
        tld.rf_outputs(pop.tok1[:, :4], w, v, pop.embeddings, slope, bn="batch")
    with pytest.raises(ValueError, match="q:"):
        tld.rotate_filters(w, v, torch.eye(2, dtype=F64).expand(4, 3, 2, 2))
    with pytest.raises(ValueError, match="spec"):
        tld.population_instance(TokenTaskSpec(), 0, [1], ["relu"], 2, 2)


def test_riemannian_hessian_at_a_maximum_matches_second_differences():
    """At the linear flow's maximum: no upward direction, a zero for every normal direction, and
    the quadratic form equals the second derivative of E along retracted tangent curves."""
    pop, w, v, slope = _instance(inits=(1, 2))
    index = int((slope == 1.0).nonzero()[0])
    pop = tld.population_slice(pop, index)
    w, v, slope = w[index : index + 1], v[index : index + 1], slope[index : index + 1]
    traj = tld.integrate_flow(pop, w, v, slope, steps=1500, dt=0.25, record_every=1500)
    w, v = traj.first[-1], traj.top[-1]
    assert traj.grad_norm[-1].max() < 1e-9
    hessian = tld.riemannian_hessian(w, v, pop, slope)[0]
    spectrum = tld.riemannian_hessian_spectrum(w, v, pop, slope)[0]
    r, k, m, d = w.shape
    assert hessian.shape == (k * m * d + v[0].numel(),) * 2
    scale = spectrum.abs().max()
    assert spectrum.max() < 1e-10 * scale  # a local maximum: nothing curves upward
    assert int((spectrum.abs() < 1e-10 * scale).sum()) >= k * m + 1  # the normal directions
    gen = torch.Generator().manual_seed(0)
    t = 1e-4
    for _ in range(3):  # tangent xi: second difference of E along normalize(x + s xi) at a critical point
        xi_w = torch.randn(w.shape, generator=gen, dtype=F64)
        xi_w -= (xi_w * w).sum(-1, keepdim=True) * w
        xi_v = torch.randn(v.shape, generator=gen, dtype=F64)
        xi_v -= (xi_v * v).sum() * v
        energy = [
            tld.population_energy(*tld.normalize_constraints(w + s * xi_w, v + s * xi_v), pop, slope)[0]
            for s in (-t, 0.0, t)
        ]
        second = (energy[0] - 2 * energy[1] + energy[2]) / t**2
        xi = torch.cat([xi_w.flatten(), xi_v.flatten()])
        assert second.item() == pytest.approx((xi @ hessian @ xi).item(), rel=1e-4, abs=1e-6)


def test_riemannian_hessian_spectrum_finds_upward_directions_away_from_a_maximum():
    """At a random init the top layer is not G's top eigenvector, so moving it toward one curves
    E upward (V-block of the Hessian: 2 (G - E I) on the tangent space): an upward direction."""
    pop, w, v, slope = _instance(inits=(1,))
    spectrum = tld.riemannian_hessian_spectrum(w, v, pop, slope)
    assert (spectrum.amax(-1) > 1e-6 * spectrum.abs().amax(-1)).all()


def test_dead_token_gain_is_the_one_sided_derivative_and_projection_does_not_lower_energy():
    """After a ReLU flow: the reported gain is the finite-difference slope of the ReLU energy when
    the best dead weight is switched on (and, at these endpoints, moving onto the orthant does
    not lower E: measured here, not a general law)."""
    pop, w, v, slope = _instance(activations=("relu",), inits=(1, 2, 3), filters=3, out=4)
    traj = tld.integrate_flow(pop, w, v, slope, steps=400, dt=0.5, record_every=400)
    w, v = traj.first[-1], traj.top[-1]
    result = tld.dead_token_gain(w, v, pop)
    assert torch.allclose(result.energy, traj.energy[-1], rtol=1e-12)
    assert (result.energy_projected >= result.energy - 1e-12).all()
    assert (w < 0).any()  # the flow leaves dead weights negative
    live = (w > 0).any(-1, keepdim=True)
    w_proj = torch.where(live, tld.normalize_constraints(w.clamp(min=0), v)[0], w)
    eps = 1e-7
    checked = 0
    for r in range(w.shape[0]):
        if result.gain[r] <= 0:
            continue
        _, grad_linear, _ = tld.riemannian_gradient(w_proj, v, pop, torch.ones(w.shape[0], dtype=F64))
        candidate = live[r] & (w_proj[r] == 0)
        scores = torch.where(candidate, grad_linear[r], torch.full_like(grad_linear[r], -math.inf))
        k, m, t = (int(i) for i in torch.unravel_index(scores.argmax(), scores.shape))
        bumped = w_proj.clone()
        bumped[r, k, m, t] = eps
        bumped, _ = tld.normalize_constraints(bumped, v)
        energy = tld.population_energy(bumped, v, pop, slope)
        base = tld.population_energy(w_proj, v, pop, slope)
        assert ((energy[r] - base[r]) / eps).item() == pytest.approx(result.gain[r].item(), rel=1e-4)
        checked += 1
    assert checked >= 1


def test_dead_token_gain_needs_one_hot_embeddings():
    pop, w, v, slope = _instance(activations=("relu",), inits=(1,))
    with pytest.raises(ValueError, match="one-hot"):
        tld.dead_token_gain(w, v, tld.TokenPopulation(pop.tok1, pop.tok2, pop.prob, 2 * pop.embeddings, pop.plus))


def test_polish_within_gates_lands_where_the_relu_flow_converges():
    """Newton inside the gate pattern of an early flow state reaches the point that the plain flow
    reaches thousands of steps later (here the flow converges in affordable time), at round-off."""
    pop, w, v, slope = _instance(activations=("relu",), inits=(1, 3), filters=3, out=4)
    early = tld.integrate_flow(pop, w, v, slope, steps=300, dt=0.5, record_every=300)
    polished = tld.polish_within_gates(early.first[-1], early.top[-1], pop, slope)
    assert (polished.grad_norm <= 1e-13).all() and polished.gates_kept.all()
    assert 1 <= polished.iterations <= 30
    late = tld.integrate_flow(pop, w, v, slope, steps=5000, dt=0.5, record_every=5000)
    assert (late.first[-1] - polished.first).flatten(1).norm(dim=1).max() <= 1e-6
    assert torch.allclose(late.energy[-1], polished.energy, rtol=0, atol=1e-10)
    assert ((polished.first > 0) == (late.first[-1] > 0)).all()  # the same gates
    again = tld.polish_within_gates(polished.first, polished.top, pop, slope)
    assert again.iterations == 0 and torch.equal(again.first, polished.first)


def test_polish_within_gates_leaves_a_converged_linear_flow_in_place():
    pop, w, v, slope = _instance(activations=("linear",), inits=(1, 2), filters=3, out=4)
    flow = tld.integrate_flow(pop, w, v, slope, steps=3000, dt=0.2, record_every=3000)
    assert flow.grad_norm[-1].max() <= 1e-8
    polished = tld.polish_within_gates(flow.first[-1], flow.top[-1], pop, slope)
    assert (polished.grad_norm <= 1e-13).all()
    assert (polished.first - flow.first[-1]).abs().max() <= 1e-6
    assert torch.allclose(polished.energy, flow.energy[-1], rtol=0, atol=1e-12)


def test_polish_within_gates_errors():
    pop, w, v, slope = _instance(activations=("relu",), inits=(1,))
    with pytest.raises(ValueError, match="slope"):
        tld.polish_within_gates(w, v, pop, torch.full_like(slope, 0.1))
    scaled = tld.TokenPopulation(pop.tok1, pop.tok2, pop.prob, 2 * pop.embeddings, pop.plus)
    with pytest.raises(ValueError, match="one-hot"):
        tld.polish_within_gates(w, v, scaled, slope)
    with pytest.raises(ValueError, match="max_iter"):
        tld.polish_within_gates(w, v, pop, slope, max_iter=-1)
    with pytest.raises(ValueError, match="tol"):
        tld.polish_within_gates(w, v, pop, slope, tol=0.0)


def test_polish_within_gates_leaves_filters_the_flow_does_not_shrink():
    """A filter with every gate closed has no gradient (g.w = 0): the flow never moves it, so neither
    does the polish, although its weights are negative; every other live filter ends on the orthant."""
    pop, w, v, slope = _instance(activations=("relu",), inits=(1, 3), filters=3, out=4)
    flow = tld.integrate_flow(pop, w, v, slope, steps=300, dt=0.5, record_every=300)
    w, v = flow.first[-1].clone(), flow.top[-1].clone()
    w[:, 0, 0] = -torch.tensor([0.6, 0.5, 0.4, 0.3, 0.2], dtype=F64)
    w[:, 0, 0] /= w[:, 0, 0].norm(dim=-1, keepdim=True)
    polished = tld.polish_within_gates(w, v, pop, slope)
    assert torch.equal(polished.first[:, 0, 0], w[:, 0, 0])
    assert (polished.grad_norm <= 1e-13).all() and polished.gates_kept.all()
    live = (polished.first > 0).any(-1)
    assert not (polished.first[live] < 0).any()


def test_population_slice_takes_one_replica_or_a_list():
    pop, *_ = _instance(activations=("linear", "relu"), inits=(1, 2))
    one = tld.population_slice(pop, 2)
    both = tld.population_slice(pop, [3, 0])
    assert one.tok1.shape[0] == 1 and torch.equal(one.prob[0], pop.prob[2])
    assert torch.equal(both.embeddings, pop.embeddings[[3, 0]]) and torch.equal(both.plus[1], pop.plus[0])
