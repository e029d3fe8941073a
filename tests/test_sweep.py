"""`nlcl sweep` and its module: grid parsing and errors, the cache, Ctrl-C + re-run, the submitit path."""

import ast
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from nlcl_utils.cli.sweep import main
from nlcl_utils.engine.train import TokenConfig
from nlcl_utils.experiments import sweep

ROOT = Path(__file__).resolve().parents[1]
# A tiny task so that a run takes well under a second.
TINY = {
    "vocab": 8,
    "locations": 4,
    "per_location": 2,
    "patterns": 4,
    "pattern_len": 2,
    "out_dim": 8,
    "batch_size": 16,
    "steps": 40,
}


def tiny_grid(**top):
    data = {"seeds": [1, 2], "max_replicas": 2, "base": dict(TINY), "grid": [{"activation": ["relu", "linear"]}]}
    data.update(top)
    return data


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TINY_TOML = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())


# ------------------------------------------------------------------------------------- grids


def test_blocks_are_products_cases_are_explicit_rows_and_duplicates_drop():
    grid = sweep.parse_grid(
        {
            "seeds": "3,1-2",
            "base": dict(TINY),
            "grid": [
                {"activation": ["relu", "linear"], "beta": [1, 2]},
                {"cases": [{"activation": "leaky_relu", "slope": 0.05}, {"activation": "relu", "beta": 2.0}]},
            ],
        }
    )
    assert grid.seeds == (1, 2, 3)
    got = [(c.activation, c.beta, c.slope) for c in grid.configs]
    # relu beta=2 from the second block equals the first block's (int 2 vs float 2.0): dropped
    assert got == [
        ("relu", 1.0, 0.1),
        ("relu", 2.0, 0.1),
        ("linear", 1.0, 0.1),
        ("linear", 2.0, 0.1),
        ("leaky_relu", 5.0, 0.05),
    ]
    assert all(c.steps == TINY["steps"] for c in grid.configs)
    assert len(grid.runs) == 5 * 3


def test_sequence_fields_one_value_or_a_product():
    one = sweep.parse_grid({"base": dict(TINY), "grid": [{"token_magnitudes": [1, 2, 1, 1, 1, 1, 1, 1]}]})
    assert len(one.configs) == 1 and one.configs[0].token_magnitudes == (1.0, 2.0, 1, 1, 1, 1, 1, 1)
    two = sweep.parse_grid({"base": dict(TINY), "grid": [{"token_magnitudes": [[1] * 8, [2] * 8]}]})
    assert [c.token_magnitudes[0] for c in two.configs] == [1.0, 2.0]


def test_run_key_is_the_full_config_and_seed():
    a = TokenConfig(beta=5)
    assert sweep.run_key(a, 1) == sweep.run_key(TokenConfig(beta=5.0), 1)
    assert sweep.run_key(a, 1) != sweep.run_key(a, 2)
    assert sweep.run_key(a, 1) != sweep.run_key(TokenConfig(beta=5, bn_eps=1e-6), 1)


