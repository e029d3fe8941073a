"""Claims: measured values against thresholds from the theory, saved as ``claims.json``.

Three kinds of claim, never mixed up in a summary:

* ``prediction`` — would fail if the statement it tests were false (evidence for or against
  the paper);
* ``identity`` — an algebraic identity checked numerically (it cannot fail if the algebra
  is right, whatever the paper says);
* ``implementation`` — our code agrees with a reference, or a solver reached its tolerance.

Every claim names the statement it tests (an id of the statement table in
``docs/theory.md``, e.g. ``T1.2``) and says in one line where its threshold comes from.
A stochastic prediction passes its per-seed values: the claim records them, their mean and a
95% interval, and tests the threshold on the interval bound in the direction of the
comparison (lower bound for ``>=``/``>``, upper bound for ``<=``/``<``; ``==`` needs every
seed to equal). A *finding* is a measurement reported against an expectation but not
asserted (a result that differs from the paper, or is not decided), with its explanation.

A notebook's last cell calls :meth:`Claims.finish` (through ``notebook.setup(...).finish``),
which prints the predictions first, then the checks, then the findings, writes
``claims.json`` and raises if any claim failed. A non-finite measured value fails its claim,
and is written as ``null`` (the JSON stays strict).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
KINDS = ("prediction", "identity", "implementation")
STATEMENT_ID = re.compile(r"^T\d+\.\d+$")
INTERVAL_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def _plain(value: Any) -> Any:
    """Numbers as plain Python scalars (0-d tensors and numpy scalars have ``.item()``)."""
    return value.item() if hasattr(value, "item") else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _json_number(value: Any) -> Any:
    """A value for strict JSON: non-finite floats become ``None``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rounded(value: Any) -> str:
    """Three significant digits for floats; ints, bools and strings unchanged."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def per_seed_values(values: Any, name: str = "per_seed") -> list[float]:
    """A 1-d sequence (list, numpy array, tensor) of numbers as a list of Python floats."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d sequence of per-seed values, got shape {array.shape}")
    return [float(v) for v in array]


