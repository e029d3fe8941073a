"""Exact contrastive covariances of the token task, per receptive field (float64, no sampling).

Uniform alpha, two views. For the input ``x_k`` (one-hot token) of RF k,
``C_alpha[x_k] = E (x_k - x_k^other)(..)^T - E (x_k - x_k')(..)^T`` (an independent sample minus
the augmented view), i.e. ``2 (V[x_k] - E_s V[x_k | s])`` where s is everything the two views
share. Two augmentations (``docs/theory.md`` section 1):

* **full re-draw** (the paper): the views share the pattern id g only, the fillers are drawn
  independently given g, so ``C_alpha[x_k] = 2 V_g[E(x_k | g)]`` -- with
  ``E(x_k | g) = P(token at k | g)`` (:func:`nlcl_utils.theory.priority.presence_given_pattern`);
* **identical views** (``redraw = 0``): the views share everything, ``C_alpha[x_k] = 2 V[x_k]``.

:func:`rf_contrastive_covariance` computes both from the conditional means;
:func:`rf_contrastive_covariance_pairs` computes the full re-draw case from the two pair sums
written out (a different computation, for the identity check). :func:`filler_share` is the share
of ``tr C_alpha[x_k]`` carried by filler-only tokens (tokens no pattern puts at k): a per-RF,
top-layer-free quantity.

Shapes: ``pattern_tokens [R, G, K]`` (-1 at wildcards), filler tables None / ``[K, V]`` /
``[R, K, V]``; covariances ``[R, K, V, V]``; shares ``[R, K]``.
"""

from __future__ import annotations

import torch

from nlcl_utils.theory import priority

Tensor = torch.Tensor
AUGMENTATIONS = ("redraw", "identical")


