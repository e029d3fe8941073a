"""Batch runner behind ``make figures`` / ``nlcl figures``: every notebook, headless, via papermill.

For each ``notebooks/NN_name.py`` (jupytext py:percent, the reviewed source):

1. convert it to a notebook (the paired ``.ipynb`` is always rebuilt from the ``.py``);
2. execute it with papermill in a staging folder under ``build/`` (kernel ``python3``,
   working directory ``notebooks/``, a per-cell timeout), figures redirected there through
   ``$NLCL_FIGURES_DIR``;
3. only if every cell ran: strip run-specific metadata (papermill timings, execution
   timestamps), write the executed notebook over ``notebooks/NN_name.ipynb``, replace
   ``figures/NN_name/`` with the staged figures and update ``figures/MANIFEST.json``.

A failing notebook is reported with its cell error and leaves every committed output as it
was; notebooks finished before an interruption keep their new outputs. Runs with
``--profile quick`` or ``-p`` overrides write only under ``build/<profile>/``: the committed
tree always holds the default parameters. Timings and the starting commit go to
``build/runs.jsonl``, never into committed files, so a re-run on unchanged code leaves the
tree unchanged.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO_ROOT / "notebooks"
FIGURES = REPO_ROOT / "figures"
BUILD = REPO_ROOT / "build"
PROFILES_FILE = NOTEBOOKS / "profiles.toml"
MANIFEST = FIGURES / "MANIFEST.json"
KERNEL = "python3"
VERSIONED_PACKAGES = ("torch", "numpy", "matplotlib", "seaborn", "papermill", "jupytext", "nbformat", "ipykernel")
# Environment of the notebook kernels: one thread, no progress bars in committed outputs,
# matplotlib's inline backend (savefig displays the written PNG itself).
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


class RegenerateError(RuntimeError):
    """Bad request (unknown notebook, profile or parameter): nothing was executed."""


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    error: str = ""


def discover(notebooks_dir: Path | None = None) -> list[str]:
    """Names ``NN_name`` of every paired notebook source ``notebooks/NN_name.py``, in order."""
    return sorted(p.stem for p in (notebooks_dir or NOTEBOOKS).glob("[0-9][0-9]_*.py"))


def load_profile(profile: str, names: list[str]) -> dict[str, dict]:
    """Parameter overrides per notebook for ``profile`` ('default' means none)."""
    if profile == "default":
        return {n: {} for n in names}
    table = tomllib.loads(PROFILES_FILE.read_text()) if PROFILES_FILE.exists() else {}
    if profile not in table:
        raise RegenerateError(f"--profile: unknown profile {profile!r}; allowed: default, {', '.join(sorted(table))}")
    return {n: dict(table[profile].get(n, {})) for n in names}


def parse_value(text: str):
    """A ``-p`` value: a Python literal (3, 0.1, True, [1, 2], 'relu') or else a plain string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_defaults(name: str) -> dict:
    """The parameters cell of ``name`` as {parameter: default value} (read, not executed)."""
    import jupytext

    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
            return values
    raise RegenerateError(f"notebook {name}: no cell tagged 'parameters'")


def check_overrides(name: str, overrides: dict) -> None:
    """Reject override names the notebook's parameters cell does not define (before any compute)."""
    defaults = notebook_defaults(name)
    for key in overrides:
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RegenerateError(
                f"-p {key}: notebook {name} has no parameter {key!r}{hint} Allowed: {', '.join(sorted(defaults))}"
            )


def clean_notebook(nb) -> None:
    """Remove what changes on every run: papermill/nbclient timings, run metadata, random cell ids.

    Cell ids become a hash of the cell's position and source, so unchanged code keeps them.
    """
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # ipywidgets state: random model ids
    for index, cell in enumerate(nb.cells):
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                out.get("metadata", {}).pop("execution", None)


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


def manifest_entry(name: str, figure_dir: Path) -> dict:
    """Parameters, versions, figure hashes and claim results of one regenerated notebook."""
    claims_path = figure_dir / "claims.json"
    claims = json.loads(claims_path.read_text()) if claims_path.exists() else None
    return {
        "parameters": notebook_defaults(name),
        "versions": package_versions(),
        "figures": {p.name: sha256(p) for p in sorted(figure_dir.iterdir()) if p.suffix in (".png", ".pdf")},
        "claims": claims["claims"] if claims else [],
        "findings": claims.get("findings", []) if claims else [],
        "all_claims_pass": bool(claims) and all(c["pass"] for c in claims["claims"]),
    }


