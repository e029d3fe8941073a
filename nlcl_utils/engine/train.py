"""Batched training loop (SGD + momentum + weight decay), snapshots, NaN guard, progress bar.

Protocols
---------
*Model* (:class:`nlcl_utils.engine.models.ReceptiveFieldNet`, :class:`nlcl_utils.engine.models.OneLayerNet`,
or anything with the same three members):

* ``params``: list of tensors, each with leading replica dim R, updated in place;
* ``param_names``: tuple of names, one per tensor of ``params`` (keys of the snapshots);
* ``loss_and_grads(batch) -> (loss [R], grads)``: loss per replica and one gradient per
  parameter (same shapes), without touching the parameters.

*Sampler*: a callable with no arguments returning the next batch, the object handed to
``model.loss_and_grads``. For both networks a batch is a pair of views ``(view1, view2)``:
token ids ``[R, N, K]`` for the receptive-field network (:class:`nlcl_utils.data.tokens.
TokenSampler`), inputs ``[R, N, d]`` for the one-layer network (e.g. the mixture sampler of
``nlcl_utils.data.mixture``; wrap it in a ``lambda`` if it takes arguments). Replica r of the
batch must be replica r of the model.

SGD is PyTorch's ``torch.optim.SGD`` (dampening 0, no Nesterov): ``g <- grad + wd * w``,
``buf <- momentum * buf + g`` (``buf = g`` at the first step), ``w <- w - lr * buf``.

NaN guard: before each update, a replica whose loss or gradient is not finite is frozen (its
weights stay at the last finite values, its momentum is cleared) and marked ``nan``; the others
go on. Progress bar: tqdm, off when ``progress=False`` or the environment sets
``TQDM_DISABLE`` to a non-empty value other than ``0``/``false``.

The experiment-level entry point for the token task is :func:`run_tokens` with a
:class:`TokenConfig` (every setting of ``docs/theory.md`` section 6, paper defaults).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from nlcl_utils import progress as progress_bars
from nlcl_utils.checks import require_choice
from nlcl_utils.data.tokens import TokenSampler, TokenTasks, TokenTaskSpec, make_tasks
from nlcl_utils.engine.config import DTYPES, NetworkSettings, check_optimizer
from nlcl_utils.engine.metrics import token_metrics
from nlcl_utils.engine.models import HEAD_NAMES, ReceptiveFieldNet
from nlcl_utils.processes import check_workers, map_ordered
from nlcl_utils.seeds import check_seeds
from nlcl_utils.settings import setting

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------
# The generic loop.
# ----------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train` returns (all batched over the R replicas).

    losses [steps, R] (loss at each step, before that step's update; NaN-frozen replicas keep
    recording their non-finite loss); snapshots: name -> [S, R, ...] weights after
    ``snapshot_steps[s]`` updates (0 = init); nan [R] bool; nan_step [R] (first non-finite
    step, -1 if none); cpu_seconds / wall_seconds of the loop.
    """

    losses: Tensor
    snapshot_steps: list[int]
    snapshots: dict[str, Tensor]
    nan: Tensor
    nan_step: Tensor
    cpu_seconds: float
    wall_seconds: float


def _check_snapshot_steps(snapshot_steps: Sequence[int], steps: int) -> list[int]:
    chosen = sorted(set(int(s) for s in snapshot_steps))
    if chosen and (chosen[0] < 0 or chosen[-1] > steps):
        raise ValueError(f"snapshot_steps: each must be in [0, steps={steps}], got {list(snapshot_steps)}")
    return chosen


def _finite_per_replica(loss: Tensor, grads: list[Tensor]) -> Tensor:
    """[R] bool: loss and every gradient entry finite."""
    ok = torch.isfinite(loss)
    for g in grads:
        ok &= torch.isfinite(g.sum(tuple(range(1, g.dim()))))
    return ok


def train(
    model: Any,
    sampler: Callable[[], Any],
    steps: int,
    *,
    lr: float = 0.02,
    momentum: float = 0.9,
    weight_decay: float = 5e-3,
    snapshot_steps: Sequence[int] = (),
    progress: bool = True,
    desc: str = "train",
    threads: int | None = 1,
) -> TrainResult:
    """Train ``model`` on batches from ``sampler`` for ``steps`` SGD steps (see module docstring).

    ``threads``: torch intra-op threads during the loop (restored afterwards; None keeps the
    current setting). The default 1 is deliberate: these tensors are small, and with 2 threads
    on a loaded 2-core machine some kernels (``index_add_``) were measured 10-150x slower.
    """
    check_optimizer(steps, lr, momentum, weight_decay)
    chosen = _check_snapshot_steps(snapshot_steps, steps)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: must be an integer >= 1 or None, got {threads!r}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train_loop(model, sampler, steps, lr, momentum, weight_decay, chosen, progress, desc)
    finally:
        torch.set_num_threads(previous)


