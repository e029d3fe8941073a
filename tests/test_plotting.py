"""The save path's text check: a figure with clipped, overlapping or unreadably small text is refused."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from nlcl_utils.notebook import plotting  # noqa: E402


@pytest.fixture(autouse=True)
def theme():
    """The companion's theme, restored afterwards; every figure closed."""
    with matplotlib.rc_context():
        plotting.set_theme()
        yield
    plt.close("all")


def good_figure() -> Figure:
    """Two panels at the widest allowed size: labels, ticks, a legend, a colourbar, a suptitle."""
    fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"], layout="constrained")
    axes[0].plot([0, 1, 2], [0, 1, 4], label="data")
    axes[0].plot([0, 1, 2], [0, 2, 4], label="prediction")
    axes[0].set(xlabel="step", ylabel="loss", title="training")
    axes[0].legend()
    image = axes[1].imshow(np.arange(16.0).reshape(4, 4), cmap="rocket_r")
    axes[1].set(xlabel="token", ylabel="filter", title="driving matrix")
    fig.colorbar(image, ax=axes[1], label="|row| / max")
    axes[1].text(1, 1, "note", ha="center", va="center")
    fig.suptitle("A figure that reads well at the reading width")
    return fig


def test_a_good_figure_is_saved(tmp_path):
    fig = good_figure()
    assert plotting.text_problems(fig) == []
    plotting.savefig(fig, tmp_path, "good", show=False)
    assert (tmp_path / "good.png").stat().st_size > 0 and (tmp_path / "good.pdf").stat().st_size > 0


def test_a_broken_figure_is_refused_and_nothing_written(tmp_path):
    fig, axes = plt.subplots(1, 2, figsize=plotting.FIGSIZE["wide"])  # no layout engine: nothing moves
    for ax in axes:
        ax.plot([0, 1], [1, 2])
        ax.set_title("panel")
    axes[0].annotate("a note on the tick labels", xy=(0.5, -0.08), xycoords="axes fraction", ha="center")
    fig.suptitle("A suptitle lowered onto the panels", y=0.9)
    with pytest.raises(plotting.FigureTextError) as caught:
        plotting.savefig(fig, tmp_path, "broken", show=False)
    message = str(caught.value)
    assert "figure 'broken'" in message and "nothing written" in message
    assert "annotation 'a note on the tick labels' of axes 1" in message and "x tick label" in message
    assert "suptitle 'A suptitle lowered onto the panels'" in message
    assert not list(tmp_path.iterdir())
    assert plt.fignum_exists(fig.number)  # left open to be looked at


def test_a_colourbar_label_running_into_the_next_panel_is_named():
    fig = Figure(figsize=plotting.FIGSIZE["wide"])
    left, right = fig.add_axes((0.06, 0.15, 0.36, 0.7)), fig.add_axes((0.44, 0.15, 0.5, 0.7))
    image = left.imshow(np.eye(3))
    fig.colorbar(image, ax=left, label="a colourbar label")
    right.plot([0, 1], [0, 1])
    right.set_ylabel("the next panel's y label")
    problems = plotting.text_problems(fig)
    assert any("a colourbar label" in p and "the colourbar of axes 1" in p and "overlaps" in p for p in problems)


def test_colliding_tick_labels_of_one_axis_are_refused():
    fig, ax = plt.subplots(figsize=plotting.FIGSIZE["single"], layout="constrained")
    ax.set_xticks(range(20), [f"{t}*" for t in range(20)])
    problems = plotting.text_problems(fig)
    assert any(p.startswith("x tick label") and "overlaps x tick label" in p for p in problems)


def test_slanted_tick_labels_whose_boxes_overlap_are_allowed():
    fig, ax = plt.subplots(figsize=plotting.FIGSIZE["single"], layout="constrained")
    ax.set_xticks(range(5), ["a long category name"] * 5, rotation=45, ha="right", rotation_mode="anchor")
    assert plotting.text_problems(fig) == []


def test_text_outside_the_saved_image_is_refused():
    matplotlib.rcParams["savefig.bbox"] = None  # the image is the figure: anything beyond it is cut off
    fig, ax = plt.subplots(figsize=plotting.FIGSIZE["single"], layout="constrained")
    fig.text(0.9, 0.5, "a label placed past the edge")
    problems = plotting.text_problems(fig)
    assert any("text 'a label placed past the edge' of the figure falls" in p for p in problems)


def test_small_fonts_and_too_wide_figures_are_refused():
    fig, ax = plt.subplots(figsize=plotting.FIGSIZE["wide"], layout="constrained")
    ax.plot([0, 1], label="line")
    ax.legend(fontsize=7)
    (problem,) = plotting.text_problems(fig)
    assert problem.startswith("legend 'line' of axes 1 is 7 pt, 7.8 px when the") and "784 px wide" in problem

    narrow, ax = plt.subplots(figsize=plotting.FIGSIZE["single"], layout="constrained")  # shown at its own size
    ax.plot([0, 1], label="line")
    ax.legend(fontsize=6)
    (problem,) = plotting.text_problems(narrow)
    assert problem.startswith("legend 'line' of axes 1 is 6 pt") and "the theme's smallest is 9.5 pt" in problem

    wide, axes = plt.subplots(1, 3, figsize=(12.0, 3.4), layout="constrained")
    (problem,) = plotting.text_problems(wide)
    assert "the figure is 12 in wide, more than 9.6 in" in problem


def test_the_theme_keeps_every_text_legible_in_the_widest_figure():
    fig = good_figure()
    width_px = fig.get_tightbbox().width * plotting.DPI
    shrink = plotting.READING_WIDTH_PX / width_px
    smallest = min(plotting.FONT_PT.values())
    assert smallest * plotting.DPI / 72 * shrink >= plotting.MIN_TEXT_PX


def test_the_check_draws_the_figure_once(monkeypatch):
    fig = good_figure()
    draws = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(1) or original(self, renderer))
    plotting.text_problems(fig)
    assert len(draws) == 1


def test_dodged_series_are_joined_at_their_true_x():
    fig, ax = plt.subplots(figsize=plotting.FIGSIZE["single"], layout="constrained")
    plotting.dodged_errorbar(ax, [1, 2], [1.1, 2.1], [0.5, 0.5], [0.1, 0.1], color="C1", ls="--", marker="o", label="s")
    (line, *_) = ax.get_lines()
    assert list(line.get_xdata()) == [1, 2] and line.get_linestyle() == "--"
    bars = [c for c in ax.containers if c.get_label() != "s"]
    assert list(bars[0].lines[0].get_xdata()) == [1.1, 2.1] and bars[0].lines[0].get_linestyle() == "None"
    assert [text.get_text() for text in ax.legend().get_texts()] == ["s"]
