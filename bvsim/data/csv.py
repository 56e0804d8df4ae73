"""The user's own data: a CSV file, a fixed held-out test split, resampled training sets.

With no generator the noise is unknown: the test labels stand in for the truth, so the
squared-bias estimate includes the noise ("bias² + noise"), and the outputs say so.
Every problem with the file is a :class:`ConfigError` raised when the configuration
loads: missing file or column, a header that repeats a column name, a column listed
twice in data.features, an unnamed column (a saved index) used by default, a malformed file,
non-numeric, missing or too large values (with the line), too few rows for the
requested training-set size. A sweep is drawn from the bytes it first read (their digest
is in the resume key); a process that must read the file again and finds other bytes
raises :class:`DataChangedError`.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
import os
import re
import tarfile
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.io.common import infer_compression

from ..config import Config, ConfigError, DataConfig
from ..task import CLASSIFICATION, task_for
from .seeds import Stream, rng

__all__ = [
    "DATA_PREFIX",
    "DataChangedError",
    "check_csv",
    "class_labels",
    "data_digest",
    "file_rows",
    "load_split",
    "n_test_rows",
    "training_rows",
]

#: ``data.path = "bvsim-data:NAME.csv"`` names a file shipped in ``bvsim/datasets``.
DATA_PREFIX = "bvsim-data:"


def _open(path: str):
    if path.startswith(DATA_PREFIX):
        name = path.removeprefix(DATA_PREFIX)
        return resources.files("bvsim").joinpath("datasets", name)
    return Path(path).expanduser()


def _stamp(path: str) -> tuple | None:
    """(mtime, size) of the file: a cached read is not reused once the file changes."""
    try:
        st = os.stat(_open(path))
    except (OSError, TypeError):
        return None
    return st.st_mtime_ns, st.st_size


#: Every read of this process by (path, digest): the bytes a digest names stay at hand
#: (so a sweep's main process keeps using the bytes it started from).
_READS: dict[tuple[str, str], pd.DataFrame] = {}


class DataChangedError(ConfigError):
    """The CSV file no longer holds the bytes the sweep (and its resume key) started
    from."""


def _read(path: str) -> tuple[str, pd.DataFrame]:
    """(digest, frame) of the file as it is now: one read of its bytes, parsed and
    digested together (``sha256:``, as :func:`bvsim.config.plugins.file_digest`)."""
    return _read_file(path, _stamp(path))


@functools.cache
def _read_file(path: str, stamp) -> tuple[str, pd.DataFrame]:
    raw = _open(path).read_bytes()
    digest = f"sha256:{hashlib.sha256(raw).hexdigest()}"
    # pandas' own rule for the file name (.gz, .tar.gz, .zip, ...), as read_csv(path) infers
    compression = infer_compression(str(path), "infer")
    frame = pd.read_csv(io.BytesIO(raw), compression=compression)
    _READS[(path, digest)] = frame
    return digest, frame


def data_digest(cfg: Config) -> str:
    """``sha256:`` digest of data.path's bytes as read now (what the resume key records
    and :func:`load_split` can be held to)."""
    return _read(cfg.data.path)[0]


def _held(path: str, digest: str | None) -> str:
    """The digest of the bytes to use, read into :data:`_READS`: ``digest`` when given
    (from this process's earlier read, else read now and refused if the file no longer
    holds them), else the file's as it is now."""
    if digest is not None and (path, digest) in _READS:
        return digest
    now, _ = _read(path)
    if digest is not None and now != digest:
        raise DataChangedError(
            f"data.path = {path!r} changed during the sweep (it started from {digest[:19]}..., "
            f"the file is now {now[:19]}...); no chunk was trained on the changed file, "
            "chunks trained before the change are kept; rerun (restore the file to reuse "
            "them)"
        )
    return now


def _read_or_refuse(path: str, key: str) -> pd.DataFrame:
    """The file's table (:func:`_read`), or a one-line :class:`ConfigError` naming
    ``key`` for a file that is missing, not a CSV, or not what its name says (a
    ``.gz``/``.zip``/``.bz2``/``.tar`` that is not one)."""
    try:
        return _read(path)[1]
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{key} = {path!r}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        what = " ".join(str(err).split())  # pandas' messages end in a newline
        raise ConfigError(f"{key} = {path!r}: not a readable CSV file ({what})") from None
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as err:
        what = " ".join(str(err).split()) or type(err).__name__
        raise ConfigError(f"{key} = {path!r}: cannot be read ({what})") from None


