"""Driving matrices: they rebuild the engine's own gradient, and linear filters of an RF share them."""

import pytest
import torch

from nlcl_utils.data.tokens import TokenSampler, TokenTaskSpec, make_tasks
from nlcl_utils.engine.models import ReceptiveFieldNet
from nlcl_utils.theory.driving import driving_matrices

SPEC = TokenTaskSpec(vocab=6, locations=3, per_location=2, patterns=4, pattern_len=2)
BN_SETTINGS = [
    {"bn": True},  # the paper's: full BN, gradient through the mean only
    {"bn": True, "bn_scale": False},  # mean-only BN
    {"bn": True, "bn_mean_grad": False},
    {"bn": False},
]


def _net(activation, dtype=torch.float32, **bn):
    tasks = make_tasks(SPEC, [0, 1], dtype=dtype)
    net = ReceptiveFieldNet.init(
        [0, 1], tasks.embeddings, SPEC.locations, 4, 5, dtype=dtype, activation=activation, **bn
    )
    return net, TokenSampler(tasks, 16)()


@pytest.mark.parametrize("bn", BN_SETTINGS)
@pytest.mark.parametrize("activation", ["linear", "relu", "leaky_relu"])
def test_decomposition_rebuilds_the_reference_gradient(activation, bn):
    net, batch = _net(activation, **bn)
    dm = driving_matrices(net, batch)
    assert dm.matrices.shape == (2, 2, SPEC.locations, 4, SPEC.vocab, 5)
    assert (dm.gradient_error() <= 1e-12).all()
    spread = dm.spread()
    if activation == "linear":
        assert (spread == 0).all()  # h' = 1: the same matrices for every filter of an RF
    else:
        assert (spread > 0.05).all()  # random gates differ per filter


def test_relu_matrices_are_the_gated_rows_for_one_hot_tokens():
    """Row t of filter (k, m)'s matrix vanishes where its gate on token t is closed (w_km[t] <= 0)."""
    net, batch = _net("relu", dtype=torch.float64)
    dm = driving_matrices(net, batch)
    closed = net.first <= 0  # [R, K, M, V]: one-hot token t's pre-activation is w_km[t]
    rows = dm.matrices.abs().sum((1, -1))  # [R, K, M, V]
    assert (rows[closed] == 0).all() and (rows[~closed] > 0).any()


def test_spread_of_known_matrices():
    net, batch = _net("relu")
    dm = driving_matrices(net, batch)
    dm.matrices = torch.zeros_like(dm.matrices)
    dm.matrices[:, :, :, 0, 0, 0] = 1.0  # one filter of each RF driven, the other three not
    m = dm.matrices.shape[3]
    assert torch.allclose(dm.spread(), torch.full((2, SPEC.locations), 1 - 1 / m, dtype=torch.float64))


def test_refuses_what_it_cannot_decompose():
    net, batch = _net("tanh")
    with pytest.raises(ValueError, match="homogeneous"):
        driving_matrices(net, batch)
    net, batch = _net("relu", bn=True, bn_var_grad=True)
    with pytest.raises(ValueError, match="bn_var_grad"):
        driving_matrices(net, batch)
