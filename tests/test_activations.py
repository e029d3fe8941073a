"""Activations: values, gates (h') against autograd, homogeneity, clear errors."""

import pytest
import torch

from nlcl_utils.engine import activations

DT = torch.float64
X = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=DT)


def test_hand_values():
    relu = activations.get_activation("relu")
    assert relu(X).tolist() == [0.0, 0.0, 0.0, 0.5, 3.0]
    assert relu.gate(X).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]  # autograd's convention at 0
    leaky = activations.get_activation("leaky_relu", slope=0.25)
    assert leaky(X).tolist() == [-0.5, -0.125, 0.0, 0.5, 3.0]
    assert leaky.gate(X).tolist() == [0.25, 0.25, 0.25, 1.0, 1.0]
    assert activations.get_activation("quadratic")(X).tolist() == [4.0, 0.25, 0.0, 0.25, 9.0]


@pytest.mark.parametrize("name", activations.ACTIVATION_NAMES)
def test_gate_is_derivative(name):
    act = activations.get_activation(name, slope=0.3)
    x = torch.linspace(-3, 3, 61, dtype=DT).requires_grad_()
    (grad,) = torch.autograd.grad(act(x).sum(), x)
    torch.testing.assert_close(act.gate(x.detach()), grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", activations.ACTIVATION_NAMES)
def test_homogeneity_flag_is_true(name):
    act = activations.get_activation(name, slope=0.3)
    x = torch.linspace(-3, 3, 61, dtype=DT)
    holds = torch.allclose(act(x), act.gate(x) * x, rtol=1e-12, atol=1e-12)
    assert holds == act.homogeneous == (name in activations.HOMOGENEOUS_NAMES)


def test_gated_input_reproduces_node_output():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 4, generator=gen, dtype=DT)
    w = torch.randn(3, 4, generator=gen, dtype=DT)
    for name in activations.HOMOGENEOUS_NAMES:
        act = activations.get_activation(name)
        xt = activations.gated_input(x, w, act)
        torch.testing.assert_close(torch.einsum("rnd,rd->rn", xt, w), act(torch.einsum("rnd,rd->rn", x, w)))


def test_bad_names_and_slopes():
    with pytest.raises(ValueError, match="activation: unknown name 'rellu'.*relu"):
        activations.get_activation("rellu")
    with pytest.raises(ValueError, match="slope"):
        activations.get_activation("leaky_relu", slope=1.5)
