"""Which figures a run gets: :func:`plot_all` draws each that applies to a run and
saves it under ``<run_dir>/figures/`` as PNG and PDF.

The figures themselves: those against λ in :mod:`.lambda_figures`, the variance's
sources in :mod:`.variance_figures`; those along training (:func:`.steps.plot_steps`)
and of a second axis (:func:`.axis_figures.plot_axis`) have their own entry points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from joblib import Parallel, cpu_count, delayed
from matplotlib.figure import Figure

from ..io.tables import Tables, load_fits
from .common import error_label, is_classification, key_lambdas, valid_rows
from .lambda_figures import (
    fig_curves,
    fig_decomposition,
    fig_fits,
    fig_pointwise,
    fig_weight_hist,
    fig_weight_norm,
)
from .style import drop_figure, lambda_colors, noise_floor_label, save_figure
from .variance_figures import anova_figure, variance_split_figure

__all__ = ["plot_all", "plot_runs"]


@dataclass
class _Run:
    """A finished run as the figures see it: its tables and its directory."""

    tables: Tables
    run_dir: Path

    @cached_property
    def colors(self) -> dict:
        """λ → colour, one map for every figure of the run (from its whole grid)."""
        return lambda_colors(self.tables.summary["weight_decay"])

    @cached_property
    def input_dim(self) -> int | None:
        """Dimension of the test inputs (``predictions.npz``); None when it is missing."""
        try:
            with np.load(self.run_dir / "predictions.npz") as z:
                return int(z["x_test"].shape[1])
        except (OSError, KeyError, IndexError, ValueError):
            return None


def _decomposition(run: _Run) -> Figure:
    t = run.tables
    return fig_decomposition(t.summary, t.meta, t.theory)


def _fits(run: _Run) -> Figure | None:
    """Member fans: a 1-D regression run with predictions.npz and pointwise.csv."""
    s, pw = run.tables.summary, run.tables.pointwise
    if run.input_dim != 1 or is_classification(s) or pw.empty or valid_rows(s).empty:
        return None
    fits = load_fits(run.run_dir, key_lambdas(s), max_members=30)
    return None if fits.empty else fig_fits(fits, pw, s)


def _pointwise(run: _Run) -> Figure | None:
    s, pw = run.tables.summary, run.tables.pointwise
    if pw.empty or valid_rows(s).empty:
        return None
    picks = [wd for wd in key_lambdas(s, extra=True) if (pw["weight_decay"] == wd).any()]
    if not picks:
        return None
    one_d = run.input_dim in (1, None)
    return fig_pointwise(pw, picks, one_d=one_d, colors=run.colors, summary=s)


def _curves(run: _Run) -> Figure | None:
    """Learning curves: a run with more than one logged step (an exact solver,
    ``train.solver = "closed_form"``, logs one: there are no curves to draw)."""
    s, curves = run.tables.summary, run.tables.curves
    if curves.empty or curves["step"].nunique() < 2:
        return None
    noise = float(s["noise"].dropna().iloc[0]) if s["noise"].notna().any() else None
    return fig_curves(curves, noise, error_label(s), colors=run.colors,
                      noise_label=noise_floor_label(s))  # fmt: skip


def _weight_norm(run: _Run) -> Figure | None:
    s = run.tables.summary
    return fig_weight_norm(s) if s["weight_norm"].notna().any() else None


def _weight_hist(run: _Run) -> Figure | None:
    """The key λ that have histograms; else the smallest and largest that have."""
    wh = run.tables.weight_hist
    if wh.empty:
        return None
    present = set(wh["weight_decay"])
    picks = [wd for wd in key_lambdas(run.tables.summary) if wd in present]
    if not picks:
        picks = sorted(present)[:: max(1, len(present) - 1)]
    return fig_weight_hist(wh, picks, colors=run.colors)


#: The figures of a run in the order drawn, each with the function that draws it
#: (None: it does not apply to this run, and a file of it left by an earlier drawing is
#: removed). Those of steps.csv: :func:`.steps.plot_steps`.
_MAKERS: tuple[tuple[str, Callable[[_Run], Figure | None]], ...] = (
    ("decomposition", _decomposition),
    ("fits", _fits),
    ("pointwise", _pointwise),
    ("curves", _curves),
    ("weight_norm", _weight_norm),
    ("weight_hist", _weight_hist),
    ("variance_split", lambda run: variance_split_figure(run.tables.summary)),
    ("anova", lambda run: anova_figure(run.tables.anova)),
)


def plot_all(tables: Tables, out_dir) -> list[Path]:
    """Draw every figure that applies and save it as PNG and PDF.

    Parameters
    ----------
    tables : Tables
        From :func:`bvsim.io.tables.read_tables` or :func:`bvsim.io.tables.summarize`.
    out_dir : path
        The run directory; figures go to ``out_dir/figures/``. ``predictions.npz`` is
        read from it for the fitted-curve fans (skipped when it is missing).

    Returns
    -------
    list of Path
        The files written (each figure's ``.png`` and ``.pdf``). A figure that does not
        apply is not drawn, and its files from an earlier drawing are removed (the
        report lists the figures it finds).
    """
    run = _Run(tables, Path(out_dir))
    fig_dir = run.run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if tables.summary.empty:
        return written
    for name, make in _MAKERS:
        fig = make(run)
        if fig is not None:
            written += save_figure(fig, fig_dir, name)
        else:
            drop_figure(fig_dir, name)
    return written


def plot_runs(runs, n_jobs: int = 1) -> list[Path]:
    """:func:`plot_all` for several runs (the values of a second axis), ``n_jobs`` runs
    at once in processes (joblib's loky backend, whatever backend trained the chunks;
    -1: all cores). The files are the same bytes either way.

    Parameters
    ----------
    runs : list of (Tables, path)
    n_jobs : int
    """
    # joblib's convention for n_jobs < 0, on this machine's cores (not the chunks'
    # backend, which may be a cluster)
    cores = n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)
    jobs = min(cores, len(runs))
    if jobs <= 1:
        parts = [plot_all(tables, out) for tables, out in runs]
    else:
        parts = Parallel(n_jobs=jobs, backend="loky")(
            delayed(plot_all)(tables, out) for tables, out in runs
        )
    return [path for part in parts for path in part]
