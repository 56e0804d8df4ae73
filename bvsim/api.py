"""The public entry point: train, estimate, tabulate, draw, report."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Config, ConfigError, axis_configs, dumps_toml
from .engine import resolve_device
from .preflight import preflight
from .store import TMP_PREFIX, write_text_atomic
from .sweep import SweepResult, check_run_dir, train_sweep
from .tables import (
    FILES,
    THEORY,
    Tables,
    combine_axis,
    summarize,
    write_marker,
    write_run,
    write_tables,
)

__all__ = ["RunResult", "axis_dir_name", "clear_outputs", "run_lock", "run_sweep"]


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
        the same configuration resumes (chunk files of other data or code are
        recomputed); a different configuration is refused unless ``overwrite``. The
        earlier run's outputs are removed first (see :func:`clear_outputs`); ``run.json``
        is written last.
    overwrite : bool
        Replace a directory holding another configuration, chunks included.
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
    names = _axis_dir_names(cfg) if subs[0][0] is not None else []
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        check_run_dir(out, cfg, overwrite)
        clear_outputs(out, chunks=overwrite)
        # the directory now belongs to this configuration; run.json, written last,
        # marks the run finished
        write_text_atomic(out / "config.toml", dumps_toml(cfg))
        if names:
            parts = [
                (v, run_sweep(sub, out / "axis" / name, figures=figures, overwrite=overwrite,
                              **train))
                for (v, sub), name in zip(subs, names, strict=True)
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
        write_marker(tables, out)
    return RunResult(raw=raw, tables=tables, out=out)


#: Files a run writes at the top of its directory (besides figures/, chunks/, axis/).
_OUTPUTS = (*(f"{n}.csv" for n in (*FILES, THEORY)), "predictions.npz", "report.md", "run.json")


def clear_outputs(out: Path, chunks: bool = False) -> None:
    """Remove what an earlier run wrote to ``out``: CSVs, ``predictions.npz``, the
    report, ``run.json``, figures, leftover temporary files (chunk directories too)
    and the sub-runs of a second axis; with ``chunks`` also ``config.toml`` and the
    chunk files. Files that bvsim did not write stay (and so do the folders holding
    them)."""
    for name in _OUTPUTS if not chunks else (*_OUTPUTS, "config.toml"):
        (out / name).unlink(missing_ok=True)
    _remove_temporary(out)
    figures = out / "figures"
    if figures.is_dir():
        from .figures import NAMES

        for name in NAMES:
            for suffix in (".png", ".pdf"):
                (figures / f"{name}{suffix}").unlink(missing_ok=True)
        _remove_temporary(figures)
        _remove_if_empty(figures)
    axis = out / "axis"
    if axis.is_dir():
        for sub in axis.iterdir():
            if sub.is_dir():
                clear_outputs(sub, chunks=chunks)
                _remove_if_empty(sub)
        _remove_if_empty(axis)
    if (out / "chunks").is_dir():
        for key_dir in (out / "chunks").iterdir():
            if key_dir.is_dir():
                _remove_temporary(key_dir)  # left by a killed sweep
                if chunks:
                    for path in key_dir.glob("sets_*.npz"):
                        path.unlink()
                    _remove_if_empty(key_dir)
        if chunks:
            _remove_if_empty(out / "chunks")


def _remove_temporary(folder: Path) -> None:
    for path in folder.glob(f"{TMP_PREFIX}*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (a file bvsim did not write) or gone
        pass


def axis_dir_name(axis: str, value: float) -> str:
    """Sub-directory of one value of the second axis, e.g. ``n_train=20``.

    The value as ``%g`` where that reads back as the same number (the names of earlier
    runs), otherwise its shortest exact form (``noise_std=0.1000001``): distinct values
    get distinct names, and ``float(name.split("=")[1])`` gives the value back.
    """
    value = float(value)
    if value.is_integer():
        text = f"{int(value)}"
    else:
        text = f"{value:g}"
        if float(text) != value:
            text = repr(value)
    return f"{axis}={text}"


def _axis_dir_names(cfg: Config) -> list[str]:
    """The sub-run directory of each second-axis value; a ConfigError (before any
    compute) if two values would share one."""
    names = [axis_dir_name(cfg.sweep.axis, v) for v in cfg.sweep.axis_values]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(
                f"sweep.axis_values = {list(cfg.sweep.axis_values)!r}: two values share "
                f"the sub-run directory {name!r}; make them differ"
            )
    return names


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
        write_marker(tables, out)
    return RunResult(raw=[r.raw for _, r in parts], tables=tables, out=out)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


#: Seconds an empty or unreadable lock file counts as held (its owner may be between
#: creating it and writing its pid), judged by the file's modification time.
LOCK_GRACE_SECONDS = 5.0


def _lock_holder(lock: Path) -> int | None:
    """The pid in ``lock``; None when it is empty or unreadable (and 0 when it is gone)."""
    try:
        return int(lock.read_text().strip())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError):
        return None


def _wait_for_holder(lock: Path) -> int:
    """The pid in ``lock``, waiting while the file is younger than the grace period
    and holds no pid yet; 0 when it stays empty or unreadable past that (stale)."""
    while (pid := _lock_holder(lock)) is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return 0
        if age > LOCK_GRACE_SECONDS:
            return 0
        time.sleep(min(0.1, LOCK_GRACE_SECONDS))
    return pid


@contextmanager
def run_lock(out: Path):
    """Hold ``out/.lock`` (holding our pid) while a sweep writes into ``out``.

    A lock held by a live process is refused with its pid. An empty or unreadable lock
    counts as held while it is younger than :data:`LOCK_GRACE_SECONDS` (its owner may
    not have written its pid yet); a lock left by a dead process, or empty for longer,
    is taken over.
    """
    lock = out / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            pid = _wait_for_holder(lock)
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
