"""Configuration: TOML files and presets parsed into frozen dataclasses.

Every key is declared once, in the dataclasses below, with its type and its check.
Unknown keys, wrong types and bad values raise :class:`ConfigError` before any compute,
naming the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "SweepConfig",
    "TrainConfig",
    "axis_configs",
    "dumps_toml",
    "list_presets",
    "load_config",
]


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key and the fix."""


# --- checks ---------------------------------------------------------------------------


def _positive(v):
    return None if v > 0 else "must be > 0"


def _at_least(n):
    def check(v):
        return None if v >= n else f"must be >= {n}"

    return check


def _non_negative(v):
    return None if v >= 0 else "must be >= 0"


def _one_of(*allowed):
    def check(v):
        return None if v in allowed else f"must be one of {', '.join(map(repr, allowed))}"

    check.allowed = allowed
    return check


def _unit_interval_open_right(v):
    return None if 0 <= v < 1 else "must be in [0, 1)"


#: Longest run name (it names the run directory ``results/<name>``).
MAX_NAME_LENGTH = 100


def _run_name(value):
    """A run name is one safe path component: it names ``results/<name>``."""
    if not value or value in (".", ".."):
        return "must be a non-empty name other than '.' and '..'"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (got {len(value)})"
    if any(ch in "/\\" for ch in value):
        return "must be a single path component (no '/' or '\\'); use --out for a path"
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return "must not contain control or unprintable characters"
    return None


def _truth_name(value):
    if ":" in value:  # a user's callable: checked on a probe batch in _check_user_code
        return None
    return _one_of("linear", "sine", "cubic", "gaussians")(value) and (
        "must be one of 'linear', 'sine', 'cubic', 'gaussians', or 'package.module:f' / 'file.py:f'"
    )


#: Truths that make a classification task (trained with cross-entropy).
CLASSIFICATION_TRUTHS = ("gaussians",)


def _open_unit(v):
    return None if 0 < v < 1 else "must be in (0, 1)"


def _weight_decay_grid(values):
    if len(values) == 0:
        return "must be a non-empty list of weight-decay values"
    for v in values:
        if not math.isfinite(v) or v < 0:
            return f"every value must be finite and >= 0 (got {v!r})"
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1})
        return f"must not repeat a value (repeated: {dup})"
    return None


def _hidden_widths(values):
    if any(v < 1 for v in values):
        return "every hidden width must be a positive integer"
    return None


def _betas(values):
    if len(values) != 2 or not all(0 <= b < 1 for b in values):
        return "must be two numbers in [0, 1)"
    return None


def _key(kind, check=None, doc=""):
    """Field metadata: the expected ``kind`` ('int', 'float', 'str', 'bool',
    'float_list', 'int_list') and an optional check returning an error or None."""
    return {"kind": kind, "check": check, "doc": doc}


