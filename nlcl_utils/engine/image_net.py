"""The two-layer receptive-field network on dense inputs (image patches), batched over replicas.

Same network and conventions as :class:`nlcl_utils.engine.models.ReceptiveFieldNet` (the token
engine), but RF k's input is a dense vector ``x_k in R^d`` (a patch) instead of a token id,
so the engine's per-token tables do not apply; the step is a few batched matrix products.

* first layer ``first [R, K, M, d]`` (filter m of receptive field k), activation h;
* optional BatchNorm over the K*M hidden units: no affine parameters, biased batch variance,
  eps ``bn_eps``, statistics of each view's batch separately; gradient through the batch mean
  (``bn_mean_grad``) but not the variance (``bn_var_grad=False``) by default; ``bn_scale=False``
  is mean-only BN;
* top layer ``top [R, out, K*M]`` (hidden unit index ``k*M + m``), no biases, L2-normalized
  output; InfoNCE (``tau``, negatives from the first view) or the quadratic loss, both from
  :mod:`nlcl_utils.engine.models`.

Inputs: views ``(x1, x2)``, each ``[R, N, K, d]``. :meth:`DenseReceptiveFieldNet.loss_and_grads`
is the fast path with a hand-written backward pass (it follows the model protocol of
:func:`nlcl_utils.engine.train.train`); :meth:`DenseReceptiveFieldNet.reference_loss_and_grads` is the
autograd reference it is tested against in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from nlcl_utils.engine.models import (
    NORM_EPS,
    HiddenLayerOptions,
    contrastive_head,
    default_uniform,
    reference_objective,
)
from nlcl_utils.seeds import check_seeds, replica_generator

Tensor = torch.Tensor


class DenseReceptiveFieldNet(HiddenLayerOptions):
    """Two-layer receptive-field network on dense inputs (see the module docstring)."""

    param_names = ("first", "top")

    def __init__(
        self,
        first: Tensor,
        top: Tensor,
        **options: Any,
    ):
        """first [R, K, M, d], top [R, out, K*M]; options: see :class:`HiddenLayerOptions`."""
        if first.dim() != 4:
            raise ValueError(f"first: expected shape [R, K, M, d], got {tuple(first.shape)}")
        r, k, m, _ = first.shape
        if top.dim() != 3 or top.shape[0] != r or top.shape[2] != k * m:
            raise ValueError(f"top: expected shape [R={r}, out, K*M={k * m}], got {tuple(top.shape)}")
        self._set_hidden_options(**options)
        self.first, self.top = first, top

    @classmethod
    def init(
        cls,
        seeds: Sequence[int],
        locations: int,
        filters: int,
        dim: int,
        out_dim: int,
        dtype: torch.dtype = torch.float32,
        **options,
    ) -> DenseReceptiveFieldNet:
        """PyTorch-default init from each replica's ``init`` generator (draw order as the token engine).

        ``first [K, M, d]`` with bound 1/sqrt(d), then ``top [out, K*M]`` with bound 1/sqrt(K*M).
        """
        seeds = check_seeds(seeds)
        for name, value in (("locations", locations), ("filters", filters), ("dim", dim), ("out_dim", out_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
        firsts, tops = [], []
        for seed in seeds:
            gen = replica_generator(seed, "init")
            firsts.append(default_uniform((locations, filters, dim), dim, gen, dtype))
            tops.append(default_uniform((out_dim, locations * filters), locations * filters, gen, dtype))
        return cls(torch.stack(firsts), torch.stack(tops), **options)

    @property
    def params(self) -> list[Tensor]:
        return [self.first, self.top]

    def _check_inputs(self, x: Tensor) -> None:
        r, k, _, d = self.first.shape
        if x.dim() != 4 or x.shape[0] != r or x.shape[2] != k or x.shape[3] != d:
            raise ValueError(f"inputs: expected shape [R={r}, N, K={k}, d={d}], got {tuple(x.shape)}")

    def hidden(self, x: Tensor) -> Tensor:
        """Hidden activations ``h(w_km . x_k)`` (no BN) for inputs ``[R, N, K, d]``: ``[R, N, K*M]``."""
        self._check_inputs(x)
        pre = torch.einsum("rnkd,rkmd->rnkm", x, self.first.to(x.dtype))
        return self.act.fn(pre).flatten(2)

    # -- fast path --------------------------------------------------------------------------
    def loss_and_grads(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Loss [R] and gradients ``[d first, d top]`` for views ``(x1, x2)`` [R, N, K, d]."""
        x1, x2 = batch
        self._check_inputs(x1)
        self._check_inputs(x2)
        r, k, m, d = self.first.shape
        n = x1.shape[1]
        # inputs per receptive field, both views stacked along the sample axis: [R*K, 2N, d]
        x = torch.stack([x1, x2], 1).permute(0, 3, 1, 2, 4).reshape(r * k, 2 * n, d)
        pre = torch.bmm(x, self.first.view(r * k, m, d).transpose(1, 2))  # [R*K, 2N, M]
        hidden, gate = self.act.fn(pre), self.act.gate(pre)
        normed, inv_std = self._batch_norm(hidden.view(r * k, 2, n, m))  # [R*K, 2, N, M]
        units = normed.view(r, k, 2 * n, m).permute(0, 2, 1, 3).reshape(r, 2 * n, k * m)
        f = torch.bmm(units, self.top.transpose(1, 2))  # [R, 2N, out]

        norm = f.norm(dim=-1, keepdim=True).clamp_(min=NORM_EPS)
        u = f / norm
        loss, g1, g2 = contrastive_head(u[:, :n], u[:, n:], self.loss_name, self.tau)
        gu = torch.cat([g1, g2], 1)
        grad_f = gu.sub_(u * (u * gu).sum(-1, keepdim=True)).div_(norm)  # through the L2 normalization

        grad_top = torch.bmm(grad_f.transpose(1, 2), units)  # [R, out, K*M]
        grad_units = torch.bmm(grad_f, self.top)  # [R, 2N, K*M]
        grad_normed = grad_units.view(r, 2 * n, k, m).permute(0, 2, 1, 3).reshape(r * k, 2, n, m)
        grad_hidden = self._batch_norm_backward(grad_normed, normed, inv_std)
        grad_pre = grad_hidden.view(r * k, 2 * n, m).mul_(gate)
        grad_first = torch.bmm(grad_pre.transpose(1, 2), x).view(r, k, m, d)
        return loss, [grad_first, grad_top]

    def _batch_norm(self, hidden: Tensor) -> tuple[Tensor, Tensor | None]:
        """Per-view BN of ``hidden [R*K, 2, N, M]`` over N; returns (normalized, 1/sqrt(var+eps) or None)."""
        if not self.bn:
            return hidden, None
        centred = hidden - hidden.mean(2, keepdim=True)
        if not self.bn_scale:
            return centred, None
        inv_std = (centred.square().mean(2, keepdim=True) + self.bn_eps).rsqrt_()
        return centred * inv_std, inv_std

    def _batch_norm_backward(self, grad: Tensor, normed: Tensor, inv_std: Tensor | None) -> Tensor:
        """dL/dhidden from dL/dnormed (both [R*K, 2, N, M]) with the mean/variance gradient switches."""
        if not self.bn:
            return grad
        out = grad
        if self.bn_mean_grad:
            out = out - grad.mean(2, keepdim=True)
        if self.bn_var_grad:
            out = out - normed * (grad * normed).mean(2, keepdim=True)
        return out if inv_std is None else out * inv_std

    # -- autograd reference -----------------------------------------------------------------
    def reference_outputs(self, x: Tensor, first: Tensor | None = None, top: Tensor | None = None) -> Tensor:
        """Unit outputs [R, N, out] of one view ``x [R, N, K, d]``, as plain autograd code."""
        first = self.first if first is None else first
        top = self.top if top is None else top
        hidden = self.act.fn(torch.einsum("rnkd,rkmd->rnkm", x, first)).flatten(2)
        if self.bn:
            mean = hidden.mean(1, keepdim=True)
            hidden = hidden - (mean if self.bn_mean_grad else mean.detach())
            if self.bn_scale:
                var = (hidden**2).mean(1, keepdim=True)
                hidden = hidden / torch.sqrt((var if self.bn_var_grad else var.detach()) + self.bn_eps)
        return F.normalize(hidden @ top.transpose(1, 2), dim=-1, eps=NORM_EPS)

    def reference_loss_and_grads(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Same contract as :meth:`loss_and_grads`, by autograd (slow; for tests)."""
        first = self.first.detach().clone().requires_grad_(True)
        top = self.top.detach().clone().requires_grad_(True)
        x1, x2 = batch
        u1, u2 = self.reference_outputs(x1, first, top), self.reference_outputs(x2, first, top)
        loss = reference_objective(u1, u2, self.loss_name, self.tau)
        grads = torch.autograd.grad(loss.sum(), [first, top])
        return loss.detach(), list(grads)
