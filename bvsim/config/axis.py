"""A sweep's second axis: its checks and the one-axis configurations it expands into."""

from __future__ import annotations

import dataclasses

from .moot import reset_moot_keys
from .schema import CATEGORICAL_AXES, Config, ConfigError, mark_user_code_checked, user_code_checked

__all__ = ["INTEGER_AXES", "axis_configs", "axis_values", "check_axis"]

#: Second axes whose values count something (checked to be positive integers).
INTEGER_AXES = ("n_train", "hidden_width")


def _check_categorical_axis(cfg: Config, prefix: str) -> None:
    """``sweep.axis_labels``: only with a categorical axis, which needs them (names it
    allows, none repeated) and no ``sweep.axis_values``."""
    sw = cfg.sweep
    where = f"{prefix}sweep.axis_labels = {sw.axis_labels!r}"
    if sw.axis not in CATEGORICAL_AXES:
        if sw.axis_labels:
            raise ConfigError(
                f"{where}: labels are for a categorical sweep.axis "
                f"({', '.join(CATEGORICAL_AXES)}), not {sw.axis!r}"
            )
        return
    allowed = CATEGORICAL_AXES[sw.axis]
    if sw.axis_values:
        raise ConfigError(
            f"{prefix}sweep.axis_values = {sw.axis_values!r}: sweep.axis = {sw.axis!r} takes "
            f"names in sweep.axis_labels (some of {', '.join(map(repr, allowed))})"
        )
    if not sw.axis_labels:
        raise ConfigError(
            f"{where}: sweep.axis = {sw.axis!r} needs a non-empty list of names "
            f"(some of {', '.join(map(repr, allowed))})"
        )
    bad = [v for v in sw.axis_labels if v not in allowed]
    if bad:
        raise ConfigError(
            f"{where}: {bad[0]!r} is not a {sw.axis}; must be some of "
            f"{', '.join(map(repr, allowed))}"
        )
    if len(set(sw.axis_labels)) != len(sw.axis_labels):
        raise ConfigError(f"{where}: must not repeat a value")
    if cfg.model.kind == "sklearn":
        raise ConfigError(
            f"{prefix}sweep.axis = {sw.axis!r} sets how torch models train: it needs "
            "model.kind = 'mlp', 'linear' or 'module'"
        )
    if sw.axis == "penalty" and cfg.train.solver == "closed_form" and sw.axis_labels != ["l2"]:
        raise ConfigError(f"{where}: train.solver = 'closed_form' solves the l2 penalty only")
    if sw.axis == "optimizer" and cfg.train.solver == "closed_form":
        raise ConfigError(
            f"{prefix}sweep.axis = 'optimizer' needs train.solver = 'gd' (closed_form has none)"
        )


def _check_axis_has_effect(cfg: Config, prefix: str) -> None:
    """A numeric axis whose key the run does not use would train identical sub-runs."""
    sw, m = cfg.sweep, cfg.model
    where = f"{prefix}sweep.axis = {sw.axis!r}"
    if sw.axis == "noise_std" and cfg.data.source == "csv":
        raise ConfigError(
            f"{where} sets data.noise_std, which data.source = 'csv' does not use (the "
            "file's labels carry their own noise): every value would train the same run"
        )
    if sw.axis == "hidden_width" and not m.hidden:
        raise ConfigError(
            f"{where} sets the width of every hidden layer, and model.hidden = [] has none: "
            "every value would train the same run"
        )
    if sw.axis == "dropout" and (m.kind != "mlp" or not m.hidden):
        raise ConfigError(
            f"{where} sets model.dropout, which acts after the hidden activations of "
            f"model.kind = 'mlp' (got model.kind = {m.kind!r}"
            + (f", model.hidden = {m.hidden!r}" if m.kind == "mlp" else "")
            + "): every value would train the same run"
        )
    if sw.axis == "dropout" and m.dropout:
        raise ConfigError(
            f"{prefix}model.dropout = {m.dropout!r} is replaced by the values of "
            "sweep.axis = 'dropout': leave it 0"
        )


