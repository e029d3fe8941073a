"""The reading version behind ``make site`` / ``nlcl site``: a static website of the companion.

Nothing is executed: the pages are made from what is committed, namely the executed
``notebooks/NN_name.ipynb`` (found by glob), ``figures/NN_name/*.png`` and ``claims.json``,
``docs/theory.md`` (if it exists) and the hand-written pages in ``site/``. They are staged
under ``build/site-src/`` (this module writes nothing else) and rendered by Sphinx with
MyST-NB (``nb_execution_mode = "off"``) and the book theme into ``build/site/``.

A notebook page reads as the science first: its claim, one line of verdicts, then text, figures
and printed checks. Code is folded (a cell's own ``hide-*``/``remove-*`` tags, taken from the
notebook's .py source, decide; any other code cell folds its source), and so are the rest of
the introduction and markdown cells tagged ``hide-cell``. The gallery shows each notebook's
figures in the order the notebook shows them, captioned from ``site/captions.toml``.

The site loads nothing from the network: MathJax 3 comes from the ``django-static-mathjax``
package (the official build; no dependencies) and is copied into the site, and the build fails
if any generated page still loads a script, style sheet, image or font from another host
(``nlcl_utils.pipeline.sitecheck``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nlcl_utils.checks import NlclError

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_SOURCES = REPO_ROOT / "site"  # conf.py, _static/, hand-written pages
BUILD = REPO_ROOT / "build"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
STATEMENTS_CELL_TAG = "nlcl-site-statements"


class SiteError(NlclError, RuntimeError):
    """The site cannot be built (missing tool or source); nothing was published."""


# ---------------------------------------------------------------- markdown tables


def split_row(line: str) -> list[str]:
    """Cells of one markdown pipe-table row; ``\\|`` is a literal bar, not a separator."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", body)]


def _is_separator(line: str) -> bool:
    cells = split_row(line)
    return bool(cells) and all(re.fullmatch(r":?-{3,}:?", c) for c in cells)


@dataclass
class Table:
    """A markdown pipe table: ``lines[start:end]`` of its document (header, separator, rows)."""

    start: int
    end: int
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def column(self, *words: str) -> int | None:
        """Index of the first header cell that contains any of ``words`` (case-insensitive)."""
        for i, cell in enumerate(self.header):
            plain = re.sub(r"[*_`]", "", cell).strip().lower()
            if any(plain == w or (len(w) > 2 and w in plain) for w in words):
                return i
        return None


def markdown_tables(text: str) -> list[Table]:
    """Every pipe table of a markdown document, in order."""
    lines = text.splitlines()
    tables, i = [], 0
    while i + 1 < len(lines):
        if lines[i].lstrip().startswith("|") and _is_separator(lines[i + 1]):
            table = Table(start=i, end=i + 2, header=split_row(lines[i]))
            while table.end < len(lines) and lines[table.end].lstrip().startswith("|"):
                table.rows.append(split_row(lines[table.end]))
                table.end += 1
            tables.append(table)
            i = table.end
        else:
            i += 1
    return tables


def statement_tables(theory_text: str) -> list[tuple[str, Table]]:
    """The statement tables of docs/theory.md (every table with an id and a verdict column),
    each with the text of the ``##`` heading above it (empty if none)."""
    lines = theory_text.splitlines()
    found = []
    for table in markdown_tables(theory_text):
        if table.column("id") is None or table.column("verdict") is None:
            continue
        headings = [ln for ln in lines[: table.start] if re.match(r"#{1,3} ", ln)]
        found.append((headings[-1].lstrip("#").strip() if headings else "", table))
    return found


@dataclass
class Statement:
    """One row of the statement table."""

    id: str
    text: str
    verdict: str


def statement_index(tables: list[tuple[str, Table]]) -> dict[str, Statement]:
    """Statement id -> its row, over every statement table."""
    index = {}
    for _, table in tables:
        id_col, text_col, verdict_col = table.column("id"), table.column("statement"), table.column("verdict")
        for row in table.rows:
            sid = _plain_id(row[id_col]) if id_col < len(row) else ""
            if sid:
                text = row[text_col] if text_col is not None and text_col < len(row) else ""
                index[sid] = Statement(sid, text, row[verdict_col] if verdict_col < len(row) else "")
    return index


