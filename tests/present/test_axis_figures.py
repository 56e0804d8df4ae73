"""The second-axis figures, on small hand-made tables: readable tick labels on a
numeric axis."""

from __future__ import annotations

import pandas as pd
import pytest

from bvsim.present import style

from .test_figures import _fake_run


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
