"""Mixture of Gaussians with two within-component views (the 1-layer data model).

Data model (``docs/theory.md`` section 3). ``C`` components in ``R^d`` with centres
``mu_c`` (``centres``, ``[C, d]``), weights ``pi_c`` (``weights``, ``[C]``, summing to 1) and an
isotropic within-component spread ``sigma`` (``noise``). A sample is a component label
``c ~ pi``; its two views are two *independent* draws from that component,

    x = mu_c + sigma * eps,    x' = mu_c + sigma * eps',    eps, eps' ~ N(0, I_d),

so the augmentation is the within-component noise and both views always stay in the
sample's component (``views="independent"``, the default). Given ``c`` the views are
independent, so the within-component variance cancels exactly in the contrastive covariance.

``views="additive"`` is small-noise augmentation instead: one draw ``x = mu_c + sigma * eps``
per sample and two views ``x + s * e``, ``x + s * e'`` with ``s = augment_noise`` (``e, e'`` i.i.d.
standard normal). The views now share ``x``, not only ``c``, so the within-component variance
stays in the contrastive covariance; :mod:`nlcl_utils.theory.dynamics` uses the limit ``s -> 0``.

Centre layouts (:func:`make_mixture`):

* ``"simplex"``: the ``C`` unit directions of a regular simplex (pairwise inner product
  ``-1/(C-1)``, needs ``d >= C - 1``), randomly rotated into ``R^d``. The negative mutual inner
  products let the ReLU gate of one centre exclude every other component.
* ``"equiangular"``: ``C`` unit directions with every pairwise inner product equal to ``cosine``
  (``-1/(C-1) <= cosine < 1``; ``-1/(C-1)`` is the simplex, ``0`` orthonormal, positive values put
  every pair in the same half-space). Built from the Gram matrix ``(1 - cosine) I + cosine 11^T``,
  randomly rotated; needs ``d >= C`` (``d >= C - 1`` at the simplex value).
* ``"random"``: ``C`` i.i.d. uniform unit directions (overlapping gates, for contrast).

Each direction is then scaled by its ``magnitude``; a larger magnitude (or weight) makes one
component the *major* pattern.

Replicas and seeds. The task (centres) is drawn from ``replica_generator(seed, "task")``;
:class:`MixtureSampler` (``task.sampler(seeds, batch_size)``) follows the engine's sampler
protocol (:mod:`nlcl_utils.engine.train`): calling it returns the next step's views ``(x1, x2)``, each
``[R, N, d]`` with ``R = len(seeds)``. Replica r's stream comes only from its own
``replica_generator(seeds[r], "data")`` (drawn in chunks of :data:`DATA_CHUNK_STEPS` steps, a
constant of the stream's definition), so batching seeds together never changes what a seed
means.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nlcl_utils.seeds import check_seeds, replica_generator

Tensor = torch.Tensor

LAYOUTS = ("simplex", "equiangular", "random")
VIEWS = ("independent", "additive")
DATA_CHUNK_STEPS = 50


def simplex_directions(n_components: int, dim: int, generator: torch.Generator) -> Tensor:
    """``C`` unit vectors in ``R^dim`` with pairwise inner product ``-1/(C-1)``, float64 ``[C, dim]``.

    Built from the centred standard basis of ``R^C`` and rotated by a random orthonormal map
    ``R^(C-1) -> R^dim`` drawn from ``generator``. Needs ``C >= 2`` and ``dim >= C - 1``.
    """
    c = n_components
    e = torch.eye(c, dtype=torch.float64) - 1.0 / c  # rows: centred basis vectors, in a (C-1)-dim subspace
    # Orthonormal coordinates of that subspace: the top C-1 right singular vectors.
    _, _, vh = torch.linalg.svd(e)
    coords = e @ vh[: c - 1].T  # [C, C-1]
    dirs = coords @ _haar_frame(dim, c - 1, generator).T
    return dirs / dirs.norm(dim=1, keepdim=True)


def _haar_frame(dim: int, k: int, generator: torch.Generator) -> Tensor:
    """A Haar-distributed orthonormal ``[dim, k]`` frame drawn from ``generator``."""
    g = torch.randn(dim, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r))


def equiangular_directions(n_components: int, dim: int, cosine: float, generator: torch.Generator) -> Tensor:
    """``C`` unit vectors in ``R^dim`` with every pairwise inner product ``cosine``, float64 ``[C, dim]``.

    Coordinates from the eigen-factorization of the Gram matrix ``(1 - cosine) I + cosine 11^T``
    (positive semi-definite iff ``cosine >= -1/(C-1)``; rank ``C - 1`` at that bound, else ``C``),
    rotated by a random orthonormal frame from ``generator``. Needs ``dim >=`` that rank.
    """
    c = n_components
    gram = (1.0 - cosine) * torch.eye(c, dtype=torch.float64) + cosine
    evals, evecs = torch.linalg.eigh(gram)
    keep = evals > 1e-12 * c
    coords = evecs[:, keep] * evals[keep].sqrt()  # [C, rank]
    dirs = coords @ _haar_frame(dim, coords.shape[1], generator).T
    return dirs / dirs.norm(dim=1, keepdim=True)


def random_directions(n_components: int, dim: int, generator: torch.Generator) -> Tensor:
    """``C`` i.i.d. uniform unit vectors in ``R^dim``, float64 ``[C, dim]``."""
    g = torch.randn(n_components, dim, generator=generator, dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


@dataclass(frozen=True)
class MixtureTask:
    """A Gaussian mixture with two within-component views.

    centres: float64 ``[C, d]``; weights: float64 ``[C]`` (positive, sum 1); noise: the
    within-component standard deviation ``sigma > 0`` (isotropic); views: how the two views are
    made (:data:`VIEWS`, see the module docstring); augment_noise: the additive augmentation's
    standard deviation ``s >= 0`` (``"additive"`` only; 0 for ``"independent"``). Build with
    :func:`make_mixture` (validates) or directly from tensors (validated in ``__post_init__``).
    """

    centres: Tensor
    weights: Tensor
    noise: float
    views: str = "independent"
    augment_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.centres.dim() != 2 or self.centres.shape[0] < 2 or self.centres.shape[1] < 1:
            raise ValueError(f"centres: expected shape [C, d] with C >= 2, got {tuple(self.centres.shape)}")
        if self.weights.shape != (self.centres.shape[0],):
            raise ValueError(
                f"weights: expected shape [{self.centres.shape[0]}] (one per centre), got {tuple(self.weights.shape)}"
            )
        if not bool((self.weights > 0).all()) or abs(float(self.weights.sum()) - 1.0) > 1e-9:
            raise ValueError("weights: must be positive and sum to 1")
        if not (isinstance(self.noise, (int, float)) and math.isfinite(self.noise) and self.noise > 0):
            raise ValueError(f"noise: must be a finite float > 0, got {self.noise!r}")
        if self.views not in VIEWS:
            raise ValueError(f"views: unknown {self.views!r}; allowed: {', '.join(VIEWS)}")
        s = self.augment_noise
        if not (isinstance(s, (int, float)) and math.isfinite(s) and s >= 0):
            raise ValueError(f"augment_noise: must be a finite float >= 0, got {s!r}")
        if self.views == "independent" and s != 0:
            raise ValueError(f"augment_noise: only used with views='additive'; must be 0 here, got {s!r}")

    def with_views(self, views: str, augment_noise: float = 0.0) -> MixtureTask:
        """The same components with another way of making the two views (validated)."""
        return dataclasses.replace(self, views=views, augment_noise=float(augment_noise))

    def max_pairwise_cosine(self) -> float:
        """Largest cosine between two different centre directions (the gate-separation statistic)."""
        u = self.centres / self.centres.norm(dim=1, keepdim=True)
        cos = u @ u.T
        cos.fill_diagonal_(-math.inf)
        return float(cos.max())

    @property
    def n_components(self) -> int:
        return int(self.centres.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centres.shape[1])

    # ----- exact population moments (float64) -------------------------------------------
    def mean(self) -> Tensor:
        """Mixture mean ``sum_c pi_c mu_c``, ``[d]``."""
        return self.weights @ self.centres

    def between_covariance(self) -> Tensor:
        """Covariance of the component centre, ``sum_c pi_c (mu_c - mu)(mu_c - mu)^T``, ``[d, d]``."""
        dc = self.centres - self.mean()
        return torch.einsum("c,cp,cq->pq", self.weights, dc, dc)

    def within_covariance(self) -> Tensor:
        """Within-component covariance of one draw, ``sigma^2 I``, ``[d, d]``."""
        return self.noise**2 * torch.eye(self.dim, dtype=torch.float64)

    def covariance(self) -> Tensor:
        """Covariance of one view, ``between + within (+ s^2 I for additive views)``, ``[d, d]``."""
        eye = torch.eye(self.dim, dtype=torch.float64)
        return self.between_covariance() + self.within_covariance() + self.augment_noise**2 * eye

    def cross_view_covariance(self) -> Tensor:
        """``Cov(x, x')`` between the two views of a sample: ``between_covariance()`` for independent
        views (independent given the component), ``between + within`` for additive views."""
        if self.views == "additive":
            return self.between_covariance() + self.within_covariance()
        return self.between_covariance()

    # ----- sampling ------------------------------------------------------------------------
    def sample(
        self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` samples drawn with ``generator``: ``(x1 [n, d], x2 [n, d], labels [n])``."""
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n: must be an int >= 1, got {n!r}")
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(self._draws, n, self.dim, generator=generator, dtype=torch.float64)
        x = self._views(self.centres[labels], eps)
        return x[0].to(dtype), x[1].to(dtype), labels

    @property
    def _draws(self) -> int:
        """Standard-normal draws per sample: two views, plus the shared draw for additive views."""
        return 3 if self.views == "additive" else 2

    def _views(self, mu: Tensor, eps: Tensor) -> Tensor:
        """Both views ``[2, ..., d]`` from centres ``mu [..., d]`` and draws ``eps [draws, ..., d]``."""
        if self.views == "additive":
            return (mu + self.noise * eps[0]) + self.augment_noise * eps[1:]
        return mu + self.noise * eps

    def sampler(self, seeds: Sequence[int], batch_size: int, dtype: torch.dtype = torch.float32) -> MixtureSampler:
        """A :class:`MixtureSampler` for ``seeds`` (one replica per seed)."""
        return MixtureSampler(self, seeds, batch_size, dtype)


class MixtureSampler:
    """Two-view batches ``(x1, x2)``, each ``[R, N, d]``, for R replicas (engine sampler protocol).

    Each call returns the next step. Replica r draws, per chunk of :data:`DATA_CHUNK_STEPS` steps
    and from its own ``data`` generator, in this order: labels ``[S, N]`` (multinomial over the
    weights), then noise ``[S, draws, N, d]`` (2 draws, 3 for additive views; float64, cast to
    ``dtype`` after scaling). Only the random draws loop over replicas; assembling the views is one
    batched op.
    """

    def __init__(self, task: MixtureTask, seeds: Sequence[int], batch_size: int, dtype: torch.dtype = torch.float32):
        self.seeds = check_seeds(seeds)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"batch_size: must be an int >= 2, got {batch_size!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: must be torch.float32 or torch.float64, got {dtype}")
        self.task, self.batch_size, self.dtype = task, batch_size, dtype
        self.generators = [replica_generator(s, "data") for s in self.seeds]
        self._chunk: tuple[Tensor, Tensor] | None = None  # x1, x2: [S, R, N, d]
        self._pos = DATA_CHUNK_STEPS

    def draw_chunk(self) -> tuple[Tensor, Tensor]:
        """The next :data:`DATA_CHUNK_STEPS` steps of every replica: ``(x1, x2)``, each ``[S, R, N, d]``."""
        s, n, d = DATA_CHUNK_STEPS, self.batch_size, self.task.dim
        labels, noise = [], []
        for gen in self.generators:
            labels.append(torch.multinomial(self.task.weights, s * n, replacement=True, generator=gen).view(s, n))
            noise.append(torch.randn(s, self.task._draws, n, d, generator=gen, dtype=torch.float64))
        lab = torch.stack(labels, dim=1)  # [S, R, N]
        eps = torch.stack(noise, dim=1).movedim(2, 0)  # [draws, S, R, N, d]
        x = self.task._views(self.task.centres[lab], eps)  # [2, S, R, N, d]
        x = x.to(self.dtype)
        return x[0], x[1]

    def __call__(self) -> tuple[Tensor, Tensor]:
        if self._pos == DATA_CHUNK_STEPS:
            self._chunk = self.draw_chunk()
            self._pos = 0
        x1, x2 = self._chunk  # type: ignore[misc]
        out = (x1[self._pos], x2[self._pos])
        self._pos += 1
        return out


