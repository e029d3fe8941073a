"""token_runs.run_case: shapes, snapshots, lock-on from the score trajectories, persistent fillers accepted."""

import math

import pytest
import torch

from nlcl_utils.engine.train import TokenConfig, build_token_experiment
from nlcl_utils.experiments import token_runs
from nlcl_utils.theory import priority


def test_run_case_shapes_and_lock_on():
    config = TokenConfig(steps=40, batch_size=16, beta=1, out_dim=4)
    tasks = build_token_experiment(config, [1, 2])[0]
    tables, pairs = priority.matched_filler_probs(tasks.pattern_tokens, config.vocab, 2)
    persistent = priority.pair_filler_mask(pairs, config.vocab)
    snaps = token_runs.snapshot_grid(40, 15)
    assert snaps == [0, 15, 30, 40]
    run = token_runs.run_case("t", config, [1, 2], snapshot_steps=snaps, tables=tables, persistent=persistent,
                              keep_snapshots=True, progress=False)  # fmt: skip
    assert run.scores.shape == (4, 2, 10, 20) and run.lock.shape == (2, 10, 20)
    assert run.chi_plus.shape == (4, 2) and run.first.shape == (4, 2, 10, 5, 20)
    expected = priority.first_lock_on(run.scores, snaps, 0.9)
    assert torch.equal(run.lock, expected)
    assert torch.isinf(run.lock).any() and run.lock[torch.isfinite(run.lock)].max() <= 40
    assert torch.allclose(run.stats.frequency, priority.token_statistics(tasks.pattern_tokens, 20, tables).frequency)
    assert run.final_scores.shape == (2, 10, 20) and not math.isnan(run.cpu_seconds)


def test_replace_validates_and_grid_errors():
    with pytest.raises(ValueError, match="head"):
        token_runs.replace(TokenConfig(), head="blocks")
    with pytest.raises(ValueError, match="every"):
        token_runs.snapshot_grid(10, 0)


def test_run_cases_in_processes_equal_a_serial_run():
    """Cases trained side by side in spawned processes give exactly the serial results, in input order."""
    config = TokenConfig(steps=30, batch_size=16, beta=1, out_dim=4)
    tasks = build_token_experiment(config, [1, 2])[0]
    tables, pairs = priority.matched_filler_probs(tasks.pattern_tokens, config.vocab, 2)
    cases = [
        token_runs.Case("plain", config),
        token_runs.Case(
            "matched",
            token_runs.replace(config, loss="quadratic"),
            tables=tables,
            persistent=priority.pair_filler_mask(pairs, config.vocab),
        ),  # fmt: skip
        token_runs.Case("snapshots", token_runs.replace(config, head="per_rf"), keep_snapshots=True),
    ]
    snaps = token_runs.snapshot_grid(30, 10)
    serial = token_runs.run_cases(cases, [1, 2], snapshot_steps=snaps, workers=1, progress=False)
    parallel = token_runs.run_cases(cases, [1, 2], snapshot_steps=snaps, workers=2, progress=False)
    assert [r.label for r in parallel] == ["plain", "matched", "snapshots"]
    for a, b in zip(serial, parallel):
        assert torch.equal(a.scores, b.scores) and torch.equal(a.lock, b.lock)
        assert torch.equal(a.chi_minus, b.chi_minus)
    assert torch.equal(serial[2].first, parallel[2].first) and parallel[0].first is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"workers": 0}, "workers"),
        ({"workers": 1.5}, "workers"),
        ({"snapshot_steps": [0, 99]}, "snapshot"),
        ({"cases": ["not a case"]}, "Case"),
    ],
)
def test_run_cases_rejects_bad_input_before_compute(kwargs, match):
    args = {"cases": [token_runs.Case("c", TokenConfig(steps=10))], "snapshot_steps": [0, 10], "workers": 1}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        token_runs.run_cases(args.pop("cases"), [1], progress=False, **args)
