"""One-layer population dynamics: closed-form moments, A(w), flow, fixed points, Jacobian."""

import math

import pytest
import torch

from nlcl_utils.data.mixture import make_mixture
from nlcl_utils.engine import activations, alpha_cl
from nlcl_utils.theory import dynamics as dy

DT = torch.float64


@pytest.fixture(scope="module")
def task():
    # Overlapping components (random layout, sizeable noise): every closed form is exercised
    # away from the clean-gate regime.
    return make_mixture(3, 3, noise=0.6, magnitudes=[1.5, 1.0, 0.8], weights=[0.5, 0.3, 0.2], layout="random", seed=4)


def _unit_rows(b, d, seed):
    w = torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=DT)
    return w / w.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_gated_means_match_monte_carlo(task, slope):
    w = _unit_rows(2, 3, 0)
    m, g = dy.gated_means(task, w, slope)
    gen = torch.Generator().manual_seed(1)
    act = activations.get_activation("leaky_relu", slope=slope)
    n = 200_000
    for c in range(3):
        x = task.centres[c] + task.noise * torch.randn(n, 3, generator=gen, dtype=DT)
        gated = activations.gated_input(x.expand(2, n, 3), w, act)  # [2, n, 3]
        se = gated.std(1) / math.sqrt(n)
        assert ((gated.mean(1) - m[:, c]).abs() <= 5 * se + 1e-12).all()
        f = act(x @ w.T)  # [n, 2]
        assert ((f.mean(0) - g[:, c]).abs() <= 5 * f.std(0) / math.sqrt(n)).all()


def test_empirical_a_matrix_equals_uniform_alpha_covariance(task):
    gen = torch.Generator().manual_seed(2)
    x1, x2, _ = task.sample(12, gen)
    w = _unit_rows(3, 3, 3)
    a_fast = dy.empirical_a_matrix(x1, x2, w, slope=0.2)
    act = activations.get_activation("leaky_relu", slope=0.2)
    a1 = activations.gated_input(x1.expand(3, 12, 3), w, act)
    a2 = activations.gated_input(x2.expand(3, 12, 3), w, act)
    a_ref = alpha_cl.contrastive_covariance(a1, a2, alpha_cl.uniform_alpha(12))
    assert torch.allclose(a_fast, a_ref, atol=1e-13)


def test_exact_a_matrix_is_the_large_sample_limit(task):
    gen = torch.Generator().manual_seed(5)
    x1, x2, _ = task.sample(400_000, gen)
    w = _unit_rows(2, 3, 6)
    for slope in (0.0, 1.0):
        a_emp = dy.empirical_a_matrix(x1, x2, w, slope)
        a_exact = dy.a_matrix(task, w, slope)
        # Entries are O(0.5); the sampling error of the estimate is ~3e-3 here.
        assert (a_emp - a_exact).abs().max() < 0.02


def test_linear_a_is_twice_the_between_covariance(task):
    w = _unit_rows(4, 3, 7)
    a = dy.a_matrix(task, w, 1.0)
    expected = 2 * (task.covariance() - task.noise**2 * torch.eye(3, dtype=DT))
    assert torch.allclose(a, expected.expand(4, 3, 3), atol=1e-14)


@pytest.mark.parametrize("slope", [0.0, 0.25, 1.0])
def test_gradient_of_energy_is_a_times_w(task, slope):
    w = _unit_rows(5, 3, 8).requires_grad_(True)
    e = dy.energy(task, w, slope)
    (grad,) = torch.autograd.grad(e.sum(), [w])
    w = w.detach()
    aw = dy.a_times_w(task, w, slope)
    assert torch.allclose(grad, aw, atol=1e-13)
    a = dy.a_matrix(task, w, slope)
    assert torch.allclose(torch.einsum("bpq,bq->bp", a, w), aw, atol=1e-13)
    assert torch.allclose(dy.energy(task, w, slope), 0.5 * (w * aw).sum(1), atol=1e-14)


