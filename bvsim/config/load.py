"""Reading a configuration: presets, TOML files and ``--set`` overrides merged, checked
against the schema (:mod:`bvsim.config.schema`) and across keys, and written back as
TOML.

Unknown keys, wrong types and bad values raise :class:`ConfigError` before any compute,
naming the file, the key, the value and what is allowed. Checks that read the user's
files or run the user's code belong to the parts that own them (the CSV source, the
truth function, the module and estimator trainers); :func:`load_config` takes them as
``check_user_code`` (the public :func:`bvsim.load_config` passes them), so this
package imports nothing above it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import tomllib
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from .schema import CATEGORICAL_AXES, CLASSIFICATION_TRUTHS, SECTIONS, Config, ConfigError

__all__ = [
    "axis_configs",
    "axis_values",
    "config_key",
    "describe_keys",
    "dumps_toml",
    "from_dict",
    "is_classification",
    "list_presets",
    "load_config",
    "text_key",
]


# --- parsing --------------------------------------------------------------------------


def _suggest(name, options):
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(where, value, kind):
    """Return ``value`` as ``kind`` or raise ConfigError naming ``where``."""

    def bad(expected):
        return ConfigError(f"{where} = {value!r}: expected {expected}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad("an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        value = float(value)
        if not math.isfinite(value):
            raise bad(f"a finite number, not {value}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise bad("a table, e.g. {fit_intercept = false}")
        for k, v in value.items():
            if not isinstance(v, bool | int | float | str):
                raise ConfigError(f"{where}.{k} = {v!r}: expected a number, string or boolean")
        return dict(value)
    if kind in ("float_list", "int_list", "str_list"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise bad("a list")
        inner = kind.removesuffix("_list")
        return [_coerce(where, v, inner) for v in value]
    raise AssertionError(kind)


def _build(cls, raw, where):
    """Build dataclass ``cls`` from dict ``raw``; ``where`` prefixes messages."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in SECTIONS}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(
                f"{where}unknown key {key!r}{_suggest(key, fields)}; allowed: {', '.join(fields)}"
            )
        meta = fields[key].metadata
        value = _coerce(f"{where}{key}", value, meta["kind"])
        check = meta["check"]
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{where}{key} = {value!r}: {problem}")
        kwargs[key] = value
    return cls(**kwargs)


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _parse_value(text):
    """Parse the right-hand side of ``--set key=value`` as TOML, else as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _override(raw, assignment):
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) == 1:
        top = [f.name for f in dataclasses.fields(Config) if f.name not in SECTIONS]
        if parts[0] not in top:
            raise ConfigError(
                f"--set {key}: unknown key{_suggest(parts[0], top + list(SECTIONS))}; "
                f"top-level keys: {', '.join(top)}; others are section.key"
            )
        return _merge(raw, {parts[0]: _parse_value(text.strip())})
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise ConfigError(
            f"--set {key}: unknown section{_suggest(parts[0], SECTIONS)}; "
            f"sections: {', '.join(SECTIONS)}"
        )
    names = [f.name for f in dataclasses.fields(SECTIONS[parts[0]])]
    if parts[1] not in names:
        raise ConfigError(
            f"--set {key}: unknown key{_suggest(parts[1], names)}; "
            f"[{parts[0]}] keys: {', '.join(names)}"
        )
    return _merge(raw, {parts[0]: {parts[1]: _parse_value(text.strip())}})


def _read_toml(path: Path, label: str) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a directory, expected a .toml file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{label}: malformed TOML: {err}") from None


def list_presets() -> list[str]:
    """Names of the presets shipped inside the package."""
    files = resources.files("bvsim").joinpath("presets").iterdir()
    return sorted(p.name.removesuffix(".toml") for p in files if p.name.endswith(".toml"))


def _preset_raw(name: str) -> dict:
    presets = list_presets()
    if name not in presets:
        raise ConfigError(
            f"unknown preset {name!r}{_suggest(name, presets)}; presets: {', '.join(presets)}"
        )
    text = resources.files("bvsim").joinpath("presets", f"{name}.toml").read_text()
    return tomllib.loads(text)


#: Checks that read the user's files or run the user's code: ``(cfg, prefix) -> cfg``
#: (the CSV source may fill in defaults, e.g. its columns).
UserCodeCheck = Callable[[Config, str], Config]


def from_dict(
    raw: dict,
    source: str = "config",
    check_user_code: UserCodeCheck | None = None,
    user_raw: dict | None = None,
) -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`.

    ``check_user_code(cfg, prefix)``, when given, checks what the configuration names
    outside itself (see the module docstring), after the cross-key checks.
    ``user_raw`` is the part of ``raw`` the user wrote (file and ``--set``, not the
    preset; default: all of ``raw``), for :func:`_check_crossed_n_reps`."""
    prefix = f"{source}: " if source else ""
    top_fields = {f.name: f for f in dataclasses.fields(Config) if f.name not in SECTIONS}
    allowed = list(top_fields) + list(SECTIONS)
    top, sections = {}, {}
    for key, value in raw.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}[{key}] must be a table")
            sections[key] = _build(SECTIONS[key], value, f"{prefix}{key}.")
        elif key in top_fields:
            top[key] = value
        else:
            raise ConfigError(
                f"{prefix}unknown section or key {key!r}{_suggest(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    base = _build(Config, top, prefix)
    cfg = _resolve_design(dataclasses.replace(base, **sections), prefix)
    _check_crossed_n_reps(cfg, raw if user_raw is None else user_raw, prefix)
    _check_consistency(cfg, prefix)
    if check_user_code is not None:
        cfg = check_user_code(cfg, prefix)
    return _absolute_paths(cfg)


def _absolute_paths(cfg: Config) -> Config:
    """Relative file paths (data.path, data.truth, model.module, model.estimator) made
    absolute, so the saved config.toml names the same files from any directory."""
    from .plugins import absolute

    d, m = cfg.data, cfg.model
    path = d.path
    if path and not path.startswith("bvsim-data:") and not Path(path).expanduser().is_absolute():
        path = str(Path(path).expanduser().resolve())
    data = dataclasses.replace(d, path=path, truth=absolute(d.truth))
    model = dataclasses.replace(m, module=absolute(m.module), estimator=absolute(m.estimator))
    return dataclasses.replace(cfg, data=data, model=model)


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
    if d.truth in CLASSIFICATION_TRUTHS and d.test_design == "grid" and d.dim != 1:
        raise ConfigError(f"{prefix}data.test_design = 'grid' needs data.dim = 1")
    if d.truth in ("sine", "cubic") and d.dim != 1:
        raise ConfigError(f"{prefix}data.truth = {d.truth!r} needs data.dim = 1")


def is_classification(cfg: Config) -> bool:
    """True when the data-generating process is a classification task."""
    if cfg.data.source == "csv":
        return cfg.data.task == "classification"
    return cfg.data.truth in CLASSIFICATION_TRUTHS


def _check_classification(cfg: Config, prefix: str) -> None:
    if not is_classification(cfg):
        return
    if cfg.model.kind not in ("mlp", "linear") or cfg.train.solver != "gd":
        raise ConfigError(
            f"{prefix}data.truth = {cfg.data.truth!r} is a classification task: it needs "
            "model.kind = 'mlp' or 'linear' and train.solver = 'gd'"
        )
    if cfg.sweep.axis not in ("none", "n_train", "hidden_width", "dropout", *CATEGORICAL_AXES):
        raise ConfigError(f"{prefix}sweep.axis = {cfg.sweep.axis!r}: not for classification")


#: Largest finite float32: a value that enters float32 training must not exceed it.
FLOAT32_MAX = 3.4028234663852886e38


def _check_dtype_range(cfg: Config, prefix: str) -> None:
    """Every number of the configuration fits the training dtype (float32 overflows
    above 3.4e38: such a learning rate, weight decay or x range would be inf there)."""
    if cfg.train.dtype != "float32":
        return
    for section, cls in SECTIONS.items():
        sub = getattr(cfg, section)
        for f in dataclasses.fields(cls):
            if f.metadata["kind"] not in ("float", "float_list"):
                continue
            value = getattr(sub, f.name)
            for v in value if isinstance(value, list) else [value]:
                if abs(v) > FLOAT32_MAX:
                    raise ConfigError(
                        f"{prefix}{section}.{f.name} = {value!r}: not representable in "
                        f"train.dtype = 'float32' (largest {FLOAT32_MAX:.3g}); use a smaller "
                        "value or train.dtype = 'float64'"
                    )


def _check_consistency(cfg: Config, prefix: str) -> None:
    """Checks that involve more than one key."""
    d = cfg.data
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
    _check_axis(cfg, prefix)
    if cfg.train.batch_size > d.n_train:
        raise ConfigError(
            f"{prefix}train.batch_size = {cfg.train.batch_size} exceeds data.n_train = "
            f"{d.n_train}; use 0 for full batch"
        )


def _resolve_design(cfg: Config, prefix: str) -> Config:
    """Check the keys of ``sweep.design`` and, in the crossed design, set
    ``sweep.n_reps`` to ``n_inputs * n_noise`` (training set k = a * n_noise + b).

    A factor that the data or the solver do not have must have one level: a fixed
    design has no draws of x, data from a file no separate label noise, closed-form
    ridge no initialization; classification is not decomposed this way."""
    sw = cfg.sweep
    if sw.design != "crossed":
        for key in ("n_inputs", "n_noise"):
            if getattr(sw, key) != 1:
                raise ConfigError(
                    f"{prefix}sweep.{key} = {getattr(sw, key)}: only for sweep.design = "
                    "'crossed' (the nested design draws sweep.n_reps training sets)"
                )
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
    if cfg.train.solver == "closed_form" and sw.n_seeds != 1:
        raise ConfigError(
            f"{where}: train.solver = 'closed_form' has no initialization: set "
            f"sweep.n_seeds = 1 (got {sw.n_seeds})"
        )
    n_sets = sw.n_inputs * sw.n_noise
    if n_sets < 2:
        raise ConfigError(
            f"{where}: needs sweep.n_inputs x sweep.n_noise >= 2 training sets "
            f"(got {sw.n_inputs} x {sw.n_noise})"
        )
    return dataclasses.replace(cfg, sweep=dataclasses.replace(sw, n_reps=n_sets))


def _check_crossed_n_reps(cfg: Config, user_raw: dict, prefix: str) -> None:
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


def _check_axis(cfg: Config, prefix: str) -> None:
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
    if sw.axis in ("n_train", "hidden_width") and not all(
        v >= 1 and float(v).is_integer() for v in values
    ):
        raise ConfigError(f"{where}: {sw.axis} values must be positive integers")
    if sw.axis == "hidden_width" and cfg.model.kind != "mlp":
        raise ConfigError(f"{prefix}sweep.axis = 'hidden_width' needs model.kind = 'mlp'")
    if sw.axis == "noise_std" and min(values) < 0:
        raise ConfigError(f"{where}: noise_std values must be >= 0")
    if sw.axis == "dropout" and not all(0 <= v < 1 for v in values):
        raise ConfigError(f"{where}: dropout values must be in [0, 1)")


def axis_configs(cfg: Config) -> list[tuple[float | None, Config]]:
    """The configurations of a sweep's second axis: [(value, config), ...] (a value is
    a name for a categorical axis, see :func:`axis_values`).

    Without a second axis: ``[(None, cfg)]``. Each returned configuration has
    ``sweep.axis = "none"`` and the axis value set in its own key, so it is a plain
    one-axis sweep (with its own seed tree under the same root seed).
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
            train = cfg.train
            if train.batch_size > int(value):
                train = dataclasses.replace(train, batch_size=0)
            sub = dataclasses.replace(cfg, data=data, train=train, sweep=sweep)
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
        out.append((value, sub))
    return out


def axis_values(cfg: Config) -> list:
    """The values of the second axis: ``sweep.axis_labels`` (str) for a categorical
    axis, else ``sweep.axis_values`` (float)."""
    sw = cfg.sweep
    return list(sw.axis_labels) if sw.axis in CATEGORICAL_AXES else list(sw.axis_values)


def load_config(
    path: str | Path | None = None,
    *,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    check_user_code: UserCodeCheck | None = None,
) -> Config:
    """Load a configuration: preset (base), then file, then ``--set`` overrides.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file. Keys it sets override the preset's.
    preset : str, optional
        Name of a shipped preset (see :func:`list_presets`).
    overrides : list of str
        ``"section.key=value"`` assignments, value parsed as TOML (bare words are
        strings).
    check_user_code : callable, optional
        Checks of the files and code the configuration names (see
        :func:`from_dict`); :func:`bvsim.load_config` passes them.

    Raises
    ------
    ConfigError
        On any unknown key, wrong type or bad value, before anything is computed.
    """
    raw: dict = {}
    user: dict = {}  # the keys the file and --set give, not the preset
    source = "config"
    if preset is not None:
        raw = _preset_raw(preset)
        source = f"preset {preset!r}"
    if path is not None:
        user = _read_toml(Path(path), str(path))
        raw = _merge(raw, user)
        source = str(path)
    for assignment in overrides:
        raw = _override(raw, assignment)
        user = _override(user, assignment)
    if overrides:
        source += " with --set"
    return from_dict(raw, source, check_user_code, user_raw=user)


# --- writing --------------------------------------------------------------------------


_TOML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_char(ch: str) -> str:
    """``ch`` inside a TOML basic string: control characters as \\uXXXX escapes."""
    return f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch


def _toml_key(k: str) -> str:
    """A TOML key: bare when it can be, else quoted."""
    bare = k and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in k)
    return k if bare else _toml_value(k)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return '"' + "".join(_TOML_ESCAPES.get(ch) or _toml_char(ch) for ch in v) + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


#: Keys added after run directories were first written, left out of ``config.toml``
#: (and so of the resume key) while they hold their default: an older run directory
#: keeps its configuration text, so rerunning it resumes instead of being refused.
OMITTED_AT_DEFAULT = {
    "model": {"module_trainer": "auto"},
    "train": {"decompose_steps": False},
    "sweep": {
        "target_se": 0.0,
        "design": "nested",
        "n_inputs": 1,
        "n_noise": 1,
        "axis_labels": [],
    },
}


def dumps_toml(cfg: Config) -> str:
    """The resolved configuration as TOML text that :func:`load_config` reads back
    (keys of :data:`OMITTED_AT_DEFAULT` only where they differ from the default)."""
    d = cfg.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in SECTIONS]
    for section in SECTIONS:
        omit = OMITTED_AT_DEFAULT.get(section, {})
        lines += ["", f"[{section}]"]
        lines += [
            f"{k} = {_toml_value(v)}"
            for k, v in d[section].items()
            if not (k in omit and v == omit[k])
        ]
    return "\n".join(lines) + "\n"


def _doc(f) -> str:
    allowed = getattr(f.metadata["check"], "allowed", None)
    doc = f.metadata["doc"]
    return f"{doc} (one of: {', '.join(allowed)})" if allowed else doc


def describe_keys() -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every key; used for the README's reference."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name in SECTIONS:
            continue
        out.append((f.name, f.metadata["kind"], repr(f.default), _doc(f)))
    for section, cls in SECTIONS.items():
        inst = cls()
        for f in dataclasses.fields(cls):
            out.append(
                (
                    f"{section}.{f.name}",
                    f.metadata["kind"],
                    repr(getattr(inst, f.name)),
                    _doc(f),
                )
            )
    return out


def config_key(cfg: Config) -> str:
    """Hash of everything that affects the numbers (the name does not; nor does
    ``sweep.target_se``, which only decides how many of the same chunks are used)."""
    return text_key(dumps_toml(cfg))


def text_key(toml_text: str) -> str:
    """:func:`config_key` of the configuration whose :func:`dumps_toml` text is given."""
    lines = toml_text.split("\n")[1:]  # drop `name = ...`
    text = "\n".join(line for line in lines if not line.startswith("target_se = "))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
