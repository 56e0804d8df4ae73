"""Disk space before compute: the bytes a sweep will write to its run directory,
checked against the free space of that directory's file system.

What a run directory receives (:func:`disk_estimate`): one chunk file per chunk of
training sets, holding every per-member array the chunk returns (float64 predictions
of every test point, with ``train.decompose_steps`` also at every logged step; curves,
errors, flags), its sets' test labels and its stamp (:mod:`bvsim.run.executor`,
:mod:`bvsim.run.sweep`); ``predictions.npz``, streamed from the chunk files (counted
uncompressed: random float64 hardly compress); and the CSVs, figures and report. A
chunk file already there for this configuration is not counted (a resumed run trains
only the missing ones; one that is recomputed replaces a file of the same size).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import Config, ConfigError, axis_configs
from .chunks import chunk_file, chunk_list, run_sizes
from .store import PREDICTIONS

__all__ = ["check_disk", "disk_estimate", "free_space"]

#: Bytes a chunk file holds beyond its arrays: the zip and npy headers of some twenty
#: arrays, the resume key and its inputs.
_CHUNK_OVERHEAD = 16 * 2**10
#: Bytes of the CSVs per row (a generous share: a pointwise row of a classification
#: run is the widest), and of the figures and report of a run.
_ROW_BYTES = 600
_FIGURE_BYTES = 8 * 2**20
#: Free space kept beyond the estimate: a share of it and a fixed amount (the
#: temporary file of a chunk being written, the file system's own blocks).
_MARGIN = (0.05, 16 * 2**20)


def disk_estimate(cfg: Config, device_type: str = "cpu", run_dir: Path | None = None) -> dict:
    """Bytes a one-axis sweep writes to its run directory ``run_dir``, with chunks sized
    for ``device_type`` as the sweep sizes them.

    Returns
    -------
    dict with ``chunks`` (the chunk files still to write: those of this configuration
    already in ``run_dir`` are not counted), ``chunks_kept`` (how many are there),
    ``n_chunks``, ``steps`` (the part of ``chunks`` that is ``pred_steps``, the
    predictions at every logged step), ``predictions`` (``predictions.npz``),
    ``tables`` (CSVs, figures, report), ``total``, and what drives them:
    ``n_members``, ``n_test``, ``n_log``. Without ``run_dir`` every chunk counts.
    """
    z = run_sizes(cfg)
    n_wd, n_seeds, n_test, n_log, n_out = z.n_wd, z.n_seeds, z.n_test, z.n_log, z.n_out
    points = n_test * n_out
    steps = 8 * n_log * points if cfg.train.decompose_steps else 0
    # pred, train_error, weight_norm, two curves, diverged, diverged_step, pred_steps
    member = 8 * points + 16 + 16 * n_log + 1 + 8 + steps
    per_set = n_wd * n_seeds * member + 8 * (n_test + 1)  # + its test labels and k
    params0 = 4 * n_wd * n_seeds * z.model.n_params if z.model.in_torch else 0
    chunks = chunk_list(cfg, device_type)
    there = [run_dir is not None and chunk_file(run_dir / "chunks", cfg, ks).exists()
             for ks in chunks]  # fmt: skip
    todo = [ks for ks, kept in zip(chunks, there, strict=True) if not kept]
    written = sum(len(ks) * per_set + _CHUNK_OVERHEAD + 8 * n_log for ks in todo)
    if todo and todo[0][0] == 0:
        written += params0
    n_reps, n_members, dim = z.n_reps, z.n_members, z.dim
    predictions = (
        n_members * (8 * points + 8 + 1 + 16 * n_log)  # pred, train_error, diverged, curves
        + 8 * n_reps * n_test  # the test labels
        + 8 * n_test * (dim + 1 + n_out)  # x_test, f_test, p_test
    )
    rows = n_members + n_wd * (2 * n_test + 2 * n_log)  # members, pointwise, curves, steps
    tables = _ROW_BYTES * rows + _FIGURE_BYTES
    return {
        "chunks": float(written),
        "chunks_kept": sum(there),
        "steps": float(sum(len(ks) for ks in todo) * n_wd * n_seeds * steps),
        "predictions": float(predictions),
        "tables": float(tables),
        "total": float(written + predictions + tables),
        "n_members": n_members,
        "n_test": n_test,
        "n_log": n_log,
    }


def free_space(path: str | Path) -> tuple[Path, int]:
    """The nearest existing directory at or above ``path`` and the bytes free on its
    file system (to this user)."""
    where = Path(path).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    return where, shutil.disk_usage(where).free


def _gb(n: float) -> str:
    """Bytes as GB (10^9, as ``df -H`` counts): 0.0123 GB, 62.1 GB, 1,285 GB."""
    return f"{n / 1e9:.3g} GB" if n < 1e11 else f"{n / 1e9:,.0f} GB"


def check_disk(
    cfg: Config, out: str | Path, run_dirs: list | None = None, device_type: str = "cpu"
) -> None:
    """Refuse a sweep whose run directory ``out`` would receive more than the free
    space of its file system, with a margin: one line giving both sizes and what
    drives the size. ``run_dirs``: with a second axis, the sub-run directory of each
    value (in :func:`bvsim.config.axis_configs` order); by default ``out`` alone."""
    run_dirs = [Path(d) for d in run_dirs or [out]]
    subs = [sub for _, sub in axis_configs(cfg)]
    ests = [disk_estimate(sub, device_type, d) for sub, d in zip(subs, run_dirs, strict=True)]
    where, free = free_space(out)
    # predictions.npz of an earlier run is removed before the new one is written
    free += sum(_size(d / PREDICTIONS) for d in run_dirs)
    need = sum(e["total"] for e in ests)
    if need * (1 + _MARGIN[0]) + _MARGIN[1] <= free:
        return
    e = ests[0]
    chunks, steps = sum(x["chunks"] for x in ests), sum(x["steps"] for x in ests)
    kept = sum(x["chunks_kept"] for x in ests)
    drives = f"{e['n_members']} members x {e['n_test']} test points"
    if steps:
        drives += f" x {e['n_log']} logged steps (train.decompose_steps: {_gb(steps)})"
    several = f" x {len(ests)} values of {cfg.sweep.axis}" if len(ests) > 1 else ""
    resumed = f"; {kept} chunk file(s) already there not counted" if kept else ""
    test = "data.test_fraction" if cfg.data.source == "csv" else "data.n_test"
    fix = f"lower sweep.n_reps or {test}"
    if steps:
        fix += ", log fewer steps (raise train.log_every) or set train.decompose_steps = false"
    raise ConfigError(
        f"out = {out}: this sweep writes about {_gb(need)} there (chunk files "
        f"{_gb(chunks)}: {drives}{several}{resumed}; predictions.npz "
        f"{_gb(sum(x['predictions'] for x in ests))}) but {where} has {_gb(free)} free; "
        f"{fix}, or choose another out"
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0