def test_flow_relu_converges_to_stable_top_eigenvector_fixed_points():
    task = make_mixture(3, 2, noise=0.1, magnitudes=[1.3, 1.0, 1.0], seed=0)  # triangle in the plane
    w0 = _unit_rows(64, 2, 9)
    res = dy.integrate_flow(task, w0, 0.0, dt=0.5, tol=1e-11, max_steps=5000)
    assert res.converged.all()
    assert res.residual.max() <= 1e-11
    rq, eig = dy.spectrum(task, res.w, 0.0)
    assert ((rq - eig[:, -1]).abs() <= 1e-12).all()
    chk = dy.fixed_point_checks(task, res.w, 0.0)
    assert (chk.tangent_max < 0).all() and (chk.asymmetry < 1e-8).all()
    assert (chk.top_gap.abs() <= 1e-12).all()
    assert (chk.lam_max > chk.lam_2).all()
    assert torch.allclose(chk.gap, chk.lam_max - chk.lam_2, atol=1e-12)
    # One optimum per centre, each within a degree of it.
    u = task.centres / task.centres.norm(dim=1, keepdim=True)
    cos = res.w @ u.T
    assert set(cos.argmax(1).tolist()) == {0, 1, 2}
    assert cos.max(1).values.min() > math.cos(math.radians(1.0))


def test_flow_linear_is_oja_top_eigenvector(task):
    res = dy.integrate_flow(task, _unit_rows(16, 3, 10), 1.0, dt=0.5, tol=1e-12, max_steps=20000)
    top = torch.linalg.eigh(task.between_covariance())[1][:, -1]
    assert ((res.w @ top).abs() > 1 - 1e-12).all()


def test_tangent_jacobian_matches_finite_differences(task):
    w = _unit_rows(3, 3, 11)
    slope = torch.tensor([0.0, 0.4, 1.0], dtype=DT)
    jt = dy.tangent_jacobian(task, w, slope)
    q = dy.tangent_basis(w)
    h = 1e-6
    for k in range(2):
        v = q[:, :, k]
        fp = dy.projected_flow(task, w + h * v, slope)
        fm = dy.projected_flow(task, w - h * v, slope)
        fd = torch.einsum("bdj,bd->bj", q, (fp - fm) / (2 * h))
        assert torch.allclose(fd, jt[:, :, k], atol=1e-7)


def test_tangent_basis_is_orthonormal_complement():
    w = _unit_rows(5, 4, 12)
    w[0] = torch.tensor([-1.0, 0, 0, 0], dtype=DT)  # the Householder sign branch
    q = dy.tangent_basis(w)
    assert torch.allclose(q.transpose(1, 2) @ q, torch.eye(3, dtype=DT).expand(5, 3, 3), atol=1e-14)
    assert (torch.einsum("bdj,bd->bj", q, w).abs() < 1e-14).all()


def test_bad_input_raises_naming_the_parameter(task):
    w = _unit_rows(2, 3, 0)
    with pytest.raises(ValueError, match="slope"):
        dy.a_matrix(task, w, 1.5)
    with pytest.raises(ValueError, match="slope"):
        dy.a_matrix(task, w, torch.tensor([0.1, 0.2, 0.3], dtype=DT))
    with pytest.raises(ValueError, match="w"):
        dy.a_matrix(task, w[:, :2], 0.0)
    with pytest.raises(ValueError, match="w"):
        dy.a_matrix(task, w.float(), 0.0)
    with pytest.raises(ValueError, match="dt"):
        dy.integrate_flow(task, w, 0.0, dt=0.0)
    with pytest.raises(ValueError, match="max_steps"):
        dy.integrate_flow(task, w, 0.0, max_steps=0)
    with pytest.raises(ValueError, match="w0"):
        dy.integrate_flow(task, w[0], 0.0)


@pytest.fixture(scope="module")
def additive_task(task):
    return task.with_views("additive")


@pytest.mark.parametrize("slope", [0.0, 0.3, 1.0])
def test_additive_views_gradient_and_matrix_agree(additive_task, slope):
    w = _unit_rows(4, 3, 13).requires_grad_(True)
    (grad,) = torch.autograd.grad(dy.energy(additive_task, w, slope).sum(), [w])
    w = w.detach()
    aw = dy.a_times_w(additive_task, w, slope)
    assert torch.allclose(grad, aw, atol=1e-13)
    a = dy.a_matrix(additive_task, w, slope)
    assert torch.allclose(torch.einsum("bpq,bq->bp", a, w), aw, atol=1e-13)
    assert torch.allclose(a, a.transpose(1, 2), atol=1e-15)
    assert torch.linalg.eigvalsh(a).min() > -1e-13


def test_additive_views_matrix_is_the_large_sample_limit(additive_task):
    # Views identical (augment_noise = 0): C_alpha with uniform alpha is 2 V[x~_w], within variance included.
    gen = torch.Generator().manual_seed(14)
    x1, x2, _ = additive_task.sample(400_000, gen)
    assert torch.equal(x1, x2)
    w = _unit_rows(2, 3, 15)
    for slope in (0.0, 0.4):
        a_emp = dy.empirical_a_matrix(x1, x2, w, slope)
        assert (a_emp - dy.a_matrix(additive_task, w, slope)).abs().max() < 0.02


