"""One theme and one deterministic ``savefig`` for every figure of the companion.

* :func:`set_theme` applies the seaborn theme used everywhere; :data:`PALETTE` and
  :data:`FIGSIZE` are the only colours and sizes notebooks should use, :data:`CMAPS` the
  only colour maps.
* :func:`figure_dir` says where a notebook's figures go: ``$NLCL_FIGURES_DIR/NN_name/``, set by
  ``nlcl figures`` (which alone publishes into the committed ``figures/``) and by the tests;
  ``build/figures/NN_name/`` otherwise, so a notebook run by hand or by plain papermill never
  overwrites committed figures. ``$NLCL_FIGURES_DIR`` naming a committed ``figures/`` tree (or
  a folder in it) is refused unless the caller is the publisher (``$NLCL_PUBLISHER``, set by
  ``nlcl figures`` in its kernels).
* :func:`savefig` writes PNG and PDF with all volatile metadata removed (same figure, same
  bytes) and shows the very same PNG inline when running in a Jupyter kernel.
* :func:`dodged_errorbar` draws series that share their x side by side without tilting them.
* :func:`check_text` is run by :func:`savefig` before anything is written: it refuses a figure
  whose text is cut off, overlaps other text or would be too small on the reading site, naming
  the figure and each offending text (see below).

Determinism needs the figure itself to be deterministic too: seaborn's ``stripplot`` jitter
draws from an unseeded generator, so use ``swarmplot`` (or jitter from a seeded generator).

Legibility. The reading site shows a figure at most :data:`READING_WIDTH_PX` pixels wide, so a
wider PNG is shrunk and its text with it. The theme's font sizes (:data:`FONT_PT`) are chosen so
that text stays at least :data:`MIN_TEXT_PX` pixels tall in the widest figure,
``FIGSIZE["wide"]`` (:data:`MAX_WIDTH_IN`); a wider figure shrinks its text below that and is
refused, and so is any text smaller than the theme's smallest size. Notebooks therefore pass no
font sizes of their own: the theme's sizes apply everywhere (tick labels, legends, annotations),
and a figure that needs more room gets fewer panels per row, more height or its legend under
the panels, not smaller text.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.rcParams["svg.hashsalt"] = "nlcl"  # fixed salt: deterministic SVG ids if SVG is ever written

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from nlcl_utils.publish import PUBLISHER_ENV  # noqa: E402

FIGURES_ENV = "NLCL_FIGURES_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]

PALETTE = sns.color_palette("colorblind")
# Colours with a meaning that every notebook shares.
COLORS = {"linear": PALETTE[0], "relu": PALETTE[1], "leaky_relu": PALETTE[2], "theory": "0.2", "other": PALETTE[7]}
# Colour maps of every heatmap: values in [0, 1] or [0, max] and values of both signs around 0.
CMAPS = {"sequential": "viridis", "diverging": "vlag"}
FIGSIZE = {"single": (4.8, 3.4), "wide": (9.6, 3.4), "grid": (9.6, 6.8)}
DPI = 120
# The reading site shows figures at most this many pixels wide (wider PNGs are scaled down).
READING_WIDTH_PX = 784
# Smallest font size, in pixels as the reader sees it, that any text of a figure may have.
MIN_TEXT_PX = 10.0
# No figure is wider than the wide one: the font sizes below are chosen for it.
MAX_WIDTH_IN = FIGSIZE["wide"][0]
# Font sizes in points. A 9.6-inch figure saved at DPI is about 1165 px wide with its margins, shown
# at 784 px: a factor 0.67, so 9.5 pt (15.8 px in the PNG) reads as 10.6 px.
FONT_PT = {"text": 10.0, "label": 11.0, "title": 11.0, "suptitle": 12.5, "tick": 10.0, "legend": 9.5}

_PNG_METADATA = {"Software": None}
_PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}


def set_theme() -> None:
    """Apply the companion's seaborn theme (call once per notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update(
        {"figure.dpi": DPI, "savefig.dpi": DPI, "savefig.bbox": "tight", "svg.hashsalt": "nlcl", "pdf.compression": 6}
    )
    matplotlib.rcParams.update(
        {
            "font.size": FONT_PT["text"],
            "axes.labelsize": FONT_PT["label"],
            "axes.titlesize": FONT_PT["title"],
            "figure.titlesize": FONT_PT["suptitle"],
            "figure.labelsize": FONT_PT["label"],
            "xtick.labelsize": FONT_PT["tick"],
            "ytick.labelsize": FONT_PT["tick"],
            "legend.fontsize": FONT_PT["legend"],
            "legend.title_fontsize": FONT_PT["legend"],
        }
    )


