"""docs/theory.md, claims.json, docs/results.md and the README agree: every cited statement exists,
every claim follows the schema, the generated tables and verdict counts are those of the published
claims, and no file of the project points outside the repository."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from nlcl_utils.notebook import claims
from nlcl_utils.pipeline import readme, regenerate

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"
NOTEBOOK_NAMES = regenerate.discover(ROOT / "notebooks")
ROW = re.compile(r"^\| (T\d+\.\d+) \| (.+?) \| (.+?) \| (.*?) \| (.+?) \|$")
PROVENANCES = ("paper", "reconstructed", "derived")
VERDICTS = ("holds", "holds with conditions", "refuted", "undecided", "does not hold here", "open")


def statement_rows() -> dict[str, tuple[str, str, str, str]]:
    rows = {}
    for line in THEORY.read_text().splitlines():
        match = ROW.match(line)
        if match:
            sid = match.group(1)
            assert sid not in rows, f"docs/theory.md: statement {sid} appears twice"
            rows[sid] = match.groups()[1:]
    return rows


def test_statement_table_rows_are_well_formed():
    rows = statement_rows()
    assert len(rows) >= 10
    for sid, (_statement, provenance, _where, verdict) in rows.items():
        assert provenance.startswith(PROVENANCES), f"{sid}: provenance {provenance!r} must start with {PROVENANCES}"
        assert verdict.startswith(VERDICTS), f"{sid}: verdict {verdict!r} must start with one of {VERDICTS}"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_cites_only_existing_statements(name):
    rows = statement_rows()
    cited = set(re.findall(r"\bT\d+\.\d+\b", (ROOT / "notebooks" / f"{name}.py").read_text()))
    assert cited, f"{name}.py cites no statement of docs/theory.md"
    missing = sorted(cited - set(rows))
    assert not missing, f"{name}.py cites statements missing from docs/theory.md: {missing}"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_claims_follow_the_schema(name):
    data = json.loads((ROOT / "figures" / name / "claims.json").read_text())
    assert claims.schema_errors(data) == []
    rows = statement_rows()
    cited = {c["statement"] for c in data["claims"] + data["findings"]}
    assert not cited - set(rows), (
        f"{name}: claims.json cites statements missing from docs/theory.md: {cited - set(rows)}"
    )
    assert any(c["kind"] == "prediction" for c in data["claims"]), f"{name}: no prediction claim"


def test_results_page_tables_match_committed_claims():
    text = (ROOT / "docs" / "results.md").read_text()
    blocks = {m.group("name") for m in readme.BLOCK.finditer(text)}
    assert blocks == set(NOTEBOOK_NAMES), f"docs/results.md tables {sorted(blocks)} vs notebooks {NOTEBOOK_NAMES}"
    assert readme.update(text) == text, "docs/results.md differs from figures/*/claims.json: run `nlcl readme`"


def test_readme_verdict_counts_match_the_manifest():
    text = (ROOT / "README.md").read_text()
    counted = {m.group("name") for m in readme.VERDICTS.finditer(text)}
    assert counted == set(NOTEBOOK_NAMES), f"README verdict counts {sorted(counted)} vs notebooks {NOTEBOOK_NAMES}"
    assert not readme.BLOCK.search(text), "the full tables belong in docs/results.md, the README quotes the counts"
    assert readme.update(text) == text, "README verdict counts differ from figures/MANIFEST.json: run `nlcl readme`"
    assert readme.main(["--check"]) == 0


def test_readme_states_the_three_results_first():
    """The front door: the paper's three results, each with its figure, notebook and counts, in the first 60 lines."""
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:60])
    for notebook in ("01_one_layer_local_optima", "02_two_layer_linear_no_specialization", "03_global_modulation"):
        assert f"(notebooks/{notebook}.py)" in head and f"<!-- verdicts:{notebook} -->" in head, notebook
        assert f"](figures/{notebook}/" in head, f"{notebook}: no headline figure"
    assert "https://arxiv.org/abs/2206.01342" in head and "reconstructed" in head


def test_nothing_points_outside_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    pattern = re.compile(r"\.\./shared|shared/PAPER|PAPER\.md|DESIGN\.md")
    offenders = []
    for rel in files:
        path = ROOT / rel
        if path.suffix in (".png", ".pdf") or not path.is_file() or rel == "tests/test_theory.py":
            continue
        text = path.read_text(errors="ignore")
        if pattern.search(text):
            offenders.append(rel)
    assert not offenders, f"files referring to material outside the repository: {offenders}"


def test_global_modulation_statement_is_the_papers_wording():
    """T3.3 quotes the abstract verbatim (not a gloss) and says so in its provenance."""
    statement, provenance, where, _verdict = statement_rows()["T3.3"]
    quote = (
        "global modulation: those local patterns discriminative from the perspective of global-level patterns"
        " are prioritized to learn"
    )
    assert quote in statement
    assert provenance.startswith("paper (abstract")
    assert "03" in where