# --- the schema -----------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """The data-generating process: truth f, x distribution, noise."""

    truth: str = field(
        default="linear",
        metadata=_key(
            "str",
            _truth_name,
            "f(x): linear x.w*, sine sin(2 pi frequency x), cubic x^3 - x/2; gaussians: a "
            "classification task (n_classes Gaussian classes, cross-entropy); or your own "
            "function 'package.module:f' / 'file.py:f' taking x of shape (n, dim) and "
            "returning shape (n,)",
        ),
    )
    dim: int = field(default=1, metadata=_key("int", _at_least(1), "input dimension p"))
    coef_norm2: float = field(
        default=1.0,
        metadata=_key("float", _non_negative, "linear truth: squared norm of w* (equal entries)"),
    )
    n_classes: int = field(
        default=2, metadata=_key("int", _at_least(2), "gaussians: number of classes")
    )
    class_sep: float = field(
        default=1.0,
        metadata=_key("float", _positive, "gaussians: distance of the class means from the origin"),
    )
    frequency: float = field(
        default=1.0,
        metadata=_key("float", _positive, "sine truth: f = sin(2 pi frequency x)"),
    )
    x_dist: str = field(
        default="uniform",
        metadata=_key("str", _one_of("uniform", "gaussian", "grid"), "distribution of training x"),
    )
    x_low: float = field(default=-1.0, metadata=_key("float", None, "uniform/grid: lower"))
    x_high: float = field(default=1.0, metadata=_key("float", None, "uniform/grid: upper"))
    train_design: str = field(
        default="random",
        metadata=_key(
            "str", _one_of("fixed", "random"), "x fixed across training sets, or redrawn"
        ),
    )
    test_design: str = field(
        default="sample",
        metadata=_key(
            "str", _one_of("grid", "sample"), "test x: even grid (1-D) or draws from x_dist"
        ),
    )
    n_train: int = field(default=10, metadata=_key("int", _at_least(1), "points per set"))
    n_test: int = field(default=100, metadata=_key("int", _at_least(1), "test points"))
    noise_std: float = field(
        default=0.5, metadata=_key("float", _non_negative, "training label noise std")
    )
    test_noise_std: float = field(
        default=0.5, metadata=_key("float", _non_negative, "test label noise std")
    )
    task: str = field(
        default="regression",
        metadata=_key(
            "str",
            _one_of("regression", "classification"),
            "csv: what the target is (a classification target may hold any labels); "
            "generator tasks follow from data.truth",
        ),
    )
    source: str = field(
        default="generator",
        metadata=_key(
            "str",
            _one_of("generator", "csv"),
            "generator: the truth and noise above; csv: your data in data.path",
        ),
    )
    path: str = field(
        default="",
        metadata=_key(
            "str", None, "csv: the file ('bvsim-data:NAME.csv' for data shipped with bvsim)"
        ),
    )
    target: str = field(
        default="", metadata=_key("str", None, "csv: the target column (default: the last)")
    )
    features: list[str] = field(
        default_factory=list,
        metadata=_key("str_list", None, "csv: feature columns (default: all but the target)"),
    )
    test_fraction: float = field(
        default=0.25,
        metadata=_key("float", _open_unit, "csv: share of rows held out as the fixed test set"),
    )
    resample: str = field(
        default="bootstrap",
        metadata=_key(
            "str",
            _one_of("bootstrap", "subsample", "disjoint"),
            "csv: training sets of n_train rows drawn with replacement (as mlxtend), "
            "without (as Decompose), or as disjoint parts (as Yang et al. 2020)",
        ),
    )
    standardize: bool = field(
        default=True,
        metadata=_key(
            "bool", None, "csv: centre and scale features and target (training-pool stats)"
        ),
    )


@dataclass(frozen=True)
class ModelConfig:
    """The model family trained on every training set."""

    kind: str = field(
        default="mlp",
        metadata=_key(
            "str",
            _one_of("mlp", "linear", "sklearn", "module"),
            "model family; sklearn: a fit/predict estimator (model.estimator); module: "
            "your torch.nn.Module (model.module)",
        ),
    )
    hidden: list[int] = field(
        default_factory=lambda: [32, 32],
        metadata=_key("int_list", _hidden_widths, "mlp: hidden layer widths"),
    )
    activation: str = field(
        default="relu", metadata=_key("str", _one_of("relu", "tanh"), "mlp: activation")
    )
    bias: bool = field(default=True, metadata=_key("bool", None, "layers have a bias"))
    module: str = field(
        default="",
        metadata=_key(
            "str",
            None,
            "module: a factory 'file.py:make_model' / 'pkg.mod:make_model' returning an "
            "nn.Module from x (n, dim) to (n,) or (n, 1)",
        ),
    )
    module_trainer: str = field(
        default="auto",
        metadata=_key(
            "str",
            _one_of("auto", "func"),
            "module: auto trains a plain nn.Sequential of nn.Linear layers with one "
            "activation (ReLU or Tanh) in the batched engine, from the module's own "
            "initial weights, and any other module with torch.func; func always uses "
            "torch.func",
        ),
    )
    estimator: str = field(
        default="",
        metadata=_key(
            "str",
            None,
            "sklearn: the estimator class, 'package.module:Class' or 'file.py:Class'",
        ),
    )
    param: str = field(
        default="alpha",
        metadata=_key(
            "str", None, "sklearn: the constructor argument that takes the sweep's lambda values"
        ),
    )
    estimator_args: dict = field(
        default_factory=dict,
        metadata=_key("table", None, "sklearn: fixed constructor arguments (a TOML table)"),
    )
    dropout: float = field(
        default=0.0,
        metadata=_key(
            "float",
            _unit_interval_open_right,
            "mlp: dropout rate after every hidden activation while training (nn.Dropout)",
        ),
    )