def test_additive_linear_adds_the_within_covariance(task, additive_task):
    w = _unit_rows(3, 3, 16)
    a_ind, a_add = dy.a_matrix(task, w, 1.0), dy.a_matrix(additive_task, w, 1.0)
    assert torch.allclose(a_add - a_ind, 2 * task.within_covariance().expand(3, 3, 3), atol=1e-14)


def test_stacked_population_equals_one_task_at_a_time(task, additive_task):
    other = make_mixture(3, 3, noise=0.2, magnitudes=[1.0, 1.2, 0.7], layout="equiangular", cosine=0.1, seed=2)
    tasks = [task, other, additive_task]
    pop = dy.Population.stack(tasks, 2)
    w = _unit_rows(6, 3, 17)
    slope = torch.tensor([0.0, 0.2, 0.0, 0.5, 0.1, 1.0], dtype=DT)
    stacked = dy.fixed_point_checks(pop, w, slope)
    for k, t in enumerate(tasks):
        rows = slice(2 * k, 2 * k + 2)
        single = dy.fixed_point_checks(t, w[rows], slope[rows])
        for name, value in vars(single).items():
            assert torch.allclose(getattr(stacked, name)[rows], value, atol=1e-12, rtol=1e-10), name
    res = dy.integrate_flow(pop, w, slope, dt=0.5, tol=1e-9, max_steps=3000)
    for k, t in enumerate(tasks):
        rows = slice(2 * k, 2 * k + 2)
        one = dy.integrate_flow(t, w[rows], slope[rows], dt=0.5, tol=1e-9, max_steps=3000)
        assert torch.allclose(res.w[rows], one.w, atol=1e-12)


@pytest.mark.parametrize("views", ["independent", "additive"])
def test_roughness_matrix_matches_finite_differences_and_is_symmetric(task, views):
    t = task.with_views(views)
    w = _unit_rows(3, 3, 18)
    slope = torch.tensor([0.0, 0.3, 0.0], dtype=DT)
    rough = dy.roughness_matrix(t, w, slope)
    q = dy.tangent_basis(w)
    h = 1e-6
    for k in range(2):
        v = q[:, :, k]
        a_p, a_m = dy.a_matrix(t, w + h * v, slope), dy.a_matrix(t, w - h * v, slope)
        fd = torch.einsum("bpq,bq->bp", (a_p - a_m) / (2 * h), w)  # (d_u A) w
        assert torch.allclose(torch.einsum("bdj,bd->bj", q, fd), rough[:, :, k], atol=1e-7)
    # Hess E = A + (dA) w is symmetric, so R is symmetric at any w (not only at fixed points).
    assert torch.allclose(rough, rough.transpose(1, 2), atol=1e-12)
    assert torch.allclose(dy.roughness(t, w, slope), torch.linalg.matrix_norm(rough, ord=2))


def test_stability_decomposition_and_weyl_bounds_at_fixed_points(task):
    w0 = _unit_rows(32, 3, 19)
    for views in ("independent", "additive"):
        t = task.with_views(views)
        res = dy.integrate_flow(t, w0, 0.0, dt=0.5, tol=1e-12, max_steps=20000)
        chk = dy.fixed_point_checks(t, res.w[res.converged], 0.0)
        assert (chk.decomposition_error < 1e-9).all()
        assert (chk.weyl_excess < 1e-12).all()
        assert (chk.asymmetry < 1e-8).all()
    # The tangent-projected decomposition is an identity at any unit w; only its meaning (the
    # linearization of the flow) needs a fixed point. A wrong roughness matrix would break it:
    far = dy.fixed_point_checks(task, _unit_rows(4, 3, 20), 0.3)
    assert (far.decomposition_error < 1e-12).all()
    assert (far.roughness > 1e-3).all()


def test_population_rejects_bad_input(task):
    with pytest.raises(ValueError, match="tasks"):
        dy.Population.stack([task, make_mixture(3, 4, noise=0.1, seed=0)], 2)
    with pytest.raises(ValueError, match="rows"):
        dy.Population.stack([task], 0)
    pop = dy.Population.stack([task, task], 2)
    with pytest.raises(ValueError, match="w"):
        dy.a_matrix(pop, _unit_rows(3, 3, 0), 0.0)
