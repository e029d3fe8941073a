"""Mixture-of-Gaussians two-view generator: layout, exact moments, seeded batched sampler."""

import math

import pytest
import torch

from nlcl_utils.data.mixture import DATA_CHUNK_STEPS, MixtureTask, make_mixture

DT = torch.float64


def test_simplex_layout_inner_products_and_magnitudes():
    mags = [1.5, 1.0, 0.5, 2.0, 1.0]
    task = make_mixture(5, 7, noise=0.2, magnitudes=mags, weights=[2, 1, 1, 1, 1], seed=3)
    u = task.centres / task.centres.norm(dim=1, keepdim=True)
    cos = u @ u.T
    off = ~torch.eye(5, dtype=torch.bool)
    assert torch.allclose(cos[off], torch.full((20,), -1 / 4, dtype=DT), atol=1e-12)
    assert torch.allclose(task.centres.norm(dim=1), torch.tensor(mags, dtype=DT), atol=1e-12)
    assert torch.allclose(task.weights, torch.tensor([2, 1, 1, 1, 1], dtype=DT) / 6, atol=1e-15)
    assert task.n_components == 5 and task.dim == 7


@pytest.mark.parametrize("cosine", [-1 / 4, -0.1, 0.0, 0.3, 0.9])
def test_equiangular_layout_has_the_requested_cosine(cosine):
    task = make_mixture(5, 6, noise=0.2, magnitudes=[2.0, 1, 1, 1, 1], layout="equiangular", cosine=cosine, seed=1)
    u = task.centres / task.centres.norm(dim=1, keepdim=True)
    off = ~torch.eye(5, dtype=torch.bool)
    assert torch.allclose((u @ u.T)[off], torch.full((20,), cosine, dtype=DT), atol=1e-12)
    assert abs(task.max_pairwise_cosine() - cosine) < 1e-12
    assert torch.allclose(task.centres.norm(dim=1), torch.tensor([2.0, 1, 1, 1, 1], dtype=DT), atol=1e-12)


def test_additive_views_share_the_draw():
    task = make_mixture(3, 4, noise=0.5, seed=0, views="additive", augment_noise=0.01)
    gen = torch.Generator().manual_seed(0)
    x1, x2, labels = task.sample(50_000, gen)
    d = x1 - x2  # only the augmentation noise differs: covariance 2 s^2 I
    assert torch.allclose(d.T @ d / 50_000, 2e-4 * torch.eye(4, dtype=DT), atol=2e-5)
    xc1, xc2 = x1 - x1.mean(0), x2 - x2.mean(0)
    assert torch.allclose(xc1.T @ xc2 / 50_000, task.cross_view_covariance(), atol=0.02)
    s1, s2 = task.sampler([0, 1], batch_size=8, dtype=torch.float64)()
    assert s1.shape == (2, 8, 4) and (s1 - s2).abs().max() < 0.1
    same = task.with_views("additive")  # augment_noise 0: identical views
    y1, y2, _ = same.sample(10, gen)
    assert torch.equal(y1, y2)
    assert task.with_views("independent").views == "independent"


def test_task_depends_only_on_seed():
    a = make_mixture(4, 6, noise=0.1, seed=1)
    b = make_mixture(4, 6, noise=0.1, seed=1)
    c = make_mixture(4, 6, noise=0.1, seed=2)
    assert torch.equal(a.centres, b.centres)
    assert not torch.allclose(a.centres, c.centres)


def test_exact_moments_identities():
    task = make_mixture(4, 5, noise=0.3, magnitudes=[2, 1, 1, 1], weights=[1, 2, 3, 4], layout="random", seed=0)
    mu, pi = task.centres, task.weights
    mean = pi @ mu
    between = sum(pi[c] * torch.outer(mu[c] - mean, mu[c] - mean) for c in range(4))
    assert torch.allclose(task.mean(), mean, atol=1e-14)
    assert torch.allclose(task.between_covariance(), between, atol=1e-14)
    assert torch.allclose(task.covariance(), between + 0.09 * torch.eye(5, dtype=DT), atol=1e-14)
    assert torch.equal(task.cross_view_covariance(), task.between_covariance())


