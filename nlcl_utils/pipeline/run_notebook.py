"""Execute one notebook with papermill, in its own process (the worker behind ``nlcl figures``).

``python -m nlcl_utils.pipeline.run_notebook JOB.json`` reads a job ``{"name", "source", "stage",
"cwd", "overrides", "timeout"}``, converts the jupytext source ``source`` (``NN_name.py``) to
a notebook, executes it in ``cwd`` and writes into the directory ``stage``:

* ``NN_name.ipynb``: the executed notebook with run-specific metadata removed (:func:`clean_notebook`);
* ``result.json``: ``{"ok", "error", "seconds", "cpu_seconds"}`` (CPU of this process and the kernel).

The figures go wherever ``$NLCL_FIGURES_DIR`` (set by the caller) points. The worker never
touches committed files: publishing is the caller's job. It dies with its parent (Linux
``PR_SET_PDEATHSIG``), and the kernel dies with it (ipykernel polls ``JPY_PARENT_PID``), so an
interrupted run leaves no process behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

KERNEL = "python3"
PR_SET_PDEATHSIG = 1


def skip_slow_optional_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax``, an optional IRI checker it loads if present.

    nbformat imports jsonschema, which imports that package when installed (the jupyter
    dependencies install it); building its grammar costs ~4 CPU-seconds per process, more than
    a small notebook's whole run. No notebook schema uses the IRI format it checks. A ``None``
    entry in ``sys.modules`` makes that optional import fail fast, as if it were not installed.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def clean_notebook(nb) -> None:
    """Remove what changes on every run: papermill/nbclient timings, run metadata, random cell ids,
    and how printed text happened to be split into stream messages.

    Cell ids become a hash of the cell's position and source, so unchanged code keeps them.
    """
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)  # ipywidgets state: random model ids
    for index, cell in enumerate(nb.cells):
        cell.id = hashlib.sha1(f"{index}:{cell.source}".encode()).hexdigest()[:8]
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = coalesce_streams(cell.get("outputs", []))
            for out in cell.outputs:
                out.get("metadata", {}).pop("execution", None)


def coalesce_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same stream (stdout, stderr) into one.

    The kernel flushes printed text in pieces whose boundaries depend on timing, so the same
    prints can arrive as one stream output or several; joined, the notebook is the same bytes
    on every run. Other outputs, and streams separated by them, are kept as they are.
    """
    merged: list = []
    for out in outputs:
        last = merged[-1] if merged else None
        if (
            out.get("output_type") == "stream"
            and last is not None
            and last.get("output_type") == "stream"
            and last.get("name") == out.get("name")
        ):
            last["text"] = _text(last["text"]) + _text(out["text"])
        else:
            merged.append(out)
    return merged


def _text(text) -> str:
    """Stream text as one string (nbformat may hold it as a list of lines)."""
    return "".join(text) if isinstance(text, list) else text


def error_text(exc: BaseException) -> str:
    """Short description of a papermill failure: the cell and the exception it raised."""
    ename, evalue = getattr(exc, "ename", type(exc).__name__), getattr(exc, "evalue", str(exc))
    cell = getattr(exc, "exec_count", None)
    where = f" in cell [{cell}]" if cell is not None else ""
    return f"{ename}{where}: {evalue}"


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no-op elsewhere)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the kernel, once shut down)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def execute(job: dict) -> dict:
    """Run the job (see module docstring); returns the result record (also written to result.json)."""
    import jupytext
    import nbformat
    import papermill

    stage = Path(job["stage"])
    name = job["name"]
    source = stage / f"{name}.input.ipynb"
    executed = stage / f"{name}.ipynb"
    nb = jupytext.read(job["source"])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, source)
    start = time.perf_counter()
    result = {"ok": True, "error": ""}
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=job["overrides"] or None,
            kernel_name=KERNEL,
            cwd=job["cwd"],
            execution_timeout=job["timeout"],
            progress_bar=False,
            log_output=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # hush the kernel's start-up warnings
        )
    except Exception as exc:  # papermill wraps cell errors; the caller reports them
        result = {"ok": False, "error": error_text(exc)}
    result["seconds"] = time.perf_counter() - start
    if result["ok"]:
        out_nb = nbformat.read(executed, as_version=4)
        clean_notebook(out_nb)
        nbformat.write(out_nb, executed)
    source.unlink(missing_ok=True)
    result["cpu_seconds"] = cpu_seconds()
    tmp = stage / "result.json.tmp"
    tmp.write_text(json.dumps(result) + "\n")
    os.replace(tmp, stage / "result.json")
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()
    skip_slow_optional_imports()
    job = json.loads(Path(argv[0]).read_text())
    return 0 if execute(job)["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
