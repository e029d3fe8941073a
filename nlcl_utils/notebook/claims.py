"""Claims: measured values against thresholds from the theory, each with a verdict, saved as ``claims.json``.

Three kinds of claim, never mixed up in a summary:

* ``prediction`` — would come out false if the statement it tests were false (evidence for or
  against the paper). Its verdict is ``holds``, ``refuted`` or ``undecided``; a refuted
  prediction is a result, recorded as such, and never stops a notebook.
* ``identity`` — an algebraic identity checked numerically (it cannot fail if the algebra
  is right, whatever the paper says);
* ``implementation`` — our code agrees with a reference, or a solver reached its tolerance.

Identities and implementation checks are not evidence: their verdict is ``holds`` or
``fails``, and a failing one means the code is wrong, so :meth:`Claims.finish` raises.

Every claim names the statement it tests (an id of the statement table in
``docs/theory.md``, e.g. ``T1.2``) and says in one line where its threshold comes from.

**Intervals.** A stochastic claim passes its per-seed values; the claim records them, their
mean and a 95% Student t interval of the mean (nominal coverage at 5–16 seeds for roughly
normal per-seed values; a paired contrast passes its per-seed differences, which makes it a
paired t interval). The verdict for ``>=``/``>``: *holds* when the whole interval is on the
threshold's side, *refuted* when the whole interval is on the other side, *undecided* when it
straddles the threshold (``<=``/``<`` mirrored; ``==`` needs every seed to equal). A single
measured value (a deterministic computation) holds or is refuted.

**Scale.** A notebook run with reduced parameters (a quick profile) cannot test the paper's
statements: :class:`Claims` made with ``full_scale=False`` still records every verdict but
marks its predictions ``reported only`` and leaves them out of the counts.

**Inputs that are not numbers.** A NaN or infinity among the inputs, or no seed at all, makes
a claim *invalid*: it is written with ``null`` values (the JSON stays strict) and
:meth:`Claims.finish` raises — a broken computation is neither evidence nor a refutation.

A *finding* is a measurement reported without a threshold written before the run (an
exploration, or a number whose expectation we cannot state in advance), with its
explanation. A prediction that did not hold is never a finding.

**Reproduction.** Each claim says how its value may move on another processor (see
:mod:`nlcl_utils.pipeline.reproduce`): a round-off bound (an upper bound at a float round-off threshold,
at most :data:`ROUNDOFF_MAX`) is compared as a bound and printed as one, never as digits; a
per-seed estimate must fall inside the committed interval; any other value within
``tolerance`` (relative :data:`DEFAULT_REL_TOL` unless the claim states its own, with the reason).
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlcl_utils.stats import interval

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
KINDS = ("prediction", "identity", "implementation")
PREDICTION_VERDICTS = ("holds", "refuted", "undecided")
CHECK_VERDICTS = ("holds", "fails")
INVALID = "invalid"
STATEMENT_ID = re.compile(r"^T\d+\.\d+$")
# An upper bound whose threshold is at most this is a round-off bound: printed and compared as a
# bound ("< 1e-10"), never as the residual's digits.
ROUNDOFF_MAX = 1e-6
# Relative tolerance across processors for a single (deterministic) value that states none.
DEFAULT_REL_TOL = 1e-3
DEFAULT_ABS_TOL = 1e-9


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


def bound(value: Any, threshold: float) -> str:
    """A round-off residual as the bound it meets: ``"< 1e-10"``; its digits only when it does not.

    Round-off residuals differ between processors in every digit, so they are printed as the
    bound they were tested against. A residual above the bound is printed in full with a
    warning, since it means a check failed.
    """
    value = float(_plain(value))
    if math.isfinite(value) and abs(value) < threshold:
        return f"< {threshold:.0e}"
    return f"{value:.2e} (NOT below {threshold:.0e})"


def estimate(mean: float, low: float, high: float) -> str:
    """An estimate with the digits its interval supports: ``"0.48 [0.39, 0.57]"``.

    Rounded to the decimal place of the leading digit of a quarter of the interval's width
    (an interval ±0.09 prints two decimals, ±0.015 three).
    """
    if not all(math.isfinite(v) for v in (mean, low, high)):
        return f"{rounded(mean)} [{rounded(low)}, {rounded(high)}]"
    half = (high - low) / 2
    if half <= 0:
        return f"{rounded(mean)} [{rounded(low)}, {rounded(high)}]"
    decimals = max(0, -math.floor(math.log10(half / 2)))
    return f"{mean:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]"


def per_seed_values(values: Any, name: str = "per_seed") -> list[float]:
    """A 1-d sequence (list, numpy array, tensor) of numbers as a list of Python floats."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d sequence of per-seed values, got shape {array.shape}")
    return [float(v) for v in array]


