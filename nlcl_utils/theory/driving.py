"""The matrices that drive each filter of a trained receptive-field network (``docs/theory.md`` §4, T2.3).

Network and notation as in :mod:`nlcl_utils.engine.models` (``first [R, K, M, d]``, ``top [R, out, K*M]``,
hidden unit ``(k, m)`` = ``h(w_km . x_k)``, BN over each view's batch, ``f = V hn``, L2-normalized
output, contrastive loss L). Let ``phi_i = dL/df_i`` (per view v, per sample i; ``[R, N, out]``) and
``psi_i = phi_i - mean_i phi_i`` when BN passes its gradient through the batch mean (else
``psi = phi``). BN's variance is not differentiated (the engine's default), so its per-unit factor
``s^v_km = 1/sqrt(var^v_km + eps)`` (1 without BN or with mean-only BN) is a constant, and for a
homogeneous h the chain rule gives exactly

    grad_{w_km} L = sum_v s^v_km D^v_km v_km,      D^v_km = sum_i h'(w_km . x^v_ki) x^v_ki psi^v_i^T   [d, out],

with ``v_km = top[:, :, k*M + m]`` the unit's top-layer column. ``D^v_km`` is filter (k, m)'s
**driving matrix** in view v. With a linear h, ``h' = 1`` and ``D^v_km = D^v_k`` for every m: the
filters of an RF are driven by the same two matrices, and differ only through their own top-layer
column and BN's per-unit scale. With ReLU, ``h'`` is the gate ``1[w_km . x > 0]``: for one-hot
tokens row t of ``D^v_km`` is row t of the ungated matrix times the filter's gate on token t, so
the filters' matrices differ exactly where their gates do.

**Spread** of an RF's driving matrices (:meth:`DrivingMatrices.spread`, [R, K])::

    S_k = sum_{v,m} |D^v_km - mean_m D^v_km|_F^2  /  sum_{v,m} |D^v_km|_F^2   in [0, 1 - 1/M].

0 when every filter of the RF has the same matrices (linear h: exactly). For binary gates and
one-hot tokens, ``S_k`` is the average over tokens t of ``1 - g_t`` (``g_t``: fraction of the RF's
filters open on t), weighted by ``|row t|^2 g_t``: filters open on one token each, no token
shared by more than half of them, give ``S_k >= 1/2``; independent random gates (open with
probability 1/2, as at a symmetric init) give about ``1/2 (1 - 1/M)``.

Everything is computed by a float64 autograd forward written here (the engine's reference path
of :meth:`nlcl_utils.engine.models.ReceptiveFieldNet.reference_loss` checks it: :attr:`gradient`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nlcl_utils.engine.models import NORM_EPS, ReceptiveFieldNet, reference_objective

Tensor = torch.Tensor
F64 = torch.float64


@dataclass
class DrivingMatrices:
    """Per-filter driving matrices of R networks on one batch of two views (module docstring).

    matrices [R, 2, K, M, d, out] (``D^v_km``); scales [R, 2, K, M] (``s^v_km``); top_columns
    [R, K, M, out] (``v_km``); gradient [R, K, M, d]: ``grad_first`` of the engine's reference loss
    (autograd), the quantity the decomposition must reproduce; loss [R].
    """

    matrices: Tensor
    scales: Tensor
    top_columns: Tensor
    gradient: Tensor
    loss: Tensor

    def reconstructed_gradient(self) -> Tensor:
        """``sum_v s^v_km D^v_km v_km``, [R, K, M, d]."""
        return torch.einsum("rvkm,rvkmdo,rkmo->rkmd", self.scales, self.matrices, self.top_columns)

    def gradient_error(self) -> Tensor:
        """Relative error of :meth:`reconstructed_gradient` against autograd, per replica [R]."""
        diff = (self.reconstructed_gradient() - self.gradient).flatten(1).norm(dim=1)
        return diff / self.gradient.flatten(1).norm(dim=1).clamp(min=NORM_EPS)

    def spread(self) -> Tensor:
        """``S_k`` of every RF, [R, K] (module docstring); NaN for an RF whose matrices are all zero."""
        centred = self.matrices - self.matrices.mean(3, keepdim=True)
        num = centred.square().sum((1, 3, 4, 5))
        den = self.matrices.square().sum((1, 3, 4, 5))
        return num / den


def driving_matrices(net: ReceptiveFieldNet, batch: tuple[Tensor, Tensor]) -> DrivingMatrices:
    """Driving matrices of ``net``'s filters on ``batch = (tok1, tok2)`` [R, N, K], in float64.

    ``net``: a :class:`ReceptiveFieldNet` with a homogeneous activation (linear, ReLU, LeakyReLU)
    whose BN does not differentiate the variance (``bn_var_grad=False``, the engine's default).
    Its weights are read, never changed.
    """
    if not net.act.homogeneous:
        raise ValueError("net: the decomposition needs a homogeneous activation (linear, relu, leaky_relu)")
    if net.bn and net.bn_var_grad:
        raise ValueError("net: bn_var_grad=True adds a term the driving matrices do not hold; use bn_var_grad=False")
    tok1, tok2 = batch
    first = net.first.detach().to(F64)
    top = net.top.detach().to(F64)
    emb = net.embeddings.to(F64)
    r, k, m, d = first.shape
    out = top.shape[1]
    views, scales, fs = [], [], []
    for tokens in (tok1, tok2):
        n = tokens.shape[1]
        x = emb.gather(1, tokens.reshape(r, n * k, 1).expand(r, n * k, d)).reshape(r, n, k, d)
        pre = torch.einsum("rnkd,rkmd->rnkm", x, first)
        hidden = net.act.fn(pre).reshape(r, n, k * m)
        scale = torch.ones(r, k * m, dtype=F64)
        if net.bn:
            hidden = hidden - hidden.mean(1, keepdim=True)
            if net.bn_scale:
                scale = (hidden.square().mean(1) + net.bn_eps).rsqrt()
                hidden = hidden * scale.unsqueeze(1)
        f = (hidden @ top.transpose(1, 2)).requires_grad_(True)
        views.append((x, net.act.gate(pre), n))
        scales.append(scale.view(r, k, m))
        fs.append(f)
    u1, u2 = (F.normalize(f, dim=-1, eps=NORM_EPS) for f in fs)
    loss = reference_objective(u1, u2, net.loss_name, net.tau)
    phis = torch.autograd.grad(loss.sum(), fs)
    matrices = []
    for (x, gate, _), phi in zip(views, phis):
        psi = phi - phi.mean(1, keepdim=True) if (net.bn and net.bn_mean_grad) else phi
        matrices.append(torch.einsum("rnkm,rnkd,rno->rkmdo", gate, x, psi))
    reference = copy.copy(net)  # the engine's own autograd path, on float64 copies of the weights
    reference.embeddings = emb
    weights = first.clone().requires_grad_(True)
    (grad_first,) = torch.autograd.grad(reference.reference_loss(batch, weights, top).sum(), [weights])
    columns = top.reshape(r, out, k, m).permute(0, 2, 3, 1)
    return DrivingMatrices(
        torch.stack(matrices, 1), torch.stack(scales, 1), columns.contiguous(), grad_first, loss.detach()
    )