def make_mixture(
    n_components: int,
    dim: int,
    noise: float,
    magnitudes: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
    layout: str = "simplex",
    seed: int = 0,
    cosine: float | None = None,
    views: str = "independent",
    augment_noise: float = 0.0,
) -> MixtureTask:
    """Build a :class:`MixtureTask` (centres drawn from ``seed``; float64).

    n_components: C >= 2; dim: d >= 1 (``"simplex"`` needs d >= C - 1); noise: sigma > 0;
    magnitudes: C positive norms of the centres (default all 1); weights: C positive weights,
    normalized to sum 1 (default uniform); layout: one of :data:`LAYOUTS`; seed: the task seed
    (centre directions from ``replica_generator(seed, "task")``); cosine: the pairwise cosine of
    the ``"equiangular"`` layout (required there, in ``[-1/(C-1), 1)``; ``None`` otherwise);
    views, augment_noise: how the two views are made (:class:`MixtureTask`).
    """
    if not (isinstance(n_components, int) and n_components >= 2):
        raise ValueError(f"n_components: must be an int >= 2, got {n_components!r}")
    if not (isinstance(dim, int) and dim >= 1):
        raise ValueError(f"dim: must be an int >= 1, got {dim!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout: unknown {layout!r}; allowed: {', '.join(LAYOUTS)}")
    if layout == "simplex" and dim < n_components - 1:
        raise ValueError(f"dim: the simplex layout needs dim >= n_components - 1 = {n_components - 1}, got {dim}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise > 0):
        raise ValueError(f"noise: must be a finite float > 0, got {noise!r}")
    if layout == "equiangular":
        low = -1.0 / (n_components - 1)
        if isinstance(cosine, bool) or not isinstance(cosine, (int, float)) or not (low - 1e-12 <= cosine < 1):
            raise ValueError(f"cosine: the equiangular layout needs a number in [{low:.6g}, 1), got {cosine!r}")
        rank = n_components - 1 if cosine <= low + 1e-12 else n_components
        if dim < rank:
            raise ValueError(f"dim: the equiangular layout with cosine {cosine:g} needs dim >= {rank}, got {dim}")
    elif cosine is not None:
        raise ValueError(f"cosine: only used by the equiangular layout, got {cosine!r} with layout {layout!r}")
    mags = [1.0] * n_components if magnitudes is None else [float(m) for m in magnitudes]
    if len(mags) != n_components or any(not (m > 0 and math.isfinite(m)) for m in mags):
        raise ValueError(f"magnitudes: need {n_components} positive finite values, got {magnitudes!r}")
    wts = [1.0] * n_components if weights is None else [float(w) for w in weights]
    if len(wts) != n_components or any(not (w > 0 and math.isfinite(w)) for w in wts):
        raise ValueError(f"weights: need {n_components} positive finite values, got {weights!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an int >= 0, got {seed!r}")
    gen = replica_generator(seed, "task")
    if layout == "simplex":
        dirs = simplex_directions(n_components, dim, gen)
    elif layout == "equiangular":
        dirs = equiangular_directions(n_components, dim, float(cosine), gen)
    else:
        dirs = random_directions(n_components, dim, gen)
    centres = dirs * torch.tensor(mags, dtype=torch.float64).unsqueeze(1)
    w = torch.tensor(wts, dtype=torch.float64)
    return MixtureTask(
        centres=centres, weights=w / w.sum(), noise=float(noise), views=views, augment_noise=float(augment_noise)
    )
