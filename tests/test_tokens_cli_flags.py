"""``nlcl tokens``: every bad flag is refused before compute, threads reach the training loop, and
diverging seeds are reported with their step while the others finish."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from nlcl_utils.cli.tokens import main as tokens_main

# ------------------------------------------------------------------------------------------
# nlcl tokens flags are checked before compute
# ------------------------------------------------------------------------------------------

TINY = ["--seeds", "1-2", "--steps", "20", "--batch-size", "16", "--no-progress"]


def _tokens(argv: list[str]) -> int:
    try:
        return tokens_main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


@pytest.mark.parametrize(
    "case, argv, message",
    [
        ("beta inf", ["--beta", "inf"], "argument --beta: expected a finite number, got 'inf'"),
        ("beta nan", ["--beta", "nan"], "argument --beta: expected a finite number"),
        ("lr 1e300", ["--lr", "1e300"], "lr: must be a finite number representable in float32"),
        ("weight decay 1e300", ["--weight-decay", "1e300"], "weight_decay: must be a finite number"),
        ("tau 1e999", ["--tau", "1e999"], "argument --tau: expected a finite number"),
        ("magnitudes inf", ["--token-magnitudes", "1,inf"], "argument --token-magnitudes"),
        ("huge seed range", ["--seeds", "0-1000000000"], "asks for 1000000001 seeds"),
        ("huge beta", ["--beta", "1e9"], "seeds/sizes: this run needs about"),
        ("huge vocab", ["--vocab", "1000000000"], "seeds/sizes: this run needs about"),
        ("seeds 3-1", ["--seeds", "3-1"], "range '3-1' runs backwards"),
        ("seeds a", ["--seeds", "a"], "seeds: 'a' in 'a' is not a seed"),
        ("seeds empty", ["--seeds", ""], "seeds: '' in '' is not a seed"),
        ("seeds duplicates", ["--seeds", "1,2,1"], "seeds: 1 given more than once"),
        ("seeds overlapping", ["--seeds", "1-4,3"], "seeds: 3 given more than once"),
        ("negative seed", ["--seeds", "-3"], "is not a seed"),
        ("zero steps size", ["--batch-size", "1"], "batch_size: must be an integer >= 2"),
        ("negative steps", ["--steps", "-3"], "steps: must be an integer >= 0"),
        ("vocab below per-location", ["--vocab", "3"], "per_location: must be an integer in [1, 3]"),
        ("redraw above wildcards", ["--redraw", "9"], "redraw: must be an integer in [0, 5]"),
        ("threads 0", ["--threads", "0"], "threads: must be in [1,"),
        ("threads above cores", ["--threads", "4096"], "threads: must be in [1,"),
        ("out is a directory", ["--out", "{tmp}"], "is a directory"),
        ("out under a file", ["--out", "{tmp}/file.txt/x.json"], "is not a directory"),
    ],
)
def test_tokens_rejects_bad_flags_before_compute(case, argv, message, tmp_path, capsys, monkeypatch):
    (tmp_path / "file.txt").write_text("not a directory")
    argv = [a.format(tmp=tmp_path) for a in argv]
    monkeypatch.setattr("nlcl_utils.cli.tokens.run_tokens", lambda *a, **k: pytest.fail("computed before checking"))
    assert _tokens(argv + ["--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_threads_are_applied_to_the_training_loop(monkeypatch, tmp_path):
    seen = {}
    import nlcl_utils.engine.train as train_module

    real_loop = train_module._train_loop

    def spy(*args, **kwargs):
        seen["threads"] = torch.get_num_threads()
        return real_loop(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_loop", spy)
    threads = min(2, len(os.sched_getaffinity(0)))
    argv = TINY + ["--steps", "2", "--threads", str(threads), "--out", str(tmp_path / "r.json")]
    assert _tokens(argv) == 0  # 2 steps: two threads on a busy 2-core machine can be very slow
    assert seen["threads"] == threads
    assert json.loads((tmp_path / "r.json").read_text())["torch_threads"] == threads


@pytest.mark.parametrize("extra, status", [([], 1), (["--fail-on-nan"], 1)])
def test_diverging_seeds_are_reported_with_their_step_and_written(extra, status, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert _tokens(TINY + ["--lr", "1e30", "--out", str(out)] + extra) == status
    err = capsys.readouterr().err
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert [r["nan"] for r in data["runs"]] == [True, True]
    for r in data["runs"]:
        assert f"seed {r['seed']}: loss or gradient not finite at step {r['nan_step']}" in err
        assert r["chi_plus"] is None or math.isfinite(r["chi_plus"])
    assert "no seed finished" in err


@pytest.mark.parametrize("extra, status", [([], 0), (["--fail-on-nan"], 1)])
def test_one_seed_diverging_keeps_the_others(extra, status, tmp_path, capsys, monkeypatch):
    """Seed 1 made to diverge at step 5 (the NaN guard's record of it); seed 2 finishes."""
    import nlcl_utils.cli.tokens as cli

    real = cli.run_tokens

    def first_seed_diverges(*args, **kwargs):
        run = real(*args, **kwargs)
        run.result.nan[0], run.result.nan_step[0], run.result.losses[-1, 0] = True, 5, math.nan
        return run

    monkeypatch.setattr(cli, "run_tokens", first_seed_diverges)
    out = tmp_path / "r.json"
    assert _tokens(TINY + ["--out", str(out)] + extra) == status
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert [(r["nan"], r["nan_step"]) for r in data["runs"]] == [(True, 5), (False, -1)]
    assert data["runs"][0]["final_loss"] is None and math.isfinite(data["runs"][1]["final_loss"])
    assert data["summary"]["nan_runs"] == 1 and data["summary"]["mean_chi_plus"] == data["runs"][1]["chi_plus"]
    assert "seed 1: loss or gradient not finite at step 5" in capsys.readouterr().err


def test_finished_seeds_exit_0_even_with_fail_on_nan():
    assert _tokens(TINY + ["--fail-on-nan"]) == 0