BAD_GRIDS = [
    # (grid file text, words the error must contain)
    (f"[base]\n{TINY_TOML}\n[[grid]]\nactivaton = ['relu']\n", ["activaton", "did you mean 'activation'"]),
    (f"[base]\n{TINY_TOML}\nbetta = 2\n", ["[base]", "betta", "did you mean 'beta'"]),
    (f"seed = '1-3'\n[base]\n{TINY_TOML}\n", ["seed", "did you mean 'seeds'"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\ncases = [{{lr = 0.1, momentun = 0.5}}]\n", ["momentun", "'momentum'"]),
    (f"[base]\n{TINY_TOML}\n[slurm]\npartion = 'cpu'\n", ["partion", "did you mean 'partition'"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\nactivation = ['relu', 'relu6']\n", ["activation", "relu6", "allowed"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\nbeta = [2, 0.5]\n", ["beta", "0.5", ">= 1"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\nbn = ['yes']\n", ["bn", "true or false"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\npattern_len = [2, 9]\n", ["pattern_len", "9"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\nsteps = [10.5]\n", ["steps", "integer"]),
    (f"[base]\n{TINY_TOML}\n[[grid]]\nbeta = []\n", ["beta", "empty"]),
    (f"seeds = '5-1'\n[base]\n{TINY_TOML}\n", ["seeds"]),
    ("[base\nsteps = 1\n", ["not valid TOML"]),
]


@pytest.mark.parametrize("text, words", BAD_GRIDS)
def test_bad_grid_stops_before_any_run_naming_the_key(tmp_path, capsys, text, words):
    path = write_toml(tmp_path / "bad.toml", text)
    with pytest.raises(sweep.GridError) as info:
        sweep.load_grid(path)
    for word in words:
        assert word in str(info.value), str(info.value)
    cache = tmp_path / "cache"
    assert main([str(path), "--cache", str(cache), "--no-progress"]) == 2
    assert "nlcl sweep: error:" in capsys.readouterr().err
    assert not cache.exists()  # nothing ran, nothing was written


# ------------------------------------------------------------------------------ runs, cache


def test_a_seed_gives_the_same_record_alone_or_batched(tmp_path):
    config = sweep.config_dict(TokenConfig(**TINY))
    together = sweep.run_batch(sweep.Batch(config, (1, 2, 3), str(tmp_path / "a")))
    alone = sweep.run_batch(sweep.Batch(config, (2,), str(tmp_path / "b")))
    for name in sweep.METRICS:
        assert together[1][name] == alone[0][name], name  # bit for bit: the cache may be filled in any order
    assert together[1]["key"] == alone[0]["key"]


def test_extended_sweep_runs_only_what_is_missing(tmp_path):
    cache = tmp_path / "cache"
    first = sweep.run_sweep(sweep.parse_grid(tiny_grid()), cache, workers=1, progress=False)
    assert (first.total, first.cached, first.computed) == (4, 0, 4)
    files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.rglob("*.json")}
    assert len(files) == 4
    grid = sweep.parse_grid(tiny_grid(seeds=[1, 2, 3]))
    second = sweep.run_sweep(grid, cache, workers=2, progress=False)
    assert (second.total, second.cached, second.computed, second.batches) == (6, 4, 2, 2)
    assert all((p.stat().st_ino, p.stat().st_mtime_ns) == old for p, old in files.items())
    frame = sweep.results_frame(grid, cache)
    assert list(frame.seed) == [1, 2, 3, 1, 2, 3] and list(frame.activation) == ["relu"] * 3 + ["linear"] * 3
    assert set(frame.status) == {"ok"} and frame.chi_plus.between(0, 1).all()
    assert {"chi_plus", "chi_minus", "status", "seed"} | set(sweep.FIELD_NAMES) <= set(frame.columns)
    missing = sweep.results_frame(sweep.parse_grid(tiny_grid(seeds=[1, 4])), cache)
    assert list(missing.status) == ["ok", "missing", "ok", "missing"] and missing.chi_plus.isna().sum() == 2


def _result_files(cache: Path) -> dict:
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (cache / "runs").rglob("*.json")}


def test_ctrl_c_mid_sweep_then_rerun_finishes_without_rerunning(tmp_path):
    # six one-seed batches on one worker, each long enough (~1 s) to interrupt between them
    grid = write_toml(
        tmp_path / "grid.toml",
        f"seeds = [1]\nmax_replicas = 1\n[base]\n{TINY_TOML.replace('steps = 40', 'steps = 1500')}\n"
        "[[grid]]\nlr = [0.01, 0.011, 0.012, 0.013, 0.014, 0.015]\n",
    )
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "nlcl_utils.cli", "sweep", str(grid), "--cache", str(cache), "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (cache / "runs").exists() or not _result_files(cache):
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended before its first result"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run again" in err
    finished = _result_files(cache)
    assert 1 <= len(finished) < 6, "the interrupt should land mid-sweep"
    assert not list(cache.rglob("*.tmp")), "no half-written files"
    rerun = subprocess.run(cmd + ["--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{6 - len(finished)} runs computed" in rerun.stdout and f"{len(finished)} from the cache" in rerun.stdout
    after = _result_files(cache)
    assert len(after) == 6
    assert all(after[p] == old for p, old in finished.items()), "a finished run was computed again"


def test_submitit_job_array_path_gives_the_local_results(tmp_path):
    pytest.importorskip("submitit")
    grid = sweep.parse_grid(tiny_grid(seeds=[1, 2, 3]))  # 2 configs x 2 batches (2 + 1 seeds)
    summary = sweep.run_sweep(
        grid,
        tmp_path / "cache",
        executor="slurm",
        submitit_cluster="local",  # submitit's LocalExecutor: real subprocesses, the same job array code
        slurm={"timeout_min": 10},
        progress=False,
        poll_seconds=0.2,
    )
    assert (summary.computed, summary.batches) == (6, 4)
    assert (tmp_path / "cache" / "submitit").is_dir()  # submitit's pickles and logs
    via_jobs = sweep.results_frame(grid, tmp_path / "cache")
    sweep.run_sweep(grid, tmp_path / "local", workers=1, progress=False)
    local = sweep.results_frame(grid, tmp_path / "local")
    assert via_jobs.equals(local)


def test_run_sweep_rejects_bad_options(tmp_path):
    grid = sweep.parse_grid(tiny_grid())
    with pytest.raises(ValueError, match="executor"):
        sweep.run_sweep(grid, tmp_path, executor="pbs")
    with pytest.raises(ValueError, match="workers"):
        sweep.run_sweep(grid, tmp_path, workers=0)
    with pytest.raises(sweep.GridError, match="did you mean 'partition'"):
        sweep.run_sweep(grid, tmp_path, slurm={"partiton": "x"})
    assert not (tmp_path / "runs").exists()


def test_cli_dry_run_and_csv(tmp_path, capsys):
    path = write_toml(tmp_path / "g.toml", f"seeds = '1-2'\n[base]\n{TINY_TOML}\n[[grid]]\nbeta = [1, 2]\n")
    assert main([str(path), "--cache", str(tmp_path / "c"), "--dry-run"]) == 0
    assert "2 configurations x 2 seeds = 4 runs; 0 in the cache" in capsys.readouterr().out
    assert not (tmp_path / "c").exists()
    assert main([str(path), "--cache", str(tmp_path / "c"), "--no-progress", "--workers", "1", "--timing"]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "g.csv")
    assert len(table) == 4 and list(table.beta) == [1.0, 1.0, 2.0, 2.0] and (table.cpu_seconds > 0).all()


def test_grid_to_toml_round_trips():
    data = {
        "seeds": [1, 2],
        "max_replicas": 2,
        "base": {**TINY, "slope": 0.05, "embedding": "onehot"},
        "grid": [
            {"activation": ["relu", "linear"], "beta": [1.0, 2.0], "bn": False},
            {"cases": [{"loss": "quadratic"}, {"redraw": 0}, {"token_magnitudes": [1, 2, 1, 1, 1, 1, 1, 1]}]},
        ],
        "slurm": {"partition": "cpu", "timeout_min": 30},
    }
    text = sweep.grid_to_toml(data)
    again = sweep.parse_grid(tomllib.loads(text))
    assert again == sweep.parse_grid(data) and len(again.configs) == 7
    with pytest.raises(sweep.GridError, match="did you mean 'beta'"):
        sweep.grid_to_toml({"grid": [{"betta": [1]}]})


def test_a_failed_slurm_job_does_not_stop_the_others(tmp_path):
    pytest.importorskip("submitit")
    good = sweep.Batch(sweep.config_dict(TokenConfig(**TINY)), (1,), str(tmp_path / "cache"))
    bad = sweep.Batch({**good.config, "vocab": -1}, (1,), str(tmp_path / "cache"))  # fails inside the job
    delivered = []
    with pytest.raises(sweep.SweepFailed, match="1 of 2 jobs failed.*vocab"):
        sweep._run_submitit([good, bad], tmp_path / "cache", {"timeout_min": 5}, "local", delivered.extend, 0.2)
    assert [r["seed"] for r in delivered] == [1] and len(list((tmp_path / "cache" / "runs").rglob("*.json"))) == 1


def test_a_config_survives_the_trip_to_a_worker_and_back():
    probs = [[1 / 8] * 8] * 4
    config = TokenConfig(**TINY, token_magnitudes=(1, 2, 1, 1, 1, 1, 1, 1), wildcard_probs=probs, redraw=1)
    again = sweep.config_from_dict(json.loads(json.dumps(sweep.config_dict(config))))
    assert sweep.run_key(again, 3) == sweep.run_key(config, 3)  # else the run would never count as cached


# ------------------------------------------------------------------------------- a tampered cache


def _tamper(path: Path, how: str) -> None:
    if how == "edited value":
        record = json.loads(path.read_text())
        record["chi_plus"] = 0.123
        path.write_text(json.dumps(record, sort_keys=True) + "\n")
    elif how == "truncated":
        path.write_text(path.read_text()[:40])
    elif how == "empty":
        path.write_text("")
    elif how == "another run's record":
        others = [p for p in path.parent.parent.rglob("*.json") if p != path]
        path.write_text(others[0].read_text())


@pytest.mark.parametrize("how", ["edited value", "truncated", "empty", "another run's record"])
def test_an_invalid_cached_run_is_named_and_computed_again(tmp_path, capsys, how):
    grid = sweep.parse_grid(tiny_grid())
    sweep.run_sweep(grid, tmp_path, workers=1, progress=False)
    before = sweep.results_frame(grid, tmp_path)
    config, seed = grid.runs[0]
    path = sweep.run_path(tmp_path, sweep.run_key(config, seed))
    _tamper(path, how)
    assert sweep.load_run(tmp_path, config, seed) is None  # never read as a result
    capsys.readouterr()
    summary = sweep.run_sweep(grid, tmp_path, workers=1, progress=False)
    assert summary.computed == 1 and summary.cached == len(grid.runs) - 1
    assert str(path) in capsys.readouterr().err
    after = sweep.results_frame(grid, tmp_path)
    assert after.equals(before), "the recomputed run differs from the original"


def test_a_changed_line_of_engine_code_changes_every_run_key(tmp_path, monkeypatch):
    config = sweep.parse_grid(tiny_grid()).configs[0]
    before = sweep.run_key(config, 1)
    engine = tmp_path / "engine.py"
    engine.write_text("x = 1\n")
    monkeypatch.setattr(sweep, "_PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(sweep, "ENGINE_SOURCES", ("engine.py",))
    sweep.engine_fingerprint.cache_clear()
    try:
        first = sweep.run_key(config, 1)
        engine.write_text("x = 2\n")
        sweep.engine_fingerprint.cache_clear()
        assert sweep.run_key(config, 1) != first != before
    finally:
        sweep.engine_fingerprint.cache_clear()


def _package_imports(path: Path) -> set[Path]:
    """The nlcl_utils source files ``path`` imports (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nlcl_utils"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("nlcl_utils")]
        for name in names:
            base = ROOT.joinpath(*name.split("."))
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                if candidate.is_file():
                    found.add(candidate)
    return found


def test_the_engine_fingerprint_covers_the_modules_that_compute_a_run():
    for name in sweep.ENGINE_SOURCES:
        assert (ROOT / "nlcl_utils" / name).is_file(), name
    # every package module a cached run's code imports, directly or not, except those that only
    # schedule work or show progress (they cannot change a number)
    todo, seen = [ROOT / "nlcl_utils" / "experiments" / "sweep.py"], set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_package_imports(path))
    scheduling = {"processes.py", "progress.py", "publish.py"}
    computing = {p.relative_to(ROOT / "nlcl_utils").as_posix() for p in seen if p.name != "__init__.py"}
    assert computing - scheduling <= set(sweep.ENGINE_SOURCES)
