"""``nlcl sweep GRID.toml``: run a grid of token-experiment settings x seeds, cached, then export a CSV.

Examples::

    nlcl sweep grid.toml                                   # every core of this machine
    nlcl sweep grid.toml --dry-run                         # what would run (nothing runs)
    nlcl sweep grid.toml --executor slurm --partition cpu --timeout-min 60

The grid format, the cache and how to run on a Slurm cluster are described in
:mod:`nlcl_utils.experiments.sweep`. A bad grid stops before any run with the file, block and key named.
Ctrl-C stops the sweep (exit status 130; SIGTERM 143), also when it was started with SIGINT
ignored (a script's background job); running the same command again computes only the runs
that are not in the cache. Exit status 2 for a bad grid or bad flags, including a cache or CSV
location that cannot be written and ``--executor slurm`` where Slurm is not installed: all are
checked before any run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nlcl_utils import publish
from nlcl_utils.experiments import sweep, tables
from nlcl_utils.processes import stop_on_signals
from nlcl_utils.settings import DefaultsHelp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nlcl sweep",
        description=__doc__.split("\n\n")[0],
        formatter_class=DefaultsHelp,
    )
    p.add_argument("grid", type=Path, help="TOML grid file (format: see nlcl_utils/experiments/sweep.py)")
    p.add_argument("--cache", type=Path, default=Path("sweep-cache"), help="cache folder (one JSON file per run)")
    p.add_argument("--out", type=Path, default=None, help="CSV of every run (default: GRID with suffix .csv)")
    p.add_argument("--timing", action="store_true", help="add cpu_seconds / wall_seconds columns to the CSV")
    p.add_argument("--dry-run", action="store_true", help="print what is cached and what would run, run nothing")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ex = p.add_argument_group("executor")
    ex.add_argument("--executor", choices=sweep.EXECUTORS, default="local", help="local processes or a Slurm job array")
    ex.add_argument("--workers", type=int, default=None, help="local processes (default: every core)")
    ex.add_argument(
        "--submitit-cluster",
        choices=("slurm", "local"),
        default="slurm",
        help="with --executor slurm: 'local' runs the same submitit job array as local subprocesses (testing)",
    )
    slurm = p.add_argument_group("slurm (override the grid's [slurm] table)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--account", default=None)
    slurm.add_argument("--qos", default=None)
    slurm.add_argument("--timeout-min", type=int, default=None, help="time limit of one job (one batch), minutes")
    slurm.add_argument("--mem-gb", type=float, default=None, help="memory per job")
    slurm.add_argument("--array-parallelism", type=int, default=None, help="jobs of the array running at once")
    return p


def slurm_overrides(args: argparse.Namespace) -> dict:
    names = ("partition", "account", "qos", "timeout_min", "mem_gb", "array_parallelism")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nlcl sweep``; returns the exit status."""
    args = build_parser().parse_args(argv)
    out = args.out or args.grid.with_suffix(".csv")
    try:
        grid = sweep.load_grid(args.grid)
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"workers: must be >= 1, got {args.workers}")
        sweep.check_cache(args.cache, writing=False)
    except ValueError as err:
        print(f"nlcl sweep: error: {err}", file=sys.stderr)
        return 2
    sweep.print_plan(grid, args.cache)
    if args.dry_run:
        return 0
    try:  # everything that would otherwise fail only after the runs
        sweep.check_executor(args.executor, args.submitit_cluster)
        sweep.check_slurm_options(slurm_overrides(args), "slurm options")
        if sweep.plan(grid, args.cache)[1]:
            sweep.check_cache(args.cache)
        publish.check_output_file(out, "out")
    except ValueError as err:
        print(f"nlcl sweep: error: {err}", file=sys.stderr)
        return 2
    try:
        with stop_on_signals():
            summary = sweep.run_sweep(
                grid,
                args.cache,
                executor=args.executor,
                workers=args.workers,
                slurm=slurm_overrides(args),
                submitit_cluster=args.submitit_cluster,
                progress=not args.no_progress,
            )
    except sweep.SweepInterrupted as err:
        print(f"nlcl sweep: {err}", file=sys.stderr)
        return 128 + err.signum
    except sweep.SweepFailed as err:
        print(f"nlcl sweep: error: {err}", file=sys.stderr)
        return 1
    sweep.export_csv(grid, args.cache, out, timing=args.timing)
    frame = sweep.results_frame(grid, args.cache)
    counts = frame.status.value_counts().to_dict()
    settings = [name for name in sweep.config_dict(grid.configs[0]) if name in frame.columns]
    table = tables.setting_summary(frame, settings, ("chi_plus", "chi_minus"))
    print(f"chi+ and chi- per setting: mean [95% Student t interval over seeds]\n{table.to_string(index=False)}\n")
    print(
        f"{summary.computed} runs computed in {summary.batches} batches, {summary.cached} from the cache; "
        f"status: {', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