def _plain_id(cell: str) -> str:
    """``**T3.2**`` or `` `T3.2` `` -> ``T3.2``."""
    return re.sub(r"[*_`\s]", "", cell)


# ---------------------------------------------------------------- notebooks and claims


@dataclass
class Notebook:
    """One executed notebook of the companion and what its claims.json says."""

    stem: str  # NN_name
    path: Path  # notebooks/NN_name.ipynb
    title: str  # its first markdown heading
    statements: list[str]  # statement ids its claims test, in table order (may be empty)
    has_claims: bool  # figures/NN_name/claims.json exists
    figures: list[Path]  # figures/NN_name/*.png, in the order the notebook shows them (narrative_order)
    captions: dict[str, str] = field(default_factory=dict)  # figure stem -> caption (site/captions.toml)


def claim_statements(claims_doc: dict) -> list[str]:
    """Statement ids named by the claims (and findings) of one claims.json, in table order
    (T2.1 before T2.10 before T3.1).

    Entries without a ``statement`` field are skipped, so older claims.json files simply give
    no ids."""
    ids: list[str] = []
    for value in claims_doc.values():
        if not isinstance(value, list):
            continue
        for entry in value:
            statement = entry.get("statement") if isinstance(entry, dict) else None
            if isinstance(statement, str) and statement.strip() and statement.strip() not in ids:
                ids.append(statement.strip())
    return sorted(ids, key=lambda sid: [int(n) if n.isdigit() else n for n in re.split(r"(\d+)", sid)])


