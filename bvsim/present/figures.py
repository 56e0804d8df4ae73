"""Drawing a run's figures: :func:`plot_all` draws each figure of
:data:`.figure_table.FIGURE_TABLE` that applies to a run and saves it under
``<run_dir>/figures/`` as PNG and PDF (:func:`plot_runs`: several runs at once);
:func:`plot_axis` does the same for the combined run of a second axis.

Which figures there are, their captions and makers are declared in
:mod:`.figure_table`; the figures themselves are drawn by :mod:`.lambda_figures`,
:mod:`.variance_figures`, :mod:`.steps`, :mod:`.axis_figures` and :mod:`.anova`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from joblib import Parallel, cpu_count, delayed

from ..config import BvsimWarning
from ..io.tables import Tables
from .figure_makers import FigureInput, InputMissing
from .figure_table import FIGURE_TABLE
from .style import drop_figure, save_figure

__all__ = ["plot_all", "plot_axis", "plot_runs"]


def _draw(source: FigureInput) -> list[Path]:
    """Draw the figures of ``source`` (those of a second axis when it has one) and save
    them; a figure that does not apply is not drawn, and its files from an earlier
    drawing are removed; one whose input is missing (:class:`.figure_makers.InputMissing`)
    is kept as drawn, saying so on stderr. Nothing is drawn for an empty summary."""
    fig_dir = source.run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if source.tables.summary.empty:
        return written
    for entry in FIGURE_TABLE:
        if entry.axis != (source.axis is not None):
            continue
        try:
            fig = entry.draw(source)
        except InputMissing as why:
            png = fig_dir / f"{entry.name}.png"
            if png.exists():
                warnings.warn(
                    f"{png} left as drawn: {why}, so it cannot be redrawn",
                    BvsimWarning,
                    stacklevel=2,
                )
            continue
        if fig is not None:
            written += save_figure(fig, fig_dir, entry.name)
        else:
            drop_figure(fig_dir, entry.name)
    return written


def plot_all(tables: Tables, out_dir) -> list[Path]:
    """Draw every figure of a run that applies and save it as PNG and PDF.

    Parameters
    ----------
    tables : Tables
        From :func:`bvsim.io.tables.read_tables` or :func:`bvsim.io.tables.summarize`
        (with ``steps.csv`` for the figures along training).
    out_dir : path
        The run directory; figures go to ``out_dir/figures/``. ``predictions.npz`` is
        read from it for the fitted-curve fans: without it they are not drawn, and a
        drawing from when the run finished is left as it is (said on stderr).

    Returns
    -------
    list of Path
        The files written (each figure's ``.png`` and ``.pdf``). A figure that does not
        apply is not drawn, and its files from an earlier drawing are removed (the
        report lists the figures it finds); one that cannot be redrawn is kept.
    """
    return _draw(FigureInput(tables, Path(out_dir)))


def plot_axis(tables: Tables, out_dir, axis: str) -> list[Path]:
    """Draw the second-axis figures of a combined run into ``out_dir/figures``
    (:func:`bvsim.present.figure_table.axis_figures` says which); returns the files
    written, as :func:`plot_all` does."""
    return _draw(FigureInput(tables, Path(out_dir), axis))


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
