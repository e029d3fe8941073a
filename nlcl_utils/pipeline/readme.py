"""The measured numbers the README and ``docs/results.md`` quote, generated from the published claims.

``docs/results.md`` holds one generated table per notebook::

    <!-- headline:01_one_layer_local_optima -->
    | statement | prediction | measured [95% interval] | threshold | verdict |
    ...
    <!-- /headline -->

Every ``prediction`` claim appears with its verdict (holds, refuted or undecided) and a line
counts them; identities and implementation checks are not evidence and are only counted. The
findings are listed below the table. The README quotes only the counts, inline::

    <!-- verdicts:01_one_layer_local_optima -->18 hold, 4 refuted, 0 undecided<!-- /verdicts -->

counted over the notebook's entry in ``figures/MANIFEST.json``. ``nlcl readme`` rewrites both
kinds of block in both files in place (``make figures`` runs it after regenerating), and a test
checks that the committed files equal what this module renders, so they cannot drift from the
outputs.

Only published claims are quoted: a claims.json whose claims or findings differ from its
notebook's entry in ``figures/MANIFEST.json`` (written by ``nlcl figures`` when it published
them), or that is not valid JSON, stops ``nlcl readme`` with the file named. So does a
``docs/results.md`` without the table of every notebook. Nothing is written then, and the exit
status is 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from nlcl_utils.checks import NlclError
from nlcl_utils.notebook.claims import PREDICTION_VERDICTS, estimate, is_roundoff_bound, rounded

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
RESULTS = REPO_ROOT / "docs" / "results.md"
FIGURES = REPO_ROOT / "figures"


class ReadmeError(NlclError, ValueError):
    """The README or a claims.json cannot be used: the message names the file and the fix."""


BLOCK = re.compile(r"(<!-- headline:(?P<name>[0-9]{2}_[A-Za-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /headline -->)", re.S)
# One line: the counts stand inside a sentence or a table cell.
VERDICTS = re.compile(r"(<!-- verdicts:(?P<name>[0-9]{2}_[A-Za-z0-9_]+) -->)(?P<body>[^\n]*?)(<!-- /verdicts -->)")


def _value(entry: dict) -> str:
    if entry["measured"] is None:
        return "non-finite"
    if "verdict" in entry and is_roundoff_bound(entry) and entry["verdict"] == "holds":
        return f"{entry['op']} {entry['threshold']:.0e} (round-off)"
    if entry.get("interval"):
        low, high = entry["interval"]
        low, high = (float("-inf") if low is None else low), (float("inf") if high is None else high)
        return f"{estimate(entry['measured'], low, high)}, {len(entry['per_seed'])} seeds"
    return rounded(entry["measured"])


def _counts(predictions: list[dict]) -> str:
    """'N hold, M refuted, K undecided' over the full-scale ``predictions`` (reduced runs are not counted)."""
    counted = [c for c in predictions if c["scale"] == "full"]
    words = {"holds": "hold"}
    return ", ".join(f"{sum(c['verdict'] == v for c in counted)} {words.get(v, v)}" for v in PREDICTION_VERDICTS)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReadmeError(f"{path}: not valid JSON ({err}); {what}") from None
    if not isinstance(data, dict):
        raise ReadmeError(f"{path}: expected a JSON object, got {type(data).__name__}; {what}")
    return data


def _fix(name: str) -> str:
    return f"regenerate it with `nlcl figures --only {name.split('_', 1)[0]}` (or restore the committed file)"


def check_published(name: str, figures_dir: Path = FIGURES) -> None:
    """ReadmeError unless ``figures_dir/name/claims.json`` (if any) equals its ``figures_dir/MANIFEST.json`` entry."""
    path = figures_dir / name / "claims.json"
    if not path.exists():
        return
    fix = _fix(name)
    data = _json(path, fix)
    manifest_path = figures_dir / "MANIFEST.json"
    manifest = _json(manifest_path, "restore it or regenerate with `nlcl figures`") if manifest_path.exists() else {}
    entry = manifest.get("notebooks", {}).get(name)
    if entry is None:
        raise ReadmeError(f"{path}: notebook {name} has no entry in {manifest_path}, so nothing was published; {fix}")
    for key, default in (("claims", None), ("findings", [])):  # as regenerate.manifest_entry records them
        if data.get(key, default) != entry.get(key, default):
            raise ReadmeError(
                f"{path}: its {key} differ from notebook {name}'s entry in {manifest_path} (the published ones); {fix}"
            )


def render(name: str, figures_dir: Path = FIGURES) -> str:
    """The Markdown block body for notebook ``name`` from its claims.json."""
    path = figures_dir / name / "claims.json"
    if not path.exists():
        return f"*No claims.json yet for {name}: run `make figures`.*\n"
    data = _json(path, _fix(name))
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
    lines.append("")
    lines.append(
        f"{len(counted)} predictions: {_counts(predictions)}; "
        f"{sum(c['verdict'] == 'holds' for c in checks)}/{len(checks)} identity and implementation checks hold "
        f"(all in `figures/{name}/claims.json`)."
    )
    if data["findings"]:
        lines.append("Findings (measured, no threshold stated before the run):")
        lines.append("")
        for f in data["findings"]:
            lines.append(f"* {f['statement']} {_cell(f['name'])}: {_value(f)} (expected: {_cell(f['expected'])})")
    return "\n".join(lines) + "\n"


def verdict_counts(name: str, figures_dir: Path = FIGURES) -> str:
    """'N hold, M refuted, K undecided' over notebook ``name``'s predictions in ``figures_dir/MANIFEST.json``."""
    path = figures_dir / "MANIFEST.json"
    manifest = _json(path, "restore it or regenerate with `nlcl figures`") if path.exists() else {}
    published = manifest.get("notebooks", {})
    if name not in published:
        return "no published claims yet: run `make figures`"
    return _counts([c for c in published[name]["claims"] if c["kind"] == "prediction"])