def _first_heading(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return ""


def _png_digests(output) -> list[str]:
    png = output.get("data", {}).get("image/png")
    return [hashlib.sha256(base64.b64decode("".join(png))).hexdigest()] if png else []


def narrative_order(book, figures: list[Path]) -> list[Path]:
    """``figures`` in the order a reader meets them in the notebook ``book``: where its outputs
    display a figure (the same bytes), else where a code cell first names it as a string (the
    call that saves it); figures the notebook never names come last, by name."""
    place: dict[str, tuple[int, int]] = {}
    by_digest = {hashlib.sha256(png.read_bytes()).hexdigest(): png.stem for png in figures}
    for i, cell in enumerate(book.cells):
        if cell.cell_type != "code":
            continue
        for k, output in enumerate(cell.get("outputs", [])):
            for digest in _png_digests(output):
                if digest in by_digest:
                    place.setdefault(by_digest[digest], (i, k))
    for png in figures:
        if png.stem not in place:
            named = (
                i
                for i, cell in enumerate(book.cells)
                if cell.cell_type == "code" and re.search(rf"[\"']{re.escape(png.stem)}[\"']", cell.source)
            )
            i = next(named, None)
            if i is not None:
                place[png.stem] = (i, -1)
    last = (len(book.cells), 0)
    return sorted(figures, key=lambda png: (place.get(png.stem, last), png.name))


def load_captions(root: Path = REPO_ROOT) -> dict[str, dict[str, str]]:
    """``site/captions.toml``: notebook stem -> figure stem -> its one-sentence caption."""
    import tomllib

    path = root / "site" / "captions.toml"
    return tomllib.loads(path.read_text()) if path.exists() else {}


def caption_problems(notebooks: list[Notebook], captions: dict[str, dict[str, str]]) -> list[str]:
    """Committed figures without a caption, and captions of figures that are not committed."""
    problems = []
    for nb in notebooks:
        stems, captioned = {png.stem for png in nb.figures}, set(captions.get(nb.stem, {}))
        problems += [f"figures/{nb.stem}/{s}.png has no caption" for s in sorted(stems - captioned)]
        problems += [f"caption of {nb.stem}/{s}: no such figure" for s in sorted(captioned - stems)]
    known = {nb.stem for nb in notebooks}
    return problems + [f"captions for {stem}: no such notebook" for stem in sorted(set(captions) - known)]


def figure_caption(nb: Notebook, png: Path) -> str:
    """The figure's caption, or its file name as words when it has none."""
    return nb.captions.get(png.stem) or png.stem.replace("_", " ")


def discover(root: Path = REPO_ROOT) -> list[Notebook]:
    """Every committed executed notebook ``notebooks/NN_name.ipynb``, sorted by name, with its
    figures in narrative order and their captions."""
    import nbformat

    captions = load_captions(root)
    found = []
    for path in sorted((root / "notebooks").glob(NOTEBOOK_GLOB)):
        fig_dir = root / "figures" / path.stem
        claims_file = fig_dir / "claims.json"
        claims_doc = json.loads(claims_file.read_text()) if claims_file.exists() else {}
        book = nbformat.read(path, as_version=4)
        found.append(
            Notebook(
                stem=path.stem,
                path=path,
                title=_first_heading(book) or path.stem,
                statements=claim_statements(claims_doc),
                has_claims=claims_file.exists(),
                figures=narrative_order(book, sorted(fig_dir.glob("*.png"))),
                captions=dict(captions.get(path.stem, {})),
            )
        )
    return found


# ---------------------------------------------------------------- links between pages


def statement_link(statement_id: str, prefix: str, known: set[str]) -> str:
    """An HTML link to the statement's row in the theory page (plain text if it has no row)."""
    if statement_id in known:
        return f'<a class="statement-id" href="{prefix}theory.html#{statement_id}">{statement_id}</a>'
    return f'<span class="statement-id">{statement_id}</span>'


def rewrite_theory_links(text: str, stems: set[str]) -> str:
    """Links of docs/theory.md made valid inside the site, where theory.md sits at the root.

    ``../notebooks/NN_name.py|.ipynb`` -> the notebook page, ``../figures/...`` -> the staged
    figure; any other link that leaves docs/ (to the package, the README) has no page on the
    site and becomes its text."""

    def fix(match: re.Match) -> str:
        bang, label, target = match.group(1), match.group(2), match.group(3)
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        notebook = re.fullmatch(r"(?:\.\./)?notebooks/(\d\d_[\w]+)\.(?:py|ipynb)", path)
        if notebook and notebook.group(1) in stems:
            return f"{bang}[{label}](notebooks/{notebook.group(1)}.ipynb)"
        if path.startswith("../figures/"):
            return f"{bang}[{label}]({path[3:]}{'#' + anchor if anchor else ''})"
        if path.startswith("../"):
            return label
        return match.group(0)

    return re.sub(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)", fix, text)


def link_notebook_names(cell: str, stems: set[str]) -> str:
    """Notebook names in a landing-page table cell become links to the notebook page: bare names
    (``03_global_modulation``, with or without backticks or suffix) and a leading notebook number
    (``03: closed form vs autograd``)."""
    by_number = {stem[:2]: stem for stem in stems}

    def fix(match: re.Match) -> str:
        stem = match.group(2)
        return f"[{stem}](notebooks/{stem}.ipynb)" if stem in stems else match.group(0)

    cell = re.sub(r"(?<![\[/(\w])(`?)(\d\d_\w+?)(?:\.py|\.ipynb)?\1(?![\w\]])", fix, cell)
    leading = re.match(r"(\d\d)(?=$|[:;,\s])", cell)
    if leading and leading.group(1) in by_number:
        cell = f"[{leading.group(1)}](notebooks/{by_number[leading.group(1)]}.ipynb)" + cell[2:]
    return cell


def theory_page(text: str, tables: list[tuple[str, Table]], stems: set[str]) -> str:
    """docs/theory.md for the site: an HTML anchor ``id="T3.2"`` in each statement row's id cell
    (the other pages link to it) and links to the notebooks in the row's other cells."""
    lines = text.splitlines()
    for _, table in tables:
        id_col = table.column("id")
        for offset, row in enumerate(table.rows):
            if id_col < len(row) and _plain_id(row[id_col]):
                cells = [c if i == id_col else link_notebook_names(c, stems) for i, c in enumerate(row)]
                cells[id_col] = f'<span id="{_plain_id(row[id_col])}"></span>{row[id_col]}'
                lines[table.start + 2 + offset] = "| " + " | ".join(cells) + " |"
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- generated pages


def short_verdict(verdict: str) -> str:
    """The verdict's leading words, without the parenthesized conditions: ``holds with conditions``."""
    return re.split(r"\s[(;]", verdict.strip(), maxsplit=1)[0].rstrip(" .,")


def _fold(summary: str, body: str) -> str:
    """A closed ``<details>`` block (markdown body) that the page shows as one line."""
    return f'<details class="nlcl-fold"><summary>{summary}</summary>\n\n{body.strip()}\n\n</details>'


def statements_cell_text(nb: Notebook, statements: dict[str, Statement], measured: str = "") -> str:
    """The markdown shown under a notebook page's title: one line naming the statements its claims
    test with their verdicts (from the theory page), then two folds: the statements in full, and
    the table of its measured predictions (when given), whose summary line counts the verdicts."""
    if not nb.has_claims:
        return "**Statements tested here:** none recorded (this notebook has no `claims.json`)."
    if not nb.statements:
        return (
            "**Statements tested here:** not recorded yet: the claims in "
            f"`figures/{nb.stem}/claims.json` do not name the statements of the theory page they test."
        )
    known = set(statements)
    glance, items = [], []
    for sid in nb.statements:
        link = statement_link(sid, "../", known)
        row = statements.get(sid)
        glance.append(f"{link} {short_verdict(row.verdict)}" if row else link)
        items.append(f"* {link} — {row.text} *Verdict: {row.verdict}.*" if row else f"* {link}")
    parts = [
        "**Statements tested here:** " + " · ".join(glance),
        _fold("The statements in full, with their verdicts (each id links to its theory row)", "\n".join(items)),
    ]
    if measured:
        measured = re.sub(r"\bT\d+\.\d+\b", lambda m: statement_link(m.group(0), "../", known), measured)
        count = re.search(r"^\d+ predictions?: [^;\n]*", measured, re.M)
        summary = f"What this notebook measured: {count.group(0)}" if count else "What this notebook measured"
        parts.append(_fold(f"{summary} (the table, from <code>claims.json</code>)", measured))
    return "\n\n".join(parts)


def measured_predictions(stem: str, figures_dir: Path) -> str:
    """The README's table of a notebook's predictions, or "" when its claims.json predates the schema."""
    from nlcl_utils.notebook import claims
    from nlcl_utils.pipeline import readme

    path = figures_dir / stem / "claims.json"
    if not path.exists() or claims.schema_errors(json.loads(path.read_text())):
        return ""
    return readme.render(stem, figures_dir)


def landing_page(intro: str, notebooks: list[Notebook], theory_text: str | None) -> str:
    """index.md: what the paper claims, the statement table, the notebooks, a figure gallery."""
    tables = statement_tables(theory_text) if theory_text else []
    stems = {nb.stem for nb in notebooks}
    parts = [intro.rstrip(), ""]
    if theory_text is not None:
        parts += [
            "Each statement the notebooks test has an id (like `T1.1`); the [theory page](theory.md) states it, "
            "says whether it is the paper's, our reconstruction or derived here, and gives the verdict of the "
            "experiments.",
            "",
        ]
    parts += ["## Statements and verdicts", ""]
    if not tables:
        reason = "has no statement table yet" if theory_text else "is not in this checkout"
        parts.append(f"The theory page (`docs/theory.md`) {reason}; the notebooks below state their own claims.")
    else:
        parts.append(
            "Every statement the notebooks test, from the [theory page](theory.md): its provenance "
            "(from the paper, reconstructed by us, or derived here), where it is tested and the verdict."
        )
    for heading, table in tables:
        parts += ["", f"### {heading}" if heading else "", ""]
        id_col = table.column("id")
        parts.append("| " + " | ".join(table.header) + " |")
        parts.append("|" + "---|" * len(table.header))
        for row in table.rows:
            cells = [link_notebook_names(c, stems) for c in row]
            if id_col < len(cells) and _plain_id(row[id_col]):
                cells[id_col] = statement_link(_plain_id(row[id_col]), "", {_plain_id(row[id_col])})
            parts.append("| " + " | ".join(cells) + " |")
    known = set(statement_index(tables))
    parts += ["", "## Notebooks", ""]
    for nb in notebooks:
        ids = ", ".join(statement_link(s, "", known) for s in nb.statements) or "not recorded yet"
        parts.append(f"* [{nb.title}](notebooks/{nb.stem}.ipynb) — statements: {ids}")
    parts += ["", "## Figure gallery", ""]
    parts.append(
        "Every figure the notebooks write, in the order they tell it: click a figure for the full size, "
        "its caption for its notebook."
    )
    for nb in notebooks:
        if not nb.figures:
            continue
        parts += ["", f"### {nb.title}", "", "::::{container} gallery"]
        for png in nb.figures:
            caption = figure_caption(nb, png)
            parts += [
                f":::{{figure}} figures/{nb.stem}/{png.name}",
                f":alt: {caption}",
                "",
                f"[{caption}](notebooks/{nb.stem}.ipynb)",
                ":::",
            ]
        parts.append("::::")
    pages = (["theory"] if theory_text is not None else []) + [f"notebooks/{nb.stem}" for nb in notebooks]
    parts += ["", "```{toctree}", ":hidden:", ":maxdepth: 1", "", *pages, "reproduce", "```", ""]
    return "\n".join(parts)


# ---------------------------------------------------------------- staging and building


def _displayed_png_digests(book) -> set[str]:
    """sha256 of every PNG a notebook's outputs display."""
    return {digest for cell in book.cells for output in cell.get("outputs", []) for digest in _png_digests(output)}


# MyST-NB's cell tags that decide what of a code cell the page shows (both spellings it reads).
VISIBILITY_TAGS = frozenset(
    f"{verb}{sep}{part}" for verb in ("hide", "remove") for sep in "-_" for part in ("input", "output", "cell")
)
PARAMETERS_PROMPT = ("Show the parameters of this run (papermill overrides them)", "Hide the parameters")
# A claim or finding as ``nlcl_utils.notebook.claims`` prints it: verdict, statement id, name, value.
CLAIM_LINE = re.compile(r"^(?:HOLDS|REFUTED|UNDECIDED|FAILS|INVALID|NOTE) +T\d+\.\d+ ", re.M)
ALIGNED_COLUMNS = re.compile(r"\S {2,}\S")
WRAP_OUTPUT_TAG = "nlcl-wrap-output"  # MyST-NB turns it into the class tag_nlcl-wrap-output


def _printed(cell) -> str:
    return "".join(
        "".join(output.get("text", "")) for output in cell.get("outputs", []) if output.get("output_type") == "stream"
    )


def prints_claims(cell) -> bool:
    """Whether a code cell prints claim lines (verdict, statement, name, value)."""
    return bool(CLAIM_LINE.search(_printed(cell)))


def wraps_output(cell) -> bool:
    """Whether a code cell's printed text may wrap at the page width: claim lines always do; other
    text does unless two or more of its lines are aligned in columns (a table keeps its columns
    and scrolls sideways instead)."""
    text = _printed(cell)
    if not text or prints_claims(cell):
        return bool(text)
    return sum(bool(ALIGNED_COLUMNS.search(line.strip())) for line in text.splitlines()) < 2


def fold_code(cell) -> None:
    """A code cell as the reading version shows it: its own visibility tags (from the notebook's
    .py source) are kept; a cell without one shows its outputs and folds its source behind a
    "show" line, so that a page reads as text, figures and printed checks. The papermill
    ``parameters`` cell gets a prompt that names it, so the values of the run are easy to find.
    Printed text that is not a table is tagged to wrap, so that no number runs off the page."""
    tags = list(cell.metadata.get("tags", []))
    if not VISIBILITY_TAGS.intersection(tags):
        tags.append("hide-input")
    if wraps_output(cell):
        tags.append(WRAP_OUTPUT_TAG)
    cell.metadata["tags"] = tags
    if "parameters" in tags:
        show, hide = PARAMETERS_PROMPT
        prompts = {"code_prompt_show": show, "code_prompt_hide": hide}
        cell.metadata["mystnb"] = {**cell.metadata.get("mystnb", {}), **prompts}


def _markdown_parts(source: str) -> list[tuple[str, str]]:
    """A markdown cell cut at its headings: ("heading", line) and ("body", text) in order. Lines
    inside fenced code or a ``$$`` block are never taken for headings."""
    parts: list[tuple[str, list[str]]] = []
    fence, math = None, False
    for line in source.splitlines():
        stripped = line.strip()
        opener = re.match(r"(`{3,}|~{3,})", stripped)
        if fence is None and not math and re.match(r"#{1,6} ", line):
            parts.append(("heading", [line]))
            continue
        if fence is None and opener:
            fence = opener.group(1)
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is None and stripped.count("$$") % 2 == 1:
            math = not math
        if not parts or parts[-1][0] == "heading":
            parts.append(("body", []))
        parts[-1][1].append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in parts if "\n".join(lines).strip()]


