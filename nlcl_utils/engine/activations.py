"""Activations and their gates h'.

The paper's analysis needs a *homogeneous* activation, ``h(x) = h'(x) x`` (linear, ReLU,
LeakyReLU); then a node's output is its gated input times its weight,
``h(w^T x) = w^T x~_w`` with ``x~_w = h'(w^T x) x``. The non-homogeneous activations
(quadratic, sigmoid, tanh, GELU) are here as contrasts: for them that identity fails.

Every activation is an :class:`Activation` with ``fn`` (h), ``gate`` (h') and
``homogeneous``; ``get_activation(name, slope=...)`` builds one and rejects unknown names.
Gates follow autograd's convention at the kink: ReLU's gate at 0 is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Tensor = torch.Tensor

ACTIVATION_NAMES = ("linear", "relu", "leaky_relu", "quadratic", "sigmoid", "tanh", "gelu")
HOMOGENEOUS_NAMES = ("linear", "relu", "leaky_relu")


@dataclass(frozen=True)
class Activation:
    """An elementwise activation ``fn`` with its derivative ``gate``.

    ``homogeneous`` is True when ``fn(x) == gate(x) * x`` for every x (degree-1 homogeneous).
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    gate: Callable[[Tensor], Tensor]
    homogeneous: bool

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)


def _linear(x: Tensor) -> Tensor:
    return x


def _ones(x: Tensor) -> Tensor:
    return torch.ones_like(x)


def _relu_gate(x: Tensor) -> Tensor:
    return (x > 0).to(x.dtype)


def _sigmoid_gate(x: Tensor) -> Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def _tanh_gate(x: Tensor) -> Tensor:
    return 1 - torch.tanh(x) ** 2


def _gelu_gate(x: Tensor) -> Tensor:
    # d/dx [x Phi(x)] = Phi(x) + x phi(x), exact (erf) GELU as in torch's default.
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return cdf + x * pdf


def get_activation(name: str, slope: float = 0.1) -> Activation:
    """Build the activation called ``name`` (one of :data:`ACTIVATION_NAMES`).

    ``slope`` is the negative-side slope of ``leaky_relu`` (0 gives ReLU, 1 gives linear);
    it must lie in [0, 1] and is ignored by the other activations.
    """
    if name not in ACTIVATION_NAMES:
        raise ValueError(f"activation: unknown name {name!r}; allowed: {', '.join(ACTIVATION_NAMES)}")
    if name == "linear":
        return Activation("linear", _linear, _ones, True)
    if name == "relu":
        return Activation("relu", torch.relu, _relu_gate, True)
    if name == "leaky_relu":
        slope = float(slope)
        if not 0.0 <= slope <= 1.0:
            raise ValueError(f"slope: must be in [0, 1] for leaky_relu, got {slope}")

        def leaky(x: Tensor) -> Tensor:
            return torch.where(x > 0, x, slope * x)

        def leaky_gate(x: Tensor) -> Tensor:
            return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope))

        return Activation(f"leaky_relu({slope:g})", leaky, leaky_gate, True)
    if name == "quadratic":
        return Activation("quadratic", lambda x: x * x, lambda x: 2 * x, False)
    if name == "sigmoid":
        return Activation("sigmoid", torch.sigmoid, _sigmoid_gate, False)
    if name == "tanh":
        return Activation("tanh", torch.tanh, _tanh_gate, False)
    return Activation("gelu", torch.nn.functional.gelu, _gelu_gate, False)


def gated_input(x: Tensor, w: Tensor, activation: Activation) -> Tensor:
    """The gated input ``x~_w = h'(w^T x) x`` of one node.

    x: [..., N, d] samples; w: [..., d] weight (leading dims broadcast). Returns [..., N, d].
    For a homogeneous activation ``(x~_w @ w) == activation(x @ w)``.
    """
    pre = torch.einsum("...nd,...d->...n", x, w)
    return activation.gate(pre).unsqueeze(-1) * x