def test_sample_moments_match_population():
    task = make_mixture(3, 3, noise=0.5, magnitudes=[2.0, 1.0, 1.0], weights=[0.5, 0.3, 0.2], seed=0)
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    x1, x2, labels = task.sample(n, gen)
    # Means within 5 standard errors (per coordinate).
    se = task.covariance().diagonal().sqrt() / math.sqrt(n)
    assert ((x1.mean(0) - task.mean()).abs() <= 5 * se).all()
    # Covariances and cross-view covariance within an absolute 0.02 (their SE is ~0.005 here).
    xc1, xc2 = x1 - x1.mean(0), x2 - x2.mean(0)
    assert torch.allclose(xc1.T @ xc1 / n, task.covariance(), atol=0.02)
    assert torch.allclose(xc1.T @ xc2 / n, task.cross_view_covariance(), atol=0.02)
    # Both views stay in the sample's component: x1 - x2 has covariance 2 sigma^2 I.
    d = x1 - x2
    assert torch.allclose(d.T @ d / n, 2 * 0.25 * torch.eye(3, dtype=DT), atol=0.02)
    freq = torch.bincount(labels, minlength=3).to(DT) / n
    assert torch.allclose(freq, task.weights, atol=0.005)


def test_sampler_shapes_and_replica_independence():
    task = make_mixture(4, 6, noise=0.1, seed=0)
    both = task.sampler([3, 5], batch_size=8)
    alone = task.sampler([5], batch_size=8)
    for _ in range(DATA_CHUNK_STEPS + 2):  # crosses a chunk boundary
        x1, x2 = both()
        y1, y2 = alone()
        assert x1.shape == (2, 8, 6) and x1.dtype == torch.float32
        assert torch.equal(x1[1], y1[0]) and torch.equal(x2[1], y2[0])
    assert not torch.equal(x1[0], x1[1])


def test_sampler_views_share_component():
    task = make_mixture(4, 6, noise=1e-3, seed=0)
    x1, x2 = task.sampler([0, 1, 2], batch_size=32, dtype=torch.float64)()
    # With tiny noise each view sits on a centre; both views on the same one.
    c1 = (x1 @ task.centres.T).argmax(-1)
    c2 = (x2 @ task.centres.T).argmax(-1)
    assert torch.equal(c1, c2)
    assert (x1 - task.centres[c1]).abs().max() < 0.01


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_components=1, dim=4, noise=0.1), "n_components"),
        (dict(n_components=6, dim=4, noise=0.1), "dim"),
        (dict(n_components=3, dim=4, noise=0.0), "noise"),
        (dict(n_components=3, dim=4, noise=0.1, magnitudes=[1.0, 2.0]), "magnitudes"),
        (dict(n_components=3, dim=4, noise=0.1, weights=[1.0, -1.0, 1.0]), "weights"),
        (dict(n_components=3, dim=4, noise=0.1, layout="grid"), "layout"),
        (dict(n_components=3, dim=4, noise=0.1, seed=-1), "seed"),
        (dict(n_components=3, dim=4, noise=0.1, layout="equiangular"), "cosine"),
        (dict(n_components=3, dim=4, noise=0.1, layout="equiangular", cosine=-0.6), "cosine"),
        (dict(n_components=3, dim=4, noise=0.1, layout="equiangular", cosine=1.0), "cosine"),
        (dict(n_components=5, dim=4, noise=0.1, layout="equiangular", cosine=0.0), "dim"),
        (dict(n_components=3, dim=4, noise=0.1, cosine=0.1), "cosine"),
        (dict(n_components=3, dim=4, noise=0.1, views="shared"), "views"),
        (dict(n_components=3, dim=4, noise=0.1, augment_noise=0.1), "augment_noise"),
        (dict(n_components=3, dim=4, noise=0.1, views="additive", augment_noise=-0.1), "augment_noise"),
    ],
)
def test_make_mixture_rejects_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_mixture(**kwargs)


def test_task_and_sampler_reject_bad_input():
    centres = torch.eye(3, dtype=DT)
    with pytest.raises(ValueError, match="weights"):
        MixtureTask(centres, torch.tensor([0.5, 0.5, 0.5], dtype=DT), 0.1)
    with pytest.raises(ValueError, match="centres"):
        MixtureTask(centres[:1], torch.tensor([1.0], dtype=DT), 0.1)
    task = make_mixture(3, 4, noise=0.1)
    with pytest.raises(ValueError, match="seeds"):
        task.sampler([], batch_size=8)
    with pytest.raises(ValueError, match="batch_size"):
        task.sampler([0], batch_size=1)
    with pytest.raises(ValueError, match="dtype"):
        task.sampler([0], batch_size=8, dtype=torch.int64)