def dodged_errorbar(ax, x, shown_x, y, yerr, *, color, ls: str = "-", label: str | None = None, **style) -> None:
    """Means with error bars moved sideways to ``shown_x``, joined by a line at their true ``x``.

    Several series measured at the same x are drawn side by side so that their bars do not hide
    each other. A line through the moved points would put each series at a slightly wrong x, and
    tilt it wherever the points are not all moved alike (a shift by a factor on a linear axis);
    the line goes through the true x instead. ``style`` is passed to the markers
    and bars (``marker``, ``ms``, ``capsize``, ...); the legend entry shows line, marker and bar
    together.
    """
    ax.plot(x, y, ls=ls, color=color)
    ax.errorbar(shown_x, y, yerr=yerr, ls="none", color=color, **style)
    if label is not None:  # an empty series with the full style: the legend's entry
        ax.errorbar([], [], yerr=[], ls=ls, color=color, label=label, **style)


def committed_figures(path: str | Path) -> Path | None:
    """The committed figures tree that ``path`` is or lies in, else None.

    Committed: this checkout's ``figures/``, or any folder holding a ``MANIFEST.json`` next to
    a ``notebooks/`` folder (the same layout in another clone or a test's copy).
    """
    resolved = Path(path).resolve()
    committed = (REPO_ROOT / "figures").resolve()
    for folder in (resolved, *resolved.parents):
        if folder == committed or ((folder / "MANIFEST.json").is_file() and (folder.parent / "notebooks").is_dir()):
            return folder
    return None


def figure_dir(notebook: str) -> Path:
    """Directory for ``notebook``'s figures and claims.json (created if missing).

    ``$NLCL_FIGURES_DIR/notebook`` if that variable is set, else ``build/figures/notebook``
    (never the committed ``figures/``: only ``nlcl figures`` publishes there, and a
    ``$NLCL_FIGURES_DIR`` inside a committed tree raises ValueError unless ``$NLCL_PUBLISHER``
    is set, as ``nlcl figures`` does for its kernels).
    """
    base = os.environ.get(FIGURES_ENV)
    if base and not os.environ.get(PUBLISHER_ENV):
        committed = committed_figures(base)
        if committed is not None:
            raise ValueError(
                f"{FIGURES_ENV}: {base!r} is in the committed figures tree {committed}, which only `nlcl figures` "
                "writes; unset it (figures then go to build/figures/) or name a folder under build/"
            )
    root = Path(base) if base else REPO_ROOT / "build" / "figures"
    out = root / notebook
    out.mkdir(parents=True, exist_ok=True)
    return out


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the dependencies
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class FigureTextError(ValueError):
    """A figure's text would be clipped, hidden under other text, or too small to read."""


# Two boxes closer than this (pixels) in both directions do not count as overlapping.
_OVERLAP_TOLERANCE_PX = 1.0


@dataclass(frozen=True)
class _Text:
    """One drawn text artist: what it is, whose it is, and where it lands (display pixels)."""

    role: str  # "title", "x tick label", "legend", ...
    owner: str  # "axes 2 ('its title')", "the figure", ...
    text: str
    box: Bbox
    sizes_pt: tuple[float, ...]  # font sizes of its text (several for a legend)
    clip: Bbox | None  # the box it is clipped to, if any
    oblique: bool = False  # rotated by other than a multiple of 90 degrees: its box is larger than its glyphs

    def describe(self) -> str:
        shown = " ".join(self.text.split())
        shown = shown if len(shown) <= 48 else shown[:45] + "..."
        owner = self.owner.split(" (")[0] if self.role == "title" else self.owner  # its title is the text shown
        return f"{self.role} {shown!r} of {owner}"