def check_csv(cfg: Config, prefix: str = "") -> DataConfig:
    """Validate ``data.source = "csv"``; returns the data config with ``dim``, ``target``
    and ``features`` resolved from the file."""
    d = cfg.data
    key = f"{prefix}data.path"
    if not d.path:
        raise ConfigError(f"{key}: data.source = 'csv' needs data.path = 'file.csv'")
    df = _read_or_refuse(d.path, key)
    _check_header(d, key)
    columns = [str(c) for c in df.columns]
    target = d.target or columns[-1]
    if target not in columns:
        raise ConfigError(
            f"{prefix}data.target = {target!r}: no such column in {d.path}; "
            f"columns: {', '.join(columns)}"
        )
    features = list(d.features) or [c for c in columns if c != target]
    _check_columns(d, prefix, columns, target, features)
    missing = [c for c in features if c not in columns]
    if missing:
        raise ConfigError(
            f"{prefix}data.features: no column {', '.join(map(repr, missing))} in {d.path}; "
            f"columns: {', '.join(columns)}"
        )
    if target in features:
        raise ConfigError(f"{prefix}data.features: includes the target column {target!r}")
    if not features:
        raise ConfigError(
            f"{key} = {d.path!r}: no feature columns besides the target {target!r}; "
            "a CSV source needs at least one feature column"
        )
    classify = task_for(cfg) is CLASSIFICATION
    if classify:
        if df[target].isna().any():
            row = int(np.flatnonzero(df[target].isna().to_numpy())[0])
            raise ConfigError(
                f"{key} = {d.path!r}: column {target!r} has a missing value (line {row + 2})"
            )
        n_classes = df[target].nunique()
        if n_classes < 2:
            raise ConfigError(f"{key} = {d.path!r}: column {target!r} has only one class")
    for col in features if classify else [*features, target]:
        values = _to_numeric(cfg, key, col, df[col])
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            if col == target:  # labels: a classification task, or the wrong column
                which = "data.target" if d.target else "the target (data.target: the last column)"
                hint = f"; it is {which}: for class labels set data.task = 'classification'"
            else:
                hint = "; leave it out of the features with data.features = [...]"
            raise ConfigError(
                f"{key} = {d.path!r}: column {col!r} is not numeric "
                f"(line {row + 2}: {df[col].iloc[row]!r}){hint}"
            )
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise ConfigError(
                f"{key} = {d.path!r}: column {col!r} has a missing value (line {row + 2}); "
                "drop or impute such rows first"
            )
        _check_magnitude(cfg, key, col, values.to_numpy(dtype=np.float64))
    n_rows = len(df)
    n_test = _test_rows(d.test_fraction, n_rows)
    pool = n_rows - n_test
    if n_test < 1 or pool < 2:
        raise ConfigError(
            f"{prefix}data.test_fraction = {d.test_fraction}: {d.path} has {n_rows} rows, "
            f"leaving {n_test} for testing and {pool} for training"
        )
    _check_pool_size(cfg, prefix, pool)
    extra = {"n_classes": int(n_classes)} if classify else {}
    _check_given(prefix, d, {"dim": len(features), **extra}, target)
    return dataclasses.replace(
        d, dim=len(features), target=target, features=features, test_design="sample", **extra
    )


def _check_given(prefix: str, d: DataConfig, found: dict, target: str) -> None:
    """Refuse a ``data.dim`` or ``data.n_classes`` set (to other than its default) to
    another number than the file gives: it is read from the file, and replacing it
    silently would hide a wrong file or a wrong list of features."""
    default = DataConfig()
    what = {"dim": "features", "n_classes": f"classes in column {target!r}"}
    for name, value in found.items():
        given = getattr(d, name)
        if given != getattr(default, name) and given != value:
            raise ConfigError(
                f"{prefix}data.{name} = {given}: {d.path} gives {value} {what[name]}; "
                f"leave data.{name} out (it is read from the file)"
            )


#: How pandas names a column whose header cell is empty (a saved index: ``to_csv()``).
_UNNAMED = re.compile(r"Unnamed: \d+")


