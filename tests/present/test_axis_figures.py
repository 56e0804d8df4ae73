"""The second-axis figures and report, on small hand-made tables: a categorical axis in
the user's order and drawn as categories, readable tick labels on a numeric axis, a
heatmap whose labels do not collide."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from bvsim.present import style

from .test_figures import _fake_run

#: A categorical axis as a user listed it (``sweep.axis_labels``): not alphabetical.
NAMES = ["l2", "l1", "decoupled"]


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(style, "DPI", 60)
    yield
    plt.close("all")


def _axis_summary(tmp_path, axis: str, values: list) -> pd.DataFrame:
    """A combined ``summary.csv``: one fake run per value (``axis`` its first column,
    in the order of ``values``), each value's errors a little apart."""
    base = _fake_run(tmp_path / "one").summary
    parts = []
    for i, v in enumerate(values):
        s = base.copy()
        s[["expected_error", "bias2"]] += 0.01 * i
        s.insert(0, axis, v)
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


def _ticks(labels) -> list[str]:
    return [t.get_text() for t in labels]


def test_a_categorical_axis_keeps_the_users_order_in_every_figure_and_the_report(tmp_path):
    """penalty = l2, l1, decoupled came out decoupled, l1, l2 (sorted by name) in
    axis_best, axis_heatmap, axis_decomposition and the report's table."""
    from bvsim.present.axis_figures import (
        fig_axis_best,
        fig_axis_decomposition,
        fig_axis_heatmap,
    )
    from bvsim.present.axis_report import write_axis_report

    s = _axis_summary(tmp_path, "penalty", NAMES)
    best = fig_axis_best(s, "penalty")
    for ax in best.axes:
        assert _ticks(ax.get_xticklabels()) == NAMES
    heat = fig_axis_heatmap(s, "penalty")
    assert _ticks(heat.axes[0].get_yticklabels()) == NAMES
    decomposition = fig_axis_decomposition(s, "penalty")
    assert [a.get_title() for a in decomposition.axes[:3]] == [f"penalty = {n}" for n in NAMES]

    t = _fake_run(tmp_path / "one")
    meta = {"name": "pen", "axis": "penalty", "axis_values": NAMES}
    report = write_axis_report(dataclasses.replace(t, summary=s, meta=meta), tmp_path, "penalty")
    rows = [line.split(" | ")[0] for line in report.read_text().splitlines()]
    assert [r.removeprefix("| ") for r in rows if r.removeprefix("| ") in NAMES] == NAMES


def test_a_numeric_axis_is_still_drawn_in_ascending_order(tmp_path):
    from bvsim.present.axis_figures import fig_axis_best, fig_axis_heatmap

    s = _axis_summary(tmp_path, "n_train", [40, 10, 20])  # listed out of order
    assert _ticks(fig_axis_heatmap(s, "n_train").axes[0].get_yticklabels()) == ["10", "20", "40"]
    ax = fig_axis_best(s, "n_train").axes[1]
    assert list(ax.get_lines()[0].get_xdata()) == [10, 20, 40]


def test_categories_are_points_with_bars_not_lines_or_bands(tmp_path):
    """A line or a filled band between l2 and l1 claims something between them."""
    from bvsim.present.axis_figures import fig_axis_best

    s = _axis_summary(tmp_path, "penalty", NAMES)
    for ax in fig_axis_best(s, "penalty").axes:
        assert not any(isinstance(c, PolyCollection) for c in ax.collections)
        for line in ax.get_lines():  # markers only (an error bar's caps are markers too)
            assert line.get_linestyle() == "None" or len(line.get_xdata()) < 2
    right = fig_axis_best(s, "penalty").axes[1]
    bars = [c for c in right.containers if c.has_yerr]
    assert len(bars) == 2  # at the best and at the smallest λ, ±2 SE
    segments = bars[1].lines[2][0].get_segments()
    smallest = s[s["weight_decay"] == 0]
    for seg, (_, row) in zip(segments, smallest.iterrows(), strict=True):
        y, half = row["expected_error"], 2 * row["expected_error_se"]
        assert seg[:, 1] == pytest.approx([y - half, y + half])


def test_a_narrow_numeric_axis_is_labelled_at_its_values_only(tmp_path):
    """n_train = 10, 20, 40, 80 on a log axis: labelled minor ticks ("2×10¹",
    "3×10¹4×10¹") collided; the ticks are the values, without minor ticks."""
    from bvsim.present.axis_figures import fig_axis_best, fig_axis_curves

    values = [10, 20, 40, 80]
    s = _axis_summary(tmp_path, "n_train", values)
    fig = fig_axis_curves(s, "n_train")
    fig.canvas.draw()
    for ax in [*fig.axes, *fig_axis_best(s, "n_train").axes]:
        assert ax.get_xscale() == "log"
        assert list(ax.get_xticks()) == values
        assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "20", "40", "80"]
        assert len(ax.xaxis.get_minorticklocs()) == 0


def test_log_x_labels_skip_values_too_close_to_the_last_labelled_one():
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    style.log_x_when_wide(ax, [10, 20, 30, 36, 40, 44, 50, 60, 80, 120, 200])
    assert list(ax.get_xticks()) == [10, 20, 30, 40, 60, 80, 120, 200]
    _, ax = plt.subplots()
    style.log_x_when_wide(ax, [10, 20, 40])  # under 8×: linear, matplotlib's ticks
    assert ax.get_xscale() == "linear"


@pytest.mark.parametrize("n_values", [1, 3, 11])
def test_the_heatmap_title_and_colour_bar_label_neither_collide_nor_leave_the_figure(
    tmp_path, n_values
):
    from bvsim.present.axis_figures import fig_axis_heatmap

    s = _axis_summary(tmp_path, "n_train", list(range(10, 10 + 10 * n_values, 10)))
    fig = fig_axis_heatmap(s, "n_train")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax, cbar = fig.axes
    title = ax.title.get_window_extent(renderer)
    label = cbar.yaxis.label.get_window_extent(renderer)
    assert not title.overlaps(label)
    box = fig.bbox
    for b in (title, label):
        assert box.x0 <= b.x0 and b.x1 <= box.x1 and box.y0 <= b.y0 and b.y1 <= box.y1
