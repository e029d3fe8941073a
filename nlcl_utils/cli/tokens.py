"""``nlcl tokens``: train the receptive-field network on hierarchical token data for many seeds.

Example::

    nlcl tokens --activation relu --beta 5 --bn --loss infonce --seeds 1-8 --steps 5000 --out results.json

Every setting of ``docs/theory.md`` section 6 is a flag whose default is the paper's value
(see ``nlcl tokens --help``). All seeds run as one batched computation. Prints a per-seed table
and writes JSON ``{"config": {...}, "runs": [{"seed", "chi_plus", "chi_minus", "final_loss",
"nan", "nan_step", ...}], "summary": {...}, "cpu_seconds", "wall_seconds"}`` (strict JSON: a
value a diverged seed does not have is ``null``).

Every flag is checked before any compute (exit status 2, naming the flag and what is allowed):
numbers must be finite and representable in the training dtype, seeds are ``1-8`` / ``1,3,5``
forms without repeats, the run must fit in the memory available, ``--out`` must be writable.
A seed whose loss or gradient turns NaN/inf is frozen and reported with its step; the other
seeds' results are written. Exit status 1 when no seed finished, or with ``--fail-on-nan``
when any seed went NaN.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from nlcl_utils import publish
from nlcl_utils.data.tokens import DATA_CHUNK_STEPS, EMBEDDINGS
from nlcl_utils.engine.activations import ACTIVATION_NAMES
from nlcl_utils.engine.models import HEAD_NAMES, LOSS_NAMES
from nlcl_utils.engine.train import DTYPES, TokenConfig, run_tokens
from nlcl_utils.processes import Stopped, available_cores, stop_on_signals
from nlcl_utils.seeds import parse_seeds

RUN_FIELDS = ("chi_plus", "chi_minus", "selective_fraction", "coverage", "effective_rank")


def _finite_float(text: str) -> float:
    """argparse type: a finite real number (rejects nan, inf and overflowing literals like 1e999)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _floats(text: str) -> tuple[float, ...]:
    return tuple(_finite_float(x) for x in text.split(","))