def _lead(body: str) -> str | None:
    """The bold lead-in of a text (``**Batching does not change a number.** ...``), if it is plain."""
    match = re.match(r"\*\*([^*$`\\<>]+)\*\*", body)
    return match.group(1).strip() if match else None


def fold_markdown(source: str, keep_first_paragraph: bool = False, summary: str = "") -> str:
    """A markdown cell with its text folded behind one line and its headings left in place (so
    the page keeps its sections). The fold's line is ``summary`` if given, else the text's bold
    lead-in, else a plain "the text of this section". ``keep_first_paragraph`` leaves the first paragraph
    of the cell open (a notebook's claim under its title)."""
    out, heading = [], False
    for kind, text in _markdown_parts(source):
        if kind == "heading":
            out.append(text)
            heading = True
            continue
        if keep_first_paragraph:
            first, _, text = text.partition("\n\n")
            out.append(first)
            keep_first_paragraph = False
            if not text.strip():
                continue
        line = summary or _lead(text) or ("The text of this section" if heading else "More")
        out.append(_fold(html.escape(line, quote=False), text))
    return "\n\n".join(out)


FOLD_TAG = "hide-cell"  # on a markdown cell: the site folds its text (MyST-NB ignores it there)
INTRODUCTION_FOLD = "The rest of the introduction: sections, setting, conventions"


