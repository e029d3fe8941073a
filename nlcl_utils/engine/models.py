"""Networks batched over replicas, with their contrastive loss and gradients.

Two networks, both following the *model protocol* that :func:`nlcl_utils.engine.train.train` uses:
``params`` (list of tensors with leading replica dim R, updated in place by the optimizer),
``param_names`` (names of the snapshots) and ``loss_and_grads(batch) -> (loss [R], grads)``
where ``batch = (view1, view2)``.

* :class:`ReceptiveFieldNet`, the two-layer network of ``docs/theory.md`` sections 4 and 6:
  first layer ``first [R, K, M, d]`` (filter m of receptive field k), activation h, optional
  BatchNorm over the K*M hidden units (no affine parameters, biased batch variance, eps
  ``bn_eps``, statistics of each view's batch separately, as when the two views go through the
  network in two forward passes; ``bn_scale=False`` makes it mean-only: centring, no division),
  top layer ``top [R, out, K*M]`` (hidden unit index
  ``k*M + m``), no biases, L2-normalized output. Its inputs are token ids ``[R, N, K]``: the
  input of RF k is the embedding of the token there (``embeddings [R, V, d]``).
* :class:`OneLayerNet`, ``f_j = h(w_j^T x)`` with ``weights [R, nodes, d]``, optional weight
  normalization (``w / |w|`` in the forward pass) and optional L2-normalized output; inputs
  ``[R, N, d]``.

Losses (``loss=``): ``"infonce"`` is the paper-form InfoNCE of :mod:`nlcl_utils.engine.alpha_cl`
(eps = 1, negatives from the first view) divided by ``tau * N``, i.e. the usual mean
cross-entropy; ``"quadratic"`` is ``alpha_cl.quadratic_loss`` (uniform alpha);
``"quadratic_tau"`` is the same loss of the similarity matrix divided by tau, ``quadratic(M / tau)``.

Scaling of the quadratic loss. ``"quadratic"`` does not use tau: its gradient has the scale of
the similarities themselves, while InfoNCE's carries a factor ``1/tau`` (its logits are
``M / tau``). For large tau InfoNCE's importance becomes uniform and, expanding the log to first
order, ``infonce(M; tau) = log N + (N - 1)/N * quadratic(M) / tau + O(1/tau^2)``: the quadratic
loss at *the same step size and weight decay* as InfoNCE corresponds to ``tau = 1`` and, against
the paper's tau = 0.1, takes steps ten times smaller relative to the weight decay.
``"quadratic_tau"`` restores the ``1/tau`` factor (InfoNCE's large-tau limit up to ``(N-1)/N``,
a test checks it), so uniform alpha can be compared with InfoNCE at the same tau.

Heads (``head=``): ``"joint"`` (default, the paper's network) sums the K receptive fields'
contributions into one output vector; ``"per_rf"`` is the *decoupled* (block-diagonal) top
layer: RF k's hidden units feed only their own output block ``top[:, :, k*M:(k+1)*M]`` (the
same parameter tensor ``[R, out, K*M]``, read block by block), each block is L2-normalized on
its own and has its own contrastive loss, and the training loss is the sum of the K losses. No
gradient flows from one RF's output to another RF's filters: the cross-RF coupling of the top
layer is removed by construction, the augmentation is unchanged.

Output dimension 1 is degenerate for either head: the L2-normalized output is +-1, so the loss
is locally constant and every gradient is exactly zero (a test checks it). A rank-one top layer
is equally frozen; out >= 2 is the smallest trainable output.

Fast path. Because the input of RF k is one of only V vectors, every pre-activation, hidden
value and gate of RF k is a function of the token: the engine computes them once per token
(tables ``[R, K, M, V]``), gets the BatchNorm statistics from the token counts of the batch,
folds BN and the top layer into an output table ``[.., K, V, out]`` and forms each output as a
sum of K table rows (``embedding_bag``). The backward pass is hand-written (InfoNCE or
quadratic gradient, L2-normalization, table scatter with ``index_add_``, top layer, BN with
the mean/variance switches, gate, embedding) and is checked against the autograd reference
:meth:`ReceptiveFieldNet.reference_loss` in float64 by the tests. It is exact for every
activation of :mod:`nlcl_utils.engine.activations` and every BN switch: there is no option that only
the reference path supports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from nlcl_utils.engine import alpha_cl
from nlcl_utils.engine.activations import LEAKY_SLOPE, Activation, get_activation
from nlcl_utils.seeds import check_seeds, replica_generator

Tensor = torch.Tensor

LOSS_NAMES = ("infonce", "quadratic", "quadratic_tau")
HEAD_NAMES = ("joint", "per_rf")
NORM_EPS = 1e-12  # as torch.nn.functional.normalize


def check_loss(loss: str, tau: float) -> None:
    """Raise ValueError for an unknown loss name or a non-positive temperature."""
    if loss not in LOSS_NAMES:
        raise ValueError(f"loss: unknown {loss!r}; allowed: {', '.join(LOSS_NAMES)}")
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau: must be a finite number > 0, got {tau!r}")


def default_uniform(shape: Sequence[int], fan_in: int, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    """PyTorch's default ``nn.Linear`` weight init: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    Same as ``kaiming_uniform_(a=sqrt(5))`` with the same generator (one ``uniform_`` call).
    """
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(tuple(shape), dtype=dtype).uniform_(-bound, bound, generator=gen)


# ----------------------------------------------------------------------------------------------
# Contrastive heads: loss [R] and its gradient with respect to the unit outputs u1, u2 [R, N, D].
# ----------------------------------------------------------------------------------------------


def infonce_head(u1: Tensor, u2: Tensor, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """Mean InfoNCE of unit vectors and its gradient.

    With ``S_ij = u1_i.u1_j`` and ``pos_i = u1_i.u2_i`` the loss is
    ``mean_i log(1 + sum_{j != i} exp((S_ij - pos_i)/tau))`` (= alpha_cl.infonce_loss / (tau N)
    for unit vectors). Gradient: ``dL/du1 = ((alpha + alpha^T) u1 - beta u2) / (N tau)``,
    ``dL/du2 = -beta u1 / (N tau)`` with InfoNCE's pairwise importance alpha.
    Returns ``(loss [R], grad_u1, grad_u2)``.
    """
    n = u1.shape[-2]
    sim = torch.bmm(u1, u1.transpose(1, 2))  # [R, N, N]
    pos = (u1 * u2).sum(-1)  # [R, N]
    sim.diagonal(dim1=1, dim2=2).fill_(-math.inf)
    shift = torch.maximum(sim.amax(-1), pos)  # stabilizer: max over the logits and the eps term
    expo = sim.sub_(shift.unsqueeze(-1)).mul_(1.0 / tau).exp_()  # exp((S_ij - m_i)/tau), 0 on diag
    eps_term = ((pos - shift) / tau).exp_()
    total = expo.sum(-1).add_(eps_term)  # [R, N]
    loss = ((shift - pos) / tau + total.log()).mean(-1)
    alpha = expo.div_(total.unsqueeze(-1))
    beta = 1.0 - eps_term / total
    scale = 1.0 / (n * tau)
    grad1 = torch.bmm(alpha + alpha.transpose(1, 2), u1)
    grad1.sub_(beta.unsqueeze(-1) * u2).mul_(scale)
    grad2 = u1 * (beta.unsqueeze(-1) * -scale)
    return loss, grad1, grad2


def quadratic_head(u1: Tensor, u2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Uniform-alpha loss ``-mean_i pos_i + mean_{i != j} S_ij`` of unit vectors and its gradient.

    Equal to ``alpha_cl.quadratic_loss`` for unit vectors. Returns ``(loss [R], grad_u1, grad_u2)``.
    """
    n = u1.shape[-2]
    pairs = n * (n - 1)
    total = u1.sum(1, keepdim=True)  # [R, 1, D]
    sq = (u1 * u1).sum((1, 2))
    pos = (u1 * u2).sum(-1)
    loss = -pos.mean(-1) + ((total * total).sum((1, 2)) - sq) / pairs
    grad1 = (total - u1).mul_(2.0 / pairs).sub_(u2, alpha=1.0 / n)
    grad2 = u1 * (-1.0 / n)
    return loss, grad1, grad2


