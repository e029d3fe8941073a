"""Batch runner behind ``make figures`` / ``nlcl figures``: every notebook, headless, via papermill.

For each ``notebooks/NN_name.py`` (jupytext py:percent, the reviewed source):

1. a worker process (:mod:`nlcl_utils.pipeline.run_notebook`) converts it to a notebook and executes it
   with papermill in the staging directory ``build/staging/<target>/NN_name/`` (target: ``committed``
   or the profile; one run per target at a time, see below)
   (kernel ``python3``, one torch/BLAS thread, working directory ``notebooks/``, a per-cell
   timeout), figures redirected there through ``$NLCL_FIGURES_DIR``. Up to ``--jobs`` notebooks
   (default: one per core) run at once, the longest (by the last run) first; each kernel is
   independent, so the outputs are byte-identical to a serial run.
2. when every notebook has finished, the ones whose cells all ran are published together
   (:func:`nlcl_utils.publish.publish`): ``notebooks/NN_name.ipynb``, ``figures/NN_name/`` and
   ``figures/MANIFEST.json`` are swapped in by renames, all or nothing.

A failing notebook is reported with its cell error and leaves its committed outputs as they
were; its executed notebook (up to the error) and worker log go to ``build/failed/<target>/``.
Ctrl-C or SIGTERM stops every worker and kernel at once, publishes nothing and exits with
128 + the signal number. A second run on the same outputs stops at once with a message
naming the run that holds them (exit 3). Runs with ``--profile quick`` or ``-p`` overrides
write only under ``build/<profile>/``: the committed tree always holds the default parameters.
A ``-p`` value of a parameter named ``*_dir`` or ``*_path`` that is a relative path is taken
relative to the caller's working directory (the kernels run in ``notebooks/``); relative paths
in ``notebooks/profiles.toml`` stay relative to ``notebooks/``, the folder of that file.
One line per notebook (timings, CPU seconds, the starting commit) goes to ``build/runs.jsonl``,
never into committed files, so a re-run on unchanged code leaves the tree unchanged.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import fcntl
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from nlcl_utils import publish
from nlcl_utils.notebook import params
from nlcl_utils.pipeline import reproduce, run_notebook
from nlcl_utils.processes import available_cores

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONED_PACKAGES = ("torch", "numpy", "matplotlib", "seaborn", "papermill", "jupytext", "nbformat", "ipykernel")
# Environment of the notebook kernels: one thread, no progress bars in committed outputs,
# matplotlib's inline backend (savefig displays the written PNG itself).
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    publish.PUBLISHER_ENV: "1",  # plotting.figure_dir: only the publisher may name a committed figures/ tree
}
EXIT_FAILED, EXIT_BAD_REQUEST, EXIT_BUSY = 1, 2, 3
POLL_SECONDS = 0.1


class RegenerateError(RuntimeError):
    """Bad request (unknown notebook, profile or parameter): nothing was executed."""


@dataclass(frozen=True)
class Tree:
    """The directories a run reads and writes (the repository, or a test's temporary copy)."""

    root: Path

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def manifest(self) -> Path:
        return self.figures / "MANIFEST.json"

    @property
    def profiles(self) -> Path:
        return self.notebooks / "profiles.toml"


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    error: str = ""
    cpu_seconds: float = 0.0
    published: bool = False


@dataclass
class Running:
    """A worker process executing one notebook."""

    name: str
    process: subprocess.Popen
    stage: Path
    started: float = field(default_factory=time.perf_counter)


def discover(notebooks_dir: Path | None = None) -> list[str]:
    """Names ``NN_name`` of every paired notebook source ``notebooks/NN_name.py``, in order."""
    return sorted(p.stem for p in (notebooks_dir or Tree(REPO_ROOT).notebooks).glob("[0-9][0-9]_*.py"))


def load_profile(tree: Tree, profile: str, names: list[str]) -> dict[str, dict]:
    """Parameter overrides per notebook for ``profile`` ('default' means none)."""
    if profile == "default":
        return {n: {} for n in names}
    try:
        table = tomllib.loads(tree.profiles.read_text()) if tree.profiles.exists() else {}
    except tomllib.TOMLDecodeError as err:
        raise RegenerateError(f"--profile: {tree.profiles} is not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RegenerateError(f"--profile: cannot read {tree.profiles}: {err}") from None
    if profile not in table:
        allowed = ", ".join(["default", *sorted(table)])
        raise RegenerateError(f"--profile: unknown profile {profile!r}; allowed: {allowed}")
    return {n: dict(table[profile].get(n, {})) for n in names}


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple, set)):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def parse_value(name: str, text: str):
    """A ``-p`` value: a Python literal (3, 0.1, True, [1, 2], 'relu') or else a plain string.

    Numbers must be finite: ``1e999`` (inf) is rejected here, before any kernel starts.
    """
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if _non_finite(value):
        raise RegenerateError(f"-p {name}: {text!r} contains a non-finite number (inf or NaN); give finite numbers")
    return value