def rf_contrastive_covariance(pattern_tokens: Tensor, vocab: int, wildcard_probs=None, augmentation="redraw") -> Tensor:
    """``C_alpha[x_k]`` of every RF under uniform alpha, [R, K, V, V] (module docstring)."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation: unknown {augmentation!r}; allowed: {', '.join(AUGMENTATIONS)}")
    cond = priority.presence_given_pattern(pattern_tokens, vocab, wildcard_probs)  # [R, G, K, V]
    freq = cond.mean(1)  # [R, K, V]
    if augmentation == "identical":  # 2 V[x_k], one-hot: E[x x^T] = diag(freq)
        return 2 * (torch.diag_embed(freq) - freq.unsqueeze(-1) * freq.unsqueeze(-2))
    centred = cond - freq.unsqueeze(1)
    return 2 * torch.einsum("rgkv,rgku->rkvu", centred, centred) / cond.shape[1]


def _pair_sum(weights: Tensor) -> Tensor:
    """``sum_{a,b} W_ab (e_a - e_b)(e_a - e_b)^T`` for pair weights W [..., V, V]."""
    return torch.diag_embed(weights.sum(-1) + weights.sum(-2)) - weights - weights.transpose(-1, -2)


def rf_contrastive_covariance_pairs(pattern_tokens: Tensor, vocab: int, wildcard_probs=None) -> Tensor:
    """Full re-draw ``C_alpha[x_k]`` from its definition: inter-sample pair sum minus view pair sum.

    Independent samples have token-pair weights ``freq freq^T``; the two views of one sample
    have ``E_g p_g p_g^T`` (tokens drawn independently given g). [R, K, V, V].
    """
    cond = priority.presence_given_pattern(pattern_tokens, vocab, wildcard_probs)  # [R, G, K, V]
    freq = cond.mean(1)
    inter = _pair_sum(freq.unsqueeze(-1) * freq.unsqueeze(-2))
    views = _pair_sum(torch.einsum("rgkv,rgku->rkvu", cond, cond) / cond.shape[1])
    return inter - views


def filler_share(covariance: Tensor, plus: Tensor) -> Tensor:
    """Share of ``tr C_alpha[x_k]`` on filler-only tokens (``~plus``), [R, K].

    covariance [R, K, V, V]; plus [R, K, V] bool (token appears at k in some pattern).
    """
    diag = covariance.diagonal(dim1=-2, dim2=-1)
    return (diag * (~plus).to(diag.dtype)).sum(-1) / diag.sum(-1)


# ----------------------------------------------------------------------------- assumption audit
def hidden_alpha_covariance(first: Tensor, pattern_tokens: Tensor, wildcard_probs=None, bn_eps: float = 1e-5):
    """Uniform-alpha ``C_alpha[f_1]`` of the hidden layer under full re-draw, one-hot embeddings.

    first [R, K, M, V] (ReLU filters on one-hot tokens: hidden value of token v is relu(first[.., v])).
    Hidden units are normalized with their *population* BatchNorm statistics (mean and variance
    over the data distribution; the batch statistics fluctuate around them). Returns
    ``(C [R, KM, KM], cond [R, G, K, V], hidden_bn_means [R, G, KM], inv_std [R, K, M])`` with
    ``C = 2 Cov_g(E[f_1 | g])`` (module docstring: views share only g).
    """
    r, k, m, v = first.shape
    cond = priority.presence_given_pattern(pattern_tokens, v, wildcard_probs)  # [R, G, K, V]
    hidden = torch.relu(first.to(torch.float64))
    means = torch.einsum("rgkv,rkmv->rgkm", cond, hidden)  # E[f_km | g]
    freq = cond.mean(1)
    mu = means.mean(1)  # [R, K, M]
    var = torch.einsum("rkv,rkmv->rkm", freq, hidden * hidden) - mu * mu
    inv_std = (var.clamp_min(0) + bn_eps).rsqrt()
    centred = ((means - mu.unsqueeze(1)) * inv_std.unsqueeze(1)).reshape(r, -1, k * m)
    cov = 2 * torch.einsum("rgi,rgj->rij", centred, centred) / cond.shape[1]
    return cov, cond, centred, inv_std


def top_alignment(top: Tensor, cov: Tensor, n_vectors: int) -> Tensor:
    """Share of ``tr(top^T top)`` in the span of the top ``n_vectors`` eigenvectors of cov, [R].

    top [R, out, KM]; cov [R, KM, KM]. Chance level (a random top layer) is n_vectors / KM.
    """
    _, vecs = torch.linalg.eigh(cov)
    u = vecs[..., -n_vectors:]  # [R, KM, q]
    t = top.to(torch.float64)
    return (t @ u).pow(2).sum((1, 2)) / t.pow(2).sum((1, 2))


def cross_rf_gradient(first: Tensor, top: Tensor, pattern_tokens: Tensor, wildcard_probs=None):
    """Block-diagonal and cross-RF parts of the uniform-alpha gradient of ``1/2 tr C_alpha[f_2]``.

    ``f_2 = top f_1`` with population-BN hidden units, views sharing only g; the gradient of
    filter (k, m) is ``sum_{k'm'} A_{km,k'm'} C_alpha[x~_km, f_k'm']`` (A = top^T top, x~ the gated
    input scaled by the unit's 1/std), split into k' = k (block) and k' != k (cross). Returns
    ``(block [R, K, M, V], cross [R, K, M, V])``. One-hot embeddings, ReLU.
    """
    r, k, m, v = first.shape
    _, cond, centred, inv_std = hidden_alpha_covariance(first, pattern_tokens, wildcard_probs)
    gate = (first > 0).to(torch.float64)
    a = torch.einsum("roi,roj->rij", top.to(torch.float64), top.to(torch.float64))  # [R, KM, KM]
    a5 = a.view(r, k, m, k, m)
    same = torch.eye(k, dtype=torch.float64).view(1, k, 1, k, 1)
    drive = centred.view(r, -1, k, m)  # [R, G, K, M]: centred, normalized E[f | g]
    # c_{km}[g] = sum_{k'm'} A_{km,k'm'} drive_{k'm'}[g], split by k' = k or not
    c_block = torch.einsum("rkmln,rgln->rgkm", a5 * same, drive)
    c_cross = torch.einsum("rkmln,rgln->rgkm", a5 * (1 - same), drive)
    cond_c = cond - cond.mean(1, keepdim=True)  # centred E[x_k | g] (one-hot)
    scale = gate * inv_std.unsqueeze(-1)  # d f_km / d first_kmv for token v, [R, K, M, V]
    g = cond.shape[1]
    block = 2 * torch.einsum("rgkv,rgkm->rkmv", cond_c, c_block) / g * scale
    cross = 2 * torch.einsum("rgkv,rgkm->rkmv", cond_c, c_cross) / g * scale
    return block, cross