def verdict(kind: str, op: str, threshold: float, measured: float, low=None, high=None, per_seed=None) -> str:
    """The verdict of a claim (see the module docstring); ``invalid`` for non-finite inputs."""
    compare = OPS[op]
    values = [measured] if per_seed is None else per_seed
    if not values or not all(_finite(v) for v in values):
        return INVALID
    if per_seed is None or op == "==":
        ok = all(compare(v, threshold) for v in values)
        state = "holds" if ok else "refuted"
    elif op in (">=", ">"):
        state = "holds" if compare(low, threshold) else ("refuted" if not compare(high, threshold) else "undecided")
    else:
        state = "holds" if compare(high, threshold) else ("refuted" if not compare(low, threshold) else "undecided")
    if kind != "prediction":
        return "holds" if state == "holds" else "fails"
    return state


def is_roundoff_bound(claim: dict) -> bool:
    """Whether a claim (as in claims.json) is a round-off bound, compared and printed as a bound.

    An upper bound (``<=``/``<``) whose positive threshold is at most :data:`ROUNDOFF_MAX`: its
    value is a residual whose digits are float noise.
    """
    return claim["op"] in ("<=", "<") and _is_number(claim["threshold"]) and 0 < claim["threshold"] <= ROUNDOFF_MAX


@dataclass
class Claim:
    """One claim as written to claims.json (see the module docstring)."""

    name: str
    kind: str
    statement: str
    threshold_source: str
    op: str
    threshold: Any
    measured: Any
    verdict: str
    tested: str  # what was compared: "value", "interval lower bound", "interval upper bound", "every seed"
    scale: str = "full"  # "full": a test of the statement; "reduced": reported only
    per_seed: list | None = None
    interval: list | None = None
    tolerance: float | None = None  # absolute tolerance across processors, when the claim states one
    tolerance_source: str | None = None

    @property
    def counted(self) -> bool:
        """Whether this claim counts as a test (a full-scale prediction, or any check)."""
        return self.kind != "prediction" or self.scale == "full"

    def to_json(self) -> dict:
        out = asdict(self)
        out["measured"] = _json_number(out["measured"])
        if out["per_seed"] is not None:
            out["per_seed"] = [_json_number(v) for v in out["per_seed"]]
        if out["interval"] is not None:
            out["interval"] = [_json_number(v) for v in out["interval"]]
        return out


@dataclass
class Finding:
    """A measurement reported without a threshold stated before the run."""

    name: str
    statement: str
    measured: Any
    expected: str
    note: str
    per_seed: list | None = None
    interval: list | None = None
    tolerance: float | None = None
    tolerance_source: str | None = None

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


def _check_tolerance(name: str, tolerance: Any, tolerance_source: Any) -> float | None:
    if tolerance is None:
        if tolerance_source is not None:
            raise ValueError(f"tolerance_source: claim {name!r} gives a source but no tolerance=")
        return None
    tolerance = _plain(tolerance)
    if not _finite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance: claim {name!r} needs a finite number >= 0, got {tolerance!r}")
    _check_text(name, tolerance_source, "tolerance_source")
    return float(tolerance)