def _check_columns(d: DataConfig, prefix: str, columns, target: str, features) -> None:
    """data.features names each column once, and no column without a name in the header
    (pandas' ``Unnamed: 0``, the index ``to_csv()`` saves) is used unless named in
    data.features or data.target."""
    twice = sorted({c for c in d.features if d.features.count(c) > 1})
    if twice:
        raise ConfigError(
            f"{prefix}data.features = {d.features!r}: lists column(s) "
            f"{', '.join(map(repr, twice))} more than once; list each feature column once"
        )
    chosen = [] if d.features else features
    unnamed = [c for c in chosen if _UNNAMED.fullmatch(c)]
    if unnamed:
        raise ConfigError(
            f"{prefix}data.path = {d.path!r}: column {columns.index(unnamed[0]) + 1} has no "
            f"name in the header ({unnamed[0]!r} to pandas) and would be a feature: it looks "
            "like a saved index (pandas' to_csv() without index=False); drop it, or list "
            "the feature columns in data.features"
        )
    if not d.target and _UNNAMED.fullmatch(target):
        raise ConfigError(
            f"{prefix}data.path = {d.path!r}: the last column has no name in the header "
            f"({target!r} to pandas) and would be the target; name it, or set data.target"
        )


#: Largest magnitude of a CSV value: squares and sums of squares (the standardization's
#: variance) stay far from float64 overflow.
MAX_CSV_MAGNITUDE = 1e100


def _check_header(d: DataConfig, key: str) -> None:
    """No column name repeated in the header (pandas would silently rename the second
    ``y`` to ``y.1``, and data.target would pick the wrong column)."""
    try:
        with _open(d.path).open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return  # pandas read it; nothing more to say here
    names = [name.strip() for name in header]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(
            f"{key} = {d.path!r}: the header repeats column name(s) "
            f"{', '.join(map(repr, repeated))}; every column needs its own name"
        )


def _limit(cfg: Config) -> float:
    """Largest magnitude a CSV value may have (see :data:`MAX_CSV_MAGNITUDE`); float32's
    largest where the values train unstandardized in float32 (a ``model.kind =
    'sklearn'`` estimator fits float64 arrays whatever train.dtype says)."""
    float32 = cfg.train.dtype == "float32" and cfg.model.kind != "sklearn"
    if not cfg.data.standardize and float32:
        return float(np.finfo(np.float32).max)
    return MAX_CSV_MAGNITUDE


def _to_numeric(cfg: Config, key: str, col: str, column: pd.Series) -> pd.Series:
    """``column`` as numbers (NaN where a cell is not one); an integer too large for a
    float (``1`` and 400 zeros) is a one-line error with its line."""
    try:
        return pd.to_numeric(column, errors="coerce")
    except OverflowError:
        pass
    for row, cell in enumerate(column):
        try:
            float(cell)
        except OverflowError:
            text = str(cell)
            shown = text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"
            raise ConfigError(
                f"{key} = {cfg.data.path!r}: column {col!r} has a value too large (line "
                f"{row + 2}: {shown}); values must be finite with magnitude at most "
                f"{_limit(cfg):.3g}"
            ) from None
        except (TypeError, ValueError):
            continue
    raise AssertionError(f"no overflowing cell in column {col!r}")


def _check_magnitude(cfg: Config, key: str, col: str, values: np.ndarray) -> None:
    """Every value of numeric column ``col`` finite and small enough to standardize (and,
    unstandardized, to fit the training dtype)."""
    d = cfg.data
    limit = _limit(cfg)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values) > limit)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = float(values[row])
        what = "a non-finite value" if not np.isfinite(value) else "a value too large"
        raise ConfigError(
            f"{key} = {d.path!r}: column {col!r} has {what} (line {row + 2}: {value!r}); "
            f"values must be finite with magnitude at most {limit:.3g}"
        )


def _check_pool_size(cfg: Config, prefix: str, pool: int) -> None:
    """The training pool is large enough for every training-set size of the sweep
    (``data.n_train``, or each value of the ``n_train`` axis)."""
    d, k = cfg.data, cfg.sweep.n_reps
    if cfg.sweep.axis == "n_train" and cfg.sweep.axis_values:
        n = int(max(cfg.sweep.axis_values))
        what = f"{prefix}sweep.axis_values = {cfg.sweep.axis_values!r} (n_train up to {n})"
    else:
        n = d.n_train
        what = f"{prefix}data.n_train = {n}"
    if d.resample == "subsample" and n > pool:
        raise ConfigError(
            f"{what}: subsampling without replacement needs at most the {pool} training "
            f"rows of {d.path}"
        )
    if d.resample == "disjoint" and n * k > pool:
        raise ConfigError(
            f"{what} x sweep.n_reps = {k}: disjoint sets need {n * k} rows; {d.path} has "
            f"{pool} training rows (lower one of them)"
        )


