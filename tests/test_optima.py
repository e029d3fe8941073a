"""Optimum clustering, centre matching, basin sizes and the coupon-collector predictions."""

import math

import pytest
import torch

from nlcl_utils.data.mixture import make_mixture
from nlcl_utils.theory import optima as op

DT = torch.float64


def _noisy_copies(dirs, counts, spread, seed):
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for d, n in zip(dirs, counts):
        rows.append(d + spread * torch.randn(n, d.numel(), generator=gen, dtype=DT))
    w = torch.cat(rows)
    perm = torch.randperm(w.shape[0], generator=gen)
    return w[perm], torch.cat([torch.full((n,), i) for i, n in enumerate(counts)])[perm]


def test_clusters_found_with_counts_in_decreasing_order():
    dirs = torch.eye(4, dtype=DT)[:3]
    w, truth = _noisy_copies(dirs, [5, 20, 9], 1e-3, 0)
    cl = op.cluster_directions(w, threshold=0.99)
    assert cl.n == 3
    assert cl.counts.tolist() == [20, 9, 5]
    assert torch.allclose(cl.fractions, torch.tensor([20, 9, 5], dtype=DT) / 34)
    # Labels are a relabelling of the truth, and cluster 0 is direction 1 (20 members).
    assert all(len(set(truth[cl.labels == k].tolist())) == 1 for k in range(3))
    assert (cl.directions[0] @ dirs[1]) > 0.999
    assert cl.max_spread(w) < 1.0


def test_sign_aware_merges_antipodes():
    e = torch.eye(3, dtype=DT)
    w = torch.stack([e[0], -e[0], e[0], e[1], -e[1]])
    assert op.cluster_directions(w).n == 4
    cl = op.cluster_directions(w, sign_aware=True)
    assert cl.n == 2 and cl.counts.tolist() == [3, 2]
    assert abs(float(cl.directions[0] @ e[0])) == pytest.approx(1.0)
    assert cl.max_spread(w, sign_aware=True) == pytest.approx(0.0, abs=1e-6)


def test_threshold_separates_close_directions():
    a = torch.tensor([1.0, 0.0], dtype=DT)
    angle = math.radians(5.0)  # cos 5 deg = 0.9962
    b = torch.tensor([math.cos(angle), math.sin(angle)], dtype=DT)
    assert op.cluster_directions(torch.stack([a, b]), threshold=0.99).n == 1
    assert op.cluster_directions(torch.stack([a, b]), threshold=0.999).n == 2


def test_match_and_basins():
    centres = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0]], dtype=DT)
    w = torch.tensor([[1.0, 0.01], [0.0, 1.0], [1.0, 1.0], [0.02, -1.0], [-1.0, 0.0]], dtype=DT)
    m = op.match_to_centres(w, centres)
    assert m.centre.tolist() == [0, 1, 0, 2, 2]
    assert m.angle[1].item() == pytest.approx(0.0, abs=1e-6)
    assert m.angle[2].item() == pytest.approx(45.0)
    p = op.component_basins(w, centres, threshold=0.99)
    assert p.tolist() == [0.2, 0.2, 0.0]
    best = op.best_cosine_to_centres(w.unsqueeze(0), centres)  # one network of 5 nodes
    assert best.shape == (1, 3)
    assert best[0, 0].item() == pytest.approx(1.0 / math.hypot(1.0, 0.01))
    assert op.best_cosine_to_centres(-w[:2].unsqueeze(0), centres[:2], sign_aware=True)[0].tolist() == pytest.approx(
        [1.0 / math.hypot(1.0, 0.01), 1.0]
    )


def test_coverage_prediction_closed_forms():
    c = 4
    p = torch.full((c,), 1.0 / c, dtype=DT)
    widths = [0, 1, 2, 10]
    pred = op.coverage_prediction(p, widths)
    assert torch.allclose(pred, torch.tensor([1 - (1 - 1 / c) ** n for n in widths], dtype=DT), atol=1e-15)
    allc = op.all_covered_probability(torch.tensor([0.5, 0.5], dtype=DT), [0, 1, 2, 3])
    assert torch.allclose(allc, torch.tensor([0.0, 0.0, 0.5, 0.75], dtype=DT), atol=1e-15)
    # Classic coupon collector: C * H_C draws on average.
    harmonic = sum(1.0 / k for k in range(1, c + 1))
    assert op.expected_width_to_cover_all(p) == pytest.approx(c * harmonic, rel=1e-9)
    assert op.expected_width_to_cover_all(torch.tensor([0.5, 0.0], dtype=DT)) == math.inf


