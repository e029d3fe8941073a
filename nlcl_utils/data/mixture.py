"""Mixture of Gaussians with two within-component views (the 1-layer data model).

Data model (``docs/theory.md`` section 3). ``C`` components in ``R^d`` with centres
``mu_c`` (``centres``, ``[C, d]``), weights ``pi_c`` (``weights``, ``[C]``, summing to 1) and an
isotropic within-component spread ``sigma`` (``noise``). A sample is a component label
``c ~ pi``; its two views are two *independent* draws from that component,

    x = mu_c + sigma * eps,    x' = mu_c + sigma * eps',    eps, eps' ~ N(0, I_d),

so the augmentation is the within-component noise and both views always stay in the
sample's component. Given ``c`` the views are independent; this is what makes the
population dynamics of :mod:`nlcl_utils.dynamics` exactly computable.

Centre layouts (:func:`make_mixture`):

* ``"simplex"``: the ``C`` unit directions of a regular simplex (pairwise inner product
  ``-1/(C-1)``, needs ``d >= C - 1``), randomly rotated into ``R^d``. The negative mutual inner
  products let the ReLU gate of one centre exclude every other component.
* ``"random"``: ``C`` i.i.d. uniform unit directions (overlapping gates, for contrast).

Each direction is then scaled by its ``magnitude``; a larger magnitude (or weight) makes one
component the *major* pattern.

Replicas and seeds. The task (centres) is drawn from ``replica_generator(seed, "task")``;
:class:`MixtureSampler` (``task.sampler(seeds, batch_size)``) follows the engine's sampler
protocol (:mod:`nlcl_utils.train`): calling it returns the next step's views ``(x1, x2)``, each
``[R, N, d]`` with ``R = len(seeds)``. Replica r's stream comes only from its own
``replica_generator(seeds[r], "data")`` (drawn in chunks of :data:`DATA_CHUNK_STEPS` steps, a
constant of the stream's definition), so batching seeds together never changes what a seed
means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nlcl_utils.data.tokens import check_seeds, replica_generator

Tensor = torch.Tensor

LAYOUTS = ("simplex", "random")
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
    g = torch.randn(dim, c - 1, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))  # a Haar-distributed orthonormal frame
    dirs = coords @ q.T
    return dirs / dirs.norm(dim=1, keepdim=True)


def random_directions(n_components: int, dim: int, generator: torch.Generator) -> Tensor:
    """``C`` i.i.d. uniform unit vectors in ``R^dim``, float64 ``[C, dim]``."""
    g = torch.randn(n_components, dim, generator=generator, dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


@dataclass(frozen=True)
class MixtureTask:
    """A Gaussian mixture with two within-component views.

    centres: float64 ``[C, d]``; weights: float64 ``[C]`` (positive, sum 1); noise: the
    within-component standard deviation ``sigma > 0`` (isotropic). Build with
    :func:`make_mixture` (validates) or directly from tensors (validated in ``__post_init__``).
    """

    centres: Tensor
    weights: Tensor
    noise: float

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
        """Within-component (augmentation) covariance ``sigma^2 I``, ``[d, d]``."""
        return self.noise**2 * torch.eye(self.dim, dtype=torch.float64)

    def covariance(self) -> Tensor:
        """Covariance of one view, ``between + within``, ``[d, d]``."""
        return self.between_covariance() + self.within_covariance()

    def cross_view_covariance(self) -> Tensor:
        """``Cov(x, x')`` between the two views of a sample: ``between_covariance()`` (views are
        independent given the component)."""
        return self.between_covariance()

    # ----- sampling ------------------------------------------------------------------------
    def sample(
        self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` samples drawn with ``generator``: ``(x1 [n, d], x2 [n, d], labels [n])``."""
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n: must be an int >= 1, got {n!r}")
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(2, n, self.dim, generator=generator, dtype=torch.float64)
        mu = self.centres[labels]
        x = mu + self.noise * eps
        return x[0].to(dtype), x[1].to(dtype), labels

    def sampler(self, seeds: Sequence[int], batch_size: int, dtype: torch.dtype = torch.float32) -> MixtureSampler:
        """A :class:`MixtureSampler` for ``seeds`` (one replica per seed)."""
        return MixtureSampler(self, seeds, batch_size, dtype)


class MixtureSampler:
    """Two-view batches ``(x1, x2)``, each ``[R, N, d]``, for R replicas (engine sampler protocol).

    Each call returns the next step. Replica r draws, per chunk of :data:`DATA_CHUNK_STEPS` steps
    and from its own ``data`` generator, in this order: labels ``[S, N]`` (multinomial over the
    weights), then noise ``[S, 2, N, d]`` (float64, cast to ``dtype`` after scaling). Only the
    random draws loop over replicas; assembling the views is one batched op.
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
            noise.append(torch.randn(s, 2, n, d, generator=gen, dtype=torch.float64))
        lab = torch.stack(labels, dim=1)  # [S, R, N]
        eps = torch.stack(noise, dim=1)  # [S, R, 2, N, d]
        x = self.task.centres[lab].unsqueeze(2) + self.task.noise * eps
        x = x.to(self.dtype)
        return x[:, :, 0], x[:, :, 1]

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
) -> MixtureTask:
    """Build a :class:`MixtureTask` (centres drawn from ``seed``; float64).

    n_components: C >= 2; dim: d >= 1 (``"simplex"`` needs d >= C - 1); noise: sigma > 0;
    magnitudes: C positive norms of the centres (default all 1); weights: C positive weights,
    normalized to sum 1 (default uniform); layout: one of :data:`LAYOUTS`; seed: the task seed
    (centre directions from ``replica_generator(seed, "task")``).
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
    else:
        dirs = random_directions(n_components, dim, gen)
    centres = dirs * torch.tensor(mags, dtype=torch.float64).unsqueeze(1)
    w = torch.tensor(wts, dtype=torch.float64)
    return MixtureTask(centres=centres, weights=w / w.sum(), noise=float(noise))
