"""Exact contrastive covariances of the token task, per receptive field (float64, no sampling).

Uniform alpha, two views. For the input ``x_k`` (one-hot token) of RF k,
``C_alpha[x_k] = E (x_k - x_k^other)(..)^T - E (x_k - x_k')(..)^T`` (an independent sample minus
the augmented view), i.e. ``2 (V[x_k] - E_s V[x_k | s])`` where s is everything the two views
share. Two augmentations (``docs/theory.md`` section 1):

* **full re-draw** (the paper): the views share the pattern id g only, the fillers are drawn
  independently given g, so ``C_alpha[x_k] = 2 V_g[E(x_k | g)]`` -- with
  ``E(x_k | g) = P(token at k | g)`` (:func:`nlcl_utils.priority.presence_given_pattern`);
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

from nlcl_utils import priority

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
