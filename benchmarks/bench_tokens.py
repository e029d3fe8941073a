"""Benchmark of the token engine in the paper's main setting (docs/theory.md section 6).

Measures, each configuration in a fresh subprocess (one torch thread):
* CPU seconds (``time.process_time``) and wall seconds per 5000-step run for R = 1, 8, 32
  replicas batched, steps per second, replica-runs per CPU-second;
* peak resident memory of the process (``ru_maxrss``, includes the ~0.3 GiB of the torch import);
* faithfulness: mean chi+ / chi- of ReLU (the R = 8 run) and linear (8 seeds);
* where the time goes: split into data sampling / loss+gradient / SGD update, and the top
  operators of ``torch.profiler`` for R = 8.

Usage: ``.venv/bin/python benchmarks/bench_tokens.py [--steps 5000] [--out benchmarks/results/bench_tokens.json]``
(``make benchmark`` runs the default). Other processes on the machine inflate wall time and,
through cache and memory contention, CPU time too: the script records the load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import machine
import torch

HERE = Path(__file__).resolve().parent
CONFIGS = [(1, "relu"), (8, "relu"), (32, "relu"), (8, "linear")]


def worker(replicas: int, activation: str, steps: int) -> dict:
    """One batched run in this process; returns timings, memory and chi per seed."""
    torch.set_num_threads(1)
    from nlcl_utils.engine.train import TokenConfig, run_tokens

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = TokenConfig(activation=activation, steps=steps)
    seeds = list(range(1, replicas + 1))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = run_tokens(config, seeds, progress=False)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "replicas": replicas,
        "activation": activation,
        "steps": steps,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "cpu_seconds_per_run": cpu / replicas,
        "runs_per_cpu_second": replicas / cpu,
        "steps_per_second_wall": steps / wall,
        "replica_steps_per_cpu_second": steps * replicas / cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_imports_mib": rss_before,
        "chi_plus": run.metrics["chi_plus"].tolist(),
        "chi_minus": run.metrics["chi_minus"].tolist(),
        "mean_chi_plus": run.metrics["chi_plus"].mean().item(),
        "mean_chi_minus": run.metrics["chi_minus"].mean().item(),
        "nan_runs": int(run.result.nan.sum()),
    }


def stage_profile(replicas: int = 8, steps: int = 300) -> dict:
    """Per-step time of data / loss+grad / update, and the top torch operators (R replicas)."""
    torch.set_num_threads(1)
    from torch.profiler import ProfilerActivity, profile

    from nlcl_utils.engine.train import TokenConfig, _sgd_update, build_token_experiment, train

    config = TokenConfig()
    tasks, model, sampler = build_token_experiment(config, list(range(1, replicas + 1)))
    train(model, sampler, 100, progress=False)  # warm up
    batches = [sampler() for _ in range(steps)]
    t = time.process_time()
    for _ in range(steps):
        sampler()
    data = (time.process_time() - t) / steps
    t = time.process_time()
    outs = [model.loss_and_grads(b) for b in batches]
    grad = (time.process_time() - t) / steps
    bufs = [torch.zeros_like(p) for p in model.params]
    t = time.process_time()
    for _, grads in outs:
        _sgd_update(
            model.params, grads, bufs, 0.0, 0.9, 5e-3, first=False, alive=torch.ones(replicas, dtype=torch.bool)
        )
    update = (time.process_time() - t) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(model, sampler, steps, progress=False)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    top = [
        {
            "op": e.key,
            "share": e.self_cpu_time_total / total,
            "calls_per_step": e.count / steps,
            "us_per_step": e.self_cpu_time_total / steps,
        }
        for e in events[:12]
    ]
    return {
        "replicas": replicas,
        "ms_per_step": {"data": data * 1e3, "loss_and_grads": grad * 1e3, "sgd_update": update * 1e3},
        "top_ops": top,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_tokens.json")
    parser.add_argument("--worker", nargs=2, metavar=("R", "ACTIVATION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1], args.steps)))
        return 0
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1")
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine.describe(),
        "runs": [],
    }
    for replicas, activation in CONFIGS:
        cmd = [sys.executable, __file__, "--steps", str(args.steps), "--worker", str(replicas), activation]
        res = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.splitlines()[-1]
        )
        report["runs"].append(res)
        print(
            f"R={replicas:>2} {activation:<6} cpu/run {res['cpu_seconds_per_run']:6.2f} s  "
            f"wall {res['wall_seconds']:6.1f} s  "
            f"steps/s {res['steps_per_second_wall']:7.1f}  peak {res['peak_rss_mib']:6.0f} MiB  "
            f"chi+ {res['mean_chi_plus']:.4f}  chi- {res['mean_chi_minus']:.4f}",
            flush=True,
        )
    report["profile"] = stage_profile()
    report["machine_after"] = machine.describe()
    relu8 = next(r for r in report["runs"] if r["replicas"] == 8 and r["activation"] == "relu")
    lin8 = next(r for r in report["runs"] if r["replicas"] == 8 and r["activation"] == "linear")
    r1 = next(r for r in report["runs"] if r["replicas"] == 1)
    r32 = next(r for r in report["runs"] if r["replicas"] == 32)
    report["acceptance"] = {
        "cpu_per_run_R8_le_4s": relu8["cpu_seconds_per_run"] <= 4.0,
        "cpu_per_run_R32_le_4s": r32["cpu_seconds_per_run"] <= 4.0,
        "wall_R1_le_15s": r1["wall_seconds"] <= 15.0,
        "peak_rss_R32_lt_2GiB": r32["peak_rss_mib"] < 2048,
        "relu_chi_plus_ge_0.98": relu8["mean_chi_plus"] >= 0.98,
        "relu_chi_minus_le_0.05": relu8["mean_chi_minus"] <= 0.05,
        "linear_chi_plus_clearly_lower": lin8["mean_chi_plus"] < relu8["mean_chi_plus"] - 0.1,
    }
    prof = report["profile"]
    print("ms/step (R=8):", {k: round(v, 3) for k, v in prof["ms_per_step"].items()})
    for op in prof["top_ops"]:
        print(
            f"  {op['op']:<40} {100 * op['share']:5.1f}%  {op['us_per_step']:8.1f} us/step  "
            f"{op['calls_per_step']:5.1f} calls/step"
        )
    print("acceptance:", report["acceptance"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