def update_manifest(name: str, entry: dict) -> None:
    path = MANIFEST
    manifest = json.loads(path.read_text()) if path.exists() else {"notebooks": {}}
    manifest["notebooks"][name] = entry
    manifest["notebooks"] = dict(sorted(manifest["notebooks"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _error_text(exc: Exception) -> str:
    """Short description of a papermill failure: the cell and the exception it raised."""
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    where = f" in cell [{cell}]" if cell is not None else ""
    return f"{ename}{where}: {evalue}"


def execute(name: str, overrides: dict, profile: str, timeout: int) -> Outcome:
    """Execute one notebook; publish its outputs into the committed tree only for 'default'."""
    import jupytext
    import nbformat
    import papermill

    committed = profile == "default" and not overrides
    stage = BUILD / ("staging" if committed else profile) / name
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    source = stage / f"{name}.input.ipynb"
    executed = stage / f"{name}.ipynb"
    fig_root = stage / "figures"

    nb = jupytext.read(NOTEBOOKS / f"{name}.py")
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, source)

    env_before = dict(os.environ)
    os.environ.update(KERNEL_ENV)
    os.environ["NLCL_FIGURES_DIR"] = str(fig_root)
    os.environ.pop("MPLBACKEND", None)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=overrides or None,
            kernel_name=KERNEL,
            cwd=str(NOTEBOOKS),
            execution_timeout=timeout,
            progress_bar=False,
            log_output=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # hush the kernel's start-up warnings
        )
    except Exception as exc:  # papermill wraps cell errors; report and keep committed outputs
        return Outcome(name, False, time.perf_counter() - start, _error_text(exc))
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    seconds = time.perf_counter() - start

    out_nb = nbformat.read(executed, as_version=4)
    clean_notebook(out_nb)
    staged_figs = fig_root / name
    if committed:
        nbformat.write(out_nb, NOTEBOOKS / f"{name}.ipynb")
        target = FIGURES / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(staged_figs, target)
        update_manifest(name, manifest_entry(name, target))
        shutil.rmtree(stage)
    else:
        nbformat.write(out_nb, executed)
    return Outcome(name, True, seconds)


def log_run(outcome: Outcome, profile: str, overrides: dict, commit: str | None) -> None:
    BUILD.mkdir(exist_ok=True)
    record = {
        "notebook": outcome.name,
        "ok": outcome.ok,
        "seconds": round(outcome.seconds, 2),
        "profile": profile,
        "overrides": overrides,
        "commit": commit,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "error": outcome.error,
    }
    with open(BUILD / "runs.jsonl", "a") as fh:
        fh.write(json.dumps(record) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nlcl figures", description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds (default 1800)")
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


def main(argv: list[str] | None = None) -> int:
    from tqdm.auto import tqdm

    args = build_parser().parse_args(argv)
    try:
        if args.timeout <= 0:
            raise RegenerateError(f"--timeout: must be a positive number of seconds, got {args.timeout}")
        names = select(discover(), args.only)
        profile_overrides = load_profile(args.profile, names)
        cli_overrides = {k: parse_value(v) for k, v in args.parameter}
        profile = args.profile if not cli_overrides or args.profile != "default" else "custom"
        plan = {n: {**profile_overrides[n], **cli_overrides} for n in names}
        for name, overrides in plan.items():
            check_overrides(name, overrides)
    except RegenerateError as exc:
        print(f"nlcl figures: {exc}", file=sys.stderr)
        return 2

    commit = _git_commit()
    outcomes = []
    bar = tqdm(plan.items(), desc="notebooks", unit="nb", file=sys.stderr)
    for name, overrides in bar:
        bar.set_postfix_str(name)
        outcome = execute(name, overrides, profile, args.timeout)
        log_run(outcome, profile, overrides, commit)
        outcomes.append(outcome)
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        tqdm.write(f"{name}: {status} ({outcome.seconds:.0f} s)", file=sys.stderr)
    failed = [o for o in outcomes if not o.ok]
    where = "figures/ and notebooks/" if profile == "default" else f"build/{profile}/"
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} notebooks regenerated into {where}", file=sys.stderr)
    return 1 if failed else 0
