"""Seeds: what a valid seed is, how a seed list is written on a command line, and the random
stream of one replica.

Every random draw of the package comes from :func:`replica_generator` ``(seed, purpose)``, so a
replica's task, initialization and data are the same whether it runs alone or in a batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch

PURPOSES = ("task", "init", "data")


def replica_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU ``torch.Generator`` for one replica and one purpose (``task``, ``init``, ``data``).

    The state is a 64-bit integer derived from ``(seed, purpose)`` by numpy's ``SeedSequence``
    (a fixed, documented hash), so different purposes give unrelated streams and the same
    ``(seed, purpose)`` always gives the same stream.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose: unknown {purpose!r}; allowed: {', '.join(PURPOSES)}")
    seed = check_seed(seed)
    words = np.random.SeedSequence([seed, PURPOSES.index(purpose)]).generate_state(2, np.uint32)
    state = (int(words[0]) << 32 | int(words[1])) & ((1 << 63) - 1)
    return torch.Generator().manual_seed(state)


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise ValueError if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seeds: each seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Validate a non-empty sequence of non-negative integer seeds."""
    seeds = [check_seed(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    return seeds


SEED_PART = re.compile(r"^(\d+)(?:-(\d+))?$")
SEEDS_FORMS = "e.g. '1-8', '1,3,5' or '1-4,10' (non-negative integers, each seed once)"


def parse_seeds(text: str, limit: int | None = None, why: str = "fit in this machine's memory") -> list[int]:
    """``"1-8"``, ``"1,3,5"`` or ``"1-4,10"`` -> sorted list of distinct non-negative ints.

    Raises ValueError naming ``seeds`` for any other form (``"3-1"``, ``"a"``, ``""``, a seed
    given twice) and, before expanding the ranges, when they hold more than ``limit`` seeds
    (the message says at most ``limit`` seeds ``why``).
    """
    ranges = []
    for part in text.split(","):
        match = SEED_PART.match(part.strip())
        if not match:
            raise ValueError(f"seeds: {part.strip()!r} in {text!r} is not a seed or a range low-high; {SEEDS_FORMS}")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if low > high:
            raise ValueError(f"seeds: range {part.strip()!r} runs backwards; write {high}-{low}")
        ranges.append((low, high))
    count = sum(high - low + 1 for low, high in ranges)
    if limit is not None and count > limit:
        raise ValueError(f"seeds: {text!r} asks for {count} seeds; at most {limit} {why}")
    seeds = sorted(s for low, high in ranges for s in range(low, high + 1))
    repeated = sorted({a for a, b in zip(seeds, seeds[1:]) if a == b})
    if repeated:
        raise ValueError(f"seeds: {', '.join(map(str, repeated[:5]))} given more than once in {text!r}; {SEEDS_FORMS}")
    return seeds
