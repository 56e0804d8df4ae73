"""The makers of :data:`bvsim.present.figure_table.FIGURE_TABLE`: each draws one figure
from a finished run (:class:`FigureInput`), or returns None where the figure does not
apply to it (or raises :class:`InputMissing` where it needs a file the run directory
no longer has); :func:`numeric_axis` and :func:`has_axis_anova` say which second-axis
figures apply, from the combined tables alone.

The figures themselves are drawn by :mod:`.lambda_figures`, :mod:`.variance_figures`,
:mod:`.steps`, :mod:`.axis_figures` and :mod:`.anova`, imported when a maker is called:
this module, and the reports that read the table, load no matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..io.tables import Tables, load_fits, predictions_path, stored_input_dim
from .common import error_label, is_classification_run, key_lambdas, valid_rows

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FigureInput",
    "InputMissing",
    "anova",
    "axis_anova",
    "axis_best",
    "axis_curves",
    "axis_decomposition",
    "axis_heatmap",
    "curves",
    "decomposition",
    "fits",
    "has_axis_anova",
    "numeric_axis",
    "pointwise",
    "steps",
    "steps_heatmap",
    "variance_split",
    "weight_hist",
    "weight_norm",
]


class InputMissing(Exception):
    """A figure that may apply to the run cannot be drawn: a file it is drawn from is
    missing (``predictions.npz``, gitignored or deleted). Its drawing from when the run
    finished is kept (a new sweep removes every figure first); the message says why."""


@dataclass
class FigureInput:
    """What a figure is drawn from: a finished run's tables and directory, and for the
    combined run of a second axis, that axis."""

    tables: Tables
    run_dir: Path
    axis: str | None = None

    @cached_property
    def colors(self) -> dict:
        """λ → colour, one map for every figure of the run (from its whole grid)."""
        from .style import lambda_colors

        return lambda_colors(self.tables.summary["weight_decay"])

    @cached_property
    def input_dim(self) -> int | None:
        """Dimension of the test inputs (``predictions.npz``); None when it is missing."""
        try:
            return stored_input_dim(self.run_dir)
        except (OSError, KeyError, IndexError, ValueError):
            return None


# --- the makers of a run's figures --------------------------------------------------------


def decomposition(run: FigureInput) -> Figure:
    from .lambda_figures import fig_decomposition

    t = run.tables
    return fig_decomposition(t.summary, t.meta, t.theory)


def fits(run: FigureInput) -> Figure | None:
    """Member fans: a 1-D regression run with predictions.npz and pointwise.csv
    (without predictions.npz: :class:`InputMissing`, its inputs' dimension unknown)."""
    from .lambda_figures import fig_fits

    s, pw = run.tables.summary, run.tables.pointwise
    if is_classification_run(s) or pw.empty or valid_rows(s).empty:
        return None
    if not predictions_path(run.run_dir).exists():
        raise InputMissing(f"{predictions_path(run.run_dir)} is missing")
    if run.input_dim is None:
        raise InputMissing(f"{predictions_path(run.run_dir)} is unreadable (truncated?)")
    if run.input_dim != 1:
        return None
    fits = load_fits(run.run_dir, key_lambdas(s), max_members=30)
    return None if fits.empty else fig_fits(fits, pw, s)


def pointwise(run: FigureInput) -> Figure | None:
    from .lambda_figures import fig_pointwise

    s, pw = run.tables.summary, run.tables.pointwise
    if pw.empty or valid_rows(s).empty:
        return None
    picks = [wd for wd in key_lambdas(s, extra=True) if (pw["weight_decay"] == wd).any()]
    if not picks:
        return None
    one_d = run.input_dim in (1, None)
    return fig_pointwise(pw, picks, one_d=one_d, colors=run.colors, summary=s)


def curves(run: FigureInput) -> Figure | None:
    """Learning curves: a run with more than one logged step (an exact solver,
    ``train.solver = "closed_form"``, logs one: there are no curves to draw)."""
    from .lambda_figures import fig_curves
    from .style import noise_floor_label

    s, curves = run.tables.summary, run.tables.curves
    if curves.empty or curves["step"].nunique() < 2:
        return None
    noise = float(s["noise"].dropna().iloc[0]) if s["noise"].notna().any() else None
    return fig_curves(curves, noise, error_label(s), colors=run.colors,
                      noise_label=noise_floor_label(s))  # fmt: skip


def weight_norm(run: FigureInput) -> Figure | None:
    from .lambda_figures import fig_weight_norm

    s = run.tables.summary
    return fig_weight_norm(s) if s["weight_norm"].notna().any() else None


def weight_hist(run: FigureInput) -> Figure | None:
    """The key λ that have histograms; else the smallest and largest that have."""
    from .lambda_figures import fig_weight_hist

    wh = run.tables.weight_hist
    if wh.empty:
        return None
    present = set(wh["weight_decay"])
    picks = [wd for wd in key_lambdas(run.tables.summary) if wd in present]
    if not picks:
        picks = sorted(present)[:: max(1, len(present) - 1)]
    return fig_weight_hist(wh, picks, colors=run.colors)


def variance_split(run: FigureInput) -> Figure | None:
    from .variance_figures import variance_split_figure

    return variance_split_figure(run.tables.summary)


def anova(run: FigureInput) -> Figure | None:
    from .variance_figures import anova_figure

    return anova_figure(run.tables.anova)


def _steps_drawn(run: FigureInput) -> pd.DataFrame | None:
    """``steps.csv`` when it has more than one logged step with estimates, else None."""
    steps = run.tables.steps
    if (
        steps is None
        or steps.empty
        or steps["step"].nunique() < 2
        or not steps["expected_error"].notna().any()
    ):
        return None
    return steps


def steps(run: FigureInput) -> Figure | None:
    from .steps import fig_steps

    table = _steps_drawn(run)
    early = run.tables.meta.get("early_stopping")
    return None if table is None else fig_steps(table, early, run.colors)


def steps_heatmap(run: FigureInput) -> Figure | None:
    from .steps import fig_steps_heatmap

    table = _steps_drawn(run)
    return None if table is None else fig_steps_heatmap(table)


# --- the makers of a second axis's figures ------------------------------------------------


def axis_decomposition(run: FigureInput) -> Figure:
    from .axis_figures import fig_axis_decomposition

    return fig_axis_decomposition(run.tables.summary, run.axis)


def axis_heatmap(run: FigureInput) -> Figure:
    from .axis_figures import fig_axis_heatmap

    return fig_axis_heatmap(run.tables.summary, run.axis)


def axis_best(run: FigureInput) -> Figure:
    from .axis_figures import fig_axis_best

    return fig_axis_best(run.tables.summary, run.axis)


def axis_curves(run: FigureInput) -> Figure:
    from .axis_figures import fig_axis_curves

    return fig_axis_curves(run.tables.summary, run.axis, run.tables.theory)


def axis_anova(run: FigureInput) -> Figure:
    from .anova import fig_axis_anova

    return fig_axis_anova(run.tables.anova, run.axis)


def numeric_axis(summary: pd.DataFrame, axis: str, _anova=None) -> bool:
    """Whether the second axis is numeric (``axis_curves``: not for penalty, optimizer)."""
    return pd.api.types.is_numeric_dtype(summary[axis])


def has_axis_anova(_summary, axis: str, anova: pd.DataFrame | None) -> bool:
    """Whether a combined ``anova.csv`` is drawn against ``axis`` (``axis_anova``): it
    has estimates and ``axis`` is a numeric column of it."""
    if anova is None or anova.empty or axis not in anova:
        return False
    return pd.api.types.is_numeric_dtype(anova[axis]) and bool(anova["value"].notna().any())
