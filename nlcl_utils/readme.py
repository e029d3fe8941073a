"""The README's headline numbers, generated from the committed ``figures/*/claims.json``.

The README quotes measured numbers only inside generated blocks, one per notebook::

    <!-- headline:01_one_layer_local_optima -->
    | statement | prediction | measured [95% interval] | threshold | verdict |
    ...
    <!-- /headline -->

Every ``prediction`` claim appears with its verdict (holds, refuted or undecided) and a line
counts them; identities and implementation checks are not evidence and are only counted. The
findings are listed below the table. ``nlcl readme`` rewrites the blocks in place
(``make figures`` runs it after regenerating), and a test checks that the committed README
equals what this module renders, so the README cannot drift from the outputs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from nlcl_utils.claims import PREDICTION_VERDICTS, estimate, rounded

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
FIGURES = REPO_ROOT / "figures"
BLOCK = re.compile(r"(<!-- headline:(?P<name>[0-9]{2}_[A-Za-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /headline -->)", re.S)


def _value(entry: dict) -> str:
    if entry["measured"] is None:
        return "non-finite"
    if entry.get("interval"):
        low, high = entry["interval"]
        low, high = (float("-inf") if low is None else low), (float("inf") if high is None else high)
        return f"{estimate(entry['measured'], low, high)}, {len(entry['per_seed'])} seeds"
    return rounded(entry["measured"])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(name: str, figures_dir: Path = FIGURES) -> str:
    """The Markdown block body for notebook ``name`` from its claims.json."""
    path = figures_dir / name / "claims.json"
    if not path.exists():
        return f"*No claims.json yet for {name}: run `make figures`.*\n"
    data = json.loads(path.read_text())
    predictions = [c for c in data["claims"] if c["kind"] == "prediction"]
    lines = [
        "| statement | prediction | measured | threshold | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in predictions:
        verdict = c["verdict"] if c["verdict"] == "holds" else f"**{c['verdict']}**"
        if c["scale"] != "full":
            verdict += " (reduced run: reported only)"
        lines.append(
            f"| {c['statement']} | {_cell(c['name'])} | {_value(c)} | {c['op']} {rounded(c['threshold'])} | {verdict} |"
        )
    checks = [c for c in data["claims"] if c["kind"] != "prediction"]
    counted = [c for c in predictions if c["scale"] == "full"]
    words = {"holds": "hold"}
    counts = ", ".join(f"{sum(c['verdict'] == v for c in counted)} {words.get(v, v)}" for v in PREDICTION_VERDICTS)
    lines.append("")
    lines.append(
        f"{len(counted)} predictions: {counts}; "
        f"{sum(c['verdict'] == 'holds' for c in checks)}/{len(checks)} identity and implementation checks hold "
        f"(all in `figures/{name}/claims.json`)."
    )
    if data["findings"]:
        lines.append("Findings (reported, not asserted):")
        lines.append("")
        for f in data["findings"]:
            lines.append(f"* {f['statement']} {_cell(f['name'])}: {_value(f)} (expected: {_cell(f['expected'])})")
    return "\n".join(lines) + "\n"


def update(text: str, figures_dir: Path = FIGURES) -> str:
    """``text`` (a README) with every headline block re-rendered."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), figures_dir) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nlcl readme", description="Rewrite the README's generated headline blocks.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is not up to date; change nothing")
    args = parser.parse_args(argv)
    old = README.read_text()
    new = update(old)
    if args.check:
        if new != old:
            print("nlcl readme: README.md headline blocks are out of date; run `nlcl readme`", file=sys.stderr)
            return 1
        return 0
    if new != old:
        README.write_text(new)
    print(f"nlcl readme: {len(BLOCK.findall(new))} headline blocks up to date", file=sys.stderr)
    return 0