def check_head(head: str) -> None:
    """Raise ValueError for an unknown head name."""
    if head not in HEAD_NAMES:
        raise ValueError(f"head: unknown {head!r}; allowed: {', '.join(HEAD_NAMES)}")


def contrastive_head(u1: Tensor, u2: Tensor, loss: str, tau: float) -> tuple[Tensor, Tensor, Tensor]:
    """Dispatch to :func:`infonce_head` or :func:`quadratic_head` (``quadratic_tau``: divided by tau)."""
    if loss == "infonce":
        return infonce_head(u1, u2, tau)
    loss_value, grad1, grad2 = quadratic_head(u1, u2)
    if loss == "quadratic_tau":
        return loss_value / tau, grad1.div_(tau), grad2.div_(tau)
    return loss_value, grad1, grad2


def reference_objective(f1: Tensor, f2: Tensor, loss: str, tau: float) -> Tensor:
    """Training objective from :mod:`alpha_cl` (autograd-friendly), shape [R]."""
    if loss == "infonce":
        return alpha_cl.infonce_loss(f1, f2, tau=tau, eps=1.0) / (tau * f1.shape[-2])
    if loss == "quadratic_tau":
        return alpha_cl.quadratic_loss(f1, f2) / tau
    return alpha_cl.quadratic_loss(f1, f2)