@dataclass
class Claims:
    """Collects the claims and findings of one notebook (``full_scale``: see the module docstring)."""

    notebook: str
    full_scale: bool = True
    claims: list[Claim] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    _shown: tuple[int, int] = (0, 0)  # claims and findings already printed by show_new

    # -- recording -------------------------------------------------------------------------
    def _record(self, kind, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None,
                tolerance=None, tolerance_source=None) -> str:  # fmt: skip
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
        tolerance = _check_tolerance(name, tolerance, tolerance_source)
        scale = "full" if self.full_scale or kind != "prediction" else "reduced"
        if per_seed is None:
            measured = _plain(measured)
            if not _is_number(measured):
                raise ValueError(f"measured: claim {name!r} needs a number, got {measured!r}")
            state = verdict(kind, op, threshold, measured)
            claim = Claim(name, kind, statement, threshold_source, op, threshold, measured, state, "value", scale,
                          tolerance=tolerance, tolerance_source=tolerance_source)  # fmt: skip
        else:
            values = per_seed_values(per_seed, "per_seed")
            mean, low, high = interval(values)
            state = verdict(kind, op, threshold, mean, low, high, values)
            tested = {"==": "every seed", ">=": "interval", ">": "interval"}.get(op, "interval")
            claim = Claim(name, kind, statement, threshold_source, op, threshold, mean, state, tested, scale,
                          values, [low, high], tolerance, tolerance_source)  # fmt: skip
        self.claims.append(claim)
        return claim.verdict

    def prediction(self, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None,
                   tolerance=None, tolerance_source=None) -> str:  # fmt: skip
        """A claim that would come out false if ``statement`` were false. Returns its verdict."""
        return self._record("prediction", name, statement, op=op, threshold=threshold,
                            threshold_source=threshold_source, measured=measured, per_seed=per_seed,
                            tolerance=tolerance, tolerance_source=tolerance_source)  # fmt: skip

    def identity(self, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None,
                 tolerance=None, tolerance_source=None) -> str:  # fmt: skip
        """An algebraic identity checked numerically (not evidence for the paper). Returns its verdict."""
        return self._record("identity", name, statement, op=op, threshold=threshold,
                            threshold_source=threshold_source, measured=measured, per_seed=per_seed,
                            tolerance=tolerance, tolerance_source=tolerance_source)  # fmt: skip

    def implementation(self, name, statement, *, op, threshold, threshold_source, measured=None, per_seed=None,
                       tolerance=None, tolerance_source=None) -> str:  # fmt: skip
        """Our code against a reference, or a solver against its tolerance (not evidence). Returns its verdict."""
        return self._record("implementation", name, statement, op=op, threshold=threshold,
                            threshold_source=threshold_source, measured=measured, per_seed=per_seed,
                            tolerance=tolerance, tolerance_source=tolerance_source)  # fmt: skip

    def finding(self, name, statement, *, expected: str, note: str, measured=None, per_seed=None, tolerance=None,
                tolerance_source=None) -> None:  # fmt: skip
        """Record a measurement that has no threshold stated before the run (see the module docstring)."""
        _check_text(name, name, "name")
        if not isinstance(statement, str) or not STATEMENT_ID.match(statement):
            raise ValueError(f"statement: finding {name!r} needs a statement id like 'T1.2', got {statement!r}")
        _check_text(name, expected, "expected")
        _check_text(name, note, "note")
        if any(f.name == name for f in self.findings):
            raise ValueError(f"name: finding {name!r} is recorded twice")
        if (measured is None) == (per_seed is None):
            raise ValueError(f"finding {name!r}: give exactly one of measured= (a single value) or per_seed= (values)")
        tolerance = _check_tolerance(name, tolerance, tolerance_source)
        if per_seed is not None:
            values = per_seed_values(per_seed, "per_seed")
            mean, low, high = interval(values)
            self.findings.append(Finding(name, statement, mean, expected, note, values, [low, high], tolerance,
                                         tolerance_source))  # fmt: skip
        else:
            measured = _plain(measured)
            if not _is_number(measured):
                raise ValueError(f"measured: finding {name!r} needs a number, got {measured!r}")
            self.findings.append(Finding(name, statement, measured, expected, note, None, None, tolerance,
                                         tolerance_source))  # fmt: skip

    # -- results ---------------------------------------------------------------------------
    def of_kind(self, *kinds: str) -> list[Claim]:
        return [c for c in self.claims if c.kind in kinds]

    @property
    def invalid(self) -> list[Claim]:
        """Claims whose inputs were not all finite numbers, and findings with a non-finite value."""
        bad = [c for c in self.claims if c.verdict == INVALID]
        for f in self.findings:
            values = f.per_seed if f.per_seed is not None else [f.measured]
            if not all(_finite(v) for v in values):
                bad.append(f)
        return bad

    @property
    def failed_checks(self) -> list[Claim]:
        return [c for c in self.claims if c.kind != "prediction" and c.verdict == "fails"]

    def counts(self) -> dict[str, int]:
        """Full-scale predictions per verdict (reduced-scale ones are not tests)."""
        counted = [c for c in self.of_kind("prediction") if c.scale == "full"]
        return {v: sum(c.verdict == v for c in counted) for v in PREDICTION_VERDICTS}

    def report(self) -> None:
        """Print predictions, then identity/implementation checks, then findings (see :meth:`report_text`)."""
        print(self.report_text())

    def line(self, c: Claim) -> str:
        """One claim as printed: verdict, statement, name, value (round-off as a bound), comparison."""
        data = c.to_json()
        if is_roundoff_bound(data) and c.verdict == "holds":
            value = f"{c.op} {c.threshold:.0e} (round-off bound)"
            return f"{c.verdict.upper():<9} {c.statement:<5} {c.name}: {value}"
        if c.interval is not None:
            value = f"{estimate(c.measured, *c.interval)} n={len(c.per_seed)}"
        else:
            value = rounded(c.measured)
        suffix = " [reduced run: reported only]" if c.scale == "reduced" else ""
        return f"{c.verdict.upper():<9} {c.statement:<5} {c.name}: {value} {c.op} {rounded(c.threshold)}{suffix}"

    def finding_line(self, f: Finding) -> str:
        """One finding as printed: its statement, name, value and what was expected."""
        value = rounded(f.measured)
        if f.interval is not None:
            value = f"{estimate(f.measured, *f.interval)} n={len(f.per_seed)}"
        return f"NOTE      {f.statement:<5} {f.name}: {value} (expected: {f.expected})"

    def show_new(self) -> None:
        """Print the claims and findings recorded since the last call, one line each, as in the summary.

        A notebook calls it right under the claims it has just recorded next to their evidence.
        """
        claims_done, findings_done = self._shown
        for line in [self.line(c) for c in self.claims[claims_done:]] + [
            self.finding_line(f) for f in self.findings[findings_done:]
        ]:
            print(line)
        self._shown = (len(self.claims), len(self.findings))

    def report_text(self) -> str:
        lines: list[str] = []
        groups = [
            ("Predictions (would come out false if the statement were false)", self.of_kind("prediction")),
            ("Identities and implementation checks (not evidence)", self.of_kind("identity", "implementation")),
        ]
        for title, claims in groups:
            if not claims:
                continue
            lines += [title, "-" * len(title)]
            lines += [self.line(c) for c in claims]
            lines.append("")
        if self.findings:
            title = "Findings (reported, no threshold stated before the run)"
            lines += [title, "-" * len(title)]
            lines += [self.finding_line(f) for f in self.findings]
            lines.append("")
        lines.append(self.summary())
        return "\n".join(lines)

    def summary(self) -> str:
        counts = self.counts()
        checks = self.of_kind("identity", "implementation")
        held = sum(c.verdict == "holds" for c in checks)
        reduced = sum(c.scale == "reduced" for c in self.of_kind("prediction"))
        text = f"predictions: {counts['holds']} hold, {counts['refuted']} refuted, {counts['undecided']} undecided"
        if reduced:
            text += f" ({reduced} more at reduced scale, reported only)"
        return text + f"; checks: {held}/{len(checks)} hold; {len(self.findings)} findings"

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "claims": [c.to_json() for c in self.claims],
                "findings": [f.to_json() for f in self.findings]}  # fmt: skip

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/claims.json`` (strict JSON, sorted keys, stable formatting)."""
        path = Path(out_dir) / "claims.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
        return path

    def assert_valid(self) -> None:
        """Raise AssertionError listing every invalid claim and every failed identity or implementation check.

        A refuted or undecided prediction is a result, not an error: it never raises.
        """
        problems = [f"{c.statement} {c.name}: inputs are not all finite numbers (NaN or infinity)"
                    for c in self.invalid]  # fmt: skip
        problems += [f"{c.statement} {c.name}: check fails, measured {c.measured!r} ({c.tested}), needs {c.op} "
                     f"{c.threshold!r}" for c in self.failed_checks]  # fmt: skip
        if problems:
            raise AssertionError("claims that are not results:\n" + "\n".join(problems))

    def finish(self, out_dir: str | Path) -> None:
        """Report, save claims.json into ``out_dir``, then raise on invalid claims or failed checks."""
        self.report()
        self.save(out_dir)
        self.assert_valid()


# -- the schema, for tests, the README and the reproduction check ---------------------------
CLAIM_FIELDS = {"name", "kind", "statement", "threshold_source", "op", "threshold", "measured", "verdict", "tested",
                "scale", "per_seed", "interval", "tolerance", "tolerance_source"}  # fmt: skip
FINDING_FIELDS = {"name", "statement", "measured", "expected", "note", "per_seed", "interval", "tolerance",
                  "tolerance_source"}  # fmt: skip
TESTED = ("value", "interval", "every seed")


def schema_errors(data: dict) -> list[str]:
    """Everything wrong with a loaded claims.json (empty list: it follows the schema)."""
    errors = []
    if not isinstance(data, dict) or set(data) != {"notebook", "claims", "findings"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        errors.append(f"top-level keys {keys}; expected notebook, claims, findings")
        return errors
    for c in data["claims"]:
        label = f"claim {c.get('name')!r}"
        if set(c) != CLAIM_FIELDS:
            errors.append(f"{label}: fields {sorted(set(c) ^ CLAIM_FIELDS)} missing or unexpected")
            continue
        if c["kind"] not in KINDS:
            errors.append(f"{label}: kind {c['kind']!r} not in {KINDS}")
            continue
        allowed = PREDICTION_VERDICTS if c["kind"] == "prediction" else CHECK_VERDICTS
        if c["verdict"] not in (*allowed, INVALID):
            errors.append(f"{label}: verdict {c['verdict']!r} not in {allowed}")
        if not isinstance(c["statement"], str) or not STATEMENT_ID.match(c["statement"]):
            errors.append(f"{label}: statement {c['statement']!r} is not an id like T1.2")
        if not isinstance(c["threshold_source"], str) or not c["threshold_source"].strip():
            errors.append(f"{label}: empty threshold_source")
        if c["scale"] not in ("full", "reduced"):
            errors.append(f"{label}: scale {c['scale']!r} is not 'full' or 'reduced'")
        if c["per_seed"] is not None and (c["interval"] is None or len(c["interval"]) != 2):
            errors.append(f"{label}: per-seed values without a 2-number interval")
        if c["tested"] not in TESTED:
            errors.append(f"{label}: tested {c['tested']!r} unknown")
        if (c["per_seed"] is None) != (c["tested"] == "value"):
            errors.append(f"{label}: tested {c['tested']!r} does not match per_seed")
    for f in data["findings"]:
        if set(f) != FINDING_FIELDS:
            errors.append(f"finding {f.get('name')!r}: fields {sorted(set(f) ^ FINDING_FIELDS)} missing or unexpected")
        elif not isinstance(f["statement"], str) or not STATEMENT_ID.match(f["statement"]):
            errors.append(f"finding {f.get('name')!r}: statement {f['statement']!r} is not an id like T1.2")
    return errors