def _train_loop(
    model: Any,
    sampler: Callable[[], Any],
    steps: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    chosen: list[int],
    progress: bool,
    desc: str,
) -> TrainResult:
    params = model.params
    replicas = params[0].shape[0]
    bufs = [torch.zeros_like(p) for p in params]
    losses = torch.empty(steps, replicas, dtype=params[0].dtype)
    snaps = {
        name: torch.empty((len(chosen),) + tuple(p.shape), dtype=p.dtype) for name, p in zip(model.param_names, params)
    }
    alive = torch.ones(replicas, dtype=torch.bool)
    nan_step = torch.full((replicas,), -1, dtype=torch.long)
    pending = list(chosen)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    bar = progress_bars.bar(total=steps, desc=desc, progress=progress, mininterval=0.5, leave=False)
    for step in range(steps + 1):
        while pending and pending[0] == step:
            slot = len(chosen) - len(pending)
            for name, p in zip(model.param_names, params):
                snaps[name][slot].copy_(p)
            pending.pop(0)
        if step == steps:
            break
        loss, grads = model.loss_and_grads(sampler())
        losses[step] = loss
        finite = _finite_per_replica(loss, grads)
        if not bool(finite.all()) or not bool(alive.all()):
            newly = alive & ~finite
            nan_step[newly] = step
            alive &= finite
            _mask_dead(grads, bufs, alive)
        _sgd_update(params, grads, bufs, lr, momentum, weight_decay, first=step == 0, alive=alive)
        if step % 50 == 49:
            bar.update(50)
    bar.close()
    return TrainResult(losses, chosen, snaps, ~alive, nan_step, time.process_time() - cpu0, time.perf_counter() - wall0)


def _mask_dead(grads: list[Tensor], bufs: list[Tensor], alive: Tensor) -> None:
    """Zero the gradients and momentum of frozen replicas (NaN-safe: assignment, not product)."""
    dead = ~alive
    for g, b in zip(grads, bufs):
        g[dead] = 0
        b[dead] = 0


def _sgd_update(
    params: list[Tensor],
    grads: list[Tensor],
    bufs: list[Tensor],
    lr: float,
    momentum: float,
    weight_decay: float,
    first: bool,
    alive: Tensor,
) -> None:
    """In-place SGD with momentum and weight decay (PyTorch semantics), frozen replicas untouched."""
    frozen = not bool(alive.all())
    if weight_decay:
        if frozen:
            keep = alive.to(params[0].dtype)
            for g, p in zip(grads, params):
                g.add_(p * keep.view((-1,) + (1,) * (p.dim() - 1)), alpha=weight_decay)
        else:
            torch._foreach_add_(grads, params, alpha=weight_decay)
    if momentum:
        if not first:
            torch._foreach_mul_(bufs, momentum)
        torch._foreach_add_(bufs, grads)
        step_dirs = bufs
    else:
        step_dirs = grads
    torch._foreach_add_(params, step_dirs, alpha=-lr)


# ----------------------------------------------------------------------------------------------
# The token experiment.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenConfig(TokenTaskSpec, NetworkSettings):
    """Every setting of the hierarchical-token experiment (defaults: the paper's, ``docs/theory.md`` section 6).

    Task: the fields of :class:`nlcl_utils.data.tokens.TokenTaskSpec` (vocab .. redraw); network,
    loss and optimizer: those of :class:`nlcl_utils.engine.config.NetworkSettings` (beta .. dtype);
    both inherited, so a config is one flat record (CLI flags, JSON). Its own field: head
    (``"joint"``, the paper's top layer, or ``"per_rf"``, the decoupled block-diagonal one of
    :mod:`nlcl_utils.engine.models`). Losses: ``"infonce"``, ``"quadratic"``, ``"quadratic_tau"``
    = quadratic(M / tau). dtype: ``"float32"`` (training) or ``"float64"``.
    """

    beta: float = setting(5, "over-parameterization: M = beta * P filters per receptive field", low=1)
    head: str = setting("joint", "joint top layer or one decoupled output block per RF", choices=HEAD_NAMES)

    @property
    def filters(self) -> int:
        """M = round(beta * P) filters per receptive field."""
        return int(round(self.beta * self.per_location))

    def task_spec(self) -> TokenTaskSpec:
        """The task part of the config as a plain :class:`TokenTaskSpec`."""
        names = [f.name for f in dataclasses.fields(TokenTaskSpec)]
        return TokenTaskSpec(**{n: getattr(self, n) for n in names})

    def validate(self) -> None:
        """Raise SettingError (a ValueError) naming the first bad setting (before any compute)."""
        TokenTaskSpec.validate(self)
        self.validate_network()
        require_choice("head", self.head, HEAD_NAMES)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        for key in ("token_magnitudes", "wildcard_probs"):
            if out[key] is not None:
                out[key] = [list(row) if isinstance(row, (list, tuple)) else row for row in out[key]]
        return out


