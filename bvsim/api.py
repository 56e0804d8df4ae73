"""The public entry point: train, estimate, tabulate, draw, report."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Config, ConfigError, axis_configs
from .engine import resolve_device
from .preflight import preflight
from .sweep import SweepResult, check_run_dir, train_sweep
from .tables import Tables, combine_axis, summarize, write_run, write_tables

__all__ = ["RunResult", "run_lock", "run_sweep"]


@dataclass
class RunResult:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    raw : SweepResult or list of SweepResult
        Raw per-member arrays (predictions of shape (n_wd, n_reps, n_seeds, n_test));
        one per value of a second sweep axis. With a run directory the predictions
        and curves stay in the chunk files (:class:`bvsim.store.ChunkStack`:
        ``raw.pred[i]`` reads weight decay ``i``, ``np.asarray(raw.pred)`` all), so
        they can be read only while ``out/chunks`` exists.
    tables : Tables
        The tidy tables (``summary``, ``pointwise``, ``curves``, ``members``, ...).
    out : Path or None
        The run directory, when one was written.
    """

    raw: SweepResult | list[SweepResult]
    tables: Tables
    out: Path | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """One row per weight decay (and second-axis value): bias2, variance, noise,
        errors, each with SE."""
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
    devices: list[str] | None = None,
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
    devices : list of str, optional
        Several devices at once, e.g. ``["cuda:0", "cpu", "cpu"]``; see
        :func:`bvsim.sweep.train_sweep`.
    """
    train = {"device": device, "n_jobs": n_jobs, "progress": progress, "devices": devices}
    preflight(cfg, n_jobs=n_jobs, device_type="cpu" if devices else resolve_device(device).type)
    subs = axis_configs(cfg)
    if out is None:
        if subs[0][0] is None:
            raw = train_sweep(cfg, **train)
            return RunResult(raw=raw, tables=summarize(raw))
        parts = [(v, run_sweep(sub, **train)) for v, sub in subs]
        return _combined(cfg, parts, None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        check_run_dir(out, cfg, overwrite)
        if overwrite:
            for old in ("chunks", "axis"):
                if (out / old).exists():
                    shutil.rmtree(out / old)
        if subs[0][0] is not None:
            parts = [
                (v, run_sweep(sub, out / "axis" / axis_dir_name(cfg.sweep.axis, v),
                              figures=figures, **train))
                for v, sub in subs
            ]  # fmt: skip
            return _combined(cfg, parts, out, figures)
        raw = train_sweep(cfg, chunk_dir=out / "chunks", **train)
        tables = summarize(raw)
        write_run(raw, tables, out)
        if figures:
            from .figures import plot_all
            from .report import write_report

            plot_all(tables, out)
            write_report(tables, out)
    return RunResult(raw=raw, tables=tables, out=out)


def axis_dir_name(axis: str, value: float) -> str:
    """Sub-directory of one value of the second axis, e.g. ``n_train=20``."""
    text = f"{int(value)}" if float(value).is_integer() else f"{value:g}"
    return f"{axis}={text}"


def _combined(cfg: Config, parts, out: Path | None, figures: bool = True) -> RunResult:
    """Stack the tables of a second-axis sweep, with the axis value as a column."""
    tables = combine_axis(cfg, [(v, r.tables) for v, r in parts])
    if out is not None:
        write_tables(cfg, tables, out)
        if figures:
            from .figures import plot_axis
            from .report import write_axis_report

            plot_axis(tables, out, cfg.sweep.axis)
            write_axis_report(tables, out, cfg.sweep.axis)
    return RunResult(raw=[r.raw for _, r in parts], tables=tables, out=out)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextmanager
def run_lock(out: Path):
    """Hold ``out/.lock`` (holding our pid) while a sweep writes into ``out``.

    A lock held by a live process is refused with its pid; a stale lock left by a dead
    process is taken over.
    """
    lock = out / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise ConfigError(
                    f"{out} is in use by another sweep (pid {pid}); wait for it, or use "
                    f"another --out (remove {lock} only if that process is gone)"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        break
    else:
        raise ConfigError(f"{out}: could not take the lock {lock}")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