# ----------------------------------------------------------------------------------------------
# Two-layer receptive-field network.
# ----------------------------------------------------------------------------------------------


class HiddenLayerOptions:
    """Activation, BatchNorm and loss options of a two-layer network, checked and stored once.

    Both receptive-field networks (tokens here, dense inputs in :mod:`nlcl_utils.engine.image_net`)
    take them as keywords (``NetworkSettings.network_options()`` gives them from a config):
    activation and slope (leaky_relu), bn (BatchNorm on the hidden units), bn_mean_grad /
    bn_var_grad (gradient through the batch mean / variance), bn_eps, bn_scale (False: mean-only
    BN), loss and tau.
    """

    def _set_hidden_options(
        self,
        activation: str = "relu",
        slope: float = LEAKY_SLOPE,
        bn: bool = True,
        bn_mean_grad: bool = True,
        bn_var_grad: bool = False,
        bn_eps: float = 1e-5,
        bn_scale: bool = True,
        loss: str = "infonce",
        tau: float = 0.1,
    ) -> None:
        check_loss(loss, tau)
        if bn_var_grad and not bn_scale:
            raise ValueError("bn_var_grad: a mean-only BN (bn_scale=False) has no variance to pass gradient through")
        if not bn_eps > 0:
            raise ValueError(f"bn_eps: must be > 0, got {bn_eps}")
        self.act: Activation = get_activation(activation, slope=slope)
        self.bn, self.bn_mean_grad, self.bn_var_grad = bool(bn), bool(bn_mean_grad), bool(bn_var_grad)
        self.bn_eps = float(bn_eps)
        self.bn_scale = bool(bn_scale)  # False: mean-only BN (centre each hidden unit, no division)
        self.loss_name, self.tau = loss, float(tau)


