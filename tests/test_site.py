"""The reading version (``make site``): page assembly, offline assets, links, and every page in
headless Chromium at 1400x900 (no console error, no broken image, math typeset, no output cut
off at the right edge, printed claims visible in full, a notebook page's first figure within
three screen heights), with a screenshot of each page's first screen under
build/site-screenshots/.

The page-assembly tests need only nbformat. Building needs the ``site`` extra (Sphinx, MyST-NB,
the book theme, django-static-mathjax, Playwright) and the browser test needs Chromium
(Debian: ``apt-get install chromium``, or point ``$NLCL_CHROMIUM`` at a binary); without them
those tests skip and say what is missing. ``make test-site`` installs the extra first.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from nlcl_utils.notebook import claims
from nlcl_utils.pipeline import site, sitecheck

ROOT = Path(__file__).resolve().parents[1]
SITE_OUT = ROOT / "build" / "site"
SCREENSHOTS = ROOT / "build" / "site-screenshots"
SITE_EXTRA = ("sphinx", "myst_nb", "sphinx_book_theme", "mathjax")

THEORY = """# Theory

Intro with a [notebook link](../notebooks/01_one_layer_local_optima.py) and a
[package link](../nlcl_utils/theory/dynamics.py).

| other | table |
|---|---|
| a | b |

## T1 · One layer (notebook 01)

| id | statement | provenance | tested in | verdict |
| --- | --- | --- | --- | --- |
| **T1.1** | linear: one optimum | paper | `01_one_layer_local_optima`: optima count | holds |
| T1.2 | relu: many optima, $\\lvert w \\rvert = 1$ | reconstructed | 01: slope sweep | open |

## T2 · Two layers

