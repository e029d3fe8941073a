"""The Markdown pages a reader browses link only to files that exist and to headings that exist.

Anchors are checked the way GitHub names headings: lower case, punctuation dropped (letters of any
script, digits, ``-`` and ``_`` kept), each space a hyphen, a repeated heading suffixed ``-1``, ``-2``.
"""

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    "CONTRIBUTING.md",
    "benchmarks/README.md",
    *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))),
]
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")


def slug(heading: str) -> str:
    heading = heading.strip().lower()
    kept = "".join(ch for ch in heading if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(path: Path) -> Iterator[str]:
    seen: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text()).splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#").replace("`", ""))
            count = seen.get(base, 0)
            seen[base] = count + 1
            yield base if count == 0 else f"{base}-{count}"


def links(path: Path) -> list[str]:
    text = CODE.sub("", FENCE.sub("", path.read_text()))
    return [m.group(1) for m in LINK.finditer(text)]


def test_slug_matches_github_on_this_projects_headings():
    assert slug("01 · One layer: nonlinearity creates many local optima — and when it does not") == (
        "01--one-layer-nonlinearity-creates-many-local-optima--and-when-it-does-not"
    )
    assert slug("6. The hierarchical token task and χ±") == "6-the-hierarchical-token-task-and-χ"
    assert slug("Sweeps: nlcl sweep, on this machine or a Slurm cluster") == (
        "sweeps-nlcl-sweep-on-this-machine-or-a-slurm-cluster"
    )


@pytest.mark.parametrize("page", [p for p in PAGES if (ROOT / p).exists()])
def test_links_reach_existing_files_and_headings(page):
    source = ROOT / page
    broken = []
    for target in links(source):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ... leave the repository
            continue
        file_part, _, anchor = target.partition("#")
        path = (source.parent / unquote(file_part)).resolve() if file_part else source
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and unquote(anchor) not in set(anchors(path)):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page}: broken links: {broken}"
