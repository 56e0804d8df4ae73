"""The public entry point: train, estimate, tabulate, draw, report."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Config
from .sweep import SweepResult, check_run_dir, train_sweep
from .tables import Tables, summarize, write_run

__all__ = ["RunResult", "run_sweep"]


@dataclass
class RunResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    raw : SweepResult
        Raw per-member arrays (predictions of shape (n_wd, n_reps, n_seeds, n_test)).
    tables : Tables
        The tidy tables (``summary``, ``pointwise``, ``curves``, ``members``, ...).
    out : Path or None
        The run directory, when one was written.
    """

    raw: SweepResult
    tables: Tables
    out: Path | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per weight decay: bias2, variance, noise, errors, each with SE."""
        return self.tables.summary


def run_sweep(
    cfg: Config,
    out: str | Path | None = None,
    *,
    device: str = "cpu",
    n_jobs: int = 1,
    overwrite: bool = False,
    figures: bool = True,
    progress: bool | None = None,
) -> RunResult:
    """Run a whole sweep: train every member, decompose, write outputs.

    Parameters
    ----------
    cfg : Config
        From :func:`bvsim.load_config`.
    out : path, optional
        Run directory for CSVs, figures, report and resumable chunks. Re-running with
        the same configuration resumes; a different configuration is refused unless
        ``overwrite``.
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    n_jobs : int
        joblib workers over chunks (-1: all cores). Results do not depend on it.
    figures : bool
        Draw the figures and write ``report.md`` (only with ``out``).
    """
    chunk_dir = None
    if out is not None:
        out = Path(out)
        check_run_dir(out, cfg, overwrite)
        if overwrite and (out / "chunks").exists():
            shutil.rmtree(out / "chunks")
        chunk_dir = out / "chunks"
    raw = train_sweep(cfg, device=device, n_jobs=n_jobs, chunk_dir=chunk_dir, progress=progress)
    tables = summarize(raw)
    if out is not None:
        write_run(raw, tables, out)
        if figures:
            from .figures import plot_all
            from .report import write_report

            plot_all(tables, out)
            write_report(tables, out)
    return RunResult(raw=raw, tables=tables, out=out)