| id | statement | provenance | tested in | verdict |
| --- | --- | --- | --- | --- |
| T2.1 | linear: no specialization | paper | 02 | holds |
"""


# ---------------------------------------------------------------- page assembly (no Sphinx)


def test_statement_tables_are_those_with_id_and_verdict_columns_under_their_headings():
    tables = site.statement_tables(THEORY)
    assert [heading for heading, _ in tables] == ["T1 · One layer (notebook 01)", "T2 · Two layers"]
    assert [row[0] for row in tables[0][1].rows] == ["**T1.1**", "T1.2"]
    assert site.statement_tables("| a | b |\n|---|---|\n| 1 | 2 |\n") == []
    index = site.statement_index(tables)
    assert list(index) == ["T1.1", "T1.2", "T2.1"]
    assert index["T1.2"].verdict == "open" and index["T2.1"].text == "linear: no specialization"


def test_escaped_bars_stay_inside_a_cell():
    assert site.split_row(r"| T1 | $\|w\|$ | x |") == ["T1", r"$\|w\|$", "x"]


def test_claim_statements_in_table_order_and_absent_field_tolerated():
    doc = {
        "notebook": "01",
        "claims": [{"name": "a", "statement": "T1.10"}, {"name": "b"}, {"name": "c", "statement": "T1.2"}],
        "findings": [{"name": "d", "statement": "T1.10"}, {"name": "e", "statement": "T0.3"}],
    }
    assert site.claim_statements(doc) == ["T0.3", "T1.2", "T1.10"]
    assert site.claim_statements({"claims": [{"name": "no statement yet"}]}) == []


def test_theory_links_point_inside_the_site():
    stems = {"01_one_layer_local_optima"}
    text = site.rewrite_theory_links(THEORY, stems)
    assert "[notebook link](notebooks/01_one_layer_local_optima.ipynb)" in text
    assert "package link" in text and "nlcl_utils/theory/dynamics.py" not in text
    page = site.theory_page(text, site.statement_tables(text), stems | {"02_two_layer"})
    for anchor in ('<span id="T1.1"></span>**T1.1**', '<span id="T1.2"></span>T1.2', '<span id="T2.1"></span>T2.1'):
        assert anchor in page
    assert "| [01](notebooks/01_one_layer_local_optima.ipynb): slope sweep |" in page
    assert "| [02](notebooks/02_two_layer.ipynb) |" in page


def test_notebook_names_and_numbers_in_table_cells_become_links():
    stems = {"01_one_layer_local_optima"}
    cell = "`01_one_layer_local_optima`: optima count; 01_one_layer_local_optima.py; 09_unknown"
    linked = site.link_notebook_names(cell, stems)
    assert linked.count("](notebooks/01_one_layer_local_optima.ipynb)") == 2
    assert "09_unknown" in linked and "notebooks/09_unknown" not in linked
    assert (
        site.link_notebook_names("01: slope sweep", stems)
        == "[01](notebooks/01_one_layer_local_optima.ipynb): slope sweep"
    )
    assert site.link_notebook_names("01", stems) == "[01](notebooks/01_one_layer_local_optima.ipynb)"
    assert site.link_notebook_names("05", stems) == "05"  # no such notebook: no link


def _notebook(statements: list[str], has_claims: bool = True) -> site.Notebook:
    return site.Notebook("01_x", Path("01_x.ipynb"), "01 · x", statements, has_claims, [])


def test_statements_cell_names_each_statement_with_its_verdict():
    index = site.statement_index(site.statement_tables(THEORY))
    text = site.statements_cell_text(_notebook(["T1.2", "T9.9"]), index, measured="| T2.1 | a table |")
    assert 'href="../theory.html#T1.2"' in text and "Verdict: open" in text
    assert "T9.9" in text and "theory.html#T9.9" not in text  # no row, so no dangling link
    assert '| <a class="statement-id" href="../theory.html#T2.1">T2.1</a> | a table |' in text


def test_statements_cell_gives_the_verdicts_in_one_line_and_folds_the_details():
    index = site.statement_index(site.statement_tables(THEORY))
    table = "| statement | measured |\n|---|---|\n| T1.2 | 8 |"
    measured = table + "\n\n3 predictions: 2 hold, 1 refuted, 0 undecided; 4/4 checks"
    text = site.statements_cell_text(_notebook(["T1.1", "T1.2"]), index, measured=measured)
    first_line = text.splitlines()[0]
    assert 'T1.1</a> holds · <a class="statement-id" href="../theory.html#T1.2">T1.2</a> open' in first_line
    assert text.count('<details class="nlcl-fold">') == text.count("</details>") == 2
    assert "<summary>What this notebook measured: 3 predictions: 2 hold, 1 refuted, 0 undecided" in text
    assert site.short_verdict("holds with conditions (t ≥ 1; random directions)") == "holds with conditions"
    assert site.short_verdict("refuted at τ = 0.1 and 0.5 (the node is off)") == "refuted at τ = 0.1 and 0.5"


def test_notebook_code_is_folded_and_its_own_visibility_tags_are_kept():
    import nbformat

    def cell(tags=(), printed=""):
        c = nbformat.v4.new_code_cell("x = 1", metadata={"tags": list(tags)} if tags else {})
        if printed:
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
        return c

    claims_line = "HOLDS     T1.3  every flow trajectory converged (default task): 13000 == 13000\n"
    table = " slope  optima  captured\n   0.1       8         8\n   0.2       8         8\n"
    cells = [cell(), cell(["parameters"]), cell(["hide-cell"]), cell(printed=claims_line), cell(printed=table)]
    for c in cells:
        site.fold_code(c)
    tags = [c.metadata["tags"] for c in cells]
    assert tags[0] == ["hide-input"] and tags[2] == ["hide-cell"]
    assert tags[1] == ["parameters", "hide-input"]  # papermill still finds its cell
    assert cells[1].metadata["mystnb"]["code_prompt_show"].startswith("Show the parameters")
    assert site.WRAP_OUTPUT_TAG in tags[3] and site.WRAP_OUTPUT_TAG not in tags[4]  # a table keeps its columns


def test_markdown_folds_keep_headings_and_the_claim_in_view():
    intro = "# 07 · x\n\n**Claim.** it holds.\n\nSections:\n\n1. one\n2. two"
    folded = site.fold_markdown(intro, keep_first_paragraph=True, summary="The rest")
    assert folded.startswith("# 07 · x\n\n**Claim.** it holds.\n\n<details")
    assert "<summary>The rest</summary>" in folded and folded.endswith("1. one\n2. two\n\n</details>")
    section = "## 2. Flow\n\n**Checks of the solver** (not evidence).\n\n```\n# a comment, not a heading\n```"
    folded = site.fold_markdown(section)
    assert folded.startswith("## 2. Flow\n\n<details") and "<summary>Checks of the solver</summary>" in folded
    assert folded.count("<details") == 1  # the fenced line is no heading
    assert "<summary>The text of this section</summary>" in site.fold_markdown("## $x$ heading\n\nSome $y$.")


def test_statements_cell_says_so_when_claims_name_no_statement():
    assert "not recorded yet" in site.statements_cell_text(_notebook([]), {})
    assert "no `claims.json`" in site.statements_cell_text(_notebook([], has_claims=False), {})


def test_measured_predictions_only_from_a_claims_json_that_follows_the_schema(tmp_path):
    checks = claims.Claims("01_x")
    checks.prediction("optima count", "T1.2", measured=8, op="==", threshold=8, threshold_source="one per cluster")
    checks.identity("gradient identity", "T0.4", measured=1e-15, op="<=", threshold=1e-10, threshold_source="f64")
    checks.save(tmp_path / "01_x")
    text = site.measured_predictions("01_x", tmp_path)
    assert "optima count" in text and "gradient identity" not in text  # predictions only, as in the README
    (tmp_path / "02_y").mkdir()
    (tmp_path / "02_y" / "claims.json").write_text('{"notebook": "02_y", "claims": [{"name": "older format"}]}')
    assert site.measured_predictions("02_y", tmp_path) == ""
    assert site.measured_predictions("03_z", tmp_path) == ""


def test_notebook_page_adds_the_committed_figures_its_outputs_do_not_show(tmp_path):
    import base64

    import nbformat

    shown, other = b"\x89PNG shown figure", b"\x89PNG figure only saved"
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_markdown_cell("# 07 · x"), nbformat.v4.new_code_cell("plot()")]
    book.cells[1].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(shown).decode()})
    ]
    nbformat.write(book, tmp_path / "07_x.ipynb")
    (tmp_path / "a_shown.png").write_bytes(shown)
    (tmp_path / "b_saved.png").write_bytes(other)
    nb = site.Notebook("07_x", tmp_path / "07_x.ipynb", "07 · x", [], False, sorted(tmp_path.glob("*.png")))
    page = site._page_notebook(nb, {}, tmp_path)
    assert [c.cell_type for c in page.cells] == ["markdown", "markdown", "code", "markdown"]  # statements 2nd
    assert "![b saved](../figures/07_x/b_saved.png)" in page.cells[-1].source
    assert "a_shown" not in page.cells[-1].source
    assert [c.id for c in page.cells] == ["cell-0", "cell-1", "cell-2", "cell-3"]


def test_figures_come_in_the_order_the_notebook_shows_them(tmp_path):
    import base64

    import nbformat

    pngs = {name: tmp_path / f"{name}.png" for name in ("a_last", "b_first", "c_saved_only", "d_never_named")}
    for name, path in pngs.items():
        path.write_bytes(f"\x89PNG {name}".encode())
    book = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_code_cell("plot()")
    shown.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(pngs[n].read_bytes()).decode()})
        for n in ("b_first", "a_last")
    ]
    saves = nbformat.v4.new_code_cell('savefig(fig, out, "c_saved_only")')
    book.cells = [nbformat.v4.new_code_cell("x = 1"), shown, saves]
    order = site.narrative_order(book, sorted(pngs.values()))
    assert [p.stem for p in order] == ["b_first", "a_last", "c_saved_only", "d_never_named"]


def test_every_committed_figure_has_a_caption_and_every_caption_a_figure():
    notebooks = site.discover()
    assert site.caption_problems(notebooks, site.load_captions()) == []
    for nb in notebooks:
        for png in nb.figures:
            caption = site.figure_caption(nb, png)
            assert caption.endswith(".") and len(caption) > 30, f"{nb.stem}/{png.name}: {caption!r} is not a sentence"
    extra = {"99_gone": {"x": "A caption of nothing."}}
    assert site.caption_problems(notebooks, extra)[-1] == "captions for 99_gone: no such notebook"


def test_gallery_follows_the_notebooks_with_captions():
    nb = site.Notebook("01_x", Path("01_x.ipynb"), "01 · x", [], True, [Path("z_first.png"), Path("a_second.png")])
    nb.captions = {"z_first": "The first figure, captioned."}
    page = site.landing_page("# Title\n", [nb], None)
    assert page.index("z_first.png") < page.index("a_second.png")
    assert "[The first figure, captioned.](notebooks/01_x.ipynb)" in page and "[a second](notebooks/01_x.ipynb)" in page


def test_theory_page_writes_formulas_as_math_not_code():
    theory = ROOT / "docs" / "theory.md"
    if not theory.exists():
        pytest.skip("docs/theory.md is not in this checkout")
    assert sitecheck.formulas_in_code(theory.read_text()) == []
    sample = "Files: `claims.json`, `metrics.random_span_filters`.\n\n    L = τ Σ_i x\n\nSee `E_α = ½ tr C_α[f]`."
    assert sitecheck.formulas_in_code(sample) == ["L = τ Σ_i x", "E_α = ½ tr C_α[f]"]


def test_landing_page_without_theory_still_lists_notebooks():
    page = site.landing_page("# Title\n", [_notebook(["T1.1"])], None)
    assert "is not in this checkout" in page and "theory.md" not in page.replace("docs/theory.md", "")
    assert "[01 · x](notebooks/01_x.ipynb)" in page


def test_every_committed_notebook_is_discovered_with_its_figures():
    notebooks = site.discover()
    assert [nb.path.name for nb in notebooks] == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for nb in notebooks:
        assert nb.title and sorted(nb.figures) == sorted((ROOT / "figures" / nb.stem).glob("*.png"))
        claims_file = ROOT / "figures" / nb.stem / "claims.json"
        if claims_file.exists():
            assert nb.statements == site.claim_statements(json.loads(claims_file.read_text()))


# ---------------------------------------------------------------- static checks on small pages


def test_sitecheck_flags_remote_assets_but_not_remote_links(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><head><script src="https://cdn.example/x.js"></script>'
        '<link rel="stylesheet" href="//cdn.example/y.css"><link rel="canonical" href="https://example.org/a">'
        '</head><body><a href="https://arxiv.org/abs/2206.01342">paper</a>'
        '<img src="http://img.example/z.png"><div style="background: url(https://bg.example/b.png)"></div>'
        "</body></html>"
    )
    (tmp_path / "s.css").write_text("@import 'https://fonts.example/f.css'; .x { background: url(local.png) }")
    found = sorted(url for _, url in sitecheck.external_loads(tmp_path))
    assert found == [
        "//cdn.example/y.css",
        "http://img.example/z.png",
        "https://bg.example/b.png",
        "https://cdn.example/x.js",
        "https://fonts.example/f.css",
    ]


def test_sitecheck_flags_missing_files_and_missing_anchors(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text(
        '<p id="here"></p><a href="sub/b.html#there">ok</a><a href="sub/b.html#nowhere">bad anchor</a>'
        '<a href="#here">ok</a><a href="missing.html">bad file</a><img src="sub/pic.png">'
    )
    (tmp_path / "sub" / "b.html").write_text('<h1 id="there">b</h1><a href="../a.html">ok</a>')
    assert sorted(link for _, link in sitecheck.broken_links(tmp_path)) == [
        "missing.html",
        "sub/b.html#nowhere",
        "sub/pic.png",
    ]


# ---------------------------------------------------------------- the built site


def _tree_status() -> str:
    """git's view of the working tree (tracked changes and untracked files; build/ is ignored)."""
    run = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True)
    return run.stdout.decode() if run.returncode == 0 else "(not a git checkout)"