def available_memory() -> int:
    """Bytes of memory available to a new computation (Linux MemAvailable, else physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# Working memory of one replica as a multiple of its largest tensors. Measured: the paper's
# setting uses ~8.4 MiB per replica at R = 32 (benchmarks/README.md) where the tensors below
# add up to ~1.3 MiB; 8 covers that with a margin. The check only stops runs that cannot fit.
MEMORY_FACTOR = 8


def bytes_per_replica(config: TokenConfig) -> int:
    """Estimated peak memory of one replica of ``config`` (the largest tensors times MEMORY_FACTOR)."""
    k, v, d, m, n, out = config.locations, config.vocab, config.dim, config.filters, config.batch_size, config.out_dim
    item = DTYPES[config.dtype].itemsize
    floats = v * d + k * m * d + k * m * out + 2 * k * m * 2 * v + k * 2 * v * out + 2 * n * out + 2 * n * n
    data = DATA_CHUNK_STEPS * 2 * n * k * 8  # int64 token ids of one data chunk, both views
    return MEMORY_FACTOR * (floats * item + data) + config.steps * item


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1024 or unit == "TiB":
            return f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def check_memory(config: TokenConfig, replicas: int, available: int) -> None:
    """Raise ValueError when ``replicas`` replicas of ``config`` cannot fit in ``available`` bytes."""
    need = replicas * bytes_per_replica(config)
    if need > available:
        raise ValueError(
            f"seeds/sizes: this run needs about {_size(need)} of memory ({replicas} seeds x "
            f"{_size(bytes_per_replica(config))}), more than the {_size(available)} available; "
            "use fewer --seeds or smaller --vocab/--beta/--batch-size/--out-dim/--steps"
        )


def check_threads(threads: int) -> None:
    """Threads must be in [1, number of cores]: more only oversubscribes (see train())."""
    cores = available_cores()
    if not 1 <= threads <= cores:
        raise ValueError(f"threads: must be in [1, {cores}] (the cores this process may use), got {threads}")


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as strict JSON (no NaN) to ``path`` atomically (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlcl tokens", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    d = TokenConfig()
    task = p.add_argument_group("task (hierarchical token data)")
    task.add_argument("--vocab", type=int, default=d.vocab, help="vocabulary size V")
    task.add_argument("--locations", type=int, default=d.locations, help="receptive fields K")
    task.add_argument(
        "--per-location", type=int, default=d.per_location, help="tokens allowed per location in patterns, P"
    )
    task.add_argument("--patterns", type=int, default=d.patterns, help="global patterns G")
    task.add_argument("--pattern-len", type=int, default=d.pattern_len, help="non-wildcard locations per pattern L")
    task.add_argument("--embedding", choices=EMBEDDINGS, default=d.embedding, help="token embeddings")
    task.add_argument("--embed-dim", type=int, default=None, help="dimension of random embeddings (default V)")
    task.add_argument("--token-magnitudes", type=_floats, default=None, help="V comma-separated embedding scales")
    task.add_argument(
        "--redraw", type=int, default=None, help="wildcards re-drawn in the second view (augmentation; default all K-L)"
    )
    net = p.add_argument_group("network")
    net.add_argument(
        "--beta", type=_finite_float, default=d.beta, help="over-parameterization: M = beta*P filters per RF"
    )
    net.add_argument("--out-dim", type=int, default=d.out_dim, help="output dimension")
    net.add_argument("--activation", choices=ACTIVATION_NAMES, default=d.activation)
    net.add_argument(
        "--slope", type=_finite_float, default=0.05, help="leaky_relu slope (reference code's; TokenConfig: 0.1)"
    )
    net.add_argument("--bn", action=argparse.BooleanOptionalAction, default=d.bn, help="BatchNorm on the hidden units")
    net.add_argument(
        "--bn-mean-grad",
        action=argparse.BooleanOptionalAction,
        default=d.bn_mean_grad,
        help="gradient through the BN batch mean",
    )
    net.add_argument(
        "--bn-var-grad",
        action=argparse.BooleanOptionalAction,
        default=d.bn_var_grad,
        help="gradient through the BN batch variance",
    )
    net.add_argument(
        "--bn-scale",
        action=argparse.BooleanOptionalAction,
        default=d.bn_scale,
        help="divide by the batch standard deviation (--no-bn-scale: mean-only BN)",
    )
    opt = p.add_argument_group("loss and optimizer")
    net.add_argument(
        "--head", choices=HEAD_NAMES, default=d.head, help="joint top layer or one decoupled output block per RF"
    )
    opt.add_argument("--loss", choices=LOSS_NAMES, default=d.loss)
    opt.add_argument("--tau", type=_finite_float, default=d.tau, help="InfoNCE temperature")
    opt.add_argument("--lr", type=_finite_float, default=d.lr)
    opt.add_argument("--momentum", type=_finite_float, default=d.momentum)
    opt.add_argument("--weight-decay", type=_finite_float, default=d.weight_decay)
    opt.add_argument("--batch-size", type=int, default=d.batch_size)
    opt.add_argument("--steps", type=int, default=d.steps)
    opt.add_argument("--dtype", choices=tuple(DTYPES), default=d.dtype)
    run = p.add_argument_group("run")
    run.add_argument("--seeds", type=str, default="1-8", help="seeds, e.g. 1-8 or 1,3,5")
    run.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    run.add_argument("--threads", type=int, default=1, help="torch threads (1 .. number of cores)")
    run.add_argument("--fail-on-nan", action="store_true", help="exit with status 1 when any seed went NaN")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> TokenConfig:
    """Build (and validate) the :class:`TokenConfig` from parsed flags.

    Every flag named like a config field (``--per-location`` -> ``per_location``) sets it;
    fields without a flag (bn_eps, wildcard_probs) keep their defaults.
    """
    names = {f.name for f in dataclasses.fields(TokenConfig)}
    return TokenConfig(**{k: v for k, v in vars(args).items() if k in names})


def _json_number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def format_table(runs: list[dict]) -> str:
    """Per-seed table: seed, chi+, chi-, selective fraction, coverage, effective rank, final loss, NaN step."""
    head = f"{'seed':>6} {'chi+':>7} {'chi-':>7} {'select':>7} {'cover':>7} {'erank':>7} {'loss':>8} {'NaN at':>7}"
    lines = [head, "-" * len(head)]
    for r in runs:
        nan_at = r["nan_step"] if r["nan"] else "-"
        lines.append(
            f"{r['seed']:>6} {r['chi_plus']:7.4f} {r['chi_minus']:7.4f} {r['selective_fraction']:7.3f} "
            f"{r['coverage']:7.3f} {r['effective_rank']:7.2f} {r['final_loss']:8.4f} {nan_at:>7}"
        )
    return "\n".join(lines)


def check_request(args: argparse.Namespace) -> tuple[TokenConfig, list[int]]:
    """Config and seeds of a request, every flag checked (ValueError naming it) before compute."""
    config = config_from_args(args)
    check_threads(args.threads)
    publish.check_output_file(args.out)
    available = available_memory()
    check_memory(config, 1, available)  # the sizes alone
    seeds = parse_seeds(args.seeds, limit=available // bytes_per_replica(config))
    check_memory(config, len(seeds), available)
    return config, seeds


def nan_report(runs: list[dict]) -> str:
    """One line per seed that went NaN, with its step ('' if none did)."""
    lines = [
        f"seed {r['seed']}: loss or gradient not finite at step {r['nan_step']}; frozen there, left out of the means"
        for r in runs
        if r["nan"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nlcl tokens``; exit status 0, 1 (no seed finished / --fail-on-nan) or 2 (bad flags)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config, seeds = check_request(args)
    except ValueError as err:
        print(f"nlcl tokens: error: {err}", file=sys.stderr)
        return 2
    cpu0, wall0 = time.process_time(), time.perf_counter()
    try:
        with stop_on_signals():
            run = run_tokens(config, seeds, progress=not args.no_progress, threads=args.threads)
    except Stopped as stop:
        print(f"nlcl tokens: stopped by {stop}; nothing was written", file=sys.stderr)
        return 128 + stop.signum
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    runs = []
    for rec in run.runs():
        entry = {"seed": rec["seed"]}
        for key in RUN_FIELDS:
            entry[key] = _json_number(rec[key])
        entry.update(final_loss=_json_number(rec["final_loss"]), nan=rec["nan"], nan_step=rec["nan_step"])
        runs.append(entry)
    ok = [r for r in runs if not r["nan"]]
    summary = {f"mean_{k}": (sum(r[k] for r in ok) / len(ok) if ok else None) for k in ("chi_plus", "chi_minus")}
    summary["nan_runs"] = len(runs) - len(ok)
    result = {
        "config": config.to_dict(),
        "seeds": seeds,
        "runs": runs,
        "summary": summary,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "torch_threads": args.threads,
    }
    print(
        format_table(
            [{**r, **{k: (float("nan") if r[k] is None else r[k]) for k in RUN_FIELDS + ("final_loss",)}} for r in runs]
        )
    )
    means = ", ".join(
        f"mean {name} {'n/a' if summary[key] is None else format(summary[key], '.4f')}"
        for name, key in (("chi+", "mean_chi_plus"), ("chi-", "mean_chi_minus"))
    )
    print(f"{means}, {len(seeds)} seeds ({summary['nan_runs']} stopped by NaN), cpu {cpu:.1f} s, wall {wall:.1f} s")
    if summary["nan_runs"]:
        print(nan_report(runs), file=sys.stderr)
    if args.out is not None:
        write_json(args.out, result)
    if not ok:
        print("nlcl tokens: no seed finished (all went NaN): lower --lr or check the settings", file=sys.stderr)
        return 1
    return 1 if args.fail_on_nan and summary["nan_runs"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