def interval(values: Sequence[float], level: float = INTERVAL_LEVEL) -> tuple[float, float, float]:
    """Mean and a percentile-bootstrap ``level`` interval of the mean: ``(mean, low, high)``.

    Deterministic (fixed resampling seed), so re-running a notebook prints the same numbers.
    With few seeds (8) the percentile bootstrap is slightly narrower than a t-interval; a
    threshold that only just passes deserves a look at the per-seed values. Non-finite values
    give a non-finite mean and interval.
    """
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if data.size == 1 or not np.all(np.isfinite(data)):
        return mean, mean if data.size == 1 else math.nan, mean if data.size == 1 else math.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = data[rng.integers(0, data.size, size=(BOOTSTRAP_RESAMPLES, data.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    return mean, float(low), float(high)


@dataclass
class Claim:
    """One asserted claim as written to claims.json (see the module docstring)."""

    name: str
    kind: str
    statement: str
    threshold_source: str
    op: str
    threshold: Any
    measured: Any
    passed: bool
    tested: str  # what was compared: "value", "interval lower bound", "interval upper bound", "every seed"
    per_seed: list | None = None
    interval: list | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["pass"] = out.pop("passed")
        out["measured"] = _json_number(out["measured"])
        if out["per_seed"] is not None:
            out["per_seed"] = [_json_number(v) for v in out["per_seed"]]
        if out["interval"] is not None:
            out["interval"] = [_json_number(v) for v in out["interval"]]
        return out


@dataclass
class Finding:
    """A measurement reported against an expectation, not asserted."""

    name: str
    statement: str
    measured: Any
    expected: str
    note: str
    per_seed: list | None = None
    interval: list | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["measured"] = _json_number(out["measured"])
        if out["per_seed"] is not None:
            out["per_seed"] = [_json_number(v) for v in out["per_seed"]]
        if out["interval"] is not None:
            out["interval"] = [_json_number(v) for v in out["interval"]]
        return out


def _check_text(name: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what}: claim {name!r} needs a non-empty string, got {value!r}")
    return value


@dataclass
class Claims:
    """Collects the claims and findings of one notebook."""

    notebook: str
    claims: list[Claim] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    # -- recording -------------------------------------------------------------------------
    def _record(self, kind, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None):
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        if op not in OPS:
            raise ValueError(f"op: unknown comparison {op!r}; allowed: {', '.join(OPS)}")
        _check_text(name, name, "name")
        if not isinstance(statement, str) or not STATEMENT_ID.match(statement):
            raise ValueError(f"statement: claim {name!r} needs a statement id like 'T1.2', got {statement!r}")
        _check_text(name, threshold_source, "threshold_source")
        if any(c.name == name for c in self.claims):
            raise ValueError(f"name: claim {name!r} is recorded twice")
        if (measured is None) == (per_seed is None):
            raise ValueError(f"claim {name!r}: give exactly one of measured= (a single value) or per_seed= (values)")
        threshold = _plain(threshold)
        if not _finite(threshold):
            raise ValueError(f"threshold: claim {name!r} needs a finite number, got {threshold!r}")
        compare = OPS[op]
        if per_seed is None:
            measured = _plain(measured)
            ok = _finite(measured) and bool(compare(measured, threshold))
            claim = Claim(name, kind, statement, threshold_source, op, threshold, measured, ok, "value")
        else:
            values = per_seed_values(per_seed, "per_seed")
            mean, low, high = interval(values)
            finite = all(math.isfinite(v) for v in values)
            if op == "==":
                ok, tested = finite and all(compare(v, threshold) for v in values), "every seed"
            elif op in (">=", ">"):
                ok, tested = finite and bool(compare(low, threshold)), "interval lower bound"
            else:
                ok, tested = finite and bool(compare(high, threshold)), "interval upper bound"
            claim = Claim(name, kind, statement, threshold_source, op, threshold, mean, ok, tested, values, [low, high])
        self.claims.append(claim)
        return claim.passed

    def prediction(self, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None) -> bool:
        """A claim that would fail if ``statement`` were false. Returns whether it holds."""
        return self._record("prediction", name, statement, op=op, threshold=threshold,
                            threshold_source=threshold_source, measured=measured, per_seed=per_seed)  # fmt: skip

    def identity(self, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None) -> bool:
        """An algebraic identity checked numerically (not evidence for the paper)."""
        return self._record("identity", name, statement, op=op, threshold=threshold,
                            threshold_source=threshold_source, measured=measured, per_seed=per_seed)  # fmt: skip

    def implementation(self, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None) -> bool:
        """Our code against a reference, or a solver against its tolerance (not evidence)."""
        return self._record("implementation", name, statement, op=op, threshold=threshold,
                            threshold_source=threshold_source, measured=measured, per_seed=per_seed)  # fmt: skip

    def finding(self, name, statement, *, expected: str, note: str, measured=None, per_seed=None) -> None:
        """Record a measurement against an expectation without asserting it."""
        _check_text(name, name, "name")
        if not isinstance(statement, str) or not STATEMENT_ID.match(statement):
            raise ValueError(f"statement: finding {name!r} needs a statement id like 'T1.2', got {statement!r}")
        _check_text(name, expected, "expected")
        _check_text(name, note, "note")
        if any(f.name == name for f in self.findings):
            raise ValueError(f"name: finding {name!r} is recorded twice")
        if per_seed is not None:
            values = per_seed_values(per_seed, "per_seed")
            mean, low, high = interval(values)
            self.findings.append(Finding(name, statement, mean, expected, note, values, [low, high]))
        else:
            self.findings.append(Finding(name, statement, _plain(measured), expected, note))

    # -- results ---------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.claims)

    def of_kind(self, *kinds: str) -> list[Claim]:
        return [c for c in self.claims if c.kind in kinds]

    def report(self) -> None:
        """Print predictions, then identity/implementation checks, then findings (rounded, deterministic)."""
        print(self.report_text())

    def report_text(self) -> str:
        lines: list[str] = []
        groups = [
            ("Predictions (would fail if the statement were false)", self.of_kind("prediction")),
            ("Identities and implementation checks (not evidence)", self.of_kind("identity", "implementation")),
        ]
        for title, claims in groups:
            if not claims:
                continue
            lines += [title, "-" * len(title)]
            width = max(len(c.name) for c in claims)
            for c in claims:
                mark = "PASS" if c.passed else "FAIL"
                value = rounded(c.measured)
                if c.interval is not None:
                    value += f" [{rounded(c.interval[0])}, {rounded(c.interval[1])}] n={len(c.per_seed)}"
                kind = "" if c.kind == "prediction" else f" ({c.kind})"
                lines.append(f"{mark}  {c.statement:<5} {c.name:<{width}}  {value} {c.op} {rounded(c.threshold)}{kind}")
            lines.append("")
        if self.findings:
            title = "Findings (reported, not asserted)"
            lines += [title, "-" * len(title)]
            width = max(len(f.name) for f in self.findings)
            for f in self.findings:
                value = rounded(f.measured)
                if f.interval is not None:
                    value += f" [{rounded(f.interval[0])}, {rounded(f.interval[1])}] n={len(f.per_seed)}"
                lines.append(f"NOTE  {f.statement:<5} {f.name:<{width}}  {value} (expected: {f.expected})")
            lines.append("")
        n_pred = len(self.of_kind("prediction"))
        ok_pred = sum(c.passed for c in self.of_kind("prediction"))
        n_chk = len(self.claims) - n_pred
        ok_chk = sum(c.passed for c in self.claims) - ok_pred
        summary = f"{ok_pred}/{n_pred} predictions hold; {ok_chk}/{n_chk} checks hold; {len(self.findings)} findings"
        lines.append(summary)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "claims": [c.to_json() for c in self.claims],
                "findings": [f.to_json() for f in self.findings]}  # fmt: skip

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/claims.json`` (strict JSON, sorted keys, stable formatting)."""
        path = Path(out_dir) / "claims.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
        return path

    def assert_all(self) -> None:
        """Raise AssertionError listing every failed claim."""
        failed = [c for c in self.claims if not c.passed]
        if failed:
            lines = [f"{c.statement} {c.name}: measured {c.measured!r} ({c.tested}), needs {c.op} {c.threshold!r}"
                     for c in failed]  # fmt: skip
            raise AssertionError("claims failed:\n" + "\n".join(lines))

    def finish(self, out_dir: str | Path) -> None:
        """Report, save claims.json into ``out_dir``, then raise if any claim failed."""
        self.report()
        self.save(out_dir)
        self.assert_all()


# -- the schema, for tests and the README ---------------------------------------------------
CLAIM_FIELDS = {"name", "kind", "statement", "threshold_source", "op", "threshold", "measured", "pass", "tested",
                "per_seed", "interval"}  # fmt: skip
FINDING_FIELDS = {"name", "statement", "measured", "expected", "note", "per_seed", "interval"}


def schema_errors(data: dict) -> list[str]:
    """Everything wrong with a loaded claims.json (empty list: it follows the schema)."""
    errors = []
    if set(data) != {"notebook", "claims", "findings"}:
        errors.append(f"top-level keys {sorted(data)}; expected notebook, claims, findings")
        return errors
    for c in data["claims"]:
        label = f"claim {c.get('name')!r}"
        if set(c) != CLAIM_FIELDS:
            errors.append(f"{label}: fields {sorted(set(c) ^ CLAIM_FIELDS)} missing or unexpected")
            continue
        if c["kind"] not in KINDS:
            errors.append(f"{label}: kind {c['kind']!r} not in {KINDS}")
        if not isinstance(c["statement"], str) or not STATEMENT_ID.match(c["statement"]):
            errors.append(f"{label}: statement {c['statement']!r} is not an id like T1.2")
        if not isinstance(c["threshold_source"], str) or not c["threshold_source"].strip():
            errors.append(f"{label}: empty threshold_source")
        if c["per_seed"] is not None and (c["interval"] is None or len(c["interval"]) != 2):
            errors.append(f"{label}: per-seed values without a 2-number interval")
        if c["tested"] not in ("value", "interval lower bound", "interval upper bound", "every seed"):
            errors.append(f"{label}: tested {c['tested']!r} unknown")
        if (c["per_seed"] is None) != (c["tested"] == "value"):
            errors.append(f"{label}: tested {c['tested']!r} does not match per_seed")
    for f in data["findings"]:
        if set(f) != FINDING_FIELDS:
            errors.append(f"finding {f.get('name')!r}: fields {sorted(set(f) ^ FINDING_FIELDS)} missing or unexpected")
        elif not isinstance(f["statement"], str) or not STATEMENT_ID.match(f["statement"]):
            errors.append(f"finding {f.get('name')!r}: statement {f['statement']!r} is not an id like T1.2")
    return errors
