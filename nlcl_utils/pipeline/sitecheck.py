"""Static checks of a built site (``build/site``): nothing loaded from other hosts, no broken links.

``external_loads`` lists every script, style sheet, image, font, frame or media file that a
page or a style sheet would fetch from an absolute ``http(s)://`` (or protocol-relative
``//``) address; plain ``<a href>`` links to other sites are navigation, not loads, and are
allowed. ``broken_links`` lists every relative ``href``/``src`` that does not resolve to a file
of the site, or whose ``#fragment`` names no element of the target page. ``formulas_in_code``
lists the formulas a markdown page writes as code instead of math.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# attributes through which a tag makes the browser fetch something when the page loads
LOADING_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
}
NAVIGATION_RELS = {"canonical", "alternate", "author", "license", "help", "search", "next", "prev", "index"}
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")


def is_remote(url: str) -> bool:
    return bool(re.match(r"(?i)(https?:)?//", url.strip()))


class _PageParser(HTMLParser):
    """Collects a page's ids, its links (href/src) and the addresses it loads."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.loads: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for name in LOADING_ATTRS.get(tag, ()):
            if attrs.get(name):
                urls = [part.split()[0] for part in attrs[name].split(",") if part.strip()]
                self.loads += urls if name == "srcset" else [attrs[name]]
                self.links += urls if name == "srcset" else [attrs[name]]
        if tag == "link" and attrs.get("href"):
            rels = set(attrs.get("rel", "").lower().split())
            if not rels <= NAVIGATION_RELS:
                self.loads.append(attrs["href"])
            self.links.append(attrs["href"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if attrs.get("style"):
            self.loads += CSS_URL.findall(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.loads += CSS_URL.findall(data)


def _parse(page: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    return parser


def pages(site: Path) -> list[Path]:
    """The site's HTML pages (``_static/`` holds theme template fragments, not pages)."""
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts)


def external_loads(site: Path) -> list[tuple[str, str]]:
    """(page or style sheet, address) for everything fetched from another host."""
    found = []
    for page in pages(site):
        found += [(str(page.relative_to(site)), url) for url in _parse(page).loads if is_remote(url)]
    for sheet in sorted(site.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        found += [(str(sheet.relative_to(site)), url) for url in CSS_URL.findall(text) if is_remote(url)]
    return found


def broken_links(site: Path) -> list[tuple[str, str]]:
    """(page, link) for every relative link that does not resolve inside the site."""
    parsed = {page.resolve(): _parse(page) for page in pages(site)}
    broken = []
    for page in pages(site):
        for link in parsed[page.resolve()].links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / unquote(parts.path) if parts.path else page).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file() or not target.resolve().is_relative_to(site.resolve()):
                broken.append((str(page.relative_to(site)), link))
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in parsed[target].ids:
                broken.append((str(page.relative_to(site)), link))
    return broken


# Characters that mark a formula: Greek letters and the operators the theory page uses.
FORMULA_MARKS = re.compile(r"[\u0370-\u03ff∇∑Σ‖≤≥≠∈∝²ᵀ½−→∂√∞⊥]| = ")


def formulas_in_code(markdown: str) -> list[str]:
    """Code spans and code blocks of a markdown page that hold a formula: the site would show
    them as monospace text, not typeset (write them as ``$...$`` / ``$$...$$`` math)."""
    found = []
    fence, block = None, []
    for line in markdown.splitlines():
        opener = re.match(r"\s*(`{3,}|~{3,})", line)
        if fence is None and opener:
            fence, block = opener.group(1), []
        elif fence is not None and line.strip().startswith(fence):
            found += ["\n".join(block)] if FORMULA_MARKS.search("\n".join(block)) else []
            fence = None
        elif fence is not None:
            block.append(line)
        elif re.match(r"( {4,}|\t)\S", line) and not re.match(r"\s*([*+-]|\d+\.)\s", line):
            found += [line.strip()] if FORMULA_MARKS.search(line) else []
        else:
            found += [span for span in re.findall(r"`([^`]+)`", line) if FORMULA_MARKS.search(span)]
    return found