def update(text: str, figures_dir: Path = FIGURES) -> str:
    """``text`` (README or results page), every block re-rendered from published claims (:func:`check_published`)."""
    for match in [*BLOCK.finditer(text), *VERDICTS.finditer(text)]:
        check_published(match.group("name"), figures_dir)
    text = BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), figures_dir) + m.group(4), text)
    return VERDICTS.sub(lambda m: m.group(1) + verdict_counts(m.group("name"), figures_dir) + m.group(4), text)


def missing_blocks(text: str, notebooks_dir: Path) -> list[str]:
    """Notebooks (``notebooks_dir/NN_name.py``) that have no headline block in README ``text``."""
    present = {m.group("name") for m in BLOCK.finditer(text)}
    return [p.stem for p in sorted(notebooks_dir.glob("[0-9][0-9]_*.py")) if p.stem not in present]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nlcl readme",
        description="Rewrite the generated blocks of README.md (verdict counts) and docs/results.md (tables).",
        epilog="exit status 1: out of date (--check), a table missing from docs/results.md, or a claims.json that "
        "is invalid or not the published one; nothing is written then",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is not up to date; change nothing")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)  # tests: a throw-away tree
    args = parser.parse_args(argv)
    paths = [args.root / path.relative_to(REPO_ROOT) for path in (README, RESULTS)]
    old = {path: path.read_text() if path.exists() else "" for path in paths}
    results = paths[1]
    missing = missing_blocks(old[results], args.root / "notebooks")
    if missing:
        shown = ", ".join(f"<!-- headline:{name} -->" for name in missing)
        print(
            f"nlcl readme: {results} lacks the headline blocks of {len(missing)} notebooks: {shown} "
            "(each followed by a <!-- /headline --> line); add them, then run `nlcl readme` again",
            file=sys.stderr,
        )
        return 1
    try:
        new = {path: update(text, args.root / FIGURES.relative_to(REPO_ROOT)) for path, text in old.items()}
    except ReadmeError as err:
        print(f"nlcl readme: {err}", file=sys.stderr)
        return 1
    stale = [path for path in paths if new[path] != old[path]]
    if args.check:
        if stale:
            shown = " and ".join(str(path.relative_to(args.root)) for path in stale)
            print(f"nlcl readme: the generated blocks of {shown} are out of date; run `nlcl readme`", file=sys.stderr)
            return 1
        return 0
    for path in stale:
        path.write_text(new[path])
    tables, counts = len(BLOCK.findall(new[results])), sum(len(VERDICTS.findall(text)) for text in new.values())
    print(f"nlcl readme: {tables} headline tables and {counts} verdict counts up to date", file=sys.stderr)
    return 0
