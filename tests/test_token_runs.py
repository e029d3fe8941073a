"""token_runs.run_case: shapes, snapshots, lock-on from the score trajectories, persistent fillers accepted."""

import math

import pytest
import torch

from nlcl_utils import priority, token_runs
from nlcl_utils.train import TokenConfig, build_token_experiment


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
