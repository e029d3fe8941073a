"""The regeneration pipeline and the committed artefacts it produces.

* committed artefacts: every notebook pair in sync, every claims.json passing, the manifest
  matching the figures on disk;
* the runner itself, on throw-away notebooks in a temporary tree: notebooks run in parallel
  publish exactly the bytes of a serial run, a failing one leaves its committed outputs
  untouched, and bad parameters stop before any compute. (Interrupts, concurrent runs and
  the other ways users break it: test_bad_input.py.)
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from throwaway_tree import GOOD, OTHER, snapshot, write_tree

from nlcl_utils.notebook import claims, params, plotting
from nlcl_utils.pipeline import regenerate

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAMES = regenerate.discover(ROOT / "notebooks")


def _sources(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert "00_alpha_cl_foundations" in NOTEBOOK_NAMES


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_pair_in_sync(name):
    """The executed .ipynb has exactly the cells of its .py source (edit .py, then regenerate)."""
    py = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    ipynb_path = ROOT / "notebooks" / f"{name}.ipynb"
    assert ipynb_path.exists(), f"{name}.ipynb missing: run `make figures`"
    ipynb = nbformat.read(ipynb_path, as_version=4)
    assert _sources(ipynb) == _sources(py), f"{name}: .py and .ipynb differ; run `nlcl figures --only {name}`"
    assert all(
        c.get("outputs") or c.cell_type != "code" or not c.source.strip() or c.execution_count for c in ipynb.cells
    ), f"{name}.ipynb has unexecuted cells"
    assert "papermill" not in ipynb.metadata
    widgets = [
        o
        for c in ipynb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert not widgets, f"{name}.ipynb has widget outputs (random ids): use nlcl_utils.progress.bar, not tqdm"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_claims_follow_the_schema_and_every_check_holds(name):
    path = ROOT / "figures" / name / "claims.json"
    assert path.exists(), f"{path} missing: run `make figures`"
    data = json.loads(path.read_text())
    assert data["notebook"] == name and data["claims"], "claims.json records no claim"
    assert claims.schema_errors(data) == []
    failed = [c["name"] for c in data["claims"] if c["kind"] != "prediction" and c["verdict"] != "holds"]
    assert not failed, f"{name}: committed identity or implementation checks failed: {failed}"
    assert all(c["scale"] == "full" for c in data["claims"]), f"{name}: committed claims from a reduced run"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_papermill_sees_every_parameter(name):
    """papermill's own parser (used by `papermill -p`) reads the same parameters as the runner.

    It skips lines it cannot parse (e.g. a comment with a second '='), and then warns that an
    override is unknown although the notebook defines it.
    """
    import papermill

    seen = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"))
    assert sorted(seen) == sorted(params.notebook_defaults(name))


def test_manifest_matches_figures_on_disk():
    manifest = json.loads((ROOT / "figures" / "MANIFEST.json").read_text())["notebooks"]
    assert sorted(manifest) == NOTEBOOK_NAMES
    for name, entry in manifest.items():
        on_disk = {p.name for p in (ROOT / "figures" / name).iterdir() if p.suffix in (".png", ".pdf")}
        assert set(entry["figures"]) == on_disk
        for fname, digest in entry["figures"].items():
            assert hashlib.sha256((ROOT / "figures" / name / fname).read_bytes()).hexdigest() == digest, fname
        assert entry["checks_hold"] and entry["machine"]["cpu"]
        assert entry["parameters"] == params.notebook_defaults(name)


# --- the runner on a throw-away tree ------------------------------------------------------


def test_parallel_run_is_byte_identical_to_serial_run(tmp_path, capsys):
    """`--jobs 2` runs two notebooks at once and publishes exactly the bytes of a serial run.

    The first run also finds the journal of a publish that a hard kill interrupted and
    finishes it before anything else.
    """
    root = write_tree(tmp_path, {"98_good": GOOD, "96_other": OTHER})
    staged = root / "build" / "staging" / "killed-run" / "recovered.txt"
    staged.parent.mkdir(parents=True)
    staged.write_text("staged by a run that was killed while publishing")
    trash = root / "build" / "trash"
    move = {"source": str(staged), "target": str(root / "figures" / "recovered.txt"), "old": str(trash / "old")}
    journal = {"moves": [move], "trash": str(trash)}
    (root / "build" / "locks").mkdir(parents=True)
    (root / "build" / "locks" / "committed.journal.json").write_text(json.dumps(journal))
    assert regenerate.main(["--root", str(root), "--jobs", "1"]) == 0
    assert "finished publishing what an interrupted run had started" in capsys.readouterr().err
    assert (root / "figures" / "recovered.txt").exists()
    assert not (root / "build" / "locks" / "committed.journal.json").exists()
    serial = snapshot(root)
    assert {"figures/96_other/line.png", "figures/98_good/line.png", "notebooks/96_other.ipynb"} <= set(serial)
    assert regenerate.main(["--root", str(root), "--jobs", "2"]) == 0
    assert snapshot(root) == serial
    log = [json.loads(line) for line in (root / "build" / "runs.jsonl").read_text().splitlines()]
    assert [(r["jobs"], r["published"]) for r in log] == [(1, True)] * 2 + [(2, True)] * 2
    assert all(r["cpu_seconds"] > 0 for r in log)


def test_a_failing_notebook_keeps_its_outputs_and_the_others_publish(tree, capsys):
    (tree / "figures" / "99_bad").mkdir()
    (tree / "figures" / "99_bad" / "old.png").write_bytes(b"previous")
    assert regenerate.main(["--root", str(tree), "--jobs", "2"]) == 1
    assert "99_bad: FAILED: RuntimeError in cell" in capsys.readouterr().err
    assert (tree / "figures" / "98_good" / "line.png").exists()
    assert (tree / "figures" / "99_bad" / "old.png").read_bytes() == b"previous"
    assert not (tree / "notebooks" / "99_bad.ipynb").exists()
    manifest = json.loads((tree / "figures" / "MANIFEST.json").read_text())["notebooks"]
    assert sorted(manifest) == ["98_good"] and manifest["98_good"]["checks_hold"]
    assert not list((tree / "build" / "staging").rglob("*.ipynb")), "the run left staged files behind"
    failed = tree / "build" / "failed" / "committed" / "99_bad"
    assert "boom in cell" in (failed / "99_bad.ipynb").read_text() and (failed / "worker.log").exists()


def test_longest_notebooks_start_first(tmp_path):
    tree = regenerate.Tree(tmp_path)
    tree.build.mkdir()
    records = [("01_a", 10.0, "default", True), ("02_b", 90.0, "default", True), ("03_c", 500.0, "quick", True),
               ("03_c", 40.0, "default", True), ("02_b", 1.0, "default", False)]  # fmt: skip
    lines = [json.dumps({"notebook": n, "seconds": s, "profile": p, "ok": ok}) for n, s, p, ok in records]
    (tree.build / "runs.jsonl").write_text("\n".join(lines + ["not json"]) + "\n")
    names = ["00_new", "01_a", "02_b", "03_c", "04_new"]
    assert regenerate.longest_first(tree, names, "default") == ["00_new", "04_new", "02_b", "03_c", "01_a"]
    assert regenerate.longest_first(tree, names, "quick") == ["00_new", "01_a", "02_b", "04_new", "03_c"]


def test_quick_profile_and_overrides_write_only_under_build(tree):
    before = snapshot(tree)
    assert regenerate.main(["--root", str(tree), "--only", "98", "--profile", "quick"]) == 0
    assert regenerate.main(["--root", str(tree), "--only", "98", "-p", "n_points", "3"]) == 0
    assert snapshot(tree) == before
    assert (tree / "build" / "quick" / "98_good" / "98_good.ipynb").exists()
    assert (tree / "build" / "custom" / "98_good" / "figures" / "98_good" / "line.png").exists()


def test_bad_requests_stop_before_compute(tree, capsys):
    assert regenerate.main(["--root", str(tree), "--only", "98", "-p", "n_pionts", "3"]) == 2
    assert "did you mean 'n_points'" in capsys.readouterr().err
    assert regenerate.main(["--root", str(tree), "--only", "77"]) == 2
    assert regenerate.main(["--root", str(tree), "--profile", "huge"]) == 2
    assert regenerate.main(["--root", str(tree), "-p", "n_points", "1e999"]) == 2
    assert "non-finite" in capsys.readouterr().err
    assert not (tree / "build" / "custom").exists() and not (tree / "build" / "staging").exists()


def test_notebook_rejects_bad_values_in_its_validation_cell():
    """A real notebook (00) stops in its validation cell, naming the parameter.

    One test, not two parametrized ones: both runs take the lock of build/custom, so they must
    not run at the same time on two test workers.
    """
    for value, message in [
        ("[-4]", "parameter 'batch_sizes[0]': expected an integer >= 2, got -4"),
        ("'many'", "parameter 'batch_sizes': expected a list"),
    ]:
        out = subprocess.run(
            [sys.executable, "-m", "nlcl_utils.cli", "figures", "--only", "00", "-p", "batch_sizes", value],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 1, out.stderr
        assert "ParameterError" in out.stderr and message in out.stderr


def test_figures_default_to_build_outside_the_runner(monkeypatch):
    """Only `nlcl figures` (which sets NLCL_FIGURES_DIR) writes into the committed figures/."""
    monkeypatch.delenv(plotting.FIGURES_ENV, raising=False)
    assert plotting.figure_dir("98_good") == ROOT / "build" / "figures" / "98_good"
    monkeypatch.setenv(plotting.FIGURES_ENV, str(ROOT / "build" / "elsewhere"))
    assert plotting.figure_dir("98_good") == ROOT / "build" / "elsewhere" / "98_good"


def test_cli_help_and_unknown_command():
    out = subprocess.run([sys.executable, "-m", "nlcl_utils.cli", "fgures"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown command 'fgures'" in out.stderr