def test_coverage_mean_and_variance_match_simulation():
    p = torch.tensor([0.4, 0.25, 0.2, 0.05], dtype=DT)  # 0.1 of the mass captures nothing
    widths = [1, 3, 8]
    gen = torch.Generator().manual_seed(0)
    trials = 40_000
    probs = torch.cat([p, 1 - p.sum().unsqueeze(0)])
    for i, n in enumerate(widths):
        draws = torch.multinomial(probs.expand(trials, 5), n, replacement=True, generator=gen)  # [T, n]
        hit = torch.zeros(trials, 5, dtype=torch.bool).scatter_(1, draws, True)[:, :4]
        frac = hit.to(DT).mean(1)
        var = op.coverage_variance(p, widths)[i]
        mean = op.coverage_prediction(p, widths)[i]
        assert abs(frac.mean() - mean) <= 5 * math.sqrt(var / trials)
        assert frac.var().item() == pytest.approx(var.item(), rel=0.05)


def test_bad_input_raises_naming_the_parameter():
    w = torch.eye(3, dtype=DT)
    with pytest.raises(ValueError, match="threshold"):
        op.cluster_directions(w, threshold=1.5)
    with pytest.raises(ValueError, match="w"):
        op.cluster_directions(torch.zeros(2, 3, dtype=DT))
    with pytest.raises(ValueError, match="directions, centres"):
        op.match_to_centres(w, torch.eye(2, dtype=DT))
    with pytest.raises(ValueError, match="p"):
        op.coverage_prediction(torch.tensor([0.7, 0.6], dtype=DT), [1])
    with pytest.raises(ValueError, match="widths"):
        op.coverage_prediction(torch.tensor([0.5, 0.5], dtype=DT), [1.5])


def test_summarize_optima_counts_and_angles():
    centres = torch.eye(3, dtype=torch.float64) * torch.tensor([[2.0], [1.0], [1.0]], dtype=torch.float64)
    tilt = math.radians(5.0)
    w = torch.tensor(
        [[1, 0, 0], [1, 0, 0], [math.cos(tilt), math.sin(tilt), 0], [0, 1, 0], [0, -1, 0]], dtype=torch.float64
    )
    conv = torch.tensor([True, True, True, True, False])
    s = op.summarize_optima(w, conv, centres, threshold=0.99)
    assert s.n == 2 and s.converged == 4 and s.total == 5  # the tilted row joins c0's cluster (5 deg < 8.1)
    assert s.captured == 2 and abs(s.captured_fraction - 2 / 3) < 1e-15
    assert s.centre_angle[2] > 89.0
    with pytest.raises(ValueError, match="converged"):
        op.summarize_optima(w, torch.zeros(5, dtype=torch.bool), centres)


@pytest.mark.parametrize("cosine", [0.05, 0.2, 0.6])
def test_equiangular_tilt_is_the_angle_to_the_gated_out_cone(cosine):
    c = 6
    u = make_mixture(c, c, noise=0.1, layout="equiangular", cosine=cosine, seed=0).centres
    beta = cosine / (1 + (c - 2) * cosine)
    w = u[0] - beta * u[1:].sum(0)  # closest point of {w : w^T u_m <= 0, m > 0} to u_0 (KKT, beta > 0)
    assert (w @ u[1:].T).abs().max() < 1e-12
    angle = math.degrees(math.acos(float(w @ u[0] / w.norm())))
    assert abs(op.equiangular_tilt(cosine, c) - angle) < 1e-9
    # No direction of the cone is closer: random cone points have a smaller cosine with u_0.
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(20000, c, generator=gen, dtype=torch.float64)
    inside = (v @ u[1:].T <= 0).all(1) & (v @ u[0] > 0)
    cos = (v[inside] @ u[0]) / v[inside].norm(dim=1)
    assert inside.sum() > 10 and float(cos.max()) <= float(w @ u[0] / w.norm()) + 1e-12
    assert op.equiangular_tilt(-0.1, c) == 0.0
    with pytest.raises(ValueError, match="cosine"):
        op.equiangular_tilt(-0.5, c)
