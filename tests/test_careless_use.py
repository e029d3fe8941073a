"""What hurried users do to the commands, table by table: each case gets a one-line error naming the
parameter or file and what is allowed (or the right result), before any work starts.

Signals are sent to real commands in subprocesses; everything else runs in this process on
throw-away trees and folders (``throwaway_tree.py``).
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import numpy as np
import pytest
import torch
from test_sweep import TINY as SWEEP_TINY
from throwaway_tree import GOOD, child_env, snapshot, write_tree

from nlcl_utils import publish
from nlcl_utils.cli import sweep as sweep_cli
from nlcl_utils.cli import tokens as tokens_cli
from nlcl_utils.data.images import IDXError, load_mnist
from nlcl_utils.data.tokens import embed
from nlcl_utils.engine.models import ReceptiveFieldNet
from nlcl_utils.experiments import sweep
from nlcl_utils.notebook import claims, plotting
from nlcl_utils.pipeline import readme, regenerate

ROOT = Path(__file__).resolve().parents[1]
TINY = {**SWEEP_TINY, "steps": 20}  # the sweep tests' tiny task, shorter
TINY_TOML = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY.items())
TINY_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "steps"]


def _grid(tmp_path: Path, seeds: str = "[1]", extra: str = "") -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(f"seeds = {seeds}\n{extra}[base]\n{TINY_TOML}\n")
    return path


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def unwritable(tmp_path):
    """An existing folder in which nothing can be created (permission bits do not stop root: use /proc)."""
    if os.geteuid() == 0:
        yield Path("/proc/self")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


# ------------------------------------------------------------------------------------------
# Only the publisher writes a committed figures tree; the README quotes only published claims
# ------------------------------------------------------------------------------------------


def _committed_copy(tmp_path: Path) -> Path:
    root = write_tree(tmp_path / "clone", {"98_good": GOOD})
    (root / "figures" / "MANIFEST.json").write_text('{"notebooks": {}}\n')
    return root


@pytest.mark.parametrize(
    "case, figures_dir, publisher, refused",
    [
        ("this checkout's figures/", lambda copy: ROOT / "figures", False, True),
        ("a folder inside this checkout's figures/", lambda copy: ROOT / "figures" / "00_sub", False, True),
        ("figures/ relative to the repository root", lambda copy: Path("figures"), False, True),
        ("another clone's committed figures/", lambda copy: copy / "figures", False, True),
        ("another clone's figures/, asked by the publisher", lambda copy: copy / "figures", True, False),
        ("a folder under build/", lambda copy: copy / "build" / "mine", False, False),
    ],
)
def test_a_figures_dir_in_a_committed_tree_is_refused_unless_the_publisher_asks(
    case, figures_dir, publisher, refused, tmp_path, monkeypatch
):
    copy = _committed_copy(tmp_path)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(plotting.FIGURES_ENV, str(figures_dir(copy)))
    if publisher:
        monkeypatch.setenv(publish.PUBLISHER_ENV, "1")
    else:
        monkeypatch.delenv(publish.PUBLISHER_ENV, raising=False)
    if refused:
        with pytest.raises(ValueError, match="NLCL_FIGURES_DIR: .* committed figures tree .* only `nlcl figures`"):
            plotting.figure_dir("98_good")
    else:
        assert plotting.figure_dir("98_good") == figures_dir(copy) / "98_good"
        assert (figures_dir(copy) / "98_good").is_dir()
    assert not (ROOT / "figures" / "98_good").exists() and not (ROOT / "figures" / "00_sub").exists()


def test_the_publisher_marks_its_kernels():
    assert regenerate.KERNEL_ENV[publish.PUBLISHER_ENV] == "1"


def test_plain_papermill_into_a_committed_figures_tree_fails_and_changes_nothing(tmp_path):
    root = _committed_copy(tmp_path)
    source = tmp_path / "98_good.ipynb"
    nb = jupytext.reads(GOOD, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source.write_text(jupytext.writes(nb, fmt="ipynb"))
    before = snapshot(root)
    env = {**child_env(), plotting.FIGURES_ENV: str(root / "figures")}
    env.pop(publish.PUBLISHER_ENV, None)
    out = subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(tmp_path / "out.ipynb"), "--cwd", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode != 0
    assert "only `nlcl figures`" in out.stderr
    assert snapshot(root) == before and not (root / "figures" / "98_good").exists()


def _published_tree(tmp_path: Path) -> Path:
    """A tree whose 98_good claims were published (claims.json + manifest entry), a results page with its
    table and a README with its verdict counts."""
    root = write_tree(tmp_path / "tree", {"98_good": GOOD})
    figures = root / "figures" / "98_good"
    checks = claims.Claims("98_good")
    checks.prediction("points above zero", "T0.1", measured=3.0, op=">", threshold=0, threshold_source="test")
    checks.finding("a number", "T0.1", measured=1.5, expected="about 1", note="test")
    checks.save(figures)
    entry = regenerate.manifest_entry({"n_points": 5}, figures)
    (root / "figures" / "MANIFEST.json").write_text(json.dumps({"notebooks": {"98_good": entry}}, indent=2) + "\n")
    (root / "README.md").write_text("# t\n\nPredictions: <!-- verdicts:98_good -->old<!-- /verdicts -->.\n")
    (root / "docs").mkdir()
    (root / "docs" / "results.md").write_text("# r\n\n<!-- headline:98_good -->\nold\n<!-- /headline -->\n")
    return root


def _edit_claims(root: Path, change) -> None:
    path = root / "figures" / "98_good" / "claims.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize(
    "case, damage, words",
    [
        (
            "a measured value edited",
            lambda root: _edit_claims(root, lambda d: d["claims"][0].update(measured=0.123)),
            ["figures/98_good/claims.json", "claims differ", "98_good", "MANIFEST.json", "nlcl figures --only 98"],
        ),
        (
            "a finding dropped",
            lambda root: _edit_claims(root, lambda d: d.update(findings=[])),
            ["figures/98_good/claims.json", "findings differ", "98_good"],
        ),
        (
            "claims written by plain papermill (no manifest entry)",
            lambda root: (root / "figures" / "MANIFEST.json").write_text('{"notebooks": {}}\n'),
            ["figures/98_good/claims.json", "no entry", "98_good"],
        ),
        (
            "claims.json cut short",
            lambda root: (root / "figures" / "98_good" / "claims.json").write_text('{"claims": [{"na'),
            ["figures/98_good/claims.json", "not valid JSON"],
        ),
        (
            "the headline markers removed",
            lambda root: (root / "docs" / "results.md").write_text("# r\n\nold\n"),
            ["docs/results.md", "lacks the headline blocks", "<!-- headline:98_good -->", "<!-- /headline -->"],
        ),
        (
            "the results page missing",
            lambda root: (root / "docs" / "results.md").unlink(),
            ["docs/results.md", "lacks the headline blocks", "<!-- headline:98_good -->"],
        ),
    ],
)
def test_readme_refuses_what_was_not_published_naming_the_file(case, damage, words, tmp_path, capsys):
    root = _published_tree(tmp_path)
    damage(root)
    pages = [root / "README.md", root / "docs" / "results.md"]
    before = [page.read_text() if page.exists() else None for page in pages]
    assert readme.main(["--root", str(root)]) == 1
    line = _one_line(capsys.readouterr().err)
    for word in words:
        assert word in line, line
    assert [page.read_text() if page.exists() else None for page in pages] == before


def test_readme_quotes_published_claims(tmp_path, capsys):
    root = _published_tree(tmp_path)
    assert readme.main(["--root", str(root), "--check"]) == 1
    assert "README.md and docs/results.md are out of date" in _one_line(capsys.readouterr().err)
    assert readme.main(["--root", str(root)]) == 0
    text = (root / "docs" / "results.md").read_text()
    assert "| T0.1 | points above zero | 3 |" in text and "a number" in text
    counts = "<!-- verdicts:98_good -->1 hold, 0 refuted, 0 undecided<!-- /verdicts -->"
    assert f"Predictions: {counts}." in (root / "README.md").read_text()
    assert readme.main(["--root", str(root), "--check"]) == 0


def test_readme_counts_only_the_published_verdicts(tmp_path, capsys):
    """The README's counts come from figures/MANIFEST.json and go stale with it; a notebook without an entry says so."""
    root = _published_tree(tmp_path)
    (root / "README.md").write_text(
        "<!-- verdicts:98_good -->old<!-- /verdicts --> and <!-- verdicts:97_never_run -->old<!-- /verdicts -->\n"
    )
    assert readme.main(["--root", str(root)]) == 0
    text = (root / "README.md").read_text()
    assert "-->1 hold, 0 refuted, 0 undecided<!--" in text
    assert "<!-- verdicts:97_never_run -->no published claims yet: run `make figures`<!-- /verdicts -->" in text
    _edit_claims(root, lambda d: d["claims"][0].update(verdict="refuted"))
    manifest = json.loads((root / "figures" / "MANIFEST.json").read_text())
    manifest["notebooks"]["98_good"]["claims"][0]["verdict"] = "refuted"
    (root / "figures" / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    capsys.readouterr()
    assert readme.main(["--root", str(root), "--check"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "README.md" in line and "out of date" in line
    assert readme.main(["--root", str(root)]) == 0
    assert "-->0 hold, 1 refuted, 0 undecided<!--" in (root / "README.md").read_text()


# ------------------------------------------------------------------------------------------
# Signals: a sweep started with SIGINT ignored still stops; Ctrl-C in nlcl tokens is one line
# ------------------------------------------------------------------------------------------


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a script's background job (`cmd &`) inherits


@pytest.mark.parametrize(
    "case, signum, preexec",
    [
        ("Ctrl-C, started with SIGINT ignored", signal.SIGINT, _ignore_sigint),
        ("SIGTERM", signal.SIGTERM, None),
    ],
)
def test_sweep_stops_on_a_signal_whatever_it_inherited(case, signum, preexec, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f"seeds = [1]\nmax_replicas = 1\n[base]\n{TINY_TOML.replace('steps = 20', 'steps = 1500')}\n"
        "[[grid]]\nlr = [0.01, 0.011, 0.012, 0.013, 0.014, 0.015]\n"
    )
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "nlcl_utils.cli", "sweep", str(grid), "--cache", str(cache), "--workers", "1"]
    proc = subprocess.Popen(
        cmd + ["--no-progress"], cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=preexec,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not list(cache.rglob("*.json")):  # the first run is cached: the sweep is under way
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before its first result"
        time.sleep(0.05)
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert time.monotonic() - sent < 20, "the sweep did not stop promptly"
    assert f"nlcl sweep: interrupted ({signal.Signals(signum).name})" in err and "run again" in err
    assert "Traceback" not in err
    assert len(list(cache.rglob("*.json"))) < 6


def test_ctrl_c_in_tokens_exits_130_with_one_line(tmp_path):
    err_path = tmp_path / "stderr"
    env = {k: v for k, v in child_env().items() if k != "TQDM_DISABLE"}  # the bar shows training has begun
    cmd = [sys.executable, "-m", "nlcl_utils.cli", "tokens", *TINY_FLAGS, "--steps", "1000000", "--seeds", "1"]
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err_file, text=True)
        deadline = time.monotonic() + 120
        while "%" not in err_path.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    err = err_path.read_text()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "nlcl tokens: stopped by SIGINT; nothing was written" in err
    assert out == ""


# ------------------------------------------------------------------------------------------
# nlcl sweep: seeds bounded before expanding; unwritable places refused before any run
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, seeds, words",
    [
        ("ten million seeds", '"0-10000000"', ["'0-10000000' asks for 10000001 seeds", "at most 100000"]),
        ("a range beyond memory", '"0-1000000000000"', ["asks for 1000000000001 seeds", "at most 100000"]),
        ("many ranges adding up", '"0-60000,70000-130000"', ["asks for 120002 seeds", "at most 100000"]),
        ("a long list", str(list(range(100_001))), ["the list holds 100001 seeds", "at most 100000"]),
    ],
)
def test_sweep_rejects_too_many_seeds_before_expanding_them(case, seeds, words, tmp_path, capsys):
    grid = _grid(tmp_path, seeds)
    start = time.monotonic()
    assert sweep_cli.main([str(grid), "--cache", str(tmp_path / "cache"), "--dry-run"]) == 2
    assert time.monotonic() - start < 10
    line = _one_line(capsys.readouterr().err)
    assert "seeds" in line and all(word in line for word in words), line
    assert not (tmp_path / "cache").exists()


def _no_compute(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("work started although a location cannot be written")

    monkeypatch.setattr(sweep, "run_sweep", refuse)
    monkeypatch.setattr(tokens_cli, "run_tokens", refuse)


@pytest.mark.parametrize(
    "case, flags, words",
    [
        ("--cache is a file", lambda tmp, ro: ["--cache", str(tmp / "grid.toml")], ["cache:", "is a file"]),
        ("--cache is read-only", lambda tmp, ro: ["--cache", str(ro)], ["cache:", "is not writable"]),
        (
            "--cache cannot be created",
            lambda tmp, ro: ["--cache", str(ro / "nlcl-cache")],
            ["cache:", "cannot be created"],
        ),
        (
            "--out in a read-only folder",
            lambda tmp, ro: ["--cache", str(tmp / "c"), "--out", str(ro / "x.csv")],
            ["out:", "is not writable"],
        ),
        (
            "--out in a folder that cannot be created",
            lambda tmp, ro: ["--cache", str(tmp / "c"), "--out", str(ro / "new" / "x.csv")],
            ["out:", "cannot be created"],
        ),
        (
            "--out under a file",
            lambda tmp, ro: ["--cache", str(tmp / "c"), "--out", str(tmp / "grid.toml" / "x.csv")],
            ["out:", "grid.toml", "is not a directory"],
        ),
    ],
)
def test_sweep_refuses_unwritable_places_before_any_run(case, flags, words, tmp_path, unwritable, capsys, monkeypatch):
    _no_compute(monkeypatch)
    grid = _grid(tmp_path)
    assert sweep_cli.main([str(grid), "--no-progress", *flags(tmp_path, unwritable)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert all(word in line for word in words), line
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "case, out, words",
    [
        ("a folder that cannot be created", lambda tmp, ro: ro / "new" / "r.json", ["out:", "cannot be created"]),
        ("a read-only folder", lambda tmp, ro: ro / "r.json", ["out:", "is not writable"]),
        (
            "a folder under a file",
            lambda tmp, ro: tmp / "file" / "sub" / "r.json",
            ["out:", "file", "is not a directory", "cannot be created"],
        ),
        ("a directory", lambda tmp, ro: tmp, ["out:", "is a directory", "results.json"]),
    ],
)
def test_tokens_refuses_an_unwritable_out_before_compute(case, out, words, tmp_path, unwritable, capsys, monkeypatch):
    _no_compute(monkeypatch)
    (tmp_path / "file").write_text("x")
    argv = [*TINY_FLAGS, "--seeds", "1", "--no-progress", "--out", str(out(tmp_path, unwritable))]
    assert tokens_cli.main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert all(word in line for word in words), line


def test_a_fully_cached_sweep_needs_no_write_access_to_its_cache(tmp_path, capsys, monkeypatch):
    grid = _grid(tmp_path)
    cache = tmp_path / "cache"
    argv = [str(grid), "--cache", str(cache), "--no-progress", "--workers", "1"]
    assert sweep_cli.main(argv) == 0
    real_check = publish.check_folder

    def cache_read_only(path, name):
        if name == "cache":
            raise ValueError(f"cache: the folder {str(path)!r} is not writable: Read-only file system")
        real_check(path, name)

    monkeypatch.setattr(publish, "check_folder", cache_read_only)
    assert sweep_cli.main(argv) == 0  # every run cached: reading is all it does
    assert "0 runs computed in 0 batches, 1 from the cache" in capsys.readouterr().out
    grid.write_text(grid.read_text().replace("seeds = [1]", "seeds = [1, 2]"))
    assert sweep_cli.main(argv) == 2  # one run to compute: refused before it starts
    assert "cache:" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------------
# One line instead of a traceback
# ------------------------------------------------------------------------------------------


def _figures(tmp_path: Path, prepare, *args: str) -> list[str]:
    root = write_tree(tmp_path / "tree", {"98_good": GOOD})
    prepare(root)
    return ["--root", str(root), "--only", "98", *args]


def _build_is(target):
    def prepare(root: Path) -> None:
        (root / "build").rmdir()
        if target == "file":
            (root / "build").write_text("not a folder")
        else:
            (root / "build").symlink_to(target)

    return prepare


@pytest.mark.parametrize(
    "case, run, status, words",
    [
        (
            "sweep --executor slurm without Slurm",
            lambda tmp, ro: sweep_cli.main([str(_grid(tmp)), "--cache", str(tmp / "c"), "--executor", "slurm"]),
            2,
            ["executor:", "srun", "sbatch", "PATH", "--executor local", "works everywhere"],
        ),
        (
            "sweep given a directory",
            lambda tmp, ro: sweep_cli.main([str(tmp), "--cache", str(tmp / "c")]),
            2,
            ["TMP", "is a directory", "TOML grid file"],
        ),
        (
            "figures with a malformed profiles.toml",
            lambda tmp, ro: regenerate.main(
                _figures(tmp, lambda r: (r / "notebooks" / "profiles.toml").write_text("[quick\n"), "--profile", "q")
            ),
            2,
            ["--profile", "notebooks/profiles.toml", "not valid TOML", "line 1"],
        ),
        (
            "figures with build/ a file",
            lambda tmp, ro: regenerate.main(_figures(tmp, _build_is("file"))),
            2,
            ["build:", "is a file", "move the file away"],
        ),
        (
            "figures with build/ read-only",
            lambda tmp, ro: regenerate.main(_figures(tmp, _build_is(ro))),
            2,
            ["build:", "is not writable", "stages"],
        ),
    ],
)
def test_bad_setups_give_one_line_not_a_traceback(case, run, status, words, tmp_path, unwritable, capsys, monkeypatch):
    _no_compute(monkeypatch)
    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))  # no srun / sbatch
    assert run(tmp_path, unwritable) == status
    line = _one_line(capsys.readouterr().err)
    for word in words:
        assert word.replace("TMP", str(tmp_path)) in line, line
    assert not (tmp_path / "c").exists()


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize(
    "case, n_train, n_test, file",
    [
        ("no test images", 6, 0, "t10k-images-idx3-ubyte.gz"),
        ("one test image", 6, 1, "t10k-images-idx3-ubyte.gz"),
        ("no training images", 0, 4, "train-images-idx3-ubyte.gz"),
    ],
)
def test_mnist_files_with_too_few_images_are_named(case, n_train, n_test, file, tmp_path):
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (("images", np.zeros((n, 4, 4))), ("labels", np.zeros(n))):
            name = f"{split}-{kind}-idx{array.ndim}-ubyte.gz"
            (tmp_path / name).write_bytes(gzip.compress(_idx(array)))
    with pytest.raises(IDXError, match="at least 2") as err:
        load_mnist(tmp_path)
    assert file in str(err.value) and "\n" not in str(err.value)


TOKENS_OK = torch.zeros(2, 5, 4, dtype=torch.long)
EMBEDDINGS = torch.eye(8, dtype=torch.float64).expand(2, 8, 8)


def _net() -> ReceptiveFieldNet:
    return ReceptiveFieldNet.init([1, 2], EMBEDDINGS, locations=4, filters=3, out_dim=4, dtype=torch.float64)


@pytest.mark.parametrize(
    "case, call, error, message",
    [
        ("embed: id V", lambda: embed(TOKENS_OK + 8, EMBEDDINGS), ValueError, r"tokens: .*\[0, V=8\).* 8 to 8"),
        ("embed: negative id", lambda: embed(TOKENS_OK - 1, EMBEDDINGS), ValueError, r"tokens: .*\[0, V=8\)"),
        ("embed: float ids", lambda: embed(TOKENS_OK.double(), EMBEDDINGS), TypeError, "integer tensor"),
        ("reference_outputs: id V", lambda: _net().reference_outputs(TOKENS_OK + 8), ValueError, r"\[0, V=8\)"),
        ("reference_outputs: id -1", lambda: _net().reference_outputs(TOKENS_OK - 1), ValueError, r"tokens: .*-1"),
    ],
)
def test_out_of_range_tokens_name_the_allowed_range(case, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_in_range_tokens_still_embed_and_run():
    assert torch.equal(embed(TOKENS_OK + 7, EMBEDDINGS)[0, 0, 0], EMBEDDINGS[0, 7])
    assert _net().reference_outputs(TOKENS_OK + 7).shape == (2, 5, 4)


# ------------------------------------------------------------------------------------------
# Relative path parameters are the caller's
# ------------------------------------------------------------------------------------------

PATHS_NOTEBOOK = GOOD.replace(
    "n_points = 5  # points on the line", 'n_points = 5\nmnist_dir = None\nlog_path = "x"\nlabel = "a"'
)


@pytest.mark.parametrize(
    "case, name, value, expected",
    [
        ("./folder for a _dir parameter", "mnist_dir", "./mnist_local", "CALLER/mnist_local"),
        ("folder/file for a _path parameter", "log_path", "logs/run.txt", "CALLER/logs/run.txt"),
        ("../ for a _dir parameter", "mnist_dir", "../elsewhere", "TMP/elsewhere"),
        ("an absolute path", "mnist_dir", "/data/mnist", "/data/mnist"),
        ("a home path (the loader expands ~)", "mnist_dir", "~/mnist", "~/mnist"),
        ("None", "mnist_dir", "None", None),
        ("a parameter that is not a path", "label", "./a", "./a"),
    ],
)
def test_relative_path_parameters_are_taken_from_the_callers_directory(
    case, name, value, expected, tmp_path, monkeypatch
):
    root = write_tree(tmp_path / "tree", {"98_good": PATHS_NOTEBOOK})
    caller = tmp_path / "caller"
    caller.mkdir()
    monkeypatch.chdir(caller)
    args = regenerate.build_parser().parse_args(["--root", str(root), "-p", name, value])
    _, plan = regenerate.make_plan(regenerate.Tree(root), args)
    if isinstance(expected, str):
        expected = expected.replace("CALLER", str(caller)).replace("TMP", str(tmp_path))
    assert plan["98_good"][name] == expected