def source_tags(book, source: Path) -> None:
    """Cell tags of ``book`` (an executed notebook) replaced by those of its paired py:percent
    ``source``, the reviewed file where they are set, when the two have the same cells: how a cell
    is shown then follows the source without re-running the notebook. A pair whose cells differ
    keeps the executed notebook's tags."""
    import jupytext

    if not source.exists():
        return
    cells = jupytext.read(source).cells
    if [(c.cell_type, c.source.strip()) for c in cells] != [(c.cell_type, c.source.strip()) for c in book.cells]:
        return
    for executed, reviewed in zip(book.cells, cells):
        tags = list(reviewed.metadata.get("tags", []))
        if tags:
            executed.metadata["tags"] = tags
        else:
            executed.metadata.pop("tags", None)


def _page_notebook(nb: Notebook, statements: dict[str, Statement], figures_dir: Path):
    """The committed notebook (outputs untouched) as the site shows it: the cell tags of its .py
    source (:func:`source_tags`), code folded (:func:`fold_code`), the introduction and tagged
    text folded (:func:`fold_markdown`), the statements cell under its title and, at the end,
    any committed figure its outputs do not display."""
    import nbformat

    book = nbformat.read(nb.path, as_version=4)
    source_tags(book, nb.path.with_suffix(".py"))
    for i, c in enumerate(book.cells):
        if c.cell_type == "code":
            fold_code(c)
        elif c.cell_type == "markdown" and i == 0 and c.source.startswith("# "):
            c.source = fold_markdown(c.source, keep_first_paragraph=True, summary=INTRODUCTION_FOLD)
        elif c.cell_type == "markdown" and FOLD_TAG in c.metadata.get("tags", []):
            c.source = fold_markdown(c.source)
    cell = nbformat.v4.new_markdown_cell(
        statements_cell_text(nb, statements, measured_predictions(nb.stem, figures_dir))
    )
    cell.metadata["tags"] = [STATEMENTS_CELL_TAG]
    first_is_title = book.cells and book.cells[0].cell_type == "markdown" and book.cells[0].source.startswith("# ")
    book.cells.insert(1 if first_is_title else 0, cell)
    shown = _displayed_png_digests(book)
    missing = [png for png in nb.figures if hashlib.sha256(png.read_bytes()).hexdigest() not in shown]
    if missing:
        images = [f"![{figure_caption(nb, png)}](../figures/{nb.stem}/{png.name})" for png in missing]
        book.cells.append(
            nbformat.v4.new_markdown_cell(
                "## Other figures\n\nWritten by this notebook, not shown above.\n\n" + "\n\n".join(images)
            )
        )
    for i, c in enumerate(book.cells):  # deterministic cell ids
        c["id"] = f"cell-{i}"
    return book