@dataclass
class TokenRun:
    """A batch of token-experiment runs: config, seeds, tasks, trained model, result, metrics.

    ``metrics`` maps a name to a per-replica tensor (see :func:`nlcl_utils.engine.metrics.token_metrics`).
    """

    config: TokenConfig
    seeds: list[int]
    tasks: TokenTasks
    model: ReceptiveFieldNet
    result: TrainResult
    metrics: dict[str, Tensor] = field(default_factory=dict)

    def runs(self, with_snapshots: bool = False) -> list[dict]:
        """One structured record per replica: seed, config, chi_plus, chi_minus, final_loss, nan, ...

        ``losses`` (per step) and, with ``with_snapshots``, the replica's snapshots are tensors;
        everything else is plain Python numbers.
        """
        records = []
        for r, seed in enumerate(self.seeds):
            rec: dict[str, Any] = {"seed": seed, "config": self.config}
            for name, values in self.metrics.items():
                if values.dim() == 1:
                    rec[name] = float(values[r])
            rec["final_loss"] = float(self.result.losses[-1, r]) if self.result.losses.shape[0] else float("nan")
            rec["nan"] = bool(self.result.nan[r])
            rec["nan_step"] = int(self.result.nan_step[r])
            rec["losses"] = self.result.losses[:, r]
            if with_snapshots:
                rec["snapshots"] = {k: v[:, r] for k, v in self.result.snapshots.items()}
            records.append(rec)
        return records


def build_token_experiment(
    config: TokenConfig, seeds: Sequence[int]
) -> tuple[TokenTasks, ReceptiveFieldNet, TokenSampler]:
    """Tasks, initialized network and data sampler for ``seeds`` (one replica per seed)."""
    seeds = check_seeds(seeds)
    dtype = DTYPES[config.dtype]
    tasks = make_tasks(config.task_spec(), seeds, dtype=dtype)
    model = ReceptiveFieldNet.init(
        seeds,
        tasks.embeddings,
        config.locations,
        config.filters,
        config.out_dim,
        dtype=dtype,
        head=config.head,
        **config.network_options(),
    )
    return tasks, model, TokenSampler(tasks, config.batch_size)


def train_with_config(
    model: ReceptiveFieldNet,
    sampler: Callable[[], Any],
    config: TokenConfig,
    *,
    snapshot_steps: Sequence[int] = (),
    progress: bool = True,
    desc: str = "tokens",
    threads: int = 1,
) -> TrainResult:
    """:func:`train` with the optimizer settings (steps, lr, momentum, weight decay) of ``config``."""
    return train(
        model,
        sampler,
        config.steps,
        **config.optimizer_options(),
        snapshot_steps=snapshot_steps,
        progress=progress,
        desc=desc,
        threads=threads,
    )


def run_tokens(
    config: TokenConfig,
    seeds: Sequence[int],
    *,
    snapshot_steps: Sequence[int] = (),
    progress: bool = True,
    threads: int | None = 1,
) -> TokenRun:
    """Train the receptive-field network on the token task for every seed (batched) and measure it.

    ``threads``: torch threads of the training loop (see :func:`train`).
    """

    config.validate()
    _check_snapshot_steps(snapshot_steps, config.steps)
    tasks, model, sampler = build_token_experiment(config, seeds)
    desc = f"tokens {config.activation} R={len(tasks.seeds)}"
    result = train_with_config(
        model, sampler, config, snapshot_steps=snapshot_steps, progress=progress, desc=desc, threads=threads
    )
    metrics = token_metrics(model.first, tasks, absolute=config.activation == "linear")
    return TokenRun(config, list(tasks.seeds), tasks, model, result, metrics)


def _run_tokens_job(job: tuple[TokenConfig, list[int], list[int]]) -> TokenRun:
    config, seeds, snapshot_steps = job
    return run_tokens(config, seeds, snapshot_steps=snapshot_steps, progress=False)


def run_tokens_many(
    configs: Sequence[TokenConfig],
    seeds: Sequence[int],
    *,
    snapshot_steps: Sequence[int] = (),
    workers: int | None = None,
    progress: bool = True,
) -> list[TokenRun]:
    """:func:`run_tokens` for every config (same seeds), in input order, side by side.

    ``workers``: processes (None: one per core; 1: everything in this process). Each config runs
    in a spawned process with one torch thread, so the results equal a serial run's. Every config
    and the seeds are checked before anything starts; a progress bar counts finished configs.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("configs: give at least one TokenConfig")
    for config in configs:
        if not isinstance(config, TokenConfig):
            raise TypeError(f"configs: expected TokenConfig items, got {type(config).__name__}")
        config.validate()
        _check_snapshot_steps(snapshot_steps, config.steps)
    seeds = check_seeds(seeds)
    workers = check_workers(workers)
    jobs = [(config, list(seeds), list(snapshot_steps)) for config in configs]
    return map_ordered(_run_tokens_job, jobs, workers, progress=progress, desc="configs")