def _shown(text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def _owner_names(fig: plt.Figure) -> dict[int, str]:
    """A readable name for each axes: its number (1 = first drawn), and its title if it has one."""
    names: dict[int, str] = {}
    plain = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for number, ax in enumerate(plain, start=1):
        title = next((t.get_text() for t in (ax.title, getattr(ax, "_left_title", None)) if t and _shown(t)), "")
        names[id(ax)] = f"axes {number}" + (f" ({' '.join(title.split())[:40]!r})" if title else "")
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            parent = getattr(getattr(getattr(ax, "_colorbar", None), "mappable", None), "axes", None)
            names[id(ax)] = "the colourbar" + (f" of {names[id(parent)]}" if id(parent) in names else "")
    return names


def _collect_texts(fig: plt.Figure, renderer) -> list[_Text]:
    """Every text artist that will be drawn, with its window extent under ``renderer``."""
    names = _owner_names(fig)
    found: list[_Text] = []

    def add(role: str, owner: str, artist) -> None:
        clip = artist.get_clip_box() if artist.get_clip_on() else None
        box = artist.get_window_extent(renderer)
        oblique = artist.get_rotation() % 90 != 0
        found.append(_Text(role, owner, artist.get_text(), box, (artist.get_fontsize(),), clip, oblique))

    def add_legend(owner: str, legend) -> None:
        if legend is None or not legend.get_visible():
            return
        texts = [t for t in (*legend.get_texts(), legend.get_title()) if _shown(t)]
        label = " / ".join(t.get_text() for t in texts)
        sizes = tuple(t.get_fontsize() for t in texts) or (legend.prop.get_size_in_points(),)
        found.append(_Text("legend", owner, label, legend.get_window_extent(renderer), sizes, None))

    for ax in fig.axes:
        if not ax.get_visible():
            continue
        owner = names[id(ax)]
        colorbar = ax.get_label() == "<colorbar>"
        for title in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)):
            if title is not None and _shown(title):
                add("title", owner, title)
        if ax.axison:
            for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                if not axis.get_visible():
                    continue
                if _shown(axis.label):
                    add("label" if colorbar else f"{letter}-axis label", owner, axis.label)
                for tick in axis._update_ticks():  # the ticks this draw shows (as matplotlib's own tight bbox)
                    for label in (tick.label1, tick.label2):
                        if _shown(label):
                            add(f"{letter} tick label", owner, label)
                if _shown(axis.offsetText):
                    add(f"{letter} offset text", owner, axis.offsetText)
        for text in ax.texts:
            if _shown(text):
                add("annotation", owner, text)
        add_legend(owner, ax.get_legend())
    roles = {"_suptitle": "suptitle", "_supxlabel": "x label", "_supylabel": "y label"}
    role_of = {id(getattr(fig, attr, None)): role for attr, role in roles.items()}
    for text in fig.texts:
        if _shown(text):
            add(role_of.get(id(text), "text"), "the figure", text)
    for legend in fig.legends:
        add_legend("the figure", legend)
    return found


def _saved_box(fig: plt.Figure, renderer) -> Bbox:
    """The part of the figure that ``savefig`` writes, in display pixels."""
    if matplotlib.rcParams["savefig.bbox"] != "tight":
        return fig.bbox
    pad = matplotlib.rcParams["savefig.pad_inches"]
    inches = fig.get_tightbbox(renderer).padded(pad)
    return Bbox(inches.get_points() * fig.dpi)


def _overlap(a: Bbox, b: Bbox) -> tuple[float, float]:
    return min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)