PATH_SUFFIXES = ("_dir", "_path")


def caller_relative(name: str, value):
    """A ``-p`` value as the kernel must see it: a relative path given for a parameter named
    ``*_dir`` / ``*_path`` becomes absolute against the caller's working directory (the kernel
    runs in ``notebooks/``, where ``./mnist_local`` typed at the repository root does not exist)."""
    if name.endswith(PATH_SUFFIXES) and isinstance(value, str) and value and not value.startswith("~"):
        return value if os.path.isabs(value) else os.path.abspath(value)
    return value


def check_build(tree: Tree) -> None:
    """RegenerateError unless ``build/`` is (or can be created as) a writable folder: runs stage there."""
    why = "nlcl figures stages, locks and logs its runs in that folder"
    if tree.build.exists() and not tree.build.is_dir():
        raise RegenerateError(f"build: {tree.build} is a file, not a folder; {why}: move the file away")
    try:
        publish.check_folder(tree.build, "build")
    except ValueError as err:
        raise RegenerateError(f"{err}; {why}") from None


def check_overrides(tree: Tree, name: str, overrides: dict) -> None:
    """Reject override names the notebook's parameters cell does not define (before any compute)."""
    defaults = params.notebook_defaults(name, tree.notebooks)
    for key in overrides:
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RegenerateError(
                f"-p {key}: notebook {name} has no parameter {key!r}{hint} Allowed: {', '.join(sorted(defaults))}"
            )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for pkg in VERSIONED_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return versions


def manifest_entry(parameters: dict, figure_dir: Path) -> dict:
    """Parameters, versions, figure hashes and claim results of one regenerated notebook."""
    claims_path = figure_dir / "claims.json"
    claims = json.loads(claims_path.read_text()) if claims_path.exists() else None
    return {
        "parameters": parameters,
        "versions": package_versions(),
        "figures": {p.name: sha256(p) for p in sorted(figure_dir.iterdir()) if p.suffix in (".png", ".pdf")},
        "machine": reproduce.machine(),
        "claims": claims["claims"] if claims else [],
        "findings": claims.get("findings", []) if claims else [],
        "checks_hold": bool(claims)
        and all(c["verdict"] == "holds" for c in claims["claims"] if c["kind"] != "prediction"),
    }