TREE_STATUS: dict[str, str] = {}


@pytest.fixture(scope="module")
def built_site() -> Path:
    missing = [name for name in SITE_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the site extra is not installed (missing {', '.join(missing)}): run `make test-site`")
    TREE_STATUS["before"] = _tree_status()
    site.build(SITE_OUT)
    TREE_STATUS["after"] = _tree_status()
    return SITE_OUT


def test_site_has_every_page(built_site):
    expected = {"index.html", "reproduce.html"} | {f"notebooks/{nb.stem}.html" for nb in site.discover()}
    if (ROOT / "docs" / "theory.md").exists():
        expected.add("theory.html")
    built = {str(p.relative_to(built_site)) for p in sitecheck.pages(built_site)}
    assert expected <= built, f"missing pages: {sorted(expected - built)}"


def test_site_loads_nothing_from_other_hosts(built_site):
    assert sitecheck.external_loads(built_site) == []


def test_site_links_resolve(built_site):
    assert sitecheck.broken_links(built_site) == []


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_notebook_pages_show_their_statements_and_every_committed_figure(built_site):
    for nb in site.discover():
        page = built_site / "notebooks" / f"{nb.stem}.html"
        html = page.read_text()
        assert "Statements tested here" in html
        for statement in nb.statements:
            assert f">{statement}<" in html
        shown = {_sha256(page.parent / src) for src in re.findall(r'<img[^>]*\ssrc="([^":]+)"', html)}
        missing = [png.name for png in nb.figures if _sha256(png) not in shown]
        assert missing == [], f"{nb.stem}: committed figures not on its page: {missing}"


def test_site_build_leaves_the_committed_tree_alone(built_site):
    # everything the build writes is under build/ (ignored by git): no file appears or changes elsewhere
    assert TREE_STATUS["after"] == TREE_STATUS["before"]


# ---------------------------------------------------------------- every page in headless Chromium

# Waits until MathJax has typeset the page (startup.promise resolves after the first
# typeset), then makes every image load now (lazy images below the fold included).
SETTLE_JS = """async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.decode().catch(() => null)));
}"""

# What a reader sees: math elements (Sphinx marks them .math.notranslate) that MathJax did not
# turn into an <mjx-container>, TeX errors, broken images, and the visible text outside code
# blocks and typeset math (raw $...$ or \\( \\) left there means math was not typeset).
INSPECT_JS = """() => {
  const math = Array.from(document.querySelectorAll(".math.notranslate"));
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, mjx-container").forEach(el => el.remove());
  clone.style.position = "absolute"; clone.style.left = "-99999px";
  document.body.appendChild(clone);
  const text = clone.innerText;
  clone.remove();
  return {
    math: math.length,
    untypeset: math.filter(el => !el.querySelector("mjx-container")).map(el => el.textContent.slice(0, 80)),
    texErrors: document.querySelectorAll("mjx-merror, [data-mjx-error]").length,
    mathjaxLoaded: !!(window.MathJax && MathJax.startup),
    brokenImages: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
    text: text,
  };
}"""
RAW_MATH = re.compile(r"\$[^$\s][^$]*\$|\\\(|\\\)|\\\[|\\\]|\\begin\{")

# The screen a reader is assumed to have; a notebook page's first figure must start within
# FIGURE_WITHIN_SCREENS screen heights of the top.
SCREEN = {"width": 1400, "height": 900}
FIGURE_WITHIN_SCREENS = 3

# What the layout hides: the top of the first figure a notebook's outputs show, and every
# printed output, table or display equation whose content is wider than its box while the box
# neither scrolls nor wraps (so the rest is cut off). Printed claims (a verdict, a statement id,
# a name, a value) must be visible in full: no sideways scrolling either.
LAYOUT_JS = """() => {
  const article = document.querySelector(".bd-article") || document.body;
  const figure = article.querySelector("div.cell_output img");
  const claimLine = /^(HOLDS|REFUTED|UNDECIDED|FAILS|INVALID|NOTE) +T\\d+\\.\\d+ /m;
  const cut = [], claimsScroll = [];
  article.querySelectorAll("div.cell_output pre, table, div.math, mjx-container[display='true']").forEach(el => {
    const wider = el.scrollWidth > el.clientWidth + 1;
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
    const text = (el.innerText || "").trim().slice(0, 60);
    if (el.tagName === "PRE" && claimLine.test(el.innerText) && wider) claimsScroll.push(text);
    else if (wider && !scrolls && el.closest(".pst-scrollable-table-container") === null) cut.push(text);
  });
  return {
    firstFigureTop: figure ? figure.getBoundingClientRect().top + window.scrollY : null,
    cut: cut,
    claimsScroll: claimsScroll,
  };
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the test output
        pass


@pytest.fixture(scope="module")
def served_site(built_site):
    """The built site over HTTP on the loopback interface, as a static host would serve it."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _chromium() -> str:
    path = os.environ.get("NLCL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("headless Chromium not found: `apt-get install chromium` (Debian) or set NLCL_CHROMIUM")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: run `make test-site` (the site extra)")
    return path


def _check_page(browser, base: str, page_path: str, shot: Path) -> list[str]:
    """Open one page; return what is wrong with it and save its screenshot."""
    problems: list[str] = []
    page = browser.new_page(viewport=SCREEN)
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error: {msg.text}"))
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda resp: resp.status >= 400 and problems.append(f"HTTP {resp.status}: {resp.url}"))

    def local_only(route):
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            problems.append(f"request to another host: {route.request.url}")
            route.abort()

    page.route("**/*", local_only)
    page.goto(f"{base}/{page_path}", wait_until="load")
    page.evaluate(SETTLE_JS)
    seen = page.evaluate(INSPECT_JS)
    if seen["math"] and not seen["mathjaxLoaded"]:
        problems.append(f"MathJax did not load; {seen['math']} math elements shown as TeX")
    problems += [f"math not typeset: {tex!r}" for tex in seen["untypeset"][:5]]
    if seen["texErrors"]:
        problems.append(f"{seen['texErrors']} TeX errors shown")
    problems += [f"broken image: {src}" for src in seen["brokenImages"]]
    problems += [f"raw TeX in the text: {m!r}" for m in sorted(set(RAW_MATH.findall(seen["text"])))[:5]]
    if page_path == "theory.html" and not seen["math"]:
        problems.append("no typeset math on the theory page")
    layout = page.evaluate(LAYOUT_JS)
    problems += [f"content cut off at the right edge: {text!r}" for text in layout["cut"][:5]]
    problems += [f"printed claims wider than their box: {text!r}" for text in layout["claimsScroll"][:5]]
    limit = FIGURE_WITHIN_SCREENS * SCREEN["height"]
    if page_path.startswith("notebooks/") and (layout["firstFigureTop"] or 0) >= limit:
        problems.append(f"first figure at {layout['firstFigureTop']:.0f} px, not within {limit} px (3 screens)")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot))  # the first screen, as a reader opening the page sees it
    page.close()
    return [f"{page_path}: {p}" for p in problems]


def test_every_page_in_headless_chromium(served_site, built_site):
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            for html in sitecheck.pages(built_site):
                rel = html.relative_to(built_site).as_posix()
                problems += _check_page(browser, served_site, rel, SCREENSHOTS / rel.replace(".html", ".png"))
            problems += _check_search(browser, served_site)
        finally:
            browser.close()
    assert problems == [], "\n".join(problems)


def _check_search(browser, base: str, word: str = "contrastive") -> list[str]:
    """The search page (client-side, from searchindex.js) finds a word every notebook page uses."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page()
    try:
        page.goto(f"{base}/search.html?q={word}", wait_until="load")
        page.wait_for_selector("ul.search li a", timeout=20_000)
        hits = page.eval_on_selector_all("ul.search li a", "links => links.map(a => a.getAttribute('href'))")
    except PlaywrightTimeout:
        hits = []
    finally:
        page.close()
    if not any("notebooks/" in h for h in hits):
        return [f"search.html?q={word}: no notebook page among the results {hits}"]
    return []
