"""Result tables: per-row mean and 95% interval over seeds, written as Markdown and LaTeX.

:func:`interval_summary` groups a tidy per-seed table (one row per run, e.g.
:func:`nlcl_utils.experiments.sweep.results_frame`) and adds, for every value column, its mean and the
95% Student t interval of :func:`nlcl_utils.stats.interval` (the interval the claims use).
:func:`markdown_table` and :func:`latex_table` render a table of strings so it can be pasted
into a README or a paper (LaTeX: ``booktabs`` rules, special characters escaped).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from nlcl_utils.stats import interval

_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def interval_summary(frame: pd.DataFrame, by: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """One row per group of ``by`` (first-appearance order): ``n`` and ``<v>_mean/_low/_high`` per value."""
    rows = []
    for key, group in frame.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n"] = len(group)
        for name in values:
            mean, low, high = interval(group[name].to_numpy(dtype=float))
            row.update({f"{name}_mean": mean, f"{name}_low": low, f"{name}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def format_interval(mean: float, low: float, high: float, digits: int = 3) -> str:
    """``"0.998 [0.996, 0.999]"``."""
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (cells as ``str``, ``|`` escaped)."""
    cell = lambda v: str(v).replace("|", "\\|")
    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def latex_table(frame: pd.DataFrame, caption: str, label: str) -> str:
    """A ``table`` environment with a ``booktabs`` tabular of ``frame`` (left-aligned text, every cell escaped)."""
    cols = "l" * len(frame.columns)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{cols}}}",
        "\\toprule",
        " & ".join(latex_escape(c) for c in frame.columns) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(latex_escape(v) for v in row) + " \\\\" for row in frame.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def setting_summary(frame: pd.DataFrame, settings: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Per setting, the columns of ``settings`` that differ between rows and each of ``values`` as
    ``"mean [low, high]"`` with its seed count ``n`` (rows with a NaN value are left out of that mean).

    With a single setting (nothing varies) the table has one row and no setting column.
    """
    varying = [c for c in settings if frame[c].astype(str).nunique() > 1]
    key = varying or ["_all"]
    data = frame.assign(_all="all") if not varying else frame
    summary = interval_summary(data.dropna(subset=list(values)), key, values)
    out = summary[varying].copy() if varying else pd.DataFrame(index=summary.index)
    out["n"] = summary["n"]
    for name in values:
        out[name] = [format_interval(m, lo, hi) for m, lo, hi in
                     summary[[f"{name}_mean", f"{name}_low", f"{name}_high"]].itertuples(index=False)]  # fmt: skip
    return out
