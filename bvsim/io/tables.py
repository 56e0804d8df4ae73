"""The tables of a run (:class:`Tables`): laid out from a sweep, combined across a
second axis, written to and read from a run directory.

:func:`write_tables` is the package's one writer of CSVs and :func:`write_run` of
``predictions.npz``; every column is documented in ``results/README.md``. The tables
themselves come from :mod:`bvsim.io.summary` (summary, pointwise),
:mod:`bvsim.io.members` (members, curves, weight_hist), :mod:`bvsim.io.anova` and
:mod:`bvsim.io.steps`.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..config import axis_values, config_key, crossed_shape
from ..data.seeds import node_text
from ..estimate import compare
from ..run.result import SweepResult
from ..run.store import PREDICTIONS, atomic_path, read_slice, write_npz, write_text_atomic
from ..task import task_for
from .anova import anova_tables
from .members import curves_table, members_table, weight_hist_table
from .rundir import ANOVA, FILES, STEPS, THEORY, RunDirError
from .summary import bootstrap_seed, summary_rows
from .theory import fixed_design_x, theory_table

__all__ = [
    "Tables",
    "combine_axis",
    "load_fits",
    "predictions_path",
    "read_tables",
    "stored_input_dim",
    "summarize",
    "write_marker",
    "write_run",
    "write_tables",
]


@dataclass
class Tables:
    """The tidy tables of one run (see ``results/README.md``)."""

    summary: pd.DataFrame
    pointwise: pd.DataFrame
    curves: pd.DataFrame
    members: pd.DataFrame
    weight_hist: pd.DataFrame
    meta: dict
    #: Closed-form bias² and variance per λ (:func:`bvsim.io.theory.theory_table`); None
    #: when the configuration has no theory. Written as ``theory.csv``.
    theory: pd.DataFrame | None = None
    #: The crossed design's ANOVA of the variance (:func:`bvsim.io.anova.anova_tables`);
    #: None otherwise.
    anova: pd.DataFrame | None = None
    anova_pointwise: pd.DataFrame | None = None
    #: The decomposition at every logged step (``train.decompose_steps``); None
    #: otherwise. Written as ``steps.csv``.
    steps: pd.DataFrame | None = None


def summarize(r: SweepResult) -> Tables:
    """Apply the estimators to a sweep and lay the results out as tidy tables."""
    members, usable = members_table(r)
    per_set: dict = {}
    summary, pointwise = summary_rows(r, usable, per_set)
    anova, anova_pointwise = anova_tables(r, per_set.get("anova"))
    meta = {
        "name": r.cfg.name,
        "seed": r.cfg.seed,
        "config_key": config_key(r.cfg),
        "task": task_for(r.cfg).name,
        "bvsim": __version__,
        "prob_best_resamples": compare.N_BOOTSTRAP,
        "prob_best_seed": node_text(bootstrap_seed(r.cfg.seed)),
        **r.info,
    }
    if task_for(r.cfg).crossed(r.cfg):  # its SEs' factors
        meta["crossed_factors"] = list(crossed_shape(r.cfg)[0])
    if r.test.class_labels is not None:  # a CSV target's label of each class index
        meta["class_labels"] = list(r.test.class_labels)
    return Tables(
        summary=summary,
        pointwise=pointwise,
        curves=curves_table(r, usable),
        members=members,
        weight_hist=weight_hist_table(r),
        meta=meta,
        theory=theory_table(r.cfg, r.test, fixed_design_x(r)),
        anova=anova,
        anova_pointwise=anova_pointwise,
    )


def write_run(r: SweepResult, tables: Tables, out: str | Path) -> Path:
    """Write CSVs and ``predictions.npz`` to ``out``; ``run.json``, the mark of a
    finished run, is written last by :func:`write_marker`.

    ``predictions.npz`` is streamed from the chunk files when the sweep kept them
    there, so writing it never holds all predictions in memory.
    """
    out = write_tables(tables, out)
    # classification: every class's true probability (f_test holds class 1's only)
    p_test = {} if r.test.p_true is None else {"p_test": r.test.p_true}
    write_npz(
        predictions_path(out),
        {
            "weight_decay": r.weight_decay,
            "pred": r.pred,
            "x_test": r.test.x,
            "f_test": r.test.f,
            **p_test,
            "y_test": r.y_test,
            "train_error": r.train_error,
            "diverged": r.diverged,
            "log_steps": r.log_steps,
            "curve_train": r.curve_train,
            "curve_test": r.curve_test,
        },
    )
    return out


def _table_record(df: pd.DataFrame) -> dict:
    """What ``run.json`` notes of a CSV, to recognise a truncated or damaged one."""
    return {
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
        "numeric": [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])],
        "cells": int(df.notna().to_numpy().sum()),
    }


def _read_csv(path: Path, record: dict | None) -> pd.DataFrame:
    """One CSV of a run, checked against its ``run.json`` record when there is one."""
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise RunDirError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    if record is None:
        return df
    got = _table_record(df)
    if got["columns"] != record["columns"]:
        raise RunDirError(f"{path}: columns differ from those written (damaged or edited)")
    if got["rows"] != record["rows"]:
        raise RunDirError(
            f"{path}: {got['rows']} rows where {record['rows']} were written (truncated?)"
        )
    text = [c for c in record["numeric"] if c not in got["numeric"]]
    if text:
        raise RunDirError(f"{path}: column {text[0]!r} is not numeric (damaged)")
    if got["cells"] != record["cells"]:
        raise RunDirError(f"{path}: values missing from what was written (truncated?)")
    return df


def read_tables(run_dir: str | Path) -> Tables:
    """Read the tables of a finished run (for plotting and reporting).

    Raises FileNotFoundError when a CSV or ``run.json`` (written last) is missing, and
    :class:`bvsim.io.rundir.RunDirError` when a CSV is unreadable or differs from what
    ``run.json`` records of it (rows, columns, numeric columns, missing values).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        what = "is not a directory" if run_dir.exists() else "does not exist"
        raise FileNotFoundError(f"{run_dir} {what}: give a run directory (a sweep's --out)")
    missing = [f"{n}.csv" for n in FILES if not (run_dir / f"{n}.csv").exists()]
    if not (run_dir / "run.json").exists():
        missing.append("run.json")
    if missing:
        raise FileNotFoundError(f"{run_dir}: not a finished run (missing {', '.join(missing)})")
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise RunDirError(f"{run_dir / 'run.json'}: not readable JSON ({err})") from None
    if not isinstance(meta, dict):
        raise RunDirError(
            f"{run_dir / 'run.json'}: not a run record (a JSON object), but a JSON "
            f"{type(meta).__name__}"
        )
    records = meta.get("tables", {})
    frames = {name: _read_csv(run_dir / f"{name}.csv", records.get(name)) for name in FILES}
    theory_file = run_dir / f"{THEORY}.csv"
    theory = _read_csv(theory_file, records.get(THEORY)) if theory_file.exists() else None
    optional = {
        name: _read_csv(run_dir / f"{name}.csv", records.get(name))
        for name in (*ANOVA, STEPS)
        if (run_dir / f"{name}.csv").exists()
    }
    return Tables(**frames, meta=meta, theory=theory, **optional)


