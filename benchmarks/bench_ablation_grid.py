"""Time notebook 04's whole grid (paper scale) through ``nlcl sweep`` from an empty cache.

Runs ``nlcl sweep figures/04_ablation_table/grid.toml`` (the grid the notebook wrote at its
default parameters) in a subprocess with a fresh temporary cache and every core, and records
wall seconds, CPU seconds of the sweep and all its worker processes (``RUSAGE_CHILDREN``), the
number of runs, and the load average before and after (other processes inflate both times).

Usage: ``.venv/bin/python benchmarks/bench_ablation_grid.py [--grid PATH] [--workers N]
[--out benchmarks/results/bench_ablation_grid.json]`` (about 7 minutes on an idle 2-core machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=Path, default=ROOT / "figures" / "04_ablation_table" / "grid.toml")
    parser.add_argument("--workers", type=int, default=None, help="local processes (default: every core)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_ablation_grid.json")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as scratch:
        cmd = [sys.executable, "-m", "nlcl_utils.cli", "sweep", str(args.grid), "--cache", f"{scratch}/cache"]
        cmd += ["--out", f"{scratch}/runs.csv", "--no-progress"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        load_before = os.getloadavg()
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - wall0
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()
        runs = sum(1 for _ in open(f"{scratch}/runs.csv")) - 1
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    result = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "grid": str(args.grid.relative_to(ROOT)) if args.grid.is_relative_to(ROOT) else str(args.grid),
        "runs": runs,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_seconds_per_run": cpu / runs,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "stdout": done.stdout.strip().splitlines(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "stdout"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
