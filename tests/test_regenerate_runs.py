"""`nlcl figures` under stress: two runs at once, Ctrl-C, SIGTERM, a killed kernel, a crash while
publishing, plain papermill. Each scenario runs the real command in a subprocess on a throw-away
tree (``throwaway_tree.py``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import pytest
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
from nlcl_utils.pipeline import regenerate

ROOT = Path(__file__).resolve().parents[1]
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