# MathJax 3 as shipped by the django-static-mathjax package (the official es5 build; the
# package has no dependencies): the single-file TeX + SVG component, plus what its context menu
# loads on demand (accessibility, speech rules).
MATHJAX_FILES = ("tex-svg-full.js", "a11y", "sre", "ui")


def mathjax_es5() -> Path:
    """The folder of MathJax's es5 build inside the installed package (no CDN)."""
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    es5 = Path(spec.origin).parent / "static" / "mathjax" / "es5" if spec and spec.origin else None
    if es5 is None or not (es5 / MATHJAX_FILES[0]).exists():
        raise SiteError("MathJax not found: the site needs the 'site' extra: pip install -c constraints.txt '.[site]'")
    return es5


def _stage_mathjax(dest: Path) -> None:
    es5 = mathjax_es5()
    dest.mkdir(parents=True)
    shutil.copy2(es5.parent / "LICENSE", dest / "LICENSE")
    for name in MATHJAX_FILES:
        (shutil.copytree if (es5 / name).is_dir() else shutil.copy2)(es5 / name, dest / name)


def stage(src: Path, root: Path = REPO_ROOT) -> list[Notebook]:
    """Write the Sphinx source tree of the site into ``src`` (replacing it)."""
    import nbformat

    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(root / "site", src)
    _stage_mathjax(src / "_static" / "mathjax")
    notebooks = discover(root)
    theory_file = root / "docs" / "theory.md"
    theory_text = theory_file.read_text() if theory_file.exists() else None
    stems = {nb.stem for nb in notebooks}
    theory_text = rewrite_theory_links(theory_text, stems) if theory_text is not None else None
    tables = statement_tables(theory_text) if theory_text else []
    if theory_text is not None:
        (src / "theory.md").write_text(theory_page(theory_text, tables, stems))
        for png in (root / "docs").glob("**/*.png"):  # images the theory page may show
            (src / png.relative_to(root / "docs")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(png, src / png.relative_to(root / "docs"))
    intro = (root / "site" / "index_intro.md").read_text()
    (src / "index_intro.md").unlink()
    (src / "index.md").write_text(landing_page(intro, notebooks, theory_text))
    (src / "notebooks").mkdir()
    for nb in notebooks:
        nbformat.write(_page_notebook(nb, statement_index(tables), root / "figures"), src / "notebooks" / nb.path.name)
        (src / "figures" / nb.stem).mkdir(parents=True)
        for png in nb.figures:
            shutil.copy2(png, src / "figures" / nb.stem / png.name)
    return notebooks


def build(out: Path = BUILD / "site", root: Path = REPO_ROOT, quiet: bool = True) -> list[Notebook]:
    """Stage the sources and render the site into ``out`` (a fresh build every time)."""
    try:
        from sphinx.cmd.build import build_main
    except ImportError as exc:
        raise SiteError("the site needs the 'site' extra: pip install -c constraints.txt '.[site]'") from exc
    from nlcl_utils.pipeline.sitecheck import external_loads

    src = out.parent / f"{out.name}-src"
    doctrees = out.parent / f"{out.name}-doctrees"
    notebooks = stage(src, root)
    for stale in (out, doctrees):
        if stale.exists():
            shutil.rmtree(stale)
    args = ["-b", "html", "-E", "-W", "--keep-going", "-d", str(doctrees), str(src), str(out)]
    with warnings.catch_warnings():  # the theme's and MyST's use of APIs Sphinx will remove: not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        status = build_main((["-q"] if quiet else []) + args)
    if status != 0:
        raise SiteError(f"sphinx-build failed (sources staged in {src})")
    sources = out / "_sources"  # left empty by Sphinx when sources are not copied
    if sources.is_dir() and not any(sources.iterdir()):
        sources.rmdir()
    offenders = external_loads(out)
    if offenders:
        listing = "\n".join(f"  {page}: {url}" for page, url in offenders)
        raise SiteError(f"pages load assets from other hosts (the site must work offline):\n{listing}")
    return notebooks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nlcl site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILD / "site", help="output folder (default: build/site)")
    parser.add_argument("--verbose", action="store_true", help="show Sphinx's progress")
    args = parser.parse_args(argv)
    try:
        notebooks = build(args.out.resolve(), quiet=not args.verbose)
    except SiteError as exc:
        print(f"nlcl site: {exc}", file=sys.stderr)
        return 1
    print(f"site with {len(notebooks)} notebook pages written to {args.out}/index.html", file=sys.stderr)
    return 0
