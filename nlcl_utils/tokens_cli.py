"""``nlcl tokens``: train the receptive-field network on hierarchical token data for many seeds.

Example::

    nlcl tokens --activation relu --beta 5 --bn --loss infonce --seeds 1-8 --steps 5000 --out results.json

Every setting of ``docs/theory.md`` section 6 is a flag whose default is the paper's value
(see ``nlcl tokens --help``). All seeds run as one batched computation. Prints a per-seed table
and writes JSON ``{"config": {...}, "runs": [{"seed", "chi_plus", "chi_minus", "final_loss",
"nan", ...}], "summary": {...}, "cpu_seconds", "wall_seconds"}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import torch

from nlcl_utils.activations import ACTIVATION_NAMES
from nlcl_utils.data.tokens import EMBEDDINGS
from nlcl_utils.models import HEAD_NAMES, LOSS_NAMES
from nlcl_utils.train import DTYPES, TokenConfig, run_tokens

RUN_FIELDS = ("chi_plus", "chi_minus", "selective_fraction", "coverage", "effective_rank")


def parse_seeds(text: str) -> list[int]:
    """``"1-8"``, ``"1,3,5"`` or ``"1-4,10"`` -> sorted unique list of non-negative ints."""
    seeds: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError
                seeds.update(range(low, high + 1))
            else:
                seeds.add(int(part))
    except ValueError:
        raise ValueError(
            f"seeds: expected e.g. '1-8', '1,3,5' or '1-4,10' (non-negative integers), got {text!r}"
        ) from None
    if not seeds or min(seeds) < 0:
        raise ValueError(f"seeds: expected non-negative integers, got {text!r}")
    return sorted(seeds)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


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
    net.add_argument("--beta", type=float, default=d.beta, help="over-parameterization: M = beta*P filters per RF")
    net.add_argument("--out-dim", type=int, default=d.out_dim, help="output dimension")
    net.add_argument("--activation", choices=ACTIVATION_NAMES, default=d.activation)
    net.add_argument("--slope", type=float, default=d.slope, help="negative slope of leaky_relu")
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
    opt.add_argument("--tau", type=float, default=d.tau, help="InfoNCE temperature")
    opt.add_argument("--lr", type=float, default=d.lr)
    opt.add_argument("--momentum", type=float, default=d.momentum)
    opt.add_argument("--weight-decay", type=float, default=d.weight_decay)
    opt.add_argument("--batch-size", type=int, default=d.batch_size)
    opt.add_argument("--steps", type=int, default=d.steps)
    opt.add_argument("--dtype", choices=tuple(DTYPES), default=d.dtype)
    run = p.add_argument_group("run")
    run.add_argument("--seeds", type=str, default="1-8", help="seeds, e.g. 1-8 or 1,3,5")
    run.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    run.add_argument("--threads", type=int, default=1, help="torch threads")
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
    """Per-seed table: seed, chi+, chi-, selective fraction, coverage, effective rank, final loss, nan."""
    head = f"{'seed':>6} {'chi+':>7} {'chi-':>7} {'select':>7} {'cover':>7} {'erank':>7} {'loss':>8} {'nan':>5}"
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r['seed']:>6} {r['chi_plus']:7.4f} {r['chi_minus']:7.4f} {r['selective_fraction']:7.3f} "
            f"{r['coverage']:7.3f} {r['effective_rank']:7.2f} {r['final_loss']:8.4f} {str(r['nan']):>5}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nlcl tokens``; returns the exit status (2 for bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        seeds = parse_seeds(args.seeds)
        if args.threads < 1:
            raise ValueError(f"threads: must be >= 1, got {args.threads}")
    except ValueError as err:
        print(f"nlcl tokens: error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run = run_tokens(config, seeds, progress=not args.no_progress)
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
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
