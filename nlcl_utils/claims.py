"""Claim checks: a measured value against a threshold from the theory, saved as claims.json.

Each notebook ends with::

    checks = claims.Claims("01_one_layer_local_optima")
    checks.check("fixed-point residual", measured=r, threshold=1e-6, op="<=")
    checks.finding("paper says X", measured=v, expected="X >= 0.9", note="why it differs")
    checks.report(); checks.save(FIG_DIR); checks.assert_all()

``check`` records an asserted claim; ``finding`` records an honest measurement that differs
from (or is not asserted against) the paper, with its explanation: it is saved and printed
but never makes the notebook fail. claims.json has the form
``{"notebook": ..., "claims": [{"name", "measured", "threshold", "op", "pass"}], "findings": [...]}``.
"""

from __future__ import annotations

import json
import math
import operator
from pathlib import Path
from typing import Any

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def _plain(value: Any) -> Any:
    """Numbers as plain Python scalars (0-d tensors and numpy scalars have ``.item()``)."""
    return value.item() if hasattr(value, "item") else value


def _rounded(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value == 0 or math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.3g}"


class Claims:
    """Collects the claim checks of one notebook."""

    def __init__(self, notebook: str):
        self.notebook = notebook
        self.claims: list[dict] = []
        self.findings: list[dict] = []

    def check(self, name: str, measured: Any, threshold: Any, op: str) -> bool:
        """Record the claim ``measured <op> threshold``; returns whether it holds."""
        if op not in OPS:
            raise ValueError(f"op: unknown comparison {op!r}; allowed: {', '.join(OPS)}")
        if any(c["name"] == name for c in self.claims):
            raise ValueError(f"name: claim {name!r} is recorded twice")
        measured, threshold = _plain(measured), _plain(threshold)
        ok = isinstance(measured, (int, float)) and not (isinstance(measured, float) and math.isnan(measured))
        ok = bool(ok and OPS[op](measured, threshold))
        self.claims.append({"name": name, "measured": measured, "threshold": threshold, "op": op, "pass": ok})
        return ok

    def finding(self, name: str, measured: Any, expected: str, note: str) -> None:
        """Record a measurement reported against the paper's expectation but not asserted."""
        self.findings.append({"name": name, "measured": _plain(measured), "expected": expected, "note": note})

    @property
    def passed(self) -> bool:
        return all(c["pass"] for c in self.claims)

    def report(self) -> None:
        """Print one rounded line per claim and finding (deterministic text for nbval)."""
        width = max([len(c["name"]) for c in self.claims + self.findings] + [10])
        for c in self.claims:
            mark = "PASS" if c["pass"] else "FAIL"
            print(f"{mark}  {c['name']:<{width}}  {_rounded(c['measured'])} {c['op']} {_rounded(c['threshold'])}")
        for f in self.findings:
            print(f"NOTE  {f['name']:<{width}}  {_rounded(f['measured'])} (paper: {f['expected']})")
        print(f"{sum(c['pass'] for c in self.claims)}/{len(self.claims)} claims hold")

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "claims": self.claims, "findings": self.findings}

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/claims.json`` (sorted keys, stable formatting)."""
        path = Path(out_dir) / "claims.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    def assert_all(self) -> None:
        """Raise AssertionError listing every failed claim."""
        failed = [c for c in self.claims if not c["pass"]]
        if failed:
            lines = [f"{c['name']}: measured {c['measured']!r}, needs {c['op']} {c['threshold']!r}" for c in failed]
            raise AssertionError("claims failed:\n" + "\n".join(lines))
