"""Sweeps of the token experiment: a grid of :class:`~nlcl_utils.engine.train.TokenConfig` settings x seeds.

A *grid* (a TOML file for ``nlcl sweep``, or the same structure as a dict) is::

    seeds = "1-8"            # or a list [1, 2, 3]; the same seeds for every configuration (at most 100000)
    max_replicas = 8         # at most this many seeds of one configuration per batched run

    [base]                   # TokenConfig fields shared by every run
    steps = 5000

    [[grid]]                 # a block: the product of its lists (a scalar is a one-value list)
    activation = ["relu", "linear"]
    beta = [1, 2, 5]

    [[grid]]                 # explicit rows: each entry of `cases` is one setting, crossed
    cases = [{activation = "leaky_relu", slope = 0.05}, {activation = "sigmoid"}]
    bn = [true, false]       # with the block's other lists

    [slurm]                  # submitit parameters for --executor slurm (flags override them)
    partition = "cpu"
    timeout_min = 60

The configurations are the union of the blocks (duplicates dropped, first occurrence kept;
no block means the base setting alone). For fields whose value is itself a list
(``token_magnitudes``, ``wildcard_probs``) a list of lists is a product, one list is one value.
Every key and value is checked before anything runs: an unknown field stops with a
did-you-mean, a bad value with the field's rule (:meth:`TokenConfig.validate`).

*Runs and batches.* A run is one (configuration, seed). The seeds of one configuration that
still have to run are trained together, up to ``max_replicas`` per :func:`run_tokens` call
(replicas of one batched computation). A seed's result does not depend on which other seeds
share its batch (every seed has its own generators; ``tests/test_sweep.py`` checks it bit for
bit), so the cache can be filled in any order.

*Cache.* One small JSON file per run, ``CACHE/runs/<key[:2]>/<key>.json``, where ``key`` is the
SHA-256 of the canonical JSON of the full configuration, the seed, :data:`CACHE_FORMAT` and the
engine's fingerprint (its source files, torch and numpy versions: changed code never reads old runs);
written atomically (temporary file + ``os.replace``) by the task that computed it, with a
checksum of its content. A run whose file holds a valid record (it parses, names this run, and
its checksum matches) is never recomputed, so an interrupted or extended sweep runs only what is
missing; a file that is edited, truncated or empty is computed again, and the sweep names it.
A failed batch writes nothing (it runs again next time). Changing any field, including fields
added to TokenConfig later, changes the key.

*Executors* run the same task function :func:`run_batch`:

* ``local`` (default): a pool of processes, one per core, each with one torch thread. Ctrl-C
  stops the pool; finished runs stay in the cache.
* ``slurm``: a submitit job array, one job per batch (``cpus_per_task=1``), the cache on a
  file system the compute nodes share. Needs Slurm's ``srun`` and ``sbatch`` on PATH
  (:func:`check_executor` says so before anything runs). ``submitit_cluster="local"`` runs the very same job
  array as local subprocesses (submitit's LocalExecutor), which is how the tests exercise it.

Running on a real Slurm cluster::

    pip install -e .                      # on the login node, in an environment the nodes see
    nlcl sweep grid.toml --executor slurm --cache /scratch/$USER/nlcl-cache \\
        --partition cpu --timeout-min 60 --array-parallelism 200 --out results.csv

The command submits one array (job logs under ``CACHE/submitit/``), waits with a progress bar,
then writes the CSV. Run it inside ``tmux``/``screen`` (or itself as a small job): Ctrl-C
cancels the array's unfinished jobs, and re-running submits only the runs with no cache file.
Other Slurm options go in the grid's ``[slurm]`` table under submitit's names without the
``slurm_`` prefix (``account``, ``qos``, ``constraint``, ``mem_gb``, ``setup`` = shell lines run
before the job, ``additional_parameters`` = a table of raw sbatch options).

*Export.* :func:`results_frame` gives one tidy row per run: every TokenConfig field, the seed,
the metrics (chi_plus, chi_minus, selective_fraction, coverage, effective_rank, final_loss,
nan_step), and ``status`` (``ok``, ``nan`` = stopped by the NaN guard, ``missing`` = not in the
cache); :func:`export_csv` writes it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import signal
import sys
import time
import tomllib
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlcl_utils import progress as progress_bars
from nlcl_utils import publish
from nlcl_utils.engine.train import TokenConfig, run_tokens
from nlcl_utils.processes import check_workers, run_spawned
from nlcl_utils.seeds import parse_seeds

CACHE_FORMAT = 1
METRICS = ("chi_plus", "chi_minus", "selective_fraction", "coverage", "effective_rank", "final_loss")
STATUSES = ("ok", "nan", "missing")
TOP_LEVEL_KEYS = ("seeds", "max_replicas", "base", "grid", "slurm")
EXECUTORS = ("local", "slurm")
MAX_SEEDS = 100_000  # seeds of one grid: checked before a range like "0-10000000" is expanded
# submitit's cluster-independent parameters; the Slurm-specific ones are looked up from submitit
GENERIC_SLURM_KEYS = ("timeout_min", "mem_gb", "cpus_per_task", "name")


class GridError(ValueError):
    """A grid file or grid dict names an unknown key or holds an impossible value."""


class SweepInterrupted(RuntimeError):
    """The sweep was stopped (Ctrl-C, or signal ``signum``); ``done`` of ``total`` runs are in the cache."""

    def __init__(self, done: int, total: int, signum: int = signal.SIGINT):
        super().__init__(
            f"interrupted ({signal.Signals(signum).name}): {done} of {total} runs are in the cache; "
            "run again to finish the rest"
        )
        self.done, self.total, self.signum = done, total, signum


class SweepFailed(RuntimeError):
    """Some Slurm jobs failed; the runs of the others are in the cache."""


# ----------------------------------------------------------------------------------------------
# Grid: parsing and validation.
# ----------------------------------------------------------------------------------------------

FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TokenConfig))
_HINTS = typing.get_type_hints(TokenConfig)


def _did_you_mean(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unknown(where: str, key: str, allowed: Sequence[str]) -> GridError:
    return GridError(f"{where}: unknown key {key!r}{_did_you_mean(key, allowed)} Allowed: {', '.join(allowed)}")


def _is_sequence_field(name: str) -> bool:
    return typing.get_origin(_non_none(_HINTS[name])) is tuple


def _non_none(hint: Any) -> Any:
    """``X`` for ``X | None``, else the hint itself."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _value_depth(name: str) -> int:
    """How deeply nested one value of a sequence field is (token_magnitudes 1, wildcard_probs 2)."""
    return 1 if typing.get_args(_non_none(_HINTS[name]))[0] is float else 2


