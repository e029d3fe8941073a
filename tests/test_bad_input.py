"""What careless users do to the pipeline, table by table; each case could fail.

Cases are named after the reliability issues they come from: ``17.N`` is item N of the list
of reproduced defects (two runs at once, Ctrl-C, atomic publishing, plain papermill, inf
parameters, tampered claims, a wrong-Python .venv, ``nlcl tokens`` flags, silent wrong
library results, undeclared imports), ``15`` the reliability list of the parallel-pipeline
issue (interrupts and killed kernels, bad notebook parameters, diverging training).

Scenarios with processes (concurrency, signals, make) run the real commands in subprocesses
on a throw-away tree (``throwaway_tree.py``).
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import jupytext
import pytest
import torch
from throwaway_tree import (
    GOOD,
    SLOW,
    child_env,
    process_gone,
    run_figures,
    snapshot,
    start_figures,
    wait_for,
    write_tree,
)

from nlcl_utils import publish
from nlcl_utils.cli.tokens import main as tokens_main
from nlcl_utils.data.tokens import make_tasks
from nlcl_utils.engine import alpha_cl
from nlcl_utils.engine.models import ReceptiveFieldNet
from nlcl_utils.engine.train import TokenConfig
from nlcl_utils.notebook import claims, params, session
from nlcl_utils.pipeline import regenerate, reproduce

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = regenerate.discover(ROOT / "notebooks")
KERNEL_PID = "build/staging/committed/97_slow/figures/97_slow/kernel.pid"


# ------------------------------------------------------------------------------------------
# two runs at once; Ctrl-C, SIGTERM, a killed kernel
# ------------------------------------------------------------------------------------------


def test_two_runs_at_once_never_corrupt_each_other(tmp_path):
    """A second run on the committed outputs is refused with a message naming the first run;
    a run of another profile goes ahead alongside; the first publishes intact outputs."""
    root = write_tree(tmp_path, {"97_slow": SLOW, "98_good": GOOD})
    hold = root / "notebooks" / "HOLD"
    hold.write_text("wait")
    first = start_figures(root, "--only", "97")
    try:
        kernel = wait_for(root / KERNEL_PID, first)
        environ = dict(
            item.split("=", 1) for item in Path(f"/proc/{kernel}/environ").read_text().split("\0") if "=" in item
        )
        assert environ["OMP_NUM_THREADS"] == "1" and environ["MKL_NUM_THREADS"] == "1"  # one thread per kernel
        assert environ["NLCL_FIGURES_DIR"].startswith(str(root / "build" / "staging" / "committed"))
        second = run_figures(root, "--only", "98")
        assert second.returncode == 3, second.stderr
        assert "another `nlcl figures` run is writing figures/ and notebooks/" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "Nothing was executed" in second.stderr
        quick = run_figures(root, "--only", "98", "--profile", "quick")
        assert quick.returncode == 0, quick.stderr
    finally:
        hold.unlink()
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    data = json.loads((root / "figures" / "97_slow" / "claims.json").read_text())
    assert [c["name"] for c in data["claims"]] == ["n_points positive"]
    manifest = json.loads((root / "figures" / "MANIFEST.json").read_text())["notebooks"]
    assert sorted(manifest) == ["97_slow"] and manifest["97_slow"]["claims"] == data["claims"]
    assert (root / "build" / "quick" / "98_good" / "98_good.ipynb").exists()
    log = [json.loads(line) for line in (root / "build" / "runs.jsonl").read_text().splitlines()]
    assert sorted((r["notebook"], r["profile"], r["ok"]) for r in log) == [
        ("97_slow", "default", True),
        ("98_good", "quick", True),
    ]


def _fake_committed_outputs(root: Path) -> None:
    (root / "figures" / "97_slow").mkdir(parents=True)
    (root / "figures" / "97_slow" / "old.png").write_bytes(b"committed figure")
    (root / "notebooks" / "97_slow.ipynb").write_text("committed notebook")
    (root / "figures" / "MANIFEST.json").write_text('{"notebooks": {}}\n')


@pytest.mark.parametrize(
    "case, how, status, rerun",
    [
        ("Ctrl-C", signal.SIGINT, 128 + signal.SIGINT, True),
        ("SIGTERM", signal.SIGTERM, 128 + signal.SIGTERM, False),
        ("killed kernel", "kill kernel", 1, True),
    ],
)
def test_interrupt_stops_promptly_and_publishes_nothing(tmp_path, case, how, status, rerun):
    """The committed files stay byte for byte, no kernel survives, the next run needs no clean-up."""
    root = write_tree(tmp_path, {"97_slow": SLOW})
    _fake_committed_outputs(root)
    hold = root / "notebooks" / "HOLD"
    hold.write_text("wait")
    before = snapshot(root)
    run = start_figures(root)
    kernel = int(wait_for(root / KERNEL_PID, run))
    sent = time.monotonic()
    if how == "kill kernel":
        os.kill(kernel, signal.SIGKILL)
    else:
        os.killpg(run.pid, how)  # what the terminal does on Ctrl-C: the whole foreground group
    _, err = run.communicate(timeout=60)
    assert run.returncode == status, err
    if how != "kill kernel":
        assert time.monotonic() - sent < 10, "the run did not stop promptly"
        assert "nothing was published" in err
    assert snapshot(root) == before
    assert process_gone(kernel), "the notebook's kernel outlived the run"
    assert not any((root / "build" / "staging").iterdir()), "half-done files left behind"
    record = json.loads((root / "build" / "runs.jsonl").read_text().splitlines()[-1])
    assert record["notebook"] == "97_slow" and not record["ok"] and not record["published"]
    hold.unlink()
    if not rerun:
        return
    again = run_figures(root)
    assert again.returncode == 0, again.stderr
    assert not (root / "figures" / "97_slow" / "old.png").exists()
    assert (root / "figures" / "97_slow" / "line.png").exists()


# ------------------------------------------------------------------------------------------
# publishing is all or nothing
# ------------------------------------------------------------------------------------------


def _staged_and_committed(tmp_path: Path) -> tuple[list[tuple[Path, Path]], Path]:
    new, live = tmp_path / "stage", tmp_path / "live"
    for base, text in ((new, "new"), (live, "old")):
        (base / "figs").mkdir(parents=True)
        (base / "figs" / "a.png").write_text(text)
        (base / "nb.ipynb").write_text(text)
        (base / "MANIFEST.json").write_text(text)
    moves = [(new / name, live / name) for name in ("nb.ipynb", "figs", "MANIFEST.json")]
    return moves, live


def _contents(live: Path) -> set[str]:
    return {p.read_text() for p in live.rglob("*") if p.is_file()}


def test_a_crash_mid_publish_is_completed_by_the_next_run(tmp_path, monkeypatch):
    moves, live = _staged_and_committed(tmp_path)
    journal = tmp_path / "journal.json"
    real_rename, calls = os.rename, []

    def crash_on_third(src, dst):
        calls.append(src)
        if len(calls) == 3:
            raise OSError("simulated crash")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_third)
    with pytest.raises(OSError, match="simulated crash"):
        publish.publish(moves, journal, tmp_path / "trash")
    monkeypatch.setattr(os, "rename", real_rename)
    assert journal.exists()
    assert publish.recover(journal) and not journal.exists()
    assert _contents(live) == {"new"} and not (tmp_path / "trash").exists()


def test_nlcl_figures_crashing_mid_publish_loses_nothing(tmp_path, monkeypatch):
    """The runner dies between moving the old figures away and moving the new ones in: the staged
    outputs and the old ones stay on disk, and finishing the journal gives the complete new set."""
    root = write_tree(tmp_path, {"98_good": GOOD})
    (root / "figures" / "98_good").mkdir()
    (root / "figures" / "98_good" / "old.png").write_bytes(b"committed")
    real_rename, calls = os.rename, []

    def crash_on_third(src, dst):
        calls.append(src)
        if len(calls) == 3:  # notebook moved in, old figures moved out, new figures not yet in
            raise OSError("simulated crash")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", crash_on_third)
    with pytest.raises(OSError, match="simulated crash"):
        regenerate.main(["--root", str(root), "--only", "98"])
    monkeypatch.setattr(os, "rename", real_rename)
    assert not (root / "figures" / "98_good").exists()  # the half-way state a hard kill would leave
    assert publish.recover(root / "build" / "locks" / "committed.journal.json")
    assert {p.name for p in (root / "figures" / "98_good").iterdir()} >= {"line.png", "claims.json"}
    assert not (root / "figures" / "98_good" / "old.png").exists()
    manifest = json.loads((root / "figures" / "MANIFEST.json").read_text())["notebooks"]
    assert manifest["98_good"]["figures"].keys() >= {"line.png"}


def test_a_missing_staged_output_publishes_nothing(tmp_path):
    moves, live = _staged_and_committed(tmp_path)
    shutil.rmtree(moves[1][0])
    with pytest.raises(FileNotFoundError, match="nothing was published"):
        publish.publish(moves, tmp_path / "journal.json", tmp_path / "trash")
    assert _contents(live) == {"old"}


def test_an_interrupt_during_publishing_waits_until_it_is_complete(tmp_path, monkeypatch):
    moves, live = _staged_and_committed(tmp_path)
    real_rename = os.rename

    def interrupt_then_rename(src, dst):
        os.kill(os.getpid(), signal.SIGINT)  # held back until publishing is done
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", interrupt_then_rename)
    with pytest.raises(KeyboardInterrupt):
        publish.publish(moves, tmp_path / "journal.json", tmp_path / "trash")
    assert _contents(live) == {"new"}


# ------------------------------------------------------------------------------------------
# plain papermill never writes committed figures
# ------------------------------------------------------------------------------------------


def test_plain_papermill_writes_under_build_not_into_figures(tmp_path):
    source = tmp_path / "98_good.ipynb"
    nb = jupytext.reads(GOOD, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source.write_text(jupytext.writes(nb, fmt="ipynb"))
    figures_before = snapshot(ROOT / "figures")
    env = {k: v for k, v in child_env().items() if k != "NLCL_FIGURES_DIR"}
    out = subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(tmp_path / "out.ipynb"), "-p", "n_points", "2",
         "--cwd", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert snapshot(ROOT / "figures") == figures_before
    assert (ROOT / "build" / "figures" / "98_good" / "line.png").exists()


# ------------------------------------------------------------------------------------------
# bad notebook parameters stop before compute; a non-finite claim fails
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, argv, message",
    [
        ("inf in a list", ["-p", "taus", "[1e999, 1.0]"], "non-finite number"),
        ("inf", ["-p", "n_trials", "1e999"], "non-finite number"),
        ("misspelled", ["-p", "n_trails", "2"], "did you mean 'n_trials'"),
        ("unknown profile", ["--profile", "huge"], "unknown profile 'huge'"),
        ("unknown notebook", ["--only", "77"], "no notebook '77'"),
    ],
)
def test_figures_rejects_bad_overrides_before_any_kernel(case, argv, message, capsys):
    assert regenerate.main(["--only", "00", *argv] if "--only" not in argv else argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--jobs", "--timeout"])
@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_figures_rejects_bad_jobs_and_timeout(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        regenerate.main([flag, value])
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def _bad_values(default):
    """Values of the wrong kind for a parameter with this default (whatever its range)."""
    if isinstance(default, bool):
        return [1, "True"]
    if isinstance(default, int):
        return ["3", 2.5, True]
    if isinstance(default, float):
        return [math.nan, math.inf, -math.inf, "0.1"]
    if isinstance(default, str):
        return [3, None]
    if isinstance(default, list):
        return [[], "[1]"] + ([[math.nan]] if default and isinstance(default[0], float) else [])
    return []


DEFAULTS = {name: params.notebook_defaults(name) for name in NOTEBOOK_NAMES}
NOTEBOOK_CASES = [
    (name, key, bad)
    for name in NOTEBOOK_NAMES
    for key, default in DEFAULTS[name].items()
    for bad in _bad_values(default)
]


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_every_notebook_parameter_rejects_wrong_types_nan_inf_and_empty_lists(name):
    """The validation of session.setup (the cell after the parameters) rejects each value by name.

    One case per parameter and bad value (``_bad_values``); ranges (sizes >= 1 ...) are each
    notebook's own and are tested by running it (test_pipeline.py).
    """
    # a parameter whose default carries no type (e.g. None) has an explicit spec in its notebook
    inferable = {}
    for key, value in DEFAULTS[name].items():
        try:
            params.infer_spec(key, value)
        except ValueError:
            continue
        inferable[key] = value
    specs = {**params.specs_from_defaults(inferable), **{k: params.OrNone(params.Str()) for k in DEFAULTS[name]
                                                          if k not in inferable}}  # fmt: skip
    cases = [(key, bad) for n, key, bad in NOTEBOOK_CASES if n == name and key in inferable]
    accepted = []
    for key, bad in cases:
        try:
            params.validate({**DEFAULTS[name], key: bad}, specs)
        except params.ParameterError as err:
            assert f"parameter '{key}" in str(err), err
        else:
            accepted.append((key, bad))
    assert cases and not accepted, f"{name}: bad values accepted: {accepted}"


def test_notebook_setup_is_what_validates():
    name = NOTEBOOK_NAMES[0]
    key = next(k for k, v in DEFAULTS[name].items() if isinstance(v, int) and not isinstance(v, bool))
    with pytest.raises(params.ParameterError, match=f"parameter '{key}'"):
        session.setup(name, {**DEFAULTS[name], key: "3"})


def test_a_non_finite_input_makes_a_claim_invalid_and_json_stays_strict(tmp_path):
    checks = claims.Claims("98_good")
    assert checks.prediction("inf", "T0.1", measured=math.inf, op=">=", threshold=0, threshold_source="t") == "invalid"
    assert checks.prediction("nan seed", "T0.1", per_seed=[1.0, math.nan], op=">=", threshold=0,
                             threshold_source="t") == "invalid"  # fmt: skip
    path = checks.save(tmp_path)
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert [c["verdict"] for c in data["claims"]] == ["invalid", "invalid"] and data["claims"][0]["measured"] is None
    with pytest.raises(AssertionError, match="not all finite"):
        checks.assert_valid()


# ------------------------------------------------------------------------------------------
# A tampered claims.json is noticed
# ------------------------------------------------------------------------------------------


def _tampered(kind: str) -> tuple[dict, dict]:
    checks = claims.Claims("98_good")
    checks.prediction("a", "T0.1", per_seed=[1.0, 2.0, 3.0], op=">=", threshold=0, threshold_source="t")
    checks.identity("b", "T0.2", measured=1e-12, op="<=", threshold=1e-10, threshold_source="t")
    executed = json.loads(json.dumps(checks.to_dict()))
    committed = json.loads(json.dumps(executed))
    if kind == "measured":
        committed["claims"][1]["measured"] = 1e-13
    elif kind == "deleted":
        del committed["claims"][0]
    elif kind == "added":
        committed["claims"].append({**committed["claims"][1], "name": "c"})
    elif kind == "threshold":
        committed["claims"][0]["threshold"] = -1
    elif kind == "verdict":
        committed["claims"][0]["verdict"] = "refuted"
    return committed, executed


@pytest.mark.parametrize("kind", ["measured", "deleted", "added", "threshold", "verdict"])
def test_tampered_claims_differ_from_the_executed_ones(kind):
    committed, executed = _tampered(kind)
    assert reproduce.differences(committed, executed, strict=True)
    assert not reproduce.differences(executed, executed, strict=True)
    # on another machine a round-off residual may take other digits below its bound: nothing else may change
    assert bool(reproduce.differences(committed, executed)) == (kind != "measured")


def test_make_test_compares_committed_claims_after_nbval():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("--nbval") < recipe.index('NLCL_NBVAL_FIGURES="$(NBVAL_FIGURES)"')
    assert '"$(BIN)/nlcl" figures --profile quick' in recipe and recipe.count("-n auto") == 2
    assert "tests/test_claims_reproduced.py" in recipe and "tests/test_reproduce_anywhere.py" in recipe
    assert "verify --nbval-config" in recipe


# ------------------------------------------------------------------------------------------
# a .venv made by the wrong Python is replaced, or make says how to fix it
# ------------------------------------------------------------------------------------------

FAKE_311 = """#!/bin/sh
# Stands in for Python 3.11: real interpreter for -c/--version, fake venv and pip.
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then exit 0; fi
exec {real} "$@"
"""
FAKE_312 = """#!/bin/sh
# Stands in for Python 3.12: every version check fails.
if [ "$1" = "--version" ]; then echo "Python 3.12.1"; exit 0; fi
exit 1
"""


def _make_tree(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name, text in (("py311", FAKE_311.format(real=sys.executable)), ("py312", FAKE_312)):
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(stat.S_IRWXU)
    return tmp_path


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_venv_of_the_wrong_python_is_recreated(tmp_path):
    tree = _make_tree(tmp_path)
    (tree / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(tree / "py312", tree / ".venv" / "bin" / "python")  # what a 3.12 install left behind
    out = subprocess.run(["make", "install", f"PYTHON={tree / 'py311'}"], cwd=tree, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert ".venv was made with Python 3.12.1; removing it" in out.stdout
    assert "exec" in (tree / ".venv" / "bin" / "python").read_text() and (tree / ".venv" / ".installed").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_wrong_python_is_refused_with_the_fix(tmp_path):
    tree = _make_tree(tmp_path)
    out = subprocess.run(["make", "install", f"PYTHON={tree / 'py312'}"], cwd=tree, capture_output=True, text=True)
    assert out.returncode != 0
    assert "Python 3.11 is needed" in out.stderr and "Python 3.12.1" in out.stderr
    assert "make install PYTHON=/path/to/python3.11" in out.stderr
    assert not (tree / ".venv").exists()


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
        ("vocab below per-location", ["--vocab", "3"], "per_location: must be in [1, 3]"),
        ("redraw above wildcards", ["--redraw", "9"], "redraw: must be in [0, 5]"),
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


# ------------------------------------------------------------------------------------------
# library functions reject wrong input instead of a silent wrong result
# ------------------------------------------------------------------------------------------


def _net_and_batch():
    config = TokenConfig(vocab=6, locations=3, per_location=2, patterns=4, pattern_len=2, out_dim=4, beta=1)
    tasks = make_tasks(config.task_spec(), [1], dtype=torch.float64)
    net = ReceptiveFieldNet.init([1], tasks.embeddings, 3, 2, 4, dtype=torch.float64)
    tok = torch.zeros(1, 8, 3, dtype=torch.long)
    return net, tok


def _token_id_equal_to_vocab():
    net, tok = _net_and_batch()
    tok2 = tok.clone()
    tok2[0, 0, 0] = 6
    net.loss_and_grads((tok, tok2))


def _float_token_ids():
    net, tok = _net_and_batch()
    net.loss_and_grads((tok.double(), tok.double()))


def _views_of_different_shapes():
    net, tok = _net_and_batch()
    net.loss_and_grads((tok, tok[:, :4]))


F = torch.randn(4, 3, dtype=torch.float64)
ALPHA = torch.rand(4, 4, dtype=torch.float64)

LIBRARY_CASES = [
    ("token id = V", _token_id_equal_to_vocab, ValueError, r"token ids must be in \[0, V=6\)"),
    ("float token ids", _float_token_ids, TypeError, "integer tensor of token ids"),
    ("views of different shapes", _views_of_different_shapes, ValueError, "tok2: expected shape"),
    ("bn given as a string", lambda: TokenConfig(bn="no"), ValueError, "bn: must be True or False"),
    ("bn_scale as 0", lambda: TokenConfig(bn_scale=0), ValueError, "bn_scale: must be True or False"),
    ("beta inf", lambda: TokenConfig(beta=math.inf), ValueError, "beta: must be a finite number"),
    ("lr nan", lambda: TokenConfig(lr=math.nan), ValueError, "lr: must be a finite number"),
    ("lr beyond float32", lambda: TokenConfig(lr=1e300), ValueError, "representable in float32"),
    ("tau as a string", lambda: TokenConfig(tau="0.1"), ValueError, "tau: must be a finite number"),
    ("energy: alpha of another batch", lambda: alpha_cl.energy(F, F, torch.rand(5, 5)), ValueError, "alpha"),
    (
        "energy: a 1 x 1 alpha would broadcast as a scalar",
        lambda: alpha_cl.energy(F, F, torch.ones(1, 1, dtype=torch.float64)),
        ValueError,
        r"alpha: expected shape \[\.\.\., 4, 4\]",
    ),
    (
        "energy: a vector alpha would broadcast over rows",
        lambda: alpha_cl.energy(F, F, torch.ones(4, dtype=torch.float64)),
        ValueError,
        "alpha: expected shape",
    ),
    ("energy: integer features", lambda: alpha_cl.energy(F.long(), F.long(), ALPHA), TypeError, "f1, f2"),
    ("energy: views differ", lambda: alpha_cl.energy(F, F[:3], ALPHA), ValueError, "same shape"),
    (
        "covariance: b of another batch size",
        lambda: alpha_cl.contrastive_covariance(F, F, ALPHA, F[:3], F[:3]),
        ValueError,
        "the same",
    ),
    (
        "covariance: alpha's replicas do not match the features' replicas",
        lambda: alpha_cl.contrastive_covariance(F.expand(3, 4, 3), F.expand(3, 4, 3), ALPHA.expand(2, 4, 4)),
        ValueError,
        "leading dims that broadcast",
    ),
    (
        "kernel variances: NaN feature",
        lambda: alpha_cl.kernel_local_variances(torch.tensor([[1.0, math.nan], [0.5, 1.0]]), torch.ones(2, 2)),
        ValueError,
        "NaN or inf",
    ),
    (
        "kernel variances: mismatched N",
        lambda: alpha_cl.kernel_local_variances(torch.ones(3, 2), torch.ones(2, 2)),
        ValueError,
        "same N",
    ),
]


@pytest.mark.parametrize("case, call, error, message", LIBRARY_CASES, ids=[c[0] for c in LIBRARY_CASES])
def test_library_rejects_wrong_input(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_valid_input_still_works():
    net, tok = _net_and_batch()
    loss, _ = net.loss_and_grads((tok, tok))
    assert torch.isfinite(loss).all()
    assert torch.isfinite(alpha_cl.energy(F, F, ALPHA))
    shared = alpha_cl.contrastive_covariance(F.expand(3, 4, 3), F.expand(3, 4, 3), ALPHA)  # one alpha, 3 replicas
    assert torch.allclose(shared, alpha_cl.contrastive_covariance(F, F, ALPHA).expand(3, 3, 3))


# ------------------------------------------------------------------------------------------
# every package a notebook or the package imports is declared
# ------------------------------------------------------------------------------------------


def _imported_top_level(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


# Imported modules that come with a declared package rather than being declared themselves.
BROUGHT_BY = {"IPython": "ipykernel (the notebooks' kernel is IPython)"}


def test_every_third_party_import_is_declared():
    import tomllib

    sources = sorted((ROOT / "notebooks").glob("*.py")) + sorted((ROOT / "nlcl_utils").rglob("*.py"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # main dependencies, and the optional extras of the features that need them (site, test)
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    declared = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}
    providers = metadata.packages_distributions()
    missing = []
    for module in sorted(_imported_top_level(sources)):
        if module in sys.stdlib_module_names or module == "nlcl_utils" or module in BROUGHT_BY:
            continue
        # an optional extra that is not installed (e.g. `site` in a default install) provides
        # nothing: then the module must be declared under its own name
        dists = {d.lower() for d in providers.get(module, [])} or {module.lower()}
        if not dists & declared:
            missing.append(f"{module} (installed by {sorted(dists) or 'nothing'})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
