"""The user's own data: a CSV file, a fixed held-out test split, resampled training sets.

With no generator the noise is unknown: the test labels stand in for the truth, so the
squared-bias estimate includes the noise ("bias² + noise"), and the outputs say so.
Every problem with the file is a :class:`ConfigError` raised when the configuration
loads: missing file or column, non-numeric values, missing values (with the row), too
few rows for the requested training-set size.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config, ConfigError, DataConfig

__all__ = ["DATA_PREFIX", "check_csv", "load_split", "repeated_x_noise", "training_rows"]

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


def _read(path: str) -> pd.DataFrame:
    return _read_file(path, _stamp(path))


@functools.cache
def _read_file(path: str, stamp) -> pd.DataFrame:
    return pd.read_csv(_open(path))


def check_csv(cfg: Config, prefix: str = "") -> DataConfig:
    """Validate ``data.source = "csv"``; returns the data config with ``dim``, ``target``
    and ``features`` resolved from the file."""
    d = cfg.data
    key = f"{prefix}data.path"
    if not d.path:
        raise ConfigError(f"{key}: data.source = 'csv' needs data.path = 'file.csv'")
    try:
        df = _read(d.path)
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(f"{key} = {d.path!r}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ConfigError(f"{key} = {d.path!r}: not a readable CSV file ({err})") from None
    columns = [str(c) for c in df.columns]
    target = d.target or columns[-1]
    if target not in columns:
        raise ConfigError(
            f"{prefix}data.target = {target!r}: no such column in {d.path}; "
            f"columns: {', '.join(columns)}"
        )
    features = list(d.features) or [c for c in columns if c != target]
    missing = [c for c in features if c not in columns]
    if missing:
        raise ConfigError(
            f"{prefix}data.features: no column {', '.join(map(repr, missing))} in {d.path}; "
            f"columns: {', '.join(columns)}"
        )
    if target in features:
        raise ConfigError(f"{prefix}data.features: includes the target column {target!r}")
    classify = d.task == "classification"
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
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConfigError(
                f"{key} = {d.path!r}: column {col!r} is not numeric "
                f"(line {row + 2}: {df[col].iloc[row]!r})"
            )
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise ConfigError(
                f"{key} = {d.path!r}: column {col!r} has a missing value (line {row + 2}); "
                "drop or impute such rows first"
            )
    n_rows = len(df)
    n_test = int(round(d.test_fraction * n_rows))
    pool = n_rows - n_test
    if n_test < 1 or pool < 2:
        raise ConfigError(
            f"{prefix}data.test_fraction = {d.test_fraction}: {d.path} has {n_rows} rows, "
            f"leaving {n_test} for testing and {pool} for training"
        )
    n, k = d.n_train, cfg.sweep.n_reps
    if d.resample == "subsample" and n > pool:
        raise ConfigError(
            f"{prefix}data.n_train = {n}: subsampling without replacement needs at most "
            f"the {pool} training rows of {d.path}"
        )
    if d.resample == "disjoint" and n * k > pool:
        raise ConfigError(
            f"{prefix}data.n_train = {n} x sweep.n_reps = {k} disjoint sets need {n * k} rows; "
            f"{d.path} has {pool} training rows (lower one of them)"
        )
    extra = {"n_classes": int(n_classes)} if classify else {}
    return dataclasses.replace(
        d, dim=len(features), target=target, features=features, test_design="sample", **extra
    )


@functools.cache
def _split(path, target, features, test_fraction, standardize, seed, classify, stamp=None):
    from .data import Stream, rng

    df = _read(path)
    x = df[list(features)].to_numpy(dtype=np.float64)
    if classify:  # labels -> 0..C-1 in sorted order of the labels
        y = pd.Categorical(df[target]).codes.astype(np.float64)
    else:
        y = df[target].to_numpy(dtype=np.float64)
    n_test = int(round(test_fraction * len(df)))
    order = rng(seed, Stream.TEST).permutation(len(df))
    test, pool = order[:n_test], np.sort(order[n_test:])
    if standardize:  # statistics of the training pool only
        mx, sx = x[pool].mean(axis=0), x[pool].std(axis=0)
        my, sy = y[pool].mean(), y[pool].std()
        x = (x - mx) / np.where(sx > 0, sx, 1.0)
        if not classify:
            y = (y - my) / (sy if sy > 0 else 1.0)
    return x[pool], y[pool], x[test], y[test]


def load_split(cfg: Config):
    """(x_pool, y_pool, x_test, y_test): the training pool and the fixed test split.

    Shapes (n_pool, dim), (n_pool,), (n_test, dim), (n_test,). The split is drawn from
    the seed tree's TEST stream; standardization (if on) uses the pool's statistics.
    """
    d = cfg.data
    return _split(
        d.path,
        d.target,
        tuple(d.features),
        d.test_fraction,
        d.standardize,
        cfg.seed,
        d.task == "classification",
        _stamp(d.path),
    )


def training_rows(cfg: Config, k: int, n_pool: int) -> np.ndarray:
    """Row indices (into the pool) of training set ``k``, by ``data.resample``."""
    from .data import Stream, rng

    d = cfg.data
    if d.resample == "disjoint":  # one permutation, cut into consecutive parts
        perm = rng(cfg.seed, Stream.DESIGN).permutation(n_pool)
        return perm[k * d.n_train : (k + 1) * d.n_train]
    gen = rng(cfg.seed, Stream.DATA, int(k))
    if d.resample == "bootstrap":
        return gen.integers(0, n_pool, size=d.n_train)
    return gen.choice(n_pool, size=d.n_train, replace=False)


def repeated_x_noise(cfg: Config) -> tuple[float, int]:
    """Noise variance estimated from rows that share the same x (all rows of the file).

    The pooled within-group variance of the target (ddof = 1 in each group), in the
    target's units after standardization; with no repeated x it is NaN.

    Returns
    -------
    noise_var : float
    n_groups : int
        Groups of two or more rows with identical features.
    """
    d = cfg.data
    x_pool, y_pool, x_test, y_test = load_split(cfg)
    x = np.concatenate([x_pool, x_test])
    y = np.concatenate([y_pool, y_test])
    _, group = np.unique(x, axis=0, return_inverse=True)
    group = group.ravel()
    sizes = np.bincount(group)
    if d.task == "classification" or not (sizes >= 2).any():
        return float("nan"), 0
    sums = np.bincount(group, weights=y)
    sq = np.bincount(group, weights=y * y)
    keep = sizes >= 2
    ss = sq[keep] - sums[keep] ** 2 / sizes[keep]  # within-group sum of squares
    return float(ss.sum() / (sizes[keep] - 1).sum()), int(keep.sum())