def predictions_path(run_dir: str | Path) -> Path:
    """A run directory's ``predictions.npz`` (written by :func:`write_run`)."""
    return Path(run_dir) / PREDICTIONS


def stored_input_dim(run_dir: str | Path) -> int:
    """Dimension of a run's test inputs (``x_test`` in ``predictions.npz``); OSError
    when the file is missing or unreadable, KeyError, IndexError or ValueError when it is
    not what :func:`write_run` writes (a truncated or foreign file included)."""
    try:
        with np.load(predictions_path(run_dir)) as z:
            return int(z["x_test"].shape[1])
    except (zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{predictions_path(run_dir)}: not a readable .npz ({err})") from None


def load_fits(run_dir: str | Path, weight_decays, max_members: int = 40) -> pd.DataFrame:
    """Member predictions at chosen weight decays, long: for the fitted-curve fans.

    Returns
    -------
    DataFrame with columns weight_decay, rep, seed, x, prediction (first ``max_members``
    training sets, seed 0 and up, diverged members left out).
    """
    path = predictions_path(run_dir)
    with np.load(path) as z:
        wd, x = z["weight_decay"], z["x_test"][:, 0]
    frames = []
    for value in weight_decays:
        i = int(np.argmin(np.abs(wd - value)))
        p = read_slice(path, "pred", i)[:max_members]  # (K, S, J): one weight decay
        k, s, j = np.meshgrid(*map(np.arange, p.shape), indexing="ij")
        df = pd.DataFrame(
            {
                "weight_decay": float(wd[i]),
                "rep": k.ravel(),
                "seed": s.ravel(),
                "x": x[j.ravel()],
                "prediction": p.ravel(),
            }
        )
        frames.append(df.dropna())
    return pd.concat(frames, ignore_index=True)


def combine_axis(cfg, parts) -> Tables:
    """Stack the tables of a second-axis sweep; the axis value becomes the first column.

    Parameters
    ----------
    cfg : Config
        The configuration with ``sweep.axis`` set.
    parts : list of (float, Tables)
        The tables of each axis value, in order.
    """
    axis = cfg.sweep.axis
    frames = {}
    for name in _all_frames(parts[0][1]):
        pieces = []
        for value, t in parts:
            df = getattr(t, name)
            if df is None or df.empty:
                continue
            df = df.copy()
            df.insert(0, axis, value)
            pieces.append(df)
        if pieces:
            frames[name] = pd.concat(pieces, ignore_index=True)
        else:
            frames[name] = _no_rows(parts, name, axis)
    metas = [t.meta for _, t in parts]
    meta = {
        "name": cfg.name,
        "seed": cfg.seed,
        "config_key": config_key(cfg),
        "task": metas[0].get("task"),
        "bvsim": __version__,
        "axis": axis,
        "axis_values": axis_values(cfg),
        "train_seconds": float(sum(m.get("train_seconds", 0.0) for m in metas)),
        "n_members": int(sum(m.get("n_members", 0) for m in metas)),
        "n_chunks": int(sum(m.get("n_chunks", 0) for m in metas)),
        "n_chunks_resumed": int(sum(m.get("n_chunks_resumed", 0) for m in metas)),
        "n_sets": int(sum(m.get("n_sets", 0) for m in metas)),
        "n_sets_resumed": int(sum(m.get("n_sets_resumed", 0) for m in metas)),
        "chunk_seconds_total": float(sum(m.get("chunk_seconds_total", 0.0) for m in metas)),
        "device": metas[0].get("device"),
        "parts": [m.get("config_key") for m in metas],
    }
    if "crossed_factors" in metas[0]:  # a crossed design's SEs: over its factors
        meta["crossed_factors"] = metas[0]["crossed_factors"]
    return Tables(**frames, meta=meta)


def _no_rows(parts, name: str, axis: str) -> pd.DataFrame:
    """The stacked table of ``name`` when no value has rows: the values' columns with
    the axis first (so ``weight_hist.csv`` keeps its header), or none when they have
    no columns (a table the run does not write)."""
    first = getattr(parts[0][1], name)
    if first is None or len(first.columns) == 0:
        return pd.DataFrame()
    return pd.DataFrame(columns=[axis, *first.columns])


def _all_frames(tables: Tables) -> list[str]:
    """Names of the DataFrame fields of ``tables`` (the CSV files), in order."""
    return [f.name for f in fields(tables) if f.name != "meta"]


def write_tables(tables: Tables, out: str | Path) -> Path:
    """Write the CSVs of ``tables`` to ``out``, each to a temporary name and renamed,
    noting each CSV's rows and columns in ``tables.meta["tables"]`` (for
    :func:`write_marker`). ``config.toml`` is not written here: :func:`bvsim.run_sweep`
    writes it before any compute, the mark that the directory is this configuration's."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = {}
    for name in _all_frames(tables):
        df = getattr(tables, name)
        if name in (THEORY, STEPS, *ANOVA) and (df is None or df.empty):
            (out / f"{name}.csv").unlink(missing_ok=True)  # none, not a stale one either
        elif df is not None:
            with atomic_path(out / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False)
                records[name] = _table_record(_read_csv(tmp, None))  # as read back
    tables.meta["tables"] = records
    return out


def write_marker(tables: Tables, out: str | Path) -> Path:
    """Write ``run.json`` (``tables.meta``), the last file of a run: its presence marks
    the run directory as finished."""
    meta = dict(tables.meta)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path = Path(out) / "run.json"
    write_text_atomic(path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path
