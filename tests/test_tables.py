"""Result tables: grouped intervals and Markdown / LaTeX rendering."""

import math

import pandas as pd

from nlcl_utils.experiments import tables
from nlcl_utils.experiments.tables import format_interval, interval_summary, latex_table, markdown_table
from nlcl_utils.stats import interval


def test_interval_summary_groups_in_order_with_the_claims_interval():
    frame = pd.DataFrame({"act": ["relu"] * 3 + ["linear"] * 2, "x": [1.0, 2.0, 3.0, 5.0, 7.0]})
    out = interval_summary(frame, ["act"], ["x"])
    assert list(out.act) == ["relu", "linear"] and list(out.n) == [3, 2]
    assert tuple(out.iloc[0][["x_mean", "x_low", "x_high"]]) == interval([1.0, 2.0, 3.0])


def test_markdown_and_latex_escape_their_special_characters():
    frame = pd.DataFrame({"row": ["leaky_relu | 5%"], "chi+": [format_interval(0.5, 0.25, 0.75)]})
    md = markdown_table(frame)
    assert md.splitlines() == ["| row | chi+ |", "| --- | --- |", "| leaky_relu \\| 5% | 0.500 [0.250, 0.750] |"]
    tex = latex_table(frame, "chi_plus & co", "tab:x")
    assert "leaky\\_relu | 5\\%" in tex and "\\caption{chi\\_plus \\& co}" in tex
    assert tex.count("\\\\") == 2 and "\\toprule" in tex and "\\bottomrule" in tex


def test_setting_summary_shows_only_what_varies_and_skips_missing_runs():
    frame = pd.DataFrame(
        {
            "activation": ["relu", "relu", "relu", "linear", "linear"],
            "beta": [5.0] * 5,
            "chi_plus": [1.0, 0.8, math.nan, 0.2, 0.4],
        }
    )
    table = tables.setting_summary(frame, ["activation", "beta"], ["chi_plus"])
    assert list(table.columns) == ["activation", "n", "chi_plus"]  # beta is the same everywhere
    assert table.n.tolist() == [2, 2]  # the NaN run is left out of relu's mean
    mean, low, high = interval([1.0, 0.8])
    assert table.chi_plus[0] == tables.format_interval(mean, low, high)
    single = tables.setting_summary(frame[frame.activation == "relu"], ["activation", "beta"], ["chi_plus"])
    assert list(single.columns) == ["n", "chi_plus"] and len(single) == 1
