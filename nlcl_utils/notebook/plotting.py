"""One theme and one deterministic ``savefig`` for every figure of the companion.

* :func:`set_theme` applies the seaborn theme used everywhere; :data:`PALETTE` and
  :data:`FIGSIZE` are the only colours and sizes notebooks should use.
* :func:`figure_dir` says where a notebook's figures go: ``$NLCL_FIGURES_DIR/NN_name/``, set by
  ``nlcl figures`` (which alone publishes into the committed ``figures/``) and by the tests;
  ``build/figures/NN_name/`` otherwise, so a notebook run by hand or by plain papermill never
  overwrites committed figures. ``$NLCL_FIGURES_DIR`` naming a committed ``figures/`` tree (or
  a folder in it) is refused unless the caller is the publisher (``$NLCL_PUBLISHER``, set by
  ``nlcl figures`` in its kernels).
* :func:`savefig` writes PNG and PDF with all volatile metadata removed (same figure, same
  bytes) and shows the very same PNG inline when running in a Jupyter kernel.

Determinism needs the figure itself to be deterministic too: seaborn's ``stripplot`` jitter
draws from an unseeded generator, so use ``swarmplot`` (or jitter from a seeded generator).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.rcParams["svg.hashsalt"] = "nlcl"  # fixed salt: deterministic SVG ids if SVG is ever written

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from nlcl_utils.publish import PUBLISHER_ENV  # noqa: E402

FIGURES_ENV = "NLCL_FIGURES_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]

PALETTE = sns.color_palette("colorblind")
# Colours with a meaning that every notebook shares.
COLORS = {"linear": PALETTE[0], "relu": PALETTE[1], "leaky_relu": PALETTE[2], "theory": "0.2", "other": PALETTE[7]}
FIGSIZE = {"single": (4.8, 3.4), "wide": (9.6, 3.4), "grid": (9.6, 6.8)}
DPI = 120

_PNG_METADATA = {"Software": None}
_PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}


def set_theme() -> None:
    """Apply the companion's seaborn theme (call once per notebook)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, font_scale=0.9)
    matplotlib.rcParams.update(
        {"figure.dpi": DPI, "savefig.dpi": DPI, "savefig.bbox": "tight", "svg.hashsalt": "nlcl", "pdf.compression": 6}
    )


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


def savefig(fig: plt.Figure, out_dir: str | Path, name: str, show: bool = True) -> None:
    """Write ``out_dir/name.png`` and ``out_dir/name.pdf`` deterministically, then close ``fig``.

    In a Jupyter kernel the written PNG is displayed inline (so the notebook embeds exactly
    the committed file). Returns nothing, so a notebook cell ending in ``savefig`` prints no
    (machine-specific) path.
    """
    if not name or "/" in name or name.endswith((".png", ".pdf")):
        raise ValueError(f"name: give a bare file stem such as 'basins', got {name!r}")
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