class ReceptiveFieldNet(HiddenLayerOptions):
    """Two-layer receptive-field network over R replicas (see the module docstring).

    first: [R, K, M, d]; top: [R, out, K*M]; embeddings: [R, V, d] (token embeddings, rows
    include any magnitudes). Tensors are used in place (the optimizer updates them).
    ``head="per_rf"``: decoupled top layer, RF k's block ``top[:, :, k*M:(k+1)*M]`` is its own
    output (module docstring).
    """

    param_names = ("first", "top")

    def __init__(
        self,
        first: Tensor,
        top: Tensor,
        embeddings: Tensor,
        *,
        head: str = "joint",
        **options: Any,
    ):
        check_head(head)
        self._set_hidden_options(**options)
        r, k, m, d = first.shape
        if top.shape[0] != r or top.shape[2] != k * m:
            raise ValueError(f"top: expected shape [R={r}, out, K*M={k * m}], got {tuple(top.shape)}")
        if embeddings.shape[0] != r or embeddings.shape[2] != d:
            raise ValueError(f"embeddings: expected shape [R={r}, V, d={d}], got {tuple(embeddings.shape)}")
        self.first = first
        # The top layer is stored as [R, K, M, out] (contiguous per receptive field, what the fast
        # path multiplies with); ``self.top`` is a [R, out, K*M] view of that storage, so in-place
        # updates of either are the same. Do not rebind ``top``: update it in place.
        self._top_kmo = top.detach().reshape(r, top.shape[1], k, m).permute(0, 2, 3, 1).contiguous()
        self.top = self._top_kmo.permute(0, 3, 1, 2).view(r, top.shape[1], k * m)
        self.embeddings = embeddings.to(first.dtype)
        self.head = head
        vocab = embeddings.shape[1]
        eye = torch.eye(vocab, dtype=first.dtype)
        self.identity = d == vocab and bool((self.embeddings == eye).all())  # one-hot: skip the embedding matmuls
        self._offsets: dict[tuple[int, int], Tensor] = {}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        seeds: Sequence[int],
        embeddings: Tensor,
        locations: int,
        filters: int,
        out_dim: int,
        dtype: torch.dtype = torch.float32,
        **options,
    ) -> ReceptiveFieldNet:
        """PyTorch-default init, each replica from its own ``init`` generator.

        Draw order per replica: ``first [K, M, d]`` with bound 1/sqrt(d) (each filter is a
        Linear(d, M) row), then ``top [out, K*M]`` with bound 1/sqrt(K*M).
        """
        seeds = check_seeds(seeds)
        d = embeddings.shape[-1]
        firsts, tops = [], []
        for seed in seeds:
            gen = replica_generator(seed, "init")
            firsts.append(default_uniform((locations, filters, d), d, gen, dtype))
            tops.append(default_uniform((out_dim, locations * filters), locations * filters, gen, dtype))
        return cls(torch.stack(firsts), torch.stack(tops), embeddings.to(dtype), **options)

    @property
    def params(self) -> list[Tensor]:
        return [self.first, self.top]

    @property
    def shape(self) -> tuple[int, int, int, int, int, int]:
        """(R, K, M, d, V, out)."""
        r, k, m, d = self.first.shape
        return r, k, m, d, self.embeddings.shape[1], self.top.shape[1]

    # -- fast path --------------------------------------------------------------------------
    # Token tables are laid out [R, K, M, 2, V] (view index before token) so that, flattened to
    # [R*K, M, 2*V], every table product is one plain bmm over the R*K receptive fields.
    def _flat_tokens(self, tok1: Tensor, tok2: Tensor) -> Tensor:
        """Row indices ``[2, R, N, K]`` into a table ``[R, K, 2, V, *]`` flattened over its first 4 dims."""
        r, k, _, _, v, _ = self.shape
        key = (r, k)
        if key not in self._offsets:
            view = torch.arange(2).view(2, 1, 1, 1) * v
            rep = torch.arange(r).view(1, r, 1, 1) * (k * 2 * v)
            loc = torch.arange(k).view(1, 1, 1, k) * (2 * v)
            self._offsets[key] = view + rep + loc
        return torch.stack([tok1, tok2]).add_(self._offsets[key])

    def _check_tokens(self, tok1: Tensor, tok2: Tensor) -> None:
        """Token views must be integer [R, N, K] with ids in [0, V): the table rows of other views
        and RFs follow each other, so an id out of range would silently read a wrong row."""
        for name, tok in (("tok1", tok1), ("tok2", tok2)):
            self._check_view(name, tok)
            if tok.shape != tok1.shape:
                raise ValueError(
                    f"{name}: expected shape {list(tok1.shape)} (that of tok1) for both views, got {list(tok.shape)}"
                )

    def _check_view(self, name: str, tok: Tensor) -> None:
        """One view ``tok``: integer token ids [R, N, K] in [0, V) (else TypeError/ValueError naming ``name``)."""
        r, k, _, _, v, _ = self.shape
        if not isinstance(tok, Tensor) or tok.dtype.is_floating_point or tok.dtype == torch.bool:
            raise TypeError(f"{name}: expected an integer tensor of token ids, got {getattr(tok, 'dtype', tok)!r}")
        if tok.dim() != 3 or tok.shape[0] != r or tok.shape[2] != k:
            raise ValueError(f"{name}: expected shape [R={r}, N, K={k}], got {list(tok.shape)}")
        if tok.numel():
            low, high = torch.aminmax(tok)
            if int(low) < 0 or int(high) >= v:
                raise ValueError(f"{name}: token ids must be in [0, V={v}), got ids from {int(low)} to {int(high)}")

    def _pre_table(self) -> Tensor:
        """Pre-activation of filter m of RF k for token t: [R, K, M, V]."""
        if self.identity:
            return self.first
        return torch.matmul(self.first, self.embeddings.transpose(1, 2).unsqueeze(1))

    def loss_and_grads(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Loss [R] and gradients ``[d first, d top]`` for token views ``(tok1, tok2)`` [R, N, K]."""
        tok1, tok2 = batch
        r, k, m, _, v, out = self.shape
        self._check_tokens(tok1, tok2)
        n = tok1.shape[1]
        idx = self._flat_tokens(tok1, tok2)  # [2, R, N, K]
        pre = self._pre_table()
        hidden, gate = self.act.fn(pre), self.act.gate(pre)  # [R, K, M, V]
        counts = torch.bincount(idx.view(-1), minlength=r * k * 2 * v).view(r, k, 1, 2, v).to(pre.dtype)
        normed, inv_std = self._batch_norm(hidden.unsqueeze(3), counts, n)  # [R, K, M, 2, V]
        normed_rf = normed.view(r * k, m, 2 * v)
        top_rf = self._top_kmo.view(r * k, m, out)
        table = torch.bmm(normed_rf.transpose(1, 2), top_rf)  # [R*K, 2V, out]: output rows per token
        per_rf = self.head == "per_rf"
        if per_rf:  # each RF's own output: [2, R*K, N, out], RFs as extra replicas of the head
            f = table.view(-1, out)[idx].permute(0, 1, 3, 2, 4).reshape(2, r * k, n, out)
        else:
            f = F.embedding_bag(idx.view(2 * r * n, k), table.view(-1, out), mode="sum").view(2, r, n, out)

        norm = f.norm(dim=-1, keepdim=True).clamp_(min=NORM_EPS)
        u = f / norm
        loss, g1, g2 = contrastive_head(u[0], u[1], self.loss_name, self.tau)
        gu = torch.stack([g1, g2])
        grad_f = gu.sub_(u * (u * gu).sum(-1, keepdim=True)).div_(norm)  # through the L2 normalization

        if per_rf:
            loss = loss.view(r, k).sum(-1)
            rows = grad_f.view(2, r, k, n, out).permute(0, 1, 3, 2, 4).reshape(-1, out)  # ordered like idx
            grad_table = torch.zeros(r * k * 2 * v, out, dtype=rows.dtype).index_add_(0, idx.reshape(-1), rows)
            grad_table = grad_table.view(r * k, 2 * v, out)
        else:
            grad_table = self._scatter_rows(grad_f.view(2 * r * n, out), idx, r * k * 2 * v).view(r * k, 2 * v, out)
        grad_top = torch.bmm(normed_rf, grad_table)  # [R*K, M, out], summed over views and tokens
        grad_normed = torch.bmm(top_rf, grad_table.transpose(1, 2)).view(r, k, m, 2, v)
        grad_hidden = self._batch_norm_backward(grad_normed, normed, inv_std, counts, n)
        grad_pre = grad_hidden.mul_(gate)
        grad_first = grad_pre if self.identity else torch.matmul(grad_pre, self.embeddings.unsqueeze(1))
        return loss, [grad_first, grad_top.view(r, k, m, out).permute(0, 3, 1, 2).view(r, out, k * m)]

    @staticmethod
    def _scatter_rows(rows: Tensor, idx: Tensor, size: int) -> Tensor:
        """Table gradient [size, out]: row ``idx[.., j]`` receives ``rows`` for every location j.

        One ``index_add_`` per location (measured faster than one call on K-times repeated rows).
        """
        out = torch.zeros(size, rows.shape[-1], dtype=rows.dtype)
        per_location = idx.view(-1, idx.shape[-1]).T.contiguous()  # [K, 2*R*N]
        for index in per_location:
            out.index_add_(0, index, rows)
        return out

    def _batch_norm(self, hidden: Tensor, counts: Tensor, n: int) -> tuple[Tensor, Tensor | None]:
        """Per-view BN of the token table ``hidden [R, K, M, 1, V]`` from counts [R, K, 1, 2, V].

        Returns the normalized table [R, K, M, 2, V] and 1/sqrt(var + eps) [R, K, M, 2, 1]; for a
        mean-only BN the centred table and None; without BN the hidden table repeated for both
        views, and None.
        """
        if not self.bn:
            r, k, m, _, v = hidden.shape
            return hidden.expand(r, k, m, 2, v).contiguous(), None
        freq = counts / n
        mean = (hidden * freq).sum(-1, keepdim=True)  # [R, K, M, 2, 1]
        centred = hidden - mean
        if not self.bn_scale:
            return centred, None
        var = (centred * centred * freq).sum(-1, keepdim=True)
        inv_std = (var + self.bn_eps).rsqrt_()
        return centred.mul_(inv_std), inv_std

    def _batch_norm_backward(
        self, grad_normed: Tensor, normed: Tensor, inv_std: Tensor | None, counts: Tensor, n: int
    ) -> Tensor:
        """Per-token sums of dL/dhidden over both views, [R, K, M, V].

        grad_normed [R, K, M, 2, V] holds, for each view and token t, the sum of dL/dhn over the
        samples with token t.
        """
        if not self.bn:
            return grad_normed.sum(3)
        grad = grad_normed
        if self.bn_mean_grad:
            grad = grad - counts * (grad_normed.sum(-1, keepdim=True) / n)
        if self.bn_var_grad:
            second = (grad_normed * normed).sum(-1, keepdim=True) / n
            grad = grad - counts * normed * second
        return (grad if inv_std is None else grad * inv_std).sum(3)

    # -- autograd reference -----------------------------------------------------------------
    def reference_outputs(self, tokens: Tensor, first: Tensor | None = None, top: Tensor | None = None) -> Tensor:
        """Unit outputs of one view ``tokens [R, N, K]``, written as plain autograd code.

        [R, N, out] for the joint head; [R, N, K, out] (one unit vector per RF) for ``per_rf``.
        """
        self._check_view("tokens", tokens)
        first = self.first if first is None else first
        top = self.top if top is None else top
        r, n, k = tokens.shape
        d = self.embeddings.shape[-1]
        x = self.embeddings.gather(1, tokens.reshape(r, n * k, 1).expand(r, n * k, d)).reshape(r, n, k, d)
        hidden = self.act.fn(torch.einsum("rnkd,rkmd->rnkm", x, first)).reshape(r, n, -1)
        if self.bn:
            mean = hidden.mean(1, keepdim=True)
            mean = mean if self.bn_mean_grad else mean.detach()
            hidden = hidden - mean
            if self.bn_scale:
                var = (hidden**2).mean(1, keepdim=True)
                var = var if self.bn_var_grad else var.detach()
                hidden = hidden / torch.sqrt(var + self.bn_eps)
        if self.head == "per_rf":
            m = first.shape[2]
            f = torch.einsum("rnkm,rokm->rnko", hidden.reshape(r, n, k, m), top.reshape(r, -1, k, m))
        else:
            f = hidden @ top.transpose(1, 2)
        return F.normalize(f, dim=-1, eps=NORM_EPS)

    def reference_loss(
        self, batch: tuple[Tensor, Tensor], first: Tensor | None = None, top: Tensor | None = None
    ) -> Tensor:
        """Loss [R] by autograd-friendly code (module-style forward, alpha_cl losses)."""
        tok1, tok2 = batch
        u1 = self.reference_outputs(tok1, first, top)
        u2 = self.reference_outputs(tok2, first, top)
        if self.head == "per_rf":  # one loss per RF, summed
            r, n, k, out = u1.shape
            u1, u2 = (u.transpose(1, 2).reshape(r * k, n, out) for u in (u1, u2))
            return reference_objective(u1, u2, self.loss_name, self.tau).view(r, k).sum(-1)
        return reference_objective(u1, u2, self.loss_name, self.tau)

    def reference_loss_and_grads(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Same contract as :meth:`loss_and_grads`, by autograd (slow; for tests and checks)."""
        first = self.first.detach().clone().requires_grad_(True)
        top = self.top.detach().clone().requires_grad_(True)
        loss = self.reference_loss(batch, first, top)
        grads = torch.autograd.grad(loss.sum(), [first, top])
        return loss.detach(), list(grads)


# ----------------------------------------------------------------------------------------------
# One-layer network.
# ----------------------------------------------------------------------------------------------


class OneLayerNet:
    """``f_j = h(w_j^T x)`` for R replicas, ``weights [R, nodes, d]``, inputs [R, N, d].

    ``weight_norm=True`` uses ``w_j / |w_j|`` in the forward pass (the paper's ``|w| = 1``
    constraint, as a reparametrization: the gradient is projected onto the tangent space and
    divided by |w|). ``normalize_output=True`` L2-normalizes the output vector f [nodes].
    Gradients by autograd (this network is small).
    """

    param_names = ("weights",)

    def __init__(
        self,
        weights: Tensor,
        *,
        activation: str = "relu",
        slope: float = LEAKY_SLOPE,
        weight_norm: bool = True,
        normalize_output: bool = False,
        loss: str = "infonce",
        tau: float = 0.1,
    ):
        check_loss(loss, tau)
        if weights.dim() != 3:
            raise ValueError(f"weights: expected shape [R, nodes, d], got {tuple(weights.shape)}")
        self.weights = weights
        self.act = get_activation(activation, slope=slope)
        self.weight_norm, self.normalize_output = bool(weight_norm), bool(normalize_output)
        self.loss_name, self.tau = loss, float(tau)

    @classmethod
    def init(
        cls, seeds: Sequence[int], nodes: int, dim: int, dtype: torch.dtype = torch.float32, **options
    ) -> OneLayerNet:
        """PyTorch-default init (``U(-1/sqrt(d), 1/sqrt(d))``), each replica from its ``init`` generator."""
        seeds = check_seeds(seeds)
        if nodes < 1 or dim < 1:
            raise ValueError(f"nodes, dim: must be >= 1, got nodes={nodes}, dim={dim}")
        ws = [default_uniform((nodes, dim), dim, replica_generator(s, "init"), dtype) for s in seeds]
        return cls(torch.stack(ws), **options)

    @property
    def params(self) -> list[Tensor]:
        return [self.weights]

    def effective_weights(self, weights: Tensor | None = None) -> Tensor:
        """The weights used in the forward pass (unit rows under weight normalization), [R, nodes, d]."""
        w = self.weights if weights is None else weights
        return w / w.norm(dim=-1, keepdim=True).clamp(min=NORM_EPS) if self.weight_norm else w

    def outputs(self, x: Tensor, weights: Tensor | None = None) -> Tensor:
        """Outputs [R, N, nodes] for inputs x [R, N, d]."""
        f = self.act.fn(x @ self.effective_weights(weights).transpose(1, 2))
        return F.normalize(f, dim=-1, eps=NORM_EPS) if self.normalize_output else f

    def loss(self, batch: tuple[Tensor, Tensor], weights: Tensor | None = None) -> Tensor:
        """Loss [R] for views ``(x1, x2)`` [R, N, d]."""
        x1, x2 = batch
        return reference_objective(self.outputs(x1, weights), self.outputs(x2, weights), self.loss_name, self.tau)

    def loss_and_grads(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, list[Tensor]]:
        w = self.weights.detach().clone().requires_grad_(True)
        loss = self.loss(batch, w)
        (grad,) = torch.autograd.grad(loss.sum(), [w])
        return loss.detach(), [grad]
