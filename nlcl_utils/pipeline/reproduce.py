"""Did it reproduce? Two levels, and the machine fingerprint that says which one applies.

* **Same machine** (the processor, its vector units and the numerical libraries that made the
  committed outputs): every claim and finding equal to the last bit, and the notebooks' printed
  outputs equal byte for byte (strict nbval).
* **Anywhere** (another processor: float results differ in the last bits and chaotic
  computations amplify that): every claim gets the same verdict, the same set of claims exists,
  and every value agrees with the committed one within a tolerance that fits what it is —

  - a round-off bound (an upper bound at a round-off threshold, see
    :func:`nlcl_utils.notebook.claims.is_roundoff_bound`): both below the threshold;
  - a claim that states its own ``tolerance`` (with ``tolerance_source``): within it;
  - a per-seed estimate: the new mean inside the committed interval;
  - any other value: within :data:`~nlcl_utils.notebook.claims.DEFAULT_REL_TOL` relative.

  nbval then compares the printed text with every number masked (``tests/nbval_anywhere.cfg``);
  the numbers themselves are compared here, on the claims.

:func:`machine` is the fingerprint written into ``figures/MANIFEST.json`` per notebook;
:func:`perturbed_env` imitates another processor on this one (other ATen, MKL, OpenBLAS and
numpy kernels). ``nlcl verify`` prints the comparison, claim by claim.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nlcl_utils.notebook.claims import DEFAULT_ABS_TOL, DEFAULT_REL_TOL, estimate, is_roundoff_bound, rounded

REPO_ROOT = Path(__file__).resolve().parents[2]
# What must match, besides the claim's value, for two runs to be runs of the same claim.
SAME_CLAIM_FIELDS = ("kind", "statement", "op", "threshold", "threshold_source", "tested", "scale")


# ----------------------------------------------------------------------------------------------
# The machine.
# ----------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What decides the float results of this machine: processor, vector units, kernels, versions."""
    import numpy
    import torch

    try:
        from numpy._core import _multiarray_umath as umath

        numpy_simd = sorted(f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f))
    except (ImportError, AttributeError):
        numpy_simd = []
    blas = []
    try:
        from threadpoolctl import threadpool_info

        # numpy's own BLAS only: which other libraries are loaded depends on what the process imported
        blas = sorted(
            f"{i.get('internal_api')}:{i.get('architecture', '')}"
            for i in threadpool_info()
            if i.get("user_api") == "blas" and "numpy" in str(i.get("filepath", ""))
        )
    except ImportError:
        pass
    return {
        "cpu": _cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy_simd": numpy_simd,
        "blas": blas,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def same_machine(recorded: dict | None, current: dict | None = None) -> bool:
    """Whether outputs made on ``recorded`` (a :func:`machine` dict) can be compared byte for byte here."""
    return bool(recorded) and recorded == (current or machine())


def perturbed_env(base: dict | None = None) -> dict:
    """Environment variables that make this machine compute like another processor.

    ATen's generic kernels instead of its AVX2/AVX-512 ones, MKL's compatible code path, numpy
    without its dispatched SIMD kernels, and OpenBLAS with another core type — the last only where
    the environment does not set ``OPENBLAS_CORETYPE`` itself (some machines need their setting
    for correct results, and it is never overridden).
    """
    env = dict(os.environ if base is None else base)
    env["ATEN_CPU_CAPABILITY"] = "default"
    env["MKL_CBWR"] = "COMPATIBLE"
    try:
        from numpy._core import _multiarray_umath as umath

        dispatched = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    except (ImportError, AttributeError):
        dispatched = []
    if dispatched:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(dispatched)
    if "OPENBLAS_CORETYPE" not in env:
        arch = " ".join(machine()["blas"])
        env["OPENBLAS_CORETYPE"] = "Sandybridge" if "Haswell" in arch else "Haswell"
    return env


LEVEL_VARIABLE = "NLCL_REPRODUCE"  # "auto" (default), "strict" or "anywhere"


def level(notebook: str | None = None, manifest_path: Path | None = None, current: dict | None = None) -> str:
    """``"strict"`` where the committed outputs of ``notebook`` (all notebooks: ``None``) were made on
    this machine, else ``"anywhere"``; ``$NLCL_REPRODUCE`` (strict / anywhere) overrides."""
    forced = os.environ.get(LEVEL_VARIABLE, "auto")
    if forced in ("strict", "anywhere"):
        return forced
    if forced != "auto":
        raise ValueError(f"{LEVEL_VARIABLE}: expected auto, strict or anywhere, got {forced!r}")
    manifest_path = manifest_path or REPO_ROOT / "figures" / "MANIFEST.json"
    try:
        entries = json.loads(manifest_path.read_text())["notebooks"]
    except (OSError, ValueError, KeyError):
        return "anywhere"
    chosen = [entries.get(notebook, {})] if notebook else list(entries.values())
    current = current or machine()
    return "strict" if chosen and all(same_machine(e.get("machine"), current) for e in chosen) else "anywhere"


NBVAL_CONFIG = {"strict": "tests/nbval_sanitize.cfg", "anywhere": "tests/nbval_anywhere.cfg"}


# ----------------------------------------------------------------------------------------------
# Comparing claims.
# ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One claim or finding compared: committed against new."""

    notebook: str
    name: str
    kind: str  # a claim kind, or "finding"
    committed: str
    new: str
    tolerance: str
    verdict_then: str
    verdict_now: str
    ok: bool
    problem: str = ""


def _bounds(entry: dict) -> tuple[float, float]:
    low, high = entry["interval"]
    return (-math.inf if low is None else low), (math.inf if high is None else high)


def _shown(entry: dict | None) -> str:
    if entry is None:
        return "(absent)"
    if entry.get("measured") is None:
        return "non-finite"
    if "verdict" in entry and is_roundoff_bound(entry) and entry["verdict"] == "holds":
        return f"{entry['op']} {entry['threshold']:.0e}"
    if entry.get("interval") is not None:
        return estimate(entry["measured"], *_bounds(entry))
    return rounded(entry["measured"])


def _value_agrees(old: dict, new: dict) -> tuple[bool, str]:
    """(agrees, the tolerance in words) for the values of one claim or finding."""
    a, b = old.get("measured"), new.get("measured")
    if "verdict" in old and is_roundoff_bound(old):  # the same verdict: both below the bound
        return old.get("verdict") == new.get("verdict") == "holds", f"bound {old['op']} {old['threshold']:.0e}"
    if a is None or b is None:
        return a is None and b is None, "both non-finite"
    if old.get("tolerance") is not None:
        tol = old["tolerance"]
        return abs(a - b) <= tol, f"± {rounded(tol)} (stated)"
    slack = DEFAULT_REL_TOL * abs(a) + DEFAULT_ABS_TOL
    if old.get("interval") is not None:
        low, high = _bounds(old)
        if len(old.get("per_seed") or []) != len(new.get("per_seed") or []):
            return False, "same number of seeds"
        return low - slack <= b <= high + slack, "inside committed interval"
    return abs(a - b) <= DEFAULT_REL_TOL * max(abs(a), abs(b)) + DEFAULT_ABS_TOL, f"rel. {DEFAULT_REL_TOL:g}"


def compare(committed: dict, executed: dict, strict: bool = False) -> list[Row]:
    """Every claim and finding of one notebook compared (see the module docstring for the levels)."""
    notebook = committed.get("notebook") or executed.get("notebook") or "?"
    rows: list[Row] = []
    for section in ("claims", "findings"):
        ours = {c.get("name"): c for c in committed.get(section, [])}
        theirs = {c.get("name"): c for c in executed.get(section, [])}
        order = [c.get("name") for c in committed.get(section, [])]
        order += [n for n in (c.get("name") for c in executed.get(section, [])) if n not in ours]
        same_order = [n for n in order if n in theirs] == [c.get("name") for c in executed.get(section, [])
                                                           if c.get("name") in ours]  # fmt: skip
        for name in order:
            old, new = ours.get(name), theirs.get(name)
            kind = (old or new).get("kind", "finding") if section == "claims" else "finding"
            then = (old or {}).get("verdict", "-") if old else "(absent)"
            now = (new or {}).get("verdict", "-") if new else "(absent)"
            row = Row(notebook, str(name), kind, _shown(old), _shown(new), "", then, now, True)
            if old is None or new is None:
                row.ok, row.problem = False, "missing from the committed file" if old is None else "not reported now"
            elif strict:
                row.tolerance = "exact"
                diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                row.ok, row.problem = not diff, ", ".join(f"{k} differs" for k in diff)
            else:
                changed = [k for k in SAME_CLAIM_FIELDS if k in old and old.get(k) != new.get(k)]
                if section == "findings":
                    changed += [k for k in ("statement", "expected") if old.get(k) != new.get(k)]
                agrees, row.tolerance = _value_agrees(old, new)
                if changed:
                    row.ok, row.problem = False, ", ".join(f"{k} differs" for k in changed)
                elif then != now:
                    row.ok, row.problem = False, "verdict changed"
                elif not agrees:
                    row.ok, row.problem = False, "value outside tolerance"
            rows.append(row)
        if not same_order:
            rows.append(Row(notebook, f"({section} order)", "order", "", "", "", "", "", False,
                            f"{section} not in the committed order"))  # fmt: skip
    if committed.get("notebook") != executed.get("notebook"):
        rows.append(Row(notebook, "(notebook name)", "name", str(committed.get("notebook")),
                        str(executed.get("notebook")), "", "", "", False, "notebook names differ"))  # fmt: skip
    return rows


def differences(committed: dict, executed: dict, strict: bool = False) -> list[str]:
    """The problems of :func:`compare` as lines (empty: it reproduced)."""
    return [f"{r.kind} {r.name!r}: {r.problem} (committed {r.committed}, now {r.new}; {r.tolerance})"
            for r in compare(committed, executed, strict) if not r.ok]  # fmt: skip


def bytes_differ(committed: dict, executed: dict) -> int:
    """How many claims and findings differ in any bit of their values (the same-machine test would fail)."""
    count = 0
    for section in ("claims", "findings"):
        theirs = {c.get("name"): c for c in executed.get(section, [])}
        for c in committed.get(section, []):
            other = theirs.get(c.get("name"))
            if other is not None and (c.get("measured"), c.get("per_seed")) != (other.get("measured"),
                                                                                 other.get("per_seed")):  # fmt: skip
                count += 1
    return count


def table(rows: list[Row]) -> str:
    """A Markdown table of compared rows."""
    lines = [
        "| notebook | kind | claim | committed | now | tolerance | verdict then | verdict now | reproduces |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        cells = [r.notebook.split("_", 1)[0], r.kind, r.name.replace("|", "\\|"), r.committed, r.new, r.tolerance,
                 r.verdict_then, r.verdict_now, "yes" if r.ok else f"**no**: {r.problem}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# nlcl verify
# ----------------------------------------------------------------------------------------------


def load_claims(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"nlcl verify: {path} not found") from None
    except json.JSONDecodeError as exc:
        raise SystemExit(f"nlcl verify: {path} is not valid JSON ({exc})") from None


def claims_at_commit(root: Path, rev: str, name: str) -> dict:
    path = f"figures/{name}/claims.json"
    out = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"nlcl verify: cannot read {path} at {rev}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def executed_claims(folder: Path, name: str) -> Path:
    """The claims.json of ``name`` under ``folder``: ``figures/``'s (and nbval's) layout or ``build/<target>/``'s."""
    for candidate in (folder / name / "claims.json", folder / name / "figures" / name / "claims.json"):
        if candidate.exists():
            return candidate
    return folder / name / "claims.json"