def _test_rows(test_fraction: float, n_rows: int) -> int:
    """Rows of the fixed test split of a file of ``n_rows`` rows: the one place its
    size is decided (:func:`check_csv` checks it, :func:`load_split` draws it)."""
    return int(round(test_fraction * n_rows))


def n_test_rows(cfg: Config) -> int:
    """Rows of the test split of data.path as it is now (the file read once, not
    split): what a run's sizes count (:func:`bvsim.run.chunks.run_sizes`)."""
    return _test_rows(cfg.data.test_fraction, len(_read(cfg.data.path)[1]))


@functools.cache
def _split(path, digest, target, features, test_fraction, standardize, seed, classify):
    df = _READS[(path, digest)]
    x = df[list(features)].to_numpy(dtype=np.float64)
    if classify:  # labels -> 0..C-1 in sorted order of the labels
        y = pd.Categorical(df[target]).codes.astype(np.float64)
    else:
        y = df[target].to_numpy(dtype=np.float64)
    n_test = _test_rows(test_fraction, len(df))
    order = rng(seed, Stream.TEST).permutation(len(df))
    test, pool = order[:n_test], np.sort(order[n_test:])
    if standardize:  # statistics of the training pool only
        mx, sx = x[pool].mean(axis=0), x[pool].std(axis=0)
        my, sy = y[pool].mean(), y[pool].std()
        x = (x - mx) / np.where(sx > 0, sx, 1.0)
        if not classify:
            y = (y - my) / (sy if sy > 0 else 1.0)
    return x[pool], y[pool], x[test], y[test]


def load_split(cfg: Config, digest: str | None = None):
    """(x_pool, y_pool, x_test, y_test): the training pool and the fixed test split.

    Shapes (n_pool, dim), (n_pool,), (n_test, dim), (n_test,). The split is drawn from
    the seed tree's TEST stream; standardization (if on) uses the pool's statistics.
    With ``digest`` (:func:`data_digest` when the sweep started) the split is of those
    bytes: this process's earlier read of them, else the file as it is now, refused
    with a :class:`DataChangedError` when it no longer holds them (a worker never trains
    on a file edited during the sweep).
    """
    d = cfg.data
    digest = _held(d.path, digest)
    return _split(
        d.path,
        digest,
        d.target,
        tuple(d.features),
        d.test_fraction,
        d.standardize,
        cfg.seed,
        task_for(cfg) is CLASSIFICATION,
    )


def class_labels(cfg: Config, digest: str | None = None) -> list[str]:
    """The labels of a classification target in the order of their class indices
    0..C−1 (sorted, as :func:`load_split` codes them), as text, for ``run.json``."""
    d = cfg.data
    df = _READS[(d.path, _held(d.path, digest))]
    return [str(c) for c in pd.Categorical(df[d.target]).categories]


def training_rows(cfg: Config, k: int, n_pool: int) -> np.ndarray:
    """Row indices (into the pool) of training set ``k``, by ``data.resample``."""
    d = cfg.data
    if d.resample == "disjoint":  # one permutation, cut into consecutive parts
        perm = rng(cfg.seed, Stream.DESIGN).permutation(n_pool)
        return perm[k * d.n_train : (k + 1) * d.n_train]
    gen = rng(cfg.seed, Stream.DATA, int(k))
    if d.resample == "bootstrap":
        return gen.integers(0, n_pool, size=d.n_train)
    return gen.choice(n_pool, size=d.n_train, replace=False)


def file_rows(cfg: Config, digest: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): every row of the file, the training pool's then the test split's, as
    :func:`load_split` gives them (standardized if on; with ``digest``, of those
    bytes), for :func:`bvsim.estimate.squared.repeated_x_noise`."""
    x_pool, y_pool, x_test, y_test = load_split(cfg, digest)
    return np.concatenate([x_pool, x_test]), np.concatenate([y_pool, y_test])