def text_problems(fig: plt.Figure) -> list[str]:
    """What :func:`check_text` objects to in ``fig`` (one line each; empty when the figure is fine).

    Draws the figure once without rendering (this runs its layout engine, as ``savefig`` does),
    then measures every text artist: tick labels, axis labels, titles, the suptitle, legends
    (each as its whole box), colourbar labels and annotations. A text is a problem when

    * it falls (partly) outside the saved image, or outside the box it is clipped to;
    * it overlaps another text (of another axes, of another kind, or of the same kind: two tick
      labels of one axis collide on the page just as well), except two texts of the same kind
      and axes of which one is rotated obliquely (slanted tick labels: their axis-aligned boxes
      overlap while the glyphs do not);
    * its font is smaller than the theme's smallest (:data:`FONT_PT`), or, once the saved PNG is
      shown :data:`READING_WIDTH_PX` wide, smaller than :data:`MIN_TEXT_PX` pixels.
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    texts = _collect_texts(fig, renderer)
    saved = _saved_box(fig, renderer)
    problems: list[str] = []

    tol = _OVERLAP_TOLERANCE_PX
    for text in texts:
        box = text.box
        out = max(saved.x0 - box.x0, box.x1 - saved.x1, saved.y0 - box.y0, box.y1 - saved.y1)
        if out > tol:
            problems.append(f"{text.describe()} falls {out:.0f} px outside the saved image")
        if text.clip is not None:
            clip = text.clip
            cut = max(clip.x0 - box.x0, box.x1 - clip.x1, clip.y0 - box.y0, box.y1 - clip.y1)
            if cut > tol:
                problems.append(f"{text.describe()} is cut off by its axes ({cut:.0f} px outside)")

    for i, first in enumerate(texts):
        for second in texts[i + 1 :]:
            width, height = _overlap(first.box, second.box)
            if width <= tol or height <= tol:
                continue
            if first.owner == second.owner and first.role == second.role and (first.oblique or second.oblique):
                continue
            problems.append(f"{first.describe()} overlaps {second.describe()} ({width:.0f} x {height:.0f} px)")

    save_dpi = matplotlib.rcParams["savefig.dpi"]
    save_dpi = fig.dpi if save_dpi == "figure" else float(save_dpi)
    width_px = saved.width / fig.dpi * save_dpi
    shrink = min(1.0, READING_WIDTH_PX / width_px)
    smallest_pt = min(FONT_PT.values())
    small: dict[tuple[str, str], list[tuple[float, _Text]]] = {}
    for text in texts:
        shown_px = min(text.sizes_pt) * save_dpi / 72 * shrink
        if shown_px < MIN_TEXT_PX - 1e-9 or min(text.sizes_pt) < smallest_pt - 1e-9:
            small.setdefault((text.role, text.owner), []).append((shown_px, text))
    if not small:
        return problems
    shown = f"when the {width_px:.0f} px wide image is shown {READING_WIDTH_PX} px wide"
    smallest_px, smallest = min((item for items in small.values() for item in items), key=lambda item: item[0])
    if fig.get_figwidth() > MAX_WIDTH_IN and smallest_px < MIN_TEXT_PX - 1e-9:
        problems.append(
            f"the figure is {fig.get_figwidth():g} in wide, more than {MAX_WIDTH_IN:g} in: its text shrinks down to "
            f"{smallest_px:.1f} px ({smallest.describe()}) {shown} (at least {MIN_TEXT_PX:g} px); "
            f"make it at most {MAX_WIDTH_IN:g} in wide"
        )
        return problems
    for items in small.values():
        shown_px, text = min(items, key=lambda item: item[0])
        more = f" (and {len(items) - 1} more like it)" if len(items) > 1 else ""
        problems.append(
            f"{text.describe()}{more} is {min(text.sizes_pt):g} pt, {shown_px:.1f} px {shown} (the theme's smallest "
            f"is {smallest_pt:g} pt, and at least {MIN_TEXT_PX:g} px is needed); leave font sizes to the theme"
        )
    return problems


def check_text(fig: plt.Figure, name: str) -> None:
    """Raise :class:`FigureTextError` naming ``name`` and each offending text if :func:`text_problems` finds any."""
    problems = text_problems(fig)
    if problems:
        shown = problems[:15] + ([f"... and {len(problems) - 15} more"] if len(problems) > 15 else [])
        raise FigureTextError(
            f"figure {name!r}: {len(problems)} text problem(s), nothing written:\n  " + "\n  ".join(shown)
        )


def savefig(fig: plt.Figure, out_dir: str | Path, name: str, show: bool = True) -> None:
    """Write ``out_dir/name.png`` and ``out_dir/name.pdf`` deterministically, then close ``fig``.

    First :func:`check_text`: a figure with clipped, overlapping or too small text raises
    :class:`FigureTextError` and nothing is written (the figure stays open, to be looked at).
    In a Jupyter kernel the written PNG is displayed inline (so the notebook embeds exactly
    the committed file). Returns nothing, so a notebook cell ending in ``savefig`` prints no
    (machine-specific) path.
    """
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"name: give a bare file stem such as 'basins', got {name!r}")
    check_text(fig, name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=_PNG_METADATA)
    png = buf.getvalue()
    (out / f"{name}.png").write_bytes(png)
    fig.savefig(out / f"{name}.pdf", format="pdf", metadata=_PDF_METADATA)
    plt.close(fig)
    if show and _in_kernel():
        from IPython.display import Image, display

        display(Image(data=png, format="png"))