@dataclass(frozen=True)
class TrainConfig:
    """How every member is trained (one optimizer per member, its own lambda)."""

    optimizer: str = field(
        default="sgd", metadata=_key("str", _one_of("sgd", "adam"), "torch.optim rule")
    )
    lr: float = field(default=0.01, metadata=_key("float", _positive, "learning rate"))
    momentum: float = field(
        default=0.9, metadata=_key("float", _unit_interval_open_right, "sgd: momentum")
    )
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999],
        metadata=_key("float_list", _betas, "adam: (beta1, beta2)"),
    )
    eps: float = field(default=1e-8, metadata=_key("float", _positive, "adam: epsilon"))
    steps: int = field(default=2000, metadata=_key("int", _at_least(1), "optimizer steps"))
    batch_size: int = field(
        default=0, metadata=_key("int", _non_negative, "minibatch size; 0 = full batch")
    )
    penalty: str = field(
        default="l2",
        metadata=_key(
            "str",
            _one_of("l2", "l1", "decoupled"),
            "what weight_decay lambda does: l2 adds lambda*w to the gradient (torch "
            "weight_decay, objective + lambda/2 * sum w^2); l1 adds lambda*sign(w) (objective "
            "+ lambda * sum abs(w)); decoupled shrinks w by (1 - lr*lambda) each step "
            "(AdamW, SGDW)",
        ),
    )
    decay_bias: bool = field(
        default=True, metadata=_key("bool", None, "apply weight decay to biases too")
    )
    log_every: int = field(
        default=100, metadata=_key("int", _at_least(1), "steps between curve points")
    )
    dtype: str = field(
        default="float32",
        metadata=_key("str", _one_of("float32", "float64"), "training precision"),
    )
    solver: str = field(
        default="gd",
        metadata=_key(
            "str",
            _one_of("gd", "closed_form"),
            "gd: the optimizer loop; closed_form: exact ridge (linear models without bias)",
        ),
    )
    diverge_threshold: float = field(
        default=1e8,
        metadata=_key("float", _positive, "a training loss above this counts as diverged"),
    )


@dataclass(frozen=True)
class SweepConfig:
    """The Monte Carlo design: lambda grid x training sets x seeds."""

    weight_decay: list[float] = field(
        default_factory=lambda: [0.0, 1e-3, 1e-2, 1e-1],
        metadata=_key("float_list", _weight_decay_grid, "the lambda grid"),
    )
    n_reps: int = field(default=20, metadata=_key("int", _at_least(2), "training sets drawn (K)"))
    n_seeds: int = field(
        default=1, metadata=_key("int", _at_least(1), "initializations per set (S)")
    )
    axis: str = field(
        default="none",
        metadata=_key(
            "str",
            _one_of("none", "n_train", "hidden_width", "noise_std", "dropout"),
            "a second sweep axis crossed with the lambda grid (hidden_width sets every "
            "hidden layer's width; noise_std sets the training-label noise)",
        ),
    )
    axis_values: list[float] = field(
        default_factory=list,
        metadata=_key("float_list", None, "values of the second axis"),
    )
    chunk_size: int = field(
        default=0,
        metadata=_key("int", _non_negative, "training sets per batched chunk; 0 = auto"),
    )
    target_se: float = field(
        default=0.0,
        metadata=_key(
            "float",
            _non_negative,
            "stop adding training sets (chunk by chunk, in seed-tree order) once the paired "
            "SE of every lambda's difference from the best, and the SE of the best "
            "lambda's expected error, are <= this; sweep.n_reps is then the maximum "
            "(0 = off: always n_reps sets)",
        ),
    )


