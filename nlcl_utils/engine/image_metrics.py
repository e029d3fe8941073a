"""What the filters of the image network learned, and how good its representation is.

Shapes: filters ``[.., K, M, d]`` (filter m of receptive field k), held-out patches
``[K, N, d]`` (:func:`field_patches`). Everything is computed in float64.

* diversity: :func:`nlcl_utils.engine.metrics.effective_rank` of each field's unit-norm filters, and
  :func:`mean_abs_cosine`, the mean |cosine| over the M(M-1)/2 pairs of filters of a field
  (1: all parallel up to sign);
* selectivity: :func:`response_kurtosis`, the excess kurtosis of a filter's response
  ``w . x`` over the held-out patches of its field (0 for a Gaussian response; large when the
  filter responds strongly to few patches and weakly to most). It is invariant to the
  filter's scale and sign, so linear and ReLU filters are measured alike;
* baselines: :func:`random_span_filters` (unit vectors uniform on the sphere of the span of a
  field's patches: directions the data occupies, chosen without looking at its statistics)
  and :func:`principal_directions` (the field's principal components: what a second-order,
  linear method extracts);
* :func:`dead_fraction`: ReLU filters whose response is <= 0 on every held-out patch;
* :func:`linear_probe_accuracy`: scikit-learn's multinomial logistic regression on
  standardized features, fitted on the train split and scored on the held-out split.
"""

from __future__ import annotations

import numpy as np
import torch

from nlcl_utils.data.images import split_fields

Tensor = torch.Tensor
F64 = torch.float64
_EPS = 1e-12


def unit_rows(filters: Tensor) -> Tensor:
    """Filters scaled to unit norm (float64), same shape."""
    w = filters.to(F64)
    return w / w.norm(dim=-1, keepdim=True).clamp(min=_EPS)


def mean_abs_cosine(filters: Tensor) -> Tensor:
    """Mean |cos| over the distinct pairs of filters of each field: ``[.., K, M, d] -> [.., K]``."""
    w = unit_rows(filters)
    m = w.shape[-2]
    if m < 2:
        raise ValueError(f"filters: need at least 2 filters per field for pairwise cosines, got {m}")
    cos = (w @ w.transpose(-1, -2)).abs()
    off = ~torch.eye(m, dtype=torch.bool)
    return cos[..., off].mean(-1)


def field_patches(images: Tensor, grid: int) -> Tensor:
    """Receptive-field patches of ``images [N, H, W]``, arranged per field: ``[K, N, d]`` (float64)."""
    return split_fields(images.to(F64), grid).transpose(0, 1).contiguous()


def span_bases(patches: Tensor, rtol: float = 1e-6) -> list[Tensor]:
    """Orthonormal basis ``[s_k, d]`` of the span of each field's patches (singular values > rtol * max)."""
    bases = []
    for x in patches:
        _, sv, vh = torch.linalg.svd(x, full_matrices=False)
        bases.append(vh[sv > rtol * sv.max()])
    return bases


def principal_directions(patches: Tensor, rtol: float = 1e-6) -> list[Tensor]:
    """Principal directions ``[s_k, d]`` of each field's centred patches, by decreasing variance."""
    out = []
    for x in patches:
        _, sv, vh = torch.linalg.svd(x - x.mean(0), full_matrices=False)
        out.append(vh[sv > rtol * sv.max()])
    return out


def random_span_filters(bases: list[Tensor], count: int, gen: torch.Generator) -> Tensor:
    """``count`` unit vectors uniform on the sphere of each field's span: ``[K, count, d]``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: must be an integer >= 1, got {count!r}")
    out = []
    for basis in bases:
        coef = torch.randn(count, basis.shape[0], generator=gen, dtype=F64)
        out.append(unit_rows(coef @ basis))
    return torch.stack(out)


def responses(filters: Tensor, patches: Tensor) -> Tensor:
    """``w_km . x`` for every held-out patch: filters ``[.., K, M, d]``, patches ``[K, N, d]`` -> ``[.., K, M, N]``."""
    return unit_rows(filters) @ patches.transpose(-1, -2)


def response_kurtosis(filters: Tensor, patches: Tensor) -> Tensor:
    """Excess kurtosis of each filter's response over the patches of its field, ``[.., K, M]``.

    A filter whose response is constant over the patches (orthogonal to their span) gets NaN.
    """
    r = responses(filters, patches)
    c = r - r.mean(-1, keepdim=True)
    var = c.square().mean(-1)
    kurt = c.pow(4).mean(-1) / var.square() - 3.0
    return torch.where(var > _EPS * r.square().mean(-1).clamp(min=_EPS), kurt, torch.nan)


def dead_fraction(filters: Tensor, patches: Tensor) -> Tensor:
    """Fraction of filters (per leading index) with ``w . x <= 0`` on every patch: ``[.., K, M, d] -> [..]``."""
    dead = responses(filters, patches).amax(-1) <= 0
    return dead.to(F64).flatten(-2).mean(-1)


def linear_probe_accuracy(
    train_features: Tensor | np.ndarray,
    train_labels: Tensor | np.ndarray,
    test_features: Tensor | np.ndarray,
    test_labels: Tensor | np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 2000,
    seed: int = 0,
) -> float:
    """Held-out accuracy of a multinomial logistic regression (L2 strength 1/C) on standardized features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not (isinstance(C, (int, float)) and C > 0):
        raise ValueError(f"C: must be a number > 0, got {C!r}")
    as_np = lambda a: a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)
    x_train, x_test = as_np(train_features).astype(np.float64), as_np(test_features).astype(np.float64)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        shapes = f"{x_train.shape}, {x_test.shape}"
        raise ValueError(f"features: expected [N, F] train and test with the same F, got {shapes}")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
    probe.fit(x_train, as_np(train_labels))
    return float(probe.score(x_test, as_np(test_labels)))