def _nesting(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    return depth


def _coerce(name: str, value: Any, where: str) -> Any:
    """``value`` converted to TokenConfig field ``name``'s type (int -> float, list -> tuple) or GridError."""
    hint = _HINTS[name]
    optional = type(None) in typing.get_args(hint)
    base = _non_none(hint)
    if value is None:
        if optional:
            return None
        raise GridError(f"{where}: {name}: may not be empty")
    if base is bool:
        if not isinstance(value, bool):
            raise GridError(f"{where}: {name}: must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GridError(f"{where}: {name}: must be an integer, got {value!r}")
        return value
    if base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GridError(f"{where}: {name}: must be a number, got {value!r}")
        return float(value)
    if base is str:
        if not isinstance(value, str):
            raise GridError(f"{where}: {name}: must be a string, got {value!r}")
        return value
    if typing.get_origin(base) is tuple:
        return _coerce_nested(name, value, where, _value_depth(name))
    raise GridError(f"{where}: {name}: cannot be set from a grid")  # pragma: no cover - no such field today


def _coerce_nested(name: str, value: Any, where: str, depth: int) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise GridError(f"{where}: {name}: must be a list{' of lists' if depth == 2 else ''} of numbers, got {value!r}")
    if depth == 2:
        return tuple(_coerce_nested(name, row, where, 1) for row in value)
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise GridError(f"{where}: {name}: must be a list of numbers, got {value!r}")
    return tuple(float(x) for x in value)


def _settings(table: Any, where: str) -> dict[str, Any]:
    """Check a table of TokenConfig settings (one value each): known keys, right types."""
    if not isinstance(table, Mapping):
        raise GridError(f"{where}: must be a table of TokenConfig settings, got {table!r}")
    out = {}
    for key, value in table.items():
        if key not in FIELD_NAMES:
            raise _unknown(where, key, FIELD_NAMES)
        out[key] = _coerce(key, value, where)
    return out


def _block_values(name: str, value: Any) -> list[Any]:
    """The values a block key ranges over: a list is a product, a scalar one value."""
    if _is_sequence_field(name):
        return list(value) if _nesting(value) > _value_depth(name) else [value]
    return list(value) if isinstance(value, list) else [value]


def _expand_block(block: Any, where: str) -> list[dict[str, Any]]:
    """The settings of one [[grid]] block: product of its lists, times each of its ``cases``."""
    if not isinstance(block, Mapping):
        raise GridError(f"{where}: must be a table, got {block!r}")
    cases = block.get("cases", [{}])
    if not isinstance(cases, list) or not cases:
        raise GridError(f"{where}: cases: must be a non-empty list of tables, got {cases!r}")
    cases = [_settings(case, f"{where}, cases[{i}]") for i, case in enumerate(cases)]
    axes = []
    for key, value in block.items():
        if key == "cases":
            continue
        if key not in FIELD_NAMES:
            raise _unknown(where, key, FIELD_NAMES + ("cases",))
        values = _block_values(key, value)
        if not values:
            raise GridError(f"{where}: {key}: an empty list leaves no run")
        axes.append([(key, _coerce(key, v, where)) for v in values])
    return [dict(case, **dict(combo)) for combo in itertools.product(*axes) for case in cases]


def _seeds(value: Any) -> list[int]:

    per_grid = "per grid; split the seeds over several grid files (they can share one --cache)"
    if isinstance(value, str):
        try:
            return parse_seeds(value, limit=MAX_SEEDS, why=per_grid)
        except ValueError as err:
            raise GridError(f"grid: {err}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not (isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
        raise GridError(f"grid: seeds: expected a list of non-negative integers or a range like '1-8', got {value!r}")
    if min(value) < 0:
        raise GridError(f"grid: seeds: must be non-negative, got {value!r}")
    if len(value) > MAX_SEEDS:
        raise GridError(f"grid: seeds: the list holds {len(value)} seeds; at most {MAX_SEEDS} {per_grid}")
    return sorted(set(value))


def _slurm_keys() -> tuple[str, ...]:
    """Parameters accepted in [slurm]: submitit's generic ones and SlurmExecutor's, without prefix."""
    from submitit.slurm.slurm import SlurmExecutor

    return GENERIC_SLURM_KEYS + tuple(sorted(SlurmExecutor._valid_parameters()))


def check_slurm_options(options: Mapping[str, Any], where: str = "slurm") -> dict[str, Any]:
    """Check submitit parameter names (did-you-mean on a typo); returns a plain dict."""
    if not isinstance(options, Mapping):
        raise GridError(f"{where}: must be a table of submitit parameters, got {options!r}")
    if not options:
        return {}
    allowed = _slurm_keys()
    for key in options:
        if key not in allowed:
            raise _unknown(where, key, allowed)
    return dict(options)


@dataclass(frozen=True)
class Grid:
    """A validated sweep: ``configs`` (distinct, grid order) x ``seeds``; ``slurm`` options."""

    configs: tuple[TokenConfig, ...]
    seeds: tuple[int, ...]
    max_replicas: int = 8
    slurm: dict[str, Any] = field(default_factory=dict)

    @property
    def runs(self) -> list[tuple[TokenConfig, int]]:
        """Every (config, seed), configurations in grid order, seeds ascending."""
        return [(c, s) for c in self.configs for s in self.seeds]


def parse_grid(data: Mapping[str, Any], source: str = "grid") -> Grid:
    """Validate a grid (the parsed TOML, or the same structure built in Python); see the module docstring."""
    if not isinstance(data, Mapping):
        raise GridError(f"{source}: must be a table, got {data!r}")
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            raise _unknown(source, key, TOP_LEVEL_KEYS)
    seeds = _seeds(data.get("seeds", "1-8"))
    max_replicas = data.get("max_replicas", 8)
    if isinstance(max_replicas, bool) or not isinstance(max_replicas, int) or max_replicas < 1:
        raise GridError(f"{source}: max_replicas: must be an integer >= 1, got {max_replicas!r}")
    base = _settings(data.get("base", {}), f"{source}: [base]")
    blocks = data.get("grid", [{}])
    if isinstance(blocks, Mapping):
        blocks = [blocks]
    if not isinstance(blocks, list) or not blocks:
        raise GridError(f"{source}: grid: must be a non-empty list of [[grid]] blocks, got {blocks!r}")
    configs: dict[str, TokenConfig] = {}
    for i, block in enumerate(blocks):
        where = f"{source}: [[grid]] block {i + 1}"
        for settings in _expand_block(block, where):
            merged = {**base, **settings}
            try:
                config = TokenConfig(**merged)
            except (ValueError, TypeError) as err:
                shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
                raise GridError(f"{where} ({shown}): {err}") from None
            configs.setdefault(config_json(config), config)
    slurm = check_slurm_options(data.get("slurm", {}), f"{source}: [slurm]")
    return Grid(tuple(configs.values()), tuple(seeds), max_replicas, slurm)


def load_grid(path: str | Path) -> Grid:
    """Read and validate a TOML grid file (GridError names the file, the block and the key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise GridError(f"{path}: no such grid file") from None
    except IsADirectoryError:
        raise GridError(f"{path}: is a directory; give a TOML grid file such as grid.toml") from None
    except OSError as err:
        raise GridError(f"{path}: cannot read the grid file: {err.strerror}") from None
    except UnicodeDecodeError:
        raise GridError(f"{path}: not a text file; give a TOML grid file such as grid.toml") from None
    except tomllib.TOMLDecodeError as err:
        raise GridError(f"{path}: not valid TOML: {err}") from None
    return parse_grid(data, source=str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise GridError(f"grid: cannot write the non-finite number {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise GridError(f"grid: cannot write {value!r} ({type(value).__name__}) to TOML")


def grid_to_toml(data: Mapping[str, Any]) -> str:
    """A grid dict (the input of :func:`parse_grid`) as the text of a grid file for ``nlcl sweep``."""
    parse_grid(data)  # only valid grids are written
    lines = [f"{key} = {_toml_value(data[key])}" for key in ("seeds", "max_replicas") if key in data]
    for table in ("base", "slurm"):
        if data.get(table):
            lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in data[table].items()]
    blocks = data.get("grid", [])
    for block in [blocks] if isinstance(blocks, Mapping) else blocks:
        lines += ["", "[[grid]]"] + [f"{k} = {_toml_value(v)}" for k, v in block.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Run identity and the on-disk cache.
# ----------------------------------------------------------------------------------------------


def config_dict(config: TokenConfig) -> dict[str, Any]:
    """The config as a dict with every float field a float (so beta=5 and beta=5.0 are one config)."""
    out = config.to_dict()
    for name, value in out.items():
        if value is not None and _non_none(_HINTS[name]) is float:
            out[name] = float(value)
    return out


def config_from_dict(data: Mapping[str, Any]) -> TokenConfig:
    """Inverse of :func:`_canonical` / ``TokenConfig.to_dict`` (JSON lists back to tuples)."""
    fixed = {}
    for name, value in data.items():
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        fixed[name] = value
    return TokenConfig(**fixed)


def config_json(config: TokenConfig) -> str:
    """Canonical JSON of the full configuration (sorted keys)."""
    return json.dumps(config_dict(config), sort_keys=True)


# The modules whose code decides a run's numbers: a change to any of them makes every key new.
ENGINE_SOURCES = (
    "engine/activations.py",
    "engine/alpha_cl.py",
    "engine/metrics.py",
    "engine/models.py",
    "engine/train.py",
    "data/tokens.py",
    "seeds.py",
    "experiments/sweep.py",
)
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@functools.cache
def engine_fingerprint() -> str:
    """SHA-256 of the engine's source files (``ENGINE_SOURCES``) and the torch and numpy versions."""
    import numpy
    import torch

    digest = hashlib.sha256(f"torch {torch.__version__} numpy {numpy.__version__}".encode())
    for name in ENGINE_SOURCES:
        digest.update(name.encode() + b"\0" + (_PACKAGE_DIR / name).read_bytes())
    return digest.hexdigest()


def run_key(config: TokenConfig, seed: int) -> str:
    """SHA-256 hex of (full configuration, seed, cache format, engine fingerprint): the run's name in the cache.

    The engine fingerprint (:func:`engine_fingerprint`) makes runs of changed code, or of another
    torch or numpy version, new runs: a cached result is never one that the current code would not make.
    """
    payload = json.dumps(
        {"config": config_dict(config), "seed": int(seed), "format": CACHE_FORMAT, "engine": engine_fingerprint()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def run_path(cache_dir: str | Path, key: str) -> Path:
    return Path(cache_dir) / "runs" / key[:2] / f"{key}.json"


RECORD_FIELDS = frozenset({"format", "key", "config", "seed", "status", *METRICS, "nan_step", "replicas",
                           "cpu_seconds", "wall_seconds", "checksum"})  # fmt: skip


def record_checksum(record: Mapping[str, Any]) -> str:
    """SHA-256 of a run record's canonical JSON without its ``checksum`` field."""
    content = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def record_problem(path: Path, config: TokenConfig, seed: int) -> str | None:
    """Why the cache file of one run cannot be used (``None``: it is a valid record of that run).

    A valid record parses, has exactly the record fields, names this run's key, configuration and
    seed, and its checksum matches its content (an edited value, a truncated or empty file fail).
    """
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"unreadable ({type(exc).__name__})"
    if not isinstance(record, dict) or set(record) != RECORD_FIELDS:
        return "not a run record of this cache format (fields differ)"
    if record["key"] != run_key(config, seed) or record["seed"] != seed or record["config"] != config_dict(config):
        return "a record of another run"
    if record["checksum"] != record_checksum(record):
        return "checksum does not match its content (edited or corrupted)"
    return None


def load_run(cache_dir: str | Path, config: TokenConfig, seed: int) -> dict | None:
    """The cached record of one run, or None when there is none or it is invalid (:func:`record_problem`)."""
    path = run_path(cache_dir, run_key(config, seed))
    if record_problem(path, config, seed) is not None:
        return None
    return json.loads(path.read_text())


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# The task function (same for every executor).
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Seeds of one configuration to train together, and the cache they go to (picklable)."""

    config: dict[str, Any]
    seeds: tuple[int, ...]
    cache_dir: str


def run_batch(batch: Batch) -> list[dict]:
    """Train ``batch.seeds`` of one configuration as replicas, write one cache file per run, return the records."""
    import torch

    torch.set_num_threads(1)
    config = config_from_dict(batch.config)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = run_tokens(config, list(batch.seeds), progress=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    records = []
    for rec in run.runs():
        key = run_key(config, rec["seed"])
        record = {
            "format": CACHE_FORMAT,
            "key": key,
            "config": config_dict(config),
            "seed": rec["seed"],
            "status": "nan" if rec["nan"] else "ok",
            **{name: rec[name] for name in METRICS},
            "nan_step": rec["nan_step"],
            "replicas": len(batch.seeds),
            "cpu_seconds": cpu / len(batch.seeds),
            "wall_seconds": wall / len(batch.seeds),
        }
        record["checksum"] = record_checksum(record)
        _write_atomic(run_path(batch.cache_dir, key), json.dumps(record, sort_keys=True) + "\n")
        records.append(record)
    return records


def plan(grid: Grid, cache_dir: str | Path, invalid: list[str] | None = None) -> tuple[int, list[Batch]]:
    """(number of runs already cached, batches still to run), in grid order.

    A cache file that is not a valid record (see :func:`record_problem`) is run again; its path
    and the reason are appended to ``invalid`` when given.
    """
    cached, batches = 0, []
    for config in grid.configs:
        missing = []
        for seed in grid.seeds:
            path = run_path(cache_dir, run_key(config, seed))
            problem = record_problem(path, config, seed)
            if problem is not None:
                missing.append(seed)
                if problem != "missing" and invalid is not None:
                    invalid.append(f"{path}: {problem}")
        cached += len(grid.seeds) - len(missing)
        for start in range(0, len(missing), grid.max_replicas):
            chunk = tuple(missing[start : start + grid.max_replicas])
            batches.append(Batch(config_dict(config), chunk, str(Path(cache_dir).resolve())))
    return cached, batches


# ----------------------------------------------------------------------------------------------
# Executors.
# ----------------------------------------------------------------------------------------------


def check_executor(executor: str, submitit_cluster: str = "slurm") -> None:
    """Raise ValueError (one line) unless ``executor`` can run here: Slurm needs srun and sbatch on PATH."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor: unknown {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if submitit_cluster not in ("slurm", "local"):
        raise ValueError(f"submitit_cluster: unknown {submitit_cluster!r}; allowed: slurm, local")
    if executor == "slurm" and submitit_cluster == "slurm":
        missing = [tool for tool in ("srun", "sbatch") if shutil.which(tool) is None]
        if missing:
            raise ValueError(
                f"executor: --executor slurm needs Slurm's srun and sbatch on PATH, and {' and '.join(missing)} "
                "cannot be found here; run it on a Slurm cluster's login node, or use --executor local, "
                "which works everywhere"
            )


def check_cache(cache_dir: str | Path, writing: bool = True) -> None:
    """Raise ValueError naming ``cache`` when it is a file or (``writing``) a folder that cannot be written."""
    cache_dir = Path(cache_dir)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise ValueError(f"cache: {str(cache_dir)!r} is a file, not a folder; give a folder (created if missing)")
    if writing:
        publish.check_folder(cache_dir, "cache")


def _run_submitit(
    batches: list[Batch],
    cache_dir: Path,
    options: Mapping[str, Any],
    cluster: str,
    on_done: Callable[[list[dict]], None],
    poll_seconds: float,
) -> None:
    import submitit

    executor = submitit.AutoExecutor(folder=cache_dir / "submitit" / "%j", cluster=cluster)
    params = {"timeout_min": 60, "cpus_per_task": 1, "name": "nlcl-sweep"}
    for key, value in options.items():
        params[key if key in GENERIC_SLURM_KEYS else f"slurm_{key}"] = value
    executor.update_parameters(**params)
    jobs = executor.map_array(run_batch, batches)
    pending, failures = list(jobs), []
    try:
        while pending:
            still = []
            for job in pending:
                if not job.done():
                    still.append(job)
                    continue
                try:
                    on_done(job.result())
                except Exception as err:  # a failed job (node failure, time limit, error): the others go on
                    failures.append(f"job {job.job_id}: {_error_line(err)}")
            pending = still
            if pending:
                time.sleep(poll_seconds)
    except BaseException:
        for job in pending:
            job.cancel(check=False)
        raise
    if failures:
        raise SweepFailed(
            f"{len(failures)} of {len(jobs)} jobs failed (logs under {cache_dir / 'submitit'}); their runs are not "
            f"cached, run again to retry. First: {failures[0]}"
        )


def _error_line(err: Exception) -> str:
    """The ``SomeError: message`` line of a job's traceback (submitit wraps it in a longer message)."""
    lines = [ln.strip() for ln in str(err).splitlines()]
    named = [ln for ln in lines if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", ln)]
    return named[-1] if named else f"{type(err).__name__}: {lines[0] if lines else ''}"


def _cost(batch: Batch) -> float:
    """Rough relative cost of a batch, for ordering only: replicas x steps x batch size x (65 + filters per RF).

    (Measured on the main task: about 3.6 CPU-s per 5000-step run plus 0.055 per filter per RF.)
    """
    config = batch.config
    filters = round(config["beta"] * config["per_location"])
    return len(batch.seeds) * config["steps"] * config["batch_size"] * (65 + filters)


@dataclass
class SweepSummary:
    """What :func:`run_sweep` did: runs in the grid, found cached, computed now; batches run."""

    total: int
    cached: int
    computed: int
    batches: int


def run_sweep(
    grid: Grid,
    cache_dir: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    slurm: Mapping[str, Any] | None = None,
    submitit_cluster: str = "slurm",
    progress: bool = True,
    poll_seconds: float = 5.0,
) -> SweepSummary:
    """Run every run of ``grid`` that is not in ``cache_dir`` yet (see the module docstring).

    ``slurm`` options override the grid's ``[slurm]`` table. Raises :class:`SweepInterrupted`
    on Ctrl-C (after stopping the workers / cancelling the jobs).
    """
    check_executor(executor, submitit_cluster)
    workers = check_workers(workers)
    options = {**grid.slurm, **check_slurm_options(slurm or {}, "slurm options")}
    cache_dir = Path(cache_dir)
    check_cache(cache_dir, writing=False)
    invalid: list[str] = []
    cached, batches = plan(grid, cache_dir, invalid)
    for line in invalid:
        print(f"nlcl sweep: recomputing an invalid cached run: {line}", file=sys.stderr)
    if batches:
        check_cache(cache_dir)
    total = len(grid.runs)
    bar = progress_bars.bar(total=total, initial=cached, desc="sweep runs", unit="run", progress=progress)
    computed = 0

    def on_done(records: list[dict]) -> None:
        nonlocal computed
        computed += len(records)
        bar.update(len(records))

    try:
        if batches and executor == "local":
            run_spawned(run_batch, sorted(batches, key=_cost, reverse=True), workers, on_done)  # longest first
        elif batches:
            _run_submitit(batches, cache_dir, options, submitit_cluster, on_done, poll_seconds)
    except KeyboardInterrupt as stop:
        bar.close()
        done = sum(record_problem(run_path(cache_dir, run_key(c, s)), c, s) is None for c, s in grid.runs)
        raise SweepInterrupted(done, total, getattr(stop, "signum", signal.SIGINT)) from None
    bar.close()
    return SweepSummary(total, cached, computed, len(batches))


# ----------------------------------------------------------------------------------------------
# Export.
# ----------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CSV-friendly config value: sequences as JSON text, None as empty."""
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return value


def results_frame(grid: Grid, cache_dir: str | Path, timing: bool = False):
    """Tidy pandas DataFrame, one row per run in grid order: config fields, seed, metrics, status.

    Metrics of missing runs are NaN. ``timing=True`` adds cpu_seconds / wall_seconds per run
    (its batch's time divided by the batch size): they change from run to run, so they are left
    out by default to keep exported tables deterministic.
    """
    import pandas as pd

    rows = []
    for config, seed in grid.runs:
        record = load_run(cache_dir, config, seed)
        row = {name: _cell(value) for name, value in config_dict(config).items()}
        row["seed"] = seed
        for name in METRICS:
            row[name] = math.nan if record is None else record[name]
        row["nan_step"] = -1 if record is None else record["nan_step"]
        row["status"] = "missing" if record is None else record["status"]
        if timing:
            row["cpu_seconds"] = math.nan if record is None else record["cpu_seconds"]
            row["wall_seconds"] = math.nan if record is None else record["wall_seconds"]
        rows.append(row)
    return pd.DataFrame(rows)


def export_csv(grid: Grid, cache_dir: str | Path, path: str | Path, timing: bool = False) -> Path:
    """Write :func:`results_frame` as CSV; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results_frame(grid, cache_dir, timing).to_csv(path, index=False)  # floats round-trip (repr)
    return path


def print_plan(grid: Grid, cache_dir: str | Path, file=None) -> None:
    """One line: configurations x seeds, how many runs are cached, how many would run in how many batches."""
    cached, batches = plan(grid, cache_dir)
    print(
        f"{len(grid.configs)} configurations x {len(grid.seeds)} seeds = {len(grid.runs)} runs; "
        f"{cached} in the cache; {sum(len(b.seeds) for b in batches)} to run in {len(batches)} batches",
        file=file or sys.stdout,
    )