@dataclass(frozen=True)
class Config:
    """The whole resolved configuration of a sweep."""

    name: str = field(
        default="run",
        metadata=_key(
            "str",
            _run_name,
            f"run name: the directory results/<name>; one path component, at most "
            f"{MAX_NAME_LENGTH} characters, no control characters",
        ),
    )
    seed: int = field(default=0, metadata=_key("int", _non_negative, "root seed"))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
}


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
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _SECTIONS}
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
        top = [f.name for f in dataclasses.fields(Config) if f.name not in _SECTIONS]
        if parts[0] not in top:
            raise ConfigError(
                f"--set {key}: unknown key{_suggest(parts[0], top + list(_SECTIONS))}; "
                f"top-level keys: {', '.join(top)}; others are section.key"
            )
        return _merge(raw, {parts[0]: _parse_value(text.strip())})
    if len(parts) != 2 or parts[0] not in _SECTIONS:
        raise ConfigError(
            f"--set {key}: unknown section{_suggest(parts[0], _SECTIONS)}; "
            f"sections: {', '.join(_SECTIONS)}"
        )
    names = [f.name for f in dataclasses.fields(_SECTIONS[parts[0]])]
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


def from_dict(raw: dict, source: str = "config") -> Config:
    """Validate a nested dict (as read from TOML) into a :class:`Config`."""
    prefix = f"{source}: " if source else ""
    top_fields = {f.name: f for f in dataclasses.fields(Config) if f.name not in _SECTIONS}
    allowed = list(top_fields) + list(_SECTIONS)
    top, sections = {}, {}
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}[{key}] must be a table")
            sections[key] = _build(_SECTIONS[key], value, f"{prefix}{key}.")
        elif key in top_fields:
            top[key] = value
        else:
            raise ConfigError(
                f"{prefix}unknown section or key {key!r}{_suggest(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
    base = _build(Config, top, prefix)
    cfg = dataclasses.replace(base, **sections)
    if cfg.data.source == "csv":
        from .dataset import check_csv

        cfg = dataclasses.replace(cfg, data=check_csv(cfg, prefix))
    _check_consistency(cfg, prefix)
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
    _check_user_code(cfg, prefix)
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
    if cfg.sweep.axis not in ("none", "n_train", "hidden_width", "dropout"):
        raise ConfigError(f"{prefix}sweep.axis = {cfg.sweep.axis!r}: not for classification")


#: Largest finite float32: a value that enters float32 training must not exceed it.
FLOAT32_MAX = 3.4028234663852886e38


def _check_dtype_range(cfg: Config, prefix: str) -> None:
    """Every number of the configuration fits the training dtype (float32 overflows
    above 3.4e38: such a learning rate, weight decay or x range would be inf there)."""
    if cfg.train.dtype != "float32":
        return
    for section, cls in _SECTIONS.items():
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
    _check_estimator(cfg, prefix)
    if cfg.model.kind == "module":
        from .module_engine import check_module

        check_module(cfg, prefix)
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


def _check_user_code(cfg: Config, prefix: str) -> None:
    """Import the user's truth function and try it on a probe batch, before compute."""
    import numpy as np

    from .plugins import load_object

    d = cfg.data
    if ":" not in d.truth:
        return
    key = f"{prefix}data.truth"
    func = load_object(d.truth, key)
    if not callable(func):
        raise ConfigError(f"{key} = {d.truth!r}: not callable")
    probe = np.linspace(-1.0, 1.0, 7 * d.dim).reshape(7, d.dim)
    try:
        out = np.asarray(func(probe.copy()))
    except Exception as err:
        raise ConfigError(
            f"{key} = {d.truth!r}: calling it on x of shape (7, {d.dim}) failed: "
            f"{type(err).__name__}: {err}"
        ) from None
    if out.shape not in ((7,), (7, 1)):
        raise ConfigError(
            f"{key} = {d.truth!r}: returned shape {out.shape} for x of shape (7, {d.dim}); "
            "expected (7,)"
        )
    if not np.issubdtype(out.dtype, np.number) or not np.isfinite(out.astype(float)).all():
        raise ConfigError(f"{key} = {d.truth!r}: returned non-finite or non-numeric values")


def _check_estimator(cfg: Config, prefix: str) -> None:
    """A sklearn-style estimator: importable, fit/predict, takes model.param."""
    m = cfg.model
    if m.kind != "sklearn":
        return
    from .plugins import load_object

    key = f"{prefix}model.estimator"
    if not m.estimator:
        raise ConfigError(f"{key}: model.kind = 'sklearn' needs model.estimator = 'pkg.mod:Class'")
    cls = load_object(m.estimator, key)
    if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))):
        raise ConfigError(f"{key} = {m.estimator!r}: has no fit and predict methods")
    try:
        est = cls(**m.estimator_args)
    except Exception as err:
        raise ConfigError(
            f"{prefix}model.estimator_args = {m.estimator_args!r}: {m.estimator} does not "
            f"accept them: {type(err).__name__}: {err}"
        ) from None
    params = est.get_params() if hasattr(est, "get_params") else {}
    if m.param not in params:
        raise ConfigError(
            f"{prefix}model.param = {m.param!r}: not a parameter of {m.estimator}; "
            f"its parameters: {', '.join(sorted(params)) or 'none (no get_params)'}"
        )
    if cfg.train.solver != "gd" or cfg.model.dropout:
        raise ConfigError(f"{prefix}model.kind = 'sklearn' trains with the estimator's fit only")


