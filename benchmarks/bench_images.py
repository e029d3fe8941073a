"""Benchmark of the dense receptive-field network on the bundled digits (notebook 05's setting).

Measures CPU seconds (``time.process_time``, one torch thread) per SGD step of:
* the two-view sampler alone (crop + shift + noise, R replicas);
* one network's loss and gradient (fast path) for beta = 1, 2, 5 (M = 10, 20, 50) and the
  autograd reference, R replicas;
* the lockstep group of notebook 05 (2 activations x 3 betas x BN on/off, R replicas, one sampler
  call per step; the SGD update is not included).

Usage: ``.venv/bin/python benchmarks/bench_images.py [--steps 200] [--out benchmarks/results/bench_images.json]``.
Other processes on the machine inflate wall time and, through cache contention, CPU time too:
the script records the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SEEDS = [1, 2, 3, 4, 5]


def per_step(fn, steps: int) -> float:
    fn()  # warm up
    t = time.process_time()
    for _ in range(steps):
        fn()
    return (time.process_time() - t) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "bench_images.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from nlcl_utils.data.images import ViewSampler, load_digits
    from nlcl_utils.engine.image_train import ImageConfig, NetworkGroup, init_network

    data = load_digits()
    sampler = ViewSampler(data.train_images, 128, SEEDS)
    batch = sampler()
    result = {
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
        "replicas": len(SEEDS),
        "steps_timed": args.steps,
        "sampler_cpu_ms_per_step": 1e3 * per_step(sampler, args.steps),
    }
    for beta in (1, 2, 5):
        net = init_network(ImageConfig(beta=beta), SEEDS, data.image_shape)
        fast, reference = net.loss_and_grads, net.reference_loss_and_grads
        result[f"fast_cpu_ms_per_step_beta{beta}"] = 1e3 * per_step(lambda f=fast: f(batch), args.steps)
        result[f"autograd_cpu_ms_per_step_beta{beta}"] = 1e3 * per_step(
            lambda f=reference: f(batch), max(args.steps // 4, 1)
        )
    base = ImageConfig()
    configs = [
        dataclasses.replace(base, activation=a, beta=b, bn=bn)
        for a in ("relu", "linear")
        for b in (1, 2, 5)
        for bn in (True, False)
    ]
    group = NetworkGroup([init_network(c, SEEDS, data.image_shape) for c in configs])
    result["group12_sampler_loss_grads_cpu_ms_per_step"] = 1e3 * per_step(
        lambda: group.loss_and_grads(sampler()), args.steps // 4
    )
    group_ms = result["group12_sampler_loss_grads_cpu_ms_per_step"]
    result["group12_sampler_loss_grads_cpu_s_per_2000_steps"] = group_ms * 2.0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