def manifest_text(current: Path, entries: dict[str, dict]) -> str:
    """The manifest ``current`` with ``entries`` (notebook -> entry) replaced, as stable JSON."""
    manifest = json.loads(current.read_text()) if current.exists() else {"notebooks": {}}
    manifest["notebooks"].update(entries)
    manifest["notebooks"] = dict(sorted(manifest["notebooks"].items()))
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def log_runs(tree: Tree, outcomes: list[Outcome], context: dict) -> None:
    """Append one JSON line per notebook to build/runs.jsonl (locked: safe with concurrent runs)."""
    tree.build.mkdir(parents=True, exist_ok=True)
    finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    lines = "".join(
        json.dumps(
            {
                "notebook": o.name,
                "ok": o.ok,
                "published": o.published,
                "seconds": round(o.seconds, 2),
                "cpu_seconds": round(o.cpu_seconds, 2),
                **context,
                "overrides": context["overrides"].get(o.name, {}),
                "finished": finished,
                "error": o.error,
            }
        )
        + "\n"
        for o in outcomes
    )
    with open(tree.build / "runs.jsonl", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(lines)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def longest_first(tree: Tree, names: list[str], profile: str) -> list[str]:
    """``names`` ordered by their last successful duration in build/runs.jsonl, longest first.

    Starting the long notebooks first shortens a parallel run (the short ones fill the gaps at
    the end). Notebooks without a record (a fresh clone) come first, in name order.
    """
    last: dict[str, float] = {}
    log = tree.build / "runs.jsonl"
    if log.exists():
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                if record.get("ok") and record.get("profile") == profile:
                    last[record["notebook"]] = float(record["seconds"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return sorted(names, key=lambda n: -last.get(n, math.inf))


# ----------------------------------------------------------------------------------------------
# Running the workers.
# ----------------------------------------------------------------------------------------------


def start_worker(tree: Tree, run_dir: Path, name: str, overrides: dict, timeout: int) -> Running:
    """Start ``python -m nlcl_utils.pipeline.run_notebook`` for one notebook in its staging directory."""
    stage = run_dir / name
    stage.mkdir(parents=True)
    job = {
        "name": name,
        "source": str(tree.notebooks / f"{name}.py"),
        "stage": str(stage),
        "cwd": str(tree.notebooks),
        "overrides": overrides,
        "timeout": timeout,
    }
    (stage / "job.json").write_text(json.dumps(job, indent=1) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(KERNEL_ENV, NLCL_FIGURES_DIR=str(stage / "figures"))
    with open(stage / "worker.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nlcl_utils.pipeline.run_notebook", str(stage / "job.json")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches only this runner, which stops the workers itself
        )
    return Running(name, process, stage)


def finish_worker(worker: Running) -> Outcome:
    """The outcome of a worker that has exited (from its result.json, else from its log)."""
    seconds = time.perf_counter() - worker.started
    result_path = worker.stage / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        return Outcome(worker.name, result["ok"], seconds, result["error"], result["cpu_seconds"])
    log = (worker.stage / "worker.log").read_text(errors="replace").strip().splitlines()
    tail = log[-1] if log else "no output"
    return Outcome(worker.name, False, seconds, f"worker exited with status {worker.process.returncode}: {tail}")


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def kill_worker(worker: Running) -> None:
    """SIGKILL a worker and its kernel (which runs in a session of its own), then reap the worker."""
    for pid in [*_children(worker.process.pid), worker.process.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.process.wait()


class Stop:
    """Records SIGINT/SIGTERM/SIGHUP instead of raising, so the loop stops at a safe point."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self) -> Stop:
        for sig in publish.HELD_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def keep_failed(tree: Tree, worker: Running, outcome: Outcome, failed_dir: Path) -> None:
    """Move a failed notebook's staging folder (executed notebook up to the error, worker log) to
    ``failed_dir/name`` for debugging, and say where it is in the outcome's error."""
    target = failed_dir / worker.name
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(worker.stage, target)
    outcome.error += f" (executed notebook and log: {target.relative_to(tree.root)}/)"


def run_all(
    tree: Tree, run_dir: Path, plan: dict[str, dict], jobs: int, timeout: int, stop: Stop, failed_dir: Path
) -> list[Outcome]:
    """Execute every notebook of ``plan``, ``jobs`` at a time; stops early when ``stop`` fires.

    A failed notebook's staging folder goes to ``failed_dir`` (see :func:`keep_failed`).
    """
    from tqdm.auto import tqdm

    pending = list(plan)
    running: list[Running] = []
    outcomes: list[Outcome] = []
    bar = tqdm(total=len(plan), desc="notebooks", unit="nb", file=sys.stderr)
    shown = ""
    try:
        while (pending or running) and stop.signum is None:
            while pending and len(running) < jobs and stop.signum is None:
                name = pending.pop(0)
                running.append(start_worker(tree, run_dir, name, plan[name], timeout))
            for worker in [w for w in running if w.process.poll() is not None]:
                running.remove(worker)
                outcome = finish_worker(worker)
                if not outcome.ok:
                    keep_failed(tree, worker, outcome, failed_dir)
                outcomes.append(outcome)
                status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
                tqdm.write(f"{outcome.name}: {status} ({outcome.seconds:.0f} s)", file=sys.stderr)
                bar.update(1)
            now_running = ("running " + ", ".join(w.name.split("_", 1)[0] for w in running)) if running else ""
            if now_running != shown:
                bar.set_postfix_str(now_running)
                shown = now_running
            time.sleep(POLL_SECONDS)
    finally:
        for worker in running:
            kill_worker(worker)
            outcomes.append(
                Outcome(worker.name, False, time.perf_counter() - worker.started, "stopped before it finished")
            )
        bar.close()
    return outcomes


# ----------------------------------------------------------------------------------------------
# Publishing.
# ----------------------------------------------------------------------------------------------


def publish_outcomes(tree: Tree, run_dir: Path, outcomes: list[Outcome], profile: str, committed: bool) -> None:
    """Swap the staged outputs of every successful notebook into place, all together."""
    moves: list[tuple[Path, Path]] = []
    entries: dict[str, dict] = {}
    for outcome in (o for o in outcomes if o.ok):
        stage = run_dir / outcome.name
        figures = stage / "figures" / outcome.name
        if committed and not figures.is_dir():
            outcome.ok, outcome.error = False, "the notebook wrote no figure directory (plotting.figure_dir)"
            continue
        if committed:
            moves += [(stage / f"{outcome.name}.ipynb", tree.notebooks / f"{outcome.name}.ipynb")]
            moves += [(figures, tree.figures / outcome.name)]
            entries[outcome.name] = manifest_entry(params.notebook_defaults(outcome.name, tree.notebooks), figures)
        else:
            moves.append((stage, tree.build / profile / outcome.name))
    if not moves:
        return
    if committed:
        staged_manifest = run_dir / "MANIFEST.json"
        staged_manifest.write_text(manifest_text(tree.manifest, entries))
        moves.append((staged_manifest, tree.manifest))
    publish.publish(moves, journal_path(tree, profile), run_dir / "trash")
    for outcome in outcomes:
        outcome.published = outcome.ok


def target_name(profile: str) -> str:
    return "committed" if profile == "default" else profile


def journal_path(tree: Tree, profile: str) -> Path:
    return tree.build / "locks" / f"{target_name(profile)}.journal.json"


# ----------------------------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _folder_name(text: str) -> str:
    if not text or text in (".", "..") or "/" in text or os.sep in text or text in ("committed", "default"):
        raise argparse.ArgumentTypeError(
            f"expected a plain folder name (no '/', not 'committed' or 'default'), got {text!r}"
        )
    return text


def default_jobs() -> int:
    """One notebook per core this process may use."""
    return available_cores()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nlcl figures",
        description=__doc__.split("\n\n")[0],
        epilog="exit status: 0 every notebook published; 1 a notebook failed (the others published); "
        "2 bad request, nothing run; 3 another run holds these outputs; 128+N stopped by signal N, nothing published",
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this notebook (NN_name or its NN prefix); repeatable"
    )
    parser.add_argument(
        "--profile",
        default="default",
        help="'default' (paper-scale, updates the committed tree) or a profile of "
        "notebooks/profiles.toml such as 'quick' (writes under build/)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a notebook parameter (Python literal); output goes under build/custom/",
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        help=f"notebooks run at once, each with one thread (default: the number of cores, here {default_jobs()})",
    )
    parser.add_argument(
        "--timeout", type=_positive_int, default=1800, help="per-cell timeout in seconds (default 1800)"
    )
    parser.add_argument(
        "--into",
        metavar="NAME",
        type=_folder_name,
        help="write under build/NAME/ instead of the committed tree or build/<profile>/ "
        "(e.g. re-run the default parameters without touching the committed outputs)",
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)  # tests: a throw-away tree
    return parser


def select(names: list[str], only: list[str] | None) -> list[str]:
    if not only:
        return names
    chosen = []
    for want in only:
        match = [n for n in names if n == want or n.split("_", 1)[0] == want]
        if not match:
            raise RegenerateError(f"--only: no notebook {want!r}; allowed: {', '.join(names)}")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def make_plan(tree: Tree, args: argparse.Namespace) -> tuple[str, dict[str, dict]]:
    """(profile, {notebook: overrides}) of a request, or RegenerateError before any compute."""
    names = select(discover(tree.notebooks), args.only)
    profile_overrides = load_profile(tree, args.profile, names)
    cli_overrides = {k: caller_relative(k, parse_value(k, v)) for k, v in args.parameter}
    profile = args.profile if not cli_overrides or args.profile != "default" else "custom"
    if args.into:
        profile = args.into
    plan = {n: {**profile_overrides[n], **cli_overrides} for n in names}
    for name, overrides in plan.items():
        check_overrides(tree, name, overrides)
    return profile, plan


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before the runner took over Ctrl-C: nothing was started
        print("nlcl figures: interrupted before any notebook ran; nothing changed", file=sys.stderr)
        return 128 + signal.SIGINT


def _main(argv: list[str] | None) -> int:
    run_notebook.skip_slow_optional_imports()
    args = build_parser().parse_args(argv)
    tree = Tree(args.root.resolve())
    try:
        profile, plan = make_plan(tree, args)
        check_build(tree)
    except RegenerateError as exc:
        print(f"nlcl figures: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    committed = profile == "default"
    plan = {name: plan[name] for name in longest_first(tree, list(plan), profile)}
    jobs = min(args.jobs or default_jobs(), len(plan))
    where = "figures/ and notebooks/" if committed else f"build/{profile}/"
    try:
        with publish.RunLock(tree.build / "locks" / f"{target_name(profile)}.lock", where), Stop() as stop:
            if publish.recover(journal_path(tree, profile)):
                print("nlcl figures: finished publishing what an interrupted run had started", file=sys.stderr)
            run_dir = tree.build / "staging" / target_name(profile)  # ours alone while we hold the lock
            shutil.rmtree(run_dir, ignore_errors=True)  # whatever a killed run left behind
            run_dir.mkdir(parents=True)
            context = {"profile": profile, "jobs": jobs, "commit": _git_commit(tree.root)}
            outcomes: list[Outcome] = []
            try:
                failed_dir = tree.build / "failed" / target_name(profile)
                outcomes.extend(run_all(tree, run_dir, plan, jobs, args.timeout, stop, failed_dir))
                if stop.signum is None:
                    publish_outcomes(tree, run_dir, outcomes, profile, committed)
            finally:
                log_runs(tree, outcomes, {**context, "overrides": plan})
                if not journal_path(tree, profile).exists():  # else the next run must finish the publish
                    shutil.rmtree(run_dir, ignore_errors=True)
    except publish.LockBusy as exc:
        print(f"nlcl figures: {exc}", file=sys.stderr)
        return EXIT_BUSY
    if stop.signum is not None:
        name = signal.Signals(stop.signum).name
        done = sum(o.published for o in outcomes)
        what = "nothing was published" if not done else f"it came after publishing {done} notebooks"
        print(f"nlcl figures: stopped by {name}; {what}", file=sys.stderr)
        return 128 + stop.signum
    failed = [o for o in outcomes if not o.ok]
    cpu = sum(o.cpu_seconds for o in outcomes)
    print(
        f"{len(outcomes) - len(failed)}/{len(outcomes)} notebooks regenerated into {where} "
        f"({jobs} at a time, {cpu:.0f} CPU-s in the workers)",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else 0