def _check_axis(cfg: Config, prefix: str) -> None:
    sw = cfg.sweep
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
    """The configurations of a sweep's second axis: [(value, config), ...].

    Without a second axis: ``[(None, cfg)]``. Each returned configuration has
    ``sweep.axis = "none"`` and the axis value set in its own key, so it is a plain
    one-axis sweep (with its own seed tree under the same root seed).
    """
    sw = cfg.sweep
    if sw.axis == "none":
        return [(None, cfg)]
    out = []
    for value in sw.axis_values:
        sweep = dataclasses.replace(sw, axis="none", axis_values=[])
        if sw.axis == "n_train":
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


def load_config(
    path: str | Path | None = None,
    *,
    preset: str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
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

    Raises
    ------
    ConfigError
        On any unknown key, wrong type or bad value, before anything is computed.
    """
    raw: dict = {}
    source = "config"
    if preset is not None:
        raw = _preset_raw(preset)
        source = f"preset {preset!r}"
    if path is not None:
        raw = _merge(raw, _read_toml(Path(path), str(path)))
        source = str(path)
    for assignment in overrides:
        raw = _override(raw, assignment)
    if overrides:
        source += " with --set"
    return from_dict(raw, source)


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


def dumps_toml(cfg: Config) -> str:
    """The resolved configuration as TOML text that :func:`load_config` reads back."""
    d = cfg.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in _SECTIONS]
    for section in _SECTIONS:
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in d[section].items()]
    return "\n".join(lines) + "\n"


def _doc(f) -> str:
    allowed = getattr(f.metadata["check"], "allowed", None)
    doc = f.metadata["doc"]
    return f"{doc} (one of: {', '.join(allowed)})" if allowed else doc


def describe_keys() -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every key; used for the README's reference."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name in _SECTIONS:
            continue
        out.append((f.name, f.metadata["kind"], repr(f.default), _doc(f)))
    for section, cls in _SECTIONS.items():
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
