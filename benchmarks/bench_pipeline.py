"""Benchmark of the user's two commands: wall and CPU time of ``make figures`` / ``make test``.

Each command runs in a fresh clone of the current commit (``git clone`` into a temporary
folder), as on a user's machine: ``make test`` includes creating .venv and installing the
pinned dependencies, ``make figures`` is timed after that install. CPU time is that of every
process the command started (``RUSAGE_CHILDREN``), so "CPU / wall" says how many cores were
kept busy. The result, with the machine's description and load, goes to
``benchmarks/results/bench_pipeline.json``.

Usage: ``.venv/bin/python benchmarks/bench_pipeline.py [--only test|figures] [--keep]``.
Other processes on the machine inflate wall time: the script records the load average and
the busy processes before and after.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COMMANDS = {"test": ["make", "test"], "figures": ["make", "figures"]}


def timed(command: list[str], cwd: Path, log: Path) -> dict:
    """Run ``command`` in ``cwd`` (output to ``log``); wall seconds, CPU seconds of its processes, status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as out:
        status = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"command": " ".join(command), "status": status, "wall_seconds": wall, "cpu_seconds": cpu,
            "cores_busy": cpu / wall if wall else None, "log": str(log)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(COMMANDS), help="time only this command")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_pipeline.json")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    clone = Path(tempfile.mkdtemp(prefix="nlcl-bench-"))
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=clone, check=True)
    env_note = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": commit,
              "machine_before": machine.describe(), "environment": env_note, "runs": {}}  # fmt: skip
    for name in [args.only] if args.only else ["test", "figures"]:  # test first: it installs
        result = timed(COMMANDS[name], clone, clone / f"bench-{name}.log")
        report["runs"][name] = result
        print(f"make {name}: status {result['status']}, wall {result['wall_seconds']:.0f} s, "
              f"cpu {result['cpu_seconds']:.0f} s ({result['cores_busy']:.2f} cores busy)", flush=True)  # fmt: skip
    if "figures" in report["runs"]:
        dirty = subprocess.run(["git", "status", "--short"], cwd=clone, capture_output=True, text=True).stdout
        report["figures_left_tree_clean"] = not dirty.strip()
    report["machine_after"] = machine.describe()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}" + (f"; clone kept at {clone}" if args.keep else ""))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(clone)], check=False)
    return 0 if all(r["status"] == 0 for r in report["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
