"""Hierarchical token data (``docs/theory.md`` section 6), batched over replicas.

The task of one replica (drawn from its *task* generator):

* a vocabulary of ``V`` tokens with embeddings ``E [V, d]``: one-hot (``d = V``) or random
  unit vectors in dimension ``d``, optionally scaled per token by ``token_magnitudes``;
* ``K`` locations (receptive fields); location ``k`` has a random subset of ``P`` tokens
  (``subsets [K, P]``) that patterns may put there;
* ``G`` global patterns; each picks ``L`` of the ``K`` locations and puts at each one a token
  of that location's subset. The other ``K - L`` locations are wildcards
  (``pattern_tokens [G, K]`` with ``-1`` at wildcards, ``pattern_mask [G, K]``).

A sample (drawn from the replica's *data* generator): a pattern uniform over the ``G``
patterns; every wildcard filled with a token drawn from the filler distribution (uniform
over all ``V`` tokens by default, or a per-location table ``wildcard_probs [K, V]``). The
second view keeps the pattern tokens and re-draws ``redraw`` of the wildcards (default: all
of them; the others keep the first view's token).

Persistent fillers (:class:`TokenSampler`'s ``persistent=``, a bool table ``[R, K, V]``): a
wildcard whose first-view filler is a persistent token of that location keeps it in the second
view, like a pattern token; the other re-drawn wildcards draw the second view's filler from the
table restricted to the non-persistent tokens. Both views then have the same filler
distribution, and a persistent token is exactly as invariant as a pattern token while being
drawn independently of the pattern id (given that k is a wildcard) and of the other locations.

Replicas: every tensor has a leading replica dim ``R``. Replica ``r`` is defined by its seed
only: :func:`replica_generator` derives one ``torch.Generator`` per purpose (``"task"``,
``"init"``, ``"data"``) from the seed, never the global RNG, so running a seed alone or
batched with others gives bit-identical tasks, inits and data streams. The data stream is
drawn in fixed chunks of :data:`DATA_CHUNK_STEPS` steps, a constant of the stream's
definition (changing it changes what a seed's stream is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from nlcl_utils.checks import require_choice, require_int
from nlcl_utils.seeds import check_seeds, replica_generator
from nlcl_utils.settings import setting

Tensor = torch.Tensor

EMBEDDINGS = ("onehot", "random")
DATA_CHUNK_STEPS = 50


@dataclass(frozen=True)
class TokenTaskSpec:
    """Sizes and options of the hierarchical token task (defaults: the paper's main setting).

    vocab V, locations K, per_location P (tokens allowed per location in patterns), patterns G,
    pattern_len L (non-wildcard locations per pattern), embedding ``"onehot"`` (d = V) or
    ``"random"`` (unit vectors in ``embed_dim``), token_magnitudes (V positive scales of the
    embeddings, default all 1), wildcard_probs ([K][V] filler distribution per location,
    default uniform over all V), redraw (wildcards re-drawn in the second view, default all
    ``K - L``).
    """

    vocab: int = setting(20, "vocabulary size V", low=1)
    locations: int = setting(10, "receptive fields K", low=1)
    per_location: int = setting(5, "tokens allowed per location in patterns, P", low=1)
    patterns: int = setting(40, "global patterns G", low=1)
    pattern_len: int = setting(5, "non-wildcard locations per pattern L", low=1)
    embedding: str = setting("onehot", "token embeddings", choices=EMBEDDINGS)
    embed_dim: int | None = setting(None, "dimension of random embeddings (None: V)", low=1)
    token_magnitudes: tuple[float, ...] | None = setting(None, "V comma-separated embedding scales (None: all 1)")
    wildcard_probs: tuple[tuple[float, ...], ...] | None = setting(None, "[K][V] filler distribution", flag=False)
    redraw: int | None = setting(None, "wildcards re-drawn in the second view (augmentation; None: all K-L)", low=0)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def dim(self) -> int:
        """Embedding dimension d."""
        return self.vocab if self.embedding == "onehot" else int(self.embed_dim or self.vocab)

    @property
    def wildcards(self) -> int:
        return self.locations - self.pattern_len

    @property
    def redraw_count(self) -> int:
        return self.wildcards if self.redraw is None else self.redraw

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and its allowed values."""
        v = require_int("vocab", self.vocab, 1)
        k = require_int("locations", self.locations, 1)
        require_int("per_location", self.per_location, 1, v, " (P <= vocab V)")
        require_int("patterns", self.patterns, 1)
        require_int("pattern_len", self.pattern_len, 1, k, " (pattern length <= locations K)")
        require_choice("embedding", self.embedding, EMBEDDINGS)
        if self.embed_dim is not None:
            require_int("embed_dim", self.embed_dim, 1)
            if self.embedding == "onehot" and self.embed_dim != v:
                raise ValueError(f"embed_dim: one-hot embeddings have dimension vocab={v}, got {self.embed_dim}")
        if self.token_magnitudes is not None:
            mags = list(self.token_magnitudes)
            if len(mags) != v or not all(math.isfinite(m) and m > 0 for m in mags):
                raise ValueError(f"token_magnitudes: need {v} finite positive numbers, got {mags}")
        if self.wildcard_probs is not None:
            table = np.asarray(self.wildcard_probs, dtype=float)
            if table.shape != (k, v) or (table < 0).any() or not np.allclose(table.sum(1), 1.0, atol=1e-6):
                raise ValueError(
                    f"wildcard_probs: need a [locations={k}, vocab={v}] table of non-negative rows "
                    f"summing to 1, got shape {table.shape}"
                )
        if self.redraw is not None:
            require_int("redraw", self.redraw, 0, self.wildcards, f" (0 .. K - L = {self.wildcards})")


@dataclass
class TokenTasks:
    """The tasks of R replicas (shapes with leading replica dim R).

    subsets [R, K, P] long; pattern_tokens [R, G, K] long (-1 at wildcards);
    pattern_mask [R, G, K] bool (True at pattern locations); embeddings [R, V, d] float
    (rows scaled by the token magnitudes).
    """

    spec: TokenTaskSpec
    seeds: list[int]
    subsets: Tensor
    pattern_tokens: Tensor
    pattern_mask: Tensor
    embeddings: Tensor
    onehot: bool = field(default=True)

    @property
    def replicas(self) -> int:
        return len(self.seeds)

    def plus_mask(self) -> Tensor:
        """[R, K, V] bool: token a appears at location k in at least one global pattern."""
        r, _, k = self.pattern_tokens.shape
        mask = torch.zeros(r, k, self.spec.vocab + 1, dtype=torch.bool)
        idx = torch.where(self.pattern_mask, self.pattern_tokens, self.spec.vocab)  # wildcard -> dummy
        mask.scatter_(2, idx.transpose(1, 2), True)
        return mask[..., : self.spec.vocab]

    def select(self, index: Sequence[int]) -> TokenTasks:
        """The sub-batch of replicas at ``index`` (same seeds, same tensors)."""
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return TokenTasks(
            self.spec,
            [self.seeds[i] for i in idx.tolist()],
            self.subsets[idx],
            self.pattern_tokens[idx],
            self.pattern_mask[idx],
            self.embeddings[idx],
            self.onehot,
        )


def _draw_task(spec: TokenTaskSpec, gen: torch.Generator, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """One replica's subsets [K, P], pattern tokens [G, K], mask [G, K], embeddings [V, d]."""
    v, k, p, g, length = spec.vocab, spec.locations, spec.per_location, spec.patterns, spec.pattern_len
    subsets = torch.rand(k, v, generator=gen).argsort(dim=1)[:, :p]
    chosen = torch.rand(g, k, generator=gen).argsort(dim=1)[:, :length]  # pattern locations
    mask = torch.zeros(g, k, dtype=torch.bool).scatter_(1, chosen, True)
    pick = torch.randint(p, (g, k), generator=gen)  # which subset entry each location would use
    tokens = torch.where(mask, subsets.gather(1, pick.T).T, torch.full((g, k), -1))
    if spec.embedding == "onehot":
        emb = torch.eye(v, dtype=dtype)
    else:
        emb = torch.randn(v, spec.dim, generator=gen, dtype=torch.float64)
        emb = (emb / emb.norm(dim=1, keepdim=True)).to(dtype)
    if spec.token_magnitudes is not None:
        emb = emb * torch.tensor(spec.token_magnitudes, dtype=dtype).unsqueeze(1)
    return subsets, tokens, mask, emb


def make_tasks(spec: TokenTaskSpec, seeds: Sequence[int], dtype: torch.dtype = torch.float32) -> TokenTasks:
    """Draw the task of every seed from its own ``task`` generator; returns :class:`TokenTasks`."""
    seeds = check_seeds(seeds)
    parts = [_draw_task(spec, replica_generator(s, "task"), dtype) for s in seeds]
    subsets, tokens, mask, emb = (torch.stack(t) for t in zip(*parts))
    return TokenTasks(spec, seeds, subsets, tokens, mask, emb, spec.embedding == "onehot")


class TokenSampler:
    """Two-view token batches for R replicas, each from its own ``data`` generator.

    Calling the sampler returns the next step's views ``(tok1, tok2)``, each a long tensor
    [R, N, K] of token ids (N = ``batch_size``). Draws are made in chunks of
    :data:`DATA_CHUNK_STEPS` steps per replica, in a fixed order: pattern ids [C, N], first-view
    fillers [C, N, K], second-view fillers [C, N, K], then (only when ``redraw`` is smaller
    than the number of wildcards) uniform keys [C, N, K] choosing which wildcards to re-draw.

    Wildcard fillers are uniform over all V tokens, or drawn from the spec's per-location
    table ``wildcard_probs`` [K, V]; ``wildcard_probs=`` here gives each replica its own table
    ([R, K, V], overriding the spec's). A replica's stream depends only on its seed and its
    own table, never on the other replicas.

    ``persistent=`` (bool [R, K, V] or [K, V]) marks persistent filler tokens (module docstring).
    The draws come in the same order as without it; the second view's re-drawn fillers come
    from the table restricted to non-persistent tokens (drawn by inverse CDF, also for uniform
    fillers), so the first view is unchanged and the second differs. Every location needs a
    non-persistent token of positive probability.
    """

    def __init__(
        self,
        tasks: TokenTasks,
        batch_size: int = 128,
        wildcard_probs: Tensor | None = None,
        persistent: Tensor | None = None,
    ):
        self.tasks = tasks
        self.batch_size = require_int("batch_size", batch_size, 2)
        self.generators = [replica_generator(s, "data") for s in tasks.seeds]
        self._cdfs = self._filler_cdfs(wildcard_probs)  # per replica: [K, V] cumulative table or None
        self.persistent = self._persistent_mask(persistent)  # [R, K, V] bool or None
        self._second_cdfs = self._cdfs if self.persistent is None else self._restricted_cdfs()
        self._chunk: Tensor | None = None  # [C, 2, R, N, K]
        self._pos = DATA_CHUNK_STEPS

    def _filler_cdfs(self, wildcard_probs: Tensor | None) -> list[Tensor | None]:
        spec, r = self.tasks.spec, self.tasks.replicas
        if wildcard_probs is None:
            if spec.wildcard_probs is None:
                return [None] * r
            table = torch.tensor(spec.wildcard_probs, dtype=torch.float64)
            return [(table / table.sum(1, keepdim=True)).cumsum(1)] * r
        table = torch.as_tensor(wildcard_probs, dtype=torch.float64)
        expected = (r, spec.locations, spec.vocab)
        if table.shape != expected or (table < 0).any() or (table.sum(-1) - 1).abs().max() > 1e-6:
            raise ValueError(
                f"wildcard_probs: need an [R={r}, locations={spec.locations}, vocab={spec.vocab}] table "
                f"of non-negative rows summing to 1, got shape {tuple(table.shape)}"
            )
        return list((table / table.sum(-1, keepdim=True)).cumsum(-1).unbind(0))

    def _persistent_mask(self, persistent: Tensor | None) -> Tensor | None:
        if persistent is None:
            return None
        spec, r = self.tasks.spec, self.tasks.replicas
        mask = torch.as_tensor(persistent)
        if mask.dim() == 2:
            mask = mask.unsqueeze(0).expand(r, *mask.shape)
        if mask.dtype != torch.bool or tuple(mask.shape) != (r, spec.locations, spec.vocab):
            raise ValueError(
                f"persistent: need a bool table [R={r}, locations={spec.locations}, vocab={spec.vocab}] "
                f"or [locations, vocab], got {tuple(mask.shape)} {mask.dtype}"
            )
        return mask.clone()

    def _restricted_cdfs(self) -> list[Tensor]:
        """Per replica the cumulative filler table [K, V] restricted to non-persistent tokens."""
        spec = self.tasks.spec
        out = []
        for cdf, mask in zip(self._cdfs, self.persistent):
            if cdf is None:
                probs = torch.full((spec.locations, spec.vocab), 1.0 / spec.vocab, dtype=torch.float64)
            else:
                probs = torch.diff(cdf, dim=1, prepend=torch.zeros(spec.locations, 1, dtype=torch.float64))
            probs = probs.masked_fill(mask, 0.0)
            mass = probs.sum(1, keepdim=True)
            if (mass <= 0).any():
                raise ValueError(
                    "persistent: every location needs a non-persistent filler token of positive probability"
                )
            out.append((probs / mass).cumsum(1))
        return out

    def __call__(self) -> tuple[Tensor, Tensor]:
        if self._pos == DATA_CHUNK_STEPS:
            self._chunk = self.draw_chunk()
            self._pos = 0
        views = self._chunk[self._pos]
        self._pos += 1
        return views[0], views[1]

    def _fillers(self, gen: torch.Generator, cdf: Tensor | None, shape: tuple[int, ...]) -> Tensor:
        """Wildcard fillers [C, N, K]: uniform over V, or from a per-location cumulative table [K, V]."""
        v = self.tasks.spec.vocab
        if cdf is None:
            return torch.randint(v, shape, generator=gen)
        u = torch.rand(shape, generator=gen, dtype=torch.float64)  # [C, N, K]
        k = shape[-1]
        flat = u.reshape(-1, k).T.contiguous()  # [K, C*N]
        idx = torch.searchsorted(cdf, flat, right=True).clamp_(max=v - 1)
        return idx.T.reshape(shape)

    def _draw_replica(self, gen: torch.Generator, cdf: Tensor | None, cdf2: Tensor | None) -> tuple[Tensor, ...]:
        spec = self.tasks.spec
        c, n, k = DATA_CHUNK_STEPS, self.batch_size, spec.locations
        pattern = torch.randint(spec.patterns, (c, n), generator=gen)
        fill1 = self._fillers(gen, cdf, (c, n, k))
        fill2 = self._fillers(gen, cdf2, (c, n, k))
        keys = None
        if spec.redraw_count < spec.wildcards:
            keys = torch.rand((c, n, k), generator=gen)
        return pattern, fill1, fill2, keys

    def draw_chunk(self) -> Tensor:
        """The next :data:`DATA_CHUNK_STEPS` steps of every replica, [C, 2, R, N, K] long."""
        return self.draw_chunk_with_patterns()[0]

    def draw_chunk_with_patterns(self) -> tuple[Tensor, Tensor]:
        """Like :meth:`draw_chunk`, also returning each sample's pattern id [C, R, N]."""
        spec = self.tasks.spec
        parts = [self._draw_replica(*args) for args in zip(self.generators, self._cdfs, self._second_cdfs)]
        pattern = torch.stack([p[0] for p in parts])  # [R, C, N]
        fill1 = torch.stack([p[1] for p in parts])  # [R, C, N, K]
        fill2 = torch.stack([p[2] for p in parts])
        r, c, n = pattern.shape
        flat = pattern.reshape(r, c * n, 1).expand(r, c * n, spec.locations)
        tokens = self.tasks.pattern_tokens.gather(1, flat).reshape(r, c, n, -1)
        mask = self.tasks.pattern_mask.gather(1, flat).reshape(r, c, n, -1)
        view1 = torch.where(mask, tokens, fill1)
        second_fill = fill2
        if parts[0][3] is not None:
            keys = torch.stack([p[3] for p in parts])
            second_fill = torch.where(_redraw_selection(keys, mask, spec.redraw_count), fill2, fill1)
        if self.persistent is not None:  # persistent first-view fillers stay in the second view
            loc = torch.arange(spec.locations).view(1, 1, 1, -1)
            keep = self.persistent[torch.arange(r).view(-1, 1, 1, 1), loc, fill1]
            second_fill = torch.where(keep, fill1, second_fill)
        view2 = torch.where(mask, tokens, second_fill)
        chunk = torch.stack([view1, view2]).permute(2, 0, 1, 3, 4).contiguous()
        return chunk, pattern.transpose(0, 1).contiguous()


def _redraw_selection(keys: Tensor, mask: Tensor, count: int) -> Tensor:
    """bool [..., K]: the ``count`` wildcard locations with the smallest keys (pattern locations excluded)."""
    keys = keys.masked_fill(mask, 2.0)  # pattern locations sort last
    rank = keys.argsort(dim=-1).argsort(dim=-1)
    return rank < count


def embed(tokens: Tensor, embeddings: Tensor) -> Tensor:
    """Inputs ``x [R, N, K, d]`` of token ids ``tokens [R, N, K]`` under ``embeddings [R, V, d]``.

    Raises ValueError naming the allowed range [0, V) for an id out of it (TypeError for
    non-integer ids) instead of torch's bare index error.
    """
    if not isinstance(tokens, Tensor) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise TypeError(f"tokens: expected an integer tensor of token ids, got {getattr(tokens, 'dtype', tokens)!r}")
    if tokens.dim() != 3 or embeddings.dim() != 3 or tokens.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"tokens, embeddings: expected [R, N, K] and [R, V, d] with the same R, "
            f"got {list(tokens.shape)} and {list(embeddings.shape)}"
        )
    v = embeddings.shape[1]
    if tokens.numel():
        low, high = torch.aminmax(tokens)
        if int(low) < 0 or int(high) >= v:
            raise ValueError(f"tokens: token ids must be in [0, V={v}), got ids from {int(low)} to {int(high)}")
    r, n, k = tokens.shape
    flat = tokens.reshape(r, n * k, 1).expand(r, n * k, embeddings.shape[-1])
    return embeddings.gather(1, flat).reshape(r, n, k, -1)