def check_axis(cfg: Config, prefix: str) -> None:
    sw = cfg.sweep
    _check_categorical_axis(cfg, prefix)
    if sw.axis in CATEGORICAL_AXES:
        return
    where = f"{prefix}sweep.axis_values = {sw.axis_values!r}"
    if sw.axis == "none":
        if sw.axis_values:
            raise ConfigError(f"{where}: set sweep.axis to say which key these values are for")
        return
    values = sw.axis_values
    if not values:
        raise ConfigError(f"{where}: sweep.axis = {sw.axis!r} needs a non-empty list of values")
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: must not repeat a value")
    if sw.axis in INTEGER_AXES and not all(v >= 1 and float(v).is_integer() for v in values):
        raise ConfigError(f"{where}: {sw.axis} values must be positive integers")
    if sw.axis == "hidden_width" and cfg.model.kind != "mlp":
        raise ConfigError(f"{prefix}sweep.axis = 'hidden_width' needs model.kind = 'mlp'")
    _check_axis_has_effect(cfg, prefix)
    if sw.axis == "noise_std" and min(values) < 0:
        raise ConfigError(f"{where}: noise_std values must be >= 0")
    if sw.axis == "dropout" and not all(0 <= v < 1 for v in values):
        raise ConfigError(f"{where}: dropout values must be in [0, 1)")


def axis_configs(cfg: Config) -> list[tuple[float | None, Config]]:
    """The configurations of a sweep's second axis: [(value, config), ...] (a value is
    a name for a categorical axis, see :func:`axis_values`).

    Without a second axis: ``[(None, cfg)]``. Each returned configuration has
    ``sweep.axis = "none"`` and the axis value set in its own key, so it is a plain
    one-axis sweep (with its own seed tree under the same root seed); a key without
    effect in it goes back to its default (:func:`bvsim.config.moot.reset_moot_keys`).
    A value's configuration is marked checked when ``cfg`` is, with its digests
    (:func:`bvsim.config.schema.mark_user_code_checked`).
    """
    sw = cfg.sweep
    if sw.axis == "none":
        return [(None, cfg)]
    out = []
    for value in axis_values(cfg):
        sweep = dataclasses.replace(sw, axis="none", axis_values=[], axis_labels=[])
        if sw.axis in CATEGORICAL_AXES:  # penalty, optimizer: the training key
            train = dataclasses.replace(cfg.train, **{sw.axis: value})
            sub = dataclasses.replace(cfg, train=train, sweep=sweep)
        elif sw.axis == "n_train":
            data = dataclasses.replace(cfg.data, n_train=int(value))
            sub = dataclasses.replace(cfg, data=data, sweep=sweep)  # batch_size: checked
        elif sw.axis == "noise_std":
            data = dataclasses.replace(cfg.data, noise_std=float(value))
            sub = dataclasses.replace(cfg, data=data, sweep=sweep)
        elif sw.axis == "hidden_width":
            hidden = [int(value)] * len(cfg.model.hidden)
            model = dataclasses.replace(cfg.model, hidden=hidden)
            sub = dataclasses.replace(cfg, model=model, sweep=sweep)
        else:  # dropout
            model = dataclasses.replace(cfg.model, dropout=float(value))
            sub = dataclasses.replace(cfg, model=model, sweep=sweep)
        sub = reset_moot_keys(sub)
        if (digests := user_code_checked(cfg)) is not None:  # the values name no other file
            sub = mark_user_code_checked(sub, digests)
        out.append((value, sub))
    return out


def axis_values(cfg: Config) -> list:
    """The values of the second axis: ``sweep.axis_labels`` (str) for a categorical
    axis, ``sweep.axis_values`` as int for a count (n_train, hidden_width: the axis
    column of the CSVs reads ``10``, not ``10.0``), else as float."""
    sw = cfg.sweep
    if sw.axis in CATEGORICAL_AXES:
        return list(sw.axis_labels)
    if sw.axis in INTEGER_AXES:
        return [int(v) for v in sw.axis_values]
    return list(sw.axis_values)
