"""Checks of a configuration across keys (the per-key checks are in
:mod:`bvsim.config.schema`): the generator's ranges, classification, what the training
dtype can hold (no overflow, no underflow, distinct weight decays), keys without effect,
the solver against the model, and the crossed design's factor counts and layout. Pure:
no file is read and no user code runs here."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .axis import check_axis
from .moot import is_classification
from .schema import CATEGORICAL_AXES, SECTIONS, Config, ConfigError
from .values import (
    FACTOR_INIT,
    FACTOR_INPUTS,
    FACTOR_NOISE,
    FACTOR_ROWS,
    MIN_SETS_CROSS_ENTROPY,
)

__all__ = [
    "check_consistency",
    "check_crossed_n_reps",
    "crossed_factors",
    "crossed_shape",
    "is_classification",
    "resolve_design",
]


def _check_generator(cfg: Config, prefix: str) -> None:
    """Checks of the data-generating process (not used for a CSV source)."""
    d = cfg.data
    if d.x_low >= d.x_high:
        raise ConfigError(f"{prefix}data.x_low = {d.x_low} must be < data.x_high = {d.x_high}")
    if not math.isfinite(d.x_high - d.x_low):
        raise ConfigError(
            f"{prefix}data.x_low = {d.x_low}, data.x_high = {d.x_high}: the range overflows "
            "(its width must be a finite number)"
        )
    if d.x_dist == "grid" and d.dim != 1:
        raise ConfigError(f"{prefix}data.x_dist = 'grid' needs data.dim = 1 (got {d.dim})")
    if d.x_dist == "grid" and d.train_design != "fixed":
        raise ConfigError(
            f"{prefix}data.x_dist = 'grid' is a fixed design: set data.train_design = 'fixed'"
        )
    if d.test_design == "grid" and d.dim != 1:
        raise ConfigError(
            f"{prefix}data.test_design = 'grid' needs data.dim = 1 (got {d.dim}); use 'sample'"
        )
    if d.truth in ("sine", "cubic") and d.dim != 1:
        raise ConfigError(f"{prefix}data.truth = {d.truth!r} needs data.dim = 1")


def _check_classification(cfg: Config, prefix: str) -> None:
    if not is_classification(cfg):
        return
    if cfg.model.kind not in ("mlp", "linear") or cfg.train.solver != "gd":
        task = (
            f"data.task = {cfg.data.task!r} (data.source = 'csv')"
            if cfg.data.source == "csv"
            else f"data.truth = {cfg.data.truth!r}"
        )
        raise ConfigError(
            f"{prefix}{task} is a classification task: it needs model.kind = 'mlp' or "
            f"'linear' and train.solver = 'gd' (got model.kind = {cfg.model.kind!r}, "
            f"train.solver = {cfg.train.solver!r})"
        )
    if cfg.sweep.axis not in ("none", "n_train", "hidden_width", "dropout", *CATEGORICAL_AXES):
        raise ConfigError(f"{prefix}sweep.axis = {cfg.sweep.axis!r}: not for classification")
    if cfg.sweep.n_reps < MIN_SETS_CROSS_ENTROPY:  # what Task.min_sets asks of each λ
        raise ConfigError(
            f"{prefix}sweep.n_reps = {cfg.sweep.n_reps}: a classification task needs at "
            f"least {MIN_SETS_CROSS_ENTROPY} training sets (the cross-entropy terms are "
            "jackknife-corrected)"
        )


#: Largest finite float32: a value that enters float32 training must not exceed it.
FLOAT32_MAX = 3.4028234663852886e38

#: Float keys that never enter training in train.dtype: a stopping rule of the
#: estimates and a threshold compared in numpy (any finite value is meaningful).
NOT_IN_TRAINING = ("sweep.target_se", "train.diverge_threshold")
#: Float keys whose square root enters (w* = sqrt(coef_norm2 / dim) per entry, computed
#: in float64): no underflow check.
NO_UNDERFLOW_CHECK = ("data.coef_norm2",)


def _check_dtype_range(cfg: Config, prefix: str) -> None:
    """Every number that enters training fits the training dtype: float32 overflows
    above 3.4e38 (such a learning rate, weight decay or x range would be inf there),
    and a non-zero value below the dtype's smallest normal number (1.2e-38 in float32,
    2.2e-308 in float64) would train as 0 or as a denormal (flushed to 0 on the CPU
    workers); distinct weight decays must stay distinct in the dtype. A
    ``model.kind = 'sklearn'`` estimator trains on float64 arrays, not in train.dtype
    (a key without effect there: :mod:`.moot`), so nothing is checked for it."""
    if cfg.model.kind == "sklearn":
        return
    dtype = np.dtype(cfg.train.dtype)
    tiny = float(np.finfo(dtype).tiny)
    for section, cls in SECTIONS.items():
        sub = getattr(cfg, section)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            if f.metadata["kind"] not in ("float", "float_list") or key in NOT_IN_TRAINING:
                continue
            value = getattr(sub, f.name)
            for v in value if isinstance(value, list) else [value]:
                if dtype == np.float32 and abs(v) > FLOAT32_MAX:
                    raise ConfigError(
                        f"{prefix}{key} = {value!r}: not representable in "
                        f"train.dtype = 'float32' (largest {FLOAT32_MAX:.3g}); use a smaller "
                        "value or train.dtype = 'float64'"
                    )
                if 0 < abs(v) < tiny and key not in NO_UNDERFLOW_CHECK:
                    raise ConfigError(
                        f"{prefix}{key} = {value!r}: {v!r} underflows in train.dtype = "
                        f"{cfg.train.dtype!r} (smallest normal {tiny:.3g}), so it would train "
                        f"as 0 or a denormal; use a value of at least {tiny:.3g}"
                        + (" or train.dtype = 'float64'" if dtype == np.float32 else "")
                    )
    grid = cfg.sweep.weight_decay
    cast = np.asarray(grid, dtype=np.float64).astype(dtype)
    first: dict = {}
    for v, c in zip(grid, cast.tolist(), strict=True):
        if c in first and first[c] != v:
            raise ConfigError(
                f"{prefix}sweep.weight_decay = {grid!r}: {first[c]!r} and {v!r} are the "
                f"same number in train.dtype = {cfg.train.dtype!r} ({c:.9g}); use values "
                "further apart" + (" or train.dtype = 'float64'" if dtype == np.float32 else "")
            )
        first.setdefault(c, v)


#: A run with ``sweep.target_se`` stops no earlier than this many training sets: the
#: standard errors it compares with the target are themselves estimated from the sets
#: (:mod:`bvsim.run.precision`).
MIN_SETS_FOR_TARGET = 30


def check_consistency(cfg: Config, prefix: str) -> None:
    """Checks that involve more than one key."""
    d = cfg.data
    sw = cfg.sweep
    if sw.target_se and sw.design == "nested" and sw.n_reps <= MIN_SETS_FOR_TARGET:
        raise ConfigError(
            f"{prefix}sweep.target_se = {sw.target_se:g} stops no earlier than "
            f"{MIN_SETS_FOR_TARGET} training sets, so with sweep.n_reps = {sw.n_reps} (the "
            f"most it may use) it would train them all: raise sweep.n_reps above "
            f"{MIN_SETS_FOR_TARGET}, or set sweep.target_se = 0"
        )
    _check_dtype_range(cfg, prefix)
    _check_classification(cfg, prefix)
    if d.source == "generator":
        _check_generator(cfg, prefix)
    if cfg.train.solver == "closed_form" and cfg.train.penalty != "l2":
        raise ConfigError(
            f"{prefix}train.solver = 'closed_form' solves the l2 penalty only "
            f"(got train.penalty = {cfg.train.penalty!r})"
        )
    if cfg.train.solver == "closed_form" and (cfg.model.kind != "linear" or cfg.model.bias):
        raise ConfigError(
            f"{prefix}train.solver = 'closed_form' needs model.kind = 'linear' and "
            "model.bias = false (it solves ridge regression exactly)"
        )
    m = cfg.model
    if m.kind == "sklearn" and m.param in m.estimator_args:
        raise ConfigError(
            f"{prefix}model.estimator_args sets {m.param!r}, the parameter model.param "
            "sweeps (its values come from sweep.weight_decay): leave it out of "
            "model.estimator_args"
        )
    if m.dropout and (m.kind != "mlp" or not m.hidden):
        raise ConfigError(
            f"{prefix}model.dropout = {m.dropout!r} has no effect with model.kind = "
            f"{m.kind!r}, model.hidden = {m.hidden!r}: dropout acts after the hidden "
            "activations of model.kind = 'mlp'; leave it 0"
        )
    check_axis(cfg, prefix)
    b = cfg.train.batch_size
    if cfg.sweep.axis == "n_train":  # each run's data.n_train is a value of the axis
        below = [int(v) for v in cfg.sweep.axis_values if b > v]
        if below:
            raise ConfigError(
                f"{prefix}train.batch_size = {b} exceeds the sweep.axis = 'n_train' values "
                f"{below} (sweep.axis_values = {[int(v) for v in cfg.sweep.axis_values]}): "
                "use 0 for full batch, or a batch size no larger than the smallest value"
            )
    elif b > d.n_train:
        raise ConfigError(
            f"{prefix}train.batch_size = {cfg.train.batch_size} exceeds data.n_train = "
            f"{d.n_train}; use 0 for full batch"
        )


def resolve_design(cfg: Config, prefix: str) -> Config:
    """Check the keys of ``sweep.design`` and, in the crossed design, set
    ``sweep.n_reps`` to ``n_inputs * n_noise`` (training set k = a * n_noise + b).

    A factor that the data or the solver do not have must have one level: a fixed
    design has no draws of x, data from a file no separate label noise (closed-form
    ridge has no initialization in any design: a key without effect, config.moot);
    classification is not decomposed this way."""
    sw = cfg.sweep
    if sw.design != "crossed":  # its n_inputs, n_noise: keys without effect (config.moot)
        return cfg
    where = f"{prefix}sweep.design = 'crossed'"
    d = cfg.data
    if is_classification(cfg):
        raise ConfigError(
            f"{where}: not for classification (the ANOVA splits squared error); "
            "use sweep.design = 'nested'"
        )
    if sw.target_se:
        raise ConfigError(
            f"{where}: sweep.target_se adds training sets one chunk at a time, which a "
            "crossed design cannot; set sweep.target_se = 0"
        )
    if d.source == "csv" and sw.n_noise != 1:
        raise ConfigError(
            f"{where}: data from a file (data.source = 'csv') have no separate label noise: "
            f"set sweep.n_noise = 1 (got {sw.n_noise}); sweep.n_inputs draws the training rows"
        )
    if d.source == "generator" and d.train_design == "fixed" and sw.n_inputs != 1:
        raise ConfigError(
            f"{where}: data.train_design = 'fixed' draws x once, so there is no x factor: "
            f"set sweep.n_inputs = 1 (got {sw.n_inputs})"
        )
    n_sets = sw.n_inputs * sw.n_noise
    if n_sets < 2:
        raise ConfigError(
            f"{where}: needs sweep.n_inputs x sweep.n_noise >= 2 training sets "
            f"(got {sw.n_inputs} x {sw.n_noise})"
        )
    return dataclasses.replace(cfg, sweep=dataclasses.replace(sw, n_reps=n_sets))


def crossed_factors(cfg: Config) -> list[tuple[str, int]]:
    """The factors of the crossed design and their levels, in the order of the
    prediction axes (training set ``k = a * n_noise + b``, then the seed): the training
    inputs (``sample`` for data from a file: the drawn rows), the label noise and the
    initialization."""
    sw = cfg.sweep
    inputs = FACTOR_ROWS if cfg.data.source == "csv" else FACTOR_INPUTS
    return [(inputs, sw.n_inputs), (FACTOR_NOISE, sw.n_noise), (FACTOR_INIT, sw.n_seeds)]


def crossed_shape(cfg: Config) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The crossed design's factors with at least 2 levels and their level counts: the
    shape that a λ's predictions (n_reps, n_seeds, ...) take as (n_1, ..., n_F, ...)."""
    levels = [(name, n) for name, n in crossed_factors(cfg) if n >= 2]
    return tuple(name for name, _ in levels), tuple(n for _, n in levels)


def check_crossed_n_reps(cfg: Config, user_raw: dict, prefix: str) -> None:
    """The crossed design trains n_inputs x n_noise training sets: a ``sweep.n_reps``
    that the user set (not a preset's) to another number is refused, not overridden.
    The same number is accepted (a crossed run's saved ``config.toml`` carries it)."""
    sw = cfg.sweep
    if sw.design != "crossed" or not isinstance(user_raw.get("sweep"), dict):
        return
    asked = user_raw["sweep"].get("n_reps")
    if asked is None or asked == sw.n_reps:
        return
    raise ConfigError(
        f"{prefix}sweep.n_reps = {asked!r} conflicts with sweep.design = 'crossed', which "
        f"trains sweep.n_inputs x sweep.n_noise = {sw.n_inputs} x {sw.n_noise} = "
        f"{sw.n_reps} training sets: leave sweep.n_reps out or set it to {sw.n_reps}"
    )
