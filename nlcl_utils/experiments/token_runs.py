"""Token-task runs with per-token trajectories: which tokens each RF learns, and when.

One call of :func:`run_case` trains every seed of one :class:`nlcl_utils.engine.train.TokenConfig` as
a batch of replicas (optionally with per-replica filler tables and persistent filler tokens,
see :class:`nlcl_utils.data.tokens.TokenSampler`), keeps weight snapshots, and returns a typed
:class:`CaseResult`:

* ``scores [S, R, K, V]``: each token's score (best cosine over the RF's filters) at every
  snapshot, float64;
* ``lock [R, K, V]``: first snapshot step with score >= ``lock_threshold`` (``inf`` = never,
  i.e. censored at the last snapshot);
* ``chi_plus``, ``chi_minus [S, R]``; token statistics (exact frequency, pattern count, mutual
  information) under the filler table actually used;
* ``first`` / ``top`` snapshots only when ``keep_snapshots`` (memory: S x R x K x M x d floats).

:func:`run_cases` trains several such cases side by side, one process per core: a case's result
does not depend on where it ran (every replica has its own generators), only the wall time does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nlcl_utils.data.tokens import TokenSampler, TokenTasks
from nlcl_utils.engine import metrics
from nlcl_utils.engine.train import TokenConfig, _check_snapshot_steps, build_token_experiment, train_with_config
from nlcl_utils.processes import check_workers, map_ordered
from nlcl_utils.theory import priority

Tensor = torch.Tensor


@dataclass
class CaseResult:
    """One configuration, all seeds (see the module docstring for shapes)."""

    label: str
    config: TokenConfig
    seeds: list[int]
    tasks: TokenTasks
    snapshot_steps: list[int]
    scores: Tensor
    lock: Tensor
    chi_plus: Tensor
    chi_minus: Tensor
    stats: priority.TokenStats
    tables: Tensor | None
    persistent: Tensor | None
    nan_replicas: int
    cpu_seconds: float
    first: Tensor | None = None
    top: Tensor | None = None

    @property
    def final_scores(self) -> Tensor:
        """[R, K, V] token scores after the last step."""
        return self.scores[-1]


def snapshot_grid(steps: int, every: int) -> list[int]:
    """Snapshot steps ``0, every, 2 every, ..., steps`` (the last step always included)."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every: must be an integer >= 1, got {every!r}")
    return sorted(set(range(0, steps + 1, every)) | {steps})


def run_case(
    label: str,
    config: TokenConfig,
    seeds: Sequence[int],
    *,
    snapshot_steps: Sequence[int],
    lock_threshold: float = 0.9,
    tables: Tensor | None = None,
    persistent: Tensor | None = None,
    keep_snapshots: bool = False,
    progress: bool = True,
) -> CaseResult:
    """Train ``config`` for every seed (one batch) and measure per-token trajectories.

    tables: per-replica filler tables [R, K, V] (None: the config's); persistent: bool [R, K, V]
    persistent filler tokens (None: none).
    """
    config.validate()
    tasks, model, sampler = build_token_experiment(config, seeds)
    if tables is not None or persistent is not None:
        sampler = TokenSampler(tasks, config.batch_size, wildcard_probs=tables, persistent=persistent)
    result = train_with_config(model, sampler, config, snapshot_steps=snapshot_steps, progress=progress, desc=label)
    firsts = result.snapshots["first"]  # [S, R, K, M, d]
    s, r = firsts.shape[:2]
    absolute = config.activation == "linear"
    emb = tasks.embeddings.repeat(s, 1, 1)
    scores = metrics.token_scores(firsts.flatten(0, 1), emb, absolute).unflatten(0, (s, r))
    plus = tasks.plus_mask()
    chi_p, chi_m = metrics.chi_scores(scores.flatten(0, 1), plus.repeat(s, 1, 1))
    table = tables if tables is not None else config.wildcard_probs
    stats = priority.token_statistics(tasks.pattern_tokens, config.vocab, table)
    return CaseResult(
        label=label,
        config=config,
        seeds=list(tasks.seeds),
        tasks=tasks,
        snapshot_steps=list(result.snapshot_steps),
        scores=scores,
        lock=priority.first_lock_on(scores, result.snapshot_steps, lock_threshold),
        chi_plus=chi_p.view(s, r),
        chi_minus=chi_m.view(s, r),
        stats=stats,
        tables=tables,
        persistent=persistent,
        nan_replicas=int(result.nan.sum()),
        cpu_seconds=result.cpu_seconds,
        first=firsts if keep_snapshots else None,
        top=result.snapshots["top"] if keep_snapshots else None,
    )


@dataclass
class Case:
    """One :func:`run_case` call of :func:`run_cases`: a label, a config and its optional inputs."""

    label: str
    config: TokenConfig
    tables: Tensor | None = None
    persistent: Tensor | None = None
    keep_snapshots: bool = False


def _run_one(job: tuple[Case, list[int], list[int], float]) -> CaseResult:
    case, seeds, snapshot_steps, lock_threshold = job
    return run_case(
        case.label,
        case.config,
        seeds,
        snapshot_steps=snapshot_steps,
        lock_threshold=lock_threshold,
        tables=case.tables,
        persistent=case.persistent,
        keep_snapshots=case.keep_snapshots,
        progress=False,
    )


def run_cases(
    cases: Sequence[Case],
    seeds: Sequence[int],
    *,
    snapshot_steps: Sequence[int],
    lock_threshold: float = 0.9,
    workers: int | None = None,
    progress: bool = True,
) -> list[CaseResult]:
    """:func:`run_case` for every case, in input order, on ``workers`` processes (None: every core).

    With one worker (or one case) everything runs in this process. Otherwise each case goes to a
    spawned process with one torch thread (no forked torch state); results are identical to a
    serial run. Every config is validated before anything starts; a progress bar counts cases.
    """
    cases = list(cases)
    seeds = list(seeds)
    snapshot_steps = list(snapshot_steps)
    workers = check_workers(workers)
    for case in cases:
        if not isinstance(case, Case):
            raise TypeError(f"cases: expected token_runs.Case items, got {type(case).__name__}")
        case.config.validate()
        _check_snapshot_steps(snapshot_steps, case.config.steps)
    jobs = [(case, seeds, snapshot_steps, lock_threshold) for case in cases]
    return map_ordered(_run_one, jobs, workers, progress=progress, desc="cases")


def replace(config: TokenConfig, **changes) -> TokenConfig:
    """``dataclasses.replace`` that validates the new config (bad values fail before compute)."""
    new = dataclasses.replace(config, **changes)
    new.validate()
    return new
