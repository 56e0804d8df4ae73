"""The configuration schema: every key declared once, with its type, default, check and
documentation, in frozen dataclasses (one per TOML table).

Per-key checks are in :mod:`bvsim.config.values`, checks across keys in
:mod:`bvsim.config.checks`, the reading of TOML files, presets and ``--set``
overrides in :mod:`bvsim.config.load`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import values as check
from .values import (
    CATEGORICAL_AXES,
    CLASSIFICATION_TRUTHS,
    MAX_NAME_LENGTH,
    MIN_SETS_CROSS_ENTROPY,
)

__all__ = [
    "CATEGORICAL_AXES",
    "CLASSIFICATION_TRUTHS",
    "MIN_SETS_CROSS_ENTROPY",
    "BvsimRuntimeWarning",
    "BvsimWarning",
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "SECTIONS",
    "SweepConfig",
    "TrainConfig",
]


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key and the fix."""


class BvsimWarning(UserWarning):
    """What bvsim's library says without stopping (``warnings.warn``): the command line
    shows each as one ``bvsim: warning: ...`` line; a program may filter them by this
    category."""


class BvsimRuntimeWarning(BvsimWarning, RuntimeWarning):
    """A :class:`BvsimWarning` about the run's numbers or the machine (fits that failed,
    TF32 forced on)."""


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
            check.truth_name,
            "f(x): linear x.w*, sine sin(2 pi frequency x), cubic x^3 - x/2; gaussians: a "
            "classification task (n_classes Gaussian classes, cross-entropy); or your own "
            "function 'package.module:f' / 'file.py:f' taking x of shape (n, dim) and "
            "returning shape (n,)",
        ),
    )
    dim: int = field(default=1, metadata=_key("int", check.at_least(1), "input dimension p"))
    coef_norm2: float = field(
        default=1.0,
        metadata=_key(
            "float", check.non_negative, "linear truth: squared norm of w* (equal entries)"
        ),
    )
    n_classes: int = field(
        default=2, metadata=_key("int", check.at_least(2), "gaussians: number of classes")
    )
    class_sep: float = field(
        default=1.0,
        metadata=_key(
            "float", check.positive, "gaussians: distance of the class means from the origin"
        ),
    )
    frequency: float = field(
        default=1.0,
        metadata=_key("float", check.positive, "sine truth: f = sin(2 pi frequency x)"),
    )
    x_dist: str = field(
        default="uniform",
        metadata=_key(
            "str", check.one_of("uniform", "gaussian", "grid"), "distribution of training x"
        ),
    )
    x_low: float = field(default=-1.0, metadata=_key("float", None, "uniform/grid: lower"))
    x_high: float = field(default=1.0, metadata=_key("float", None, "uniform/grid: upper"))
    train_design: str = field(
        default="random",
        metadata=_key(
            "str", check.one_of("fixed", "random"), "x fixed across training sets, or redrawn"
        ),
    )
    test_design: str = field(
        default="sample",
        metadata=_key(
            "str", check.one_of("grid", "sample"), "test x: even grid (1-D) or draws from x_dist"
        ),
    )
    n_train: int = field(default=10, metadata=_key("int", check.at_least(1), "points per set"))
    n_test: int = field(default=100, metadata=_key("int", check.at_least(1), "test points"))
    noise_std: float = field(
        default=0.5, metadata=_key("float", check.non_negative, "training label noise std")
    )
    test_noise_std: float = field(
        default=0.5, metadata=_key("float", check.non_negative, "test label noise std")
    )
    task: str = field(
        default="regression",
        metadata=_key(
            "str",
            check.one_of("regression", "classification"),
            "csv: what the target is (a classification target may hold any labels); "
            "generator tasks follow from data.truth",
        ),
    )
    source: str = field(
        default="generator",
        metadata=_key(
            "str",
            check.one_of("generator", "csv"),
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
        metadata=_key(
            "float", check.open_unit, "csv: share of rows held out as the fixed test set"
        ),
    )
    resample: str = field(
        default="bootstrap",
        metadata=_key(
            "str",
            check.one_of("bootstrap", "subsample", "disjoint"),
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
            check.one_of("mlp", "linear", "sklearn", "module"),
            "model family; sklearn: a fit/predict estimator (model.estimator); module: "
            "your torch.nn.Module (model.module)",
        ),
    )
    hidden: list[int] = field(
        default_factory=lambda: [32, 32],
        metadata=_key("int_list", check.hidden_widths, "mlp: hidden layer widths"),
    )
    activation: str = field(
        default="relu", metadata=_key("str", check.one_of("relu", "tanh"), "mlp: activation")
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
            check.one_of("auto", "func"),
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
            check.unit_interval_open_right,
            "mlp: dropout rate after every hidden activation while training (nn.Dropout)",
        ),
    )


@dataclass(frozen=True)
class TrainConfig:
    """How every member is trained (one optimizer per member, its own lambda)."""

    optimizer: str = field(
        default="sgd", metadata=_key("str", check.one_of("sgd", "adam"), "torch.optim rule")
    )
    lr: float = field(default=0.01, metadata=_key("float", check.positive, "learning rate"))
    momentum: float = field(
        default=0.9, metadata=_key("float", check.unit_interval_open_right, "sgd: momentum")
    )
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999],
        metadata=_key("float_list", check.betas, "adam: (beta1, beta2)"),
    )
    eps: float = field(default=1e-8, metadata=_key("float", check.positive, "adam: epsilon"))
    steps: int = field(default=2000, metadata=_key("int", check.at_least(1), "optimizer steps"))
    batch_size: int = field(
        default=0, metadata=_key("int", check.non_negative, "minibatch size; 0 = full batch")
    )
    penalty: str = field(
        default="l2",
        metadata=_key(
            "str",
            check.one_of("l2", "l1", "decoupled"),
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
        default=100, metadata=_key("int", check.at_least(1), "steps between curve points")
    )
    dtype: str = field(
        default="float32",
        metadata=_key("str", check.one_of("float32", "float64"), "training precision"),
    )
    solver: str = field(
        default="gd",
        metadata=_key(
            "str",
            check.one_of("gd", "closed_form"),
            "gd: the optimizer loop; closed_form: exact ridge (linear models without bias)",
        ),
    )
    diverge_threshold: float = field(
        default=1e8,
        metadata=_key("float", check.positive, "a training loss above this counts as diverged"),
    )
    decompose_steps: bool = field(
        default=False,
        metadata=_key(
            "bool",
            None,
            "also keep the test predictions at every logged step (train.log_every) and "
            "decompose them into steps.csv; costs n_log times the predictions' disk and "
            "the estimation time (sklearn and closed_form: the final step only)",
        ),
    )


@dataclass(frozen=True)
class SweepConfig:
    """The Monte Carlo design: lambda grid x training sets x seeds."""

    weight_decay: list[float] = field(
        default_factory=lambda: [0.0, 1e-3, 1e-2, 1e-1],
        metadata=_key("float_list", check.weight_decay_grid, "the lambda grid"),
    )
    n_reps: int = field(
        default=20, metadata=_key("int", check.at_least(2), "training sets drawn (K)")
    )
    n_seeds: int = field(
        default=1, metadata=_key("int", check.at_least(1), "initializations per set (S)")
    )
    axis: str = field(
        default="none",
        metadata=_key(
            "str",
            check.one_of(
                "none", "n_train", "hidden_width", "noise_std", "dropout", *CATEGORICAL_AXES
            ),
            "a second sweep axis crossed with the lambda grid (hidden_width sets every "
            "hidden layer's width; noise_std sets the training-label noise; penalty and "
            "optimizer set train.penalty / train.optimizer and take sweep.axis_labels)",
        ),
    )
    axis_values: list[float] = field(
        default_factory=list,
        metadata=_key("float_list", None, "values of the second axis"),
    )
    axis_labels: list[str] = field(
        default_factory=list,
        metadata=_key(
            "str_list",
            None,
            "values of a categorical second axis: penalty (l2, l1, decoupled) or "
            "optimizer (sgd, adam)",
        ),
    )
    chunk_size: int = field(
        default=0,
        metadata=_key("int", check.non_negative, "training sets per batched chunk; 0 = auto"),
    )
    target_se: float = field(
        default=0.0,
        metadata=_key(
            "float",
            check.non_negative,
            "stop adding training sets (chunk by chunk, in seed-tree order) once the paired "
            "SE of every lambda's difference from the best, and the SE of the best "
            "lambda's expected error, are <= this; sweep.n_reps is then the maximum "
            "(0 = off: always n_reps sets)",
        ),
    )
    design: str = field(
        default="nested",
        metadata=_key(
            "str",
            check.one_of("nested", "crossed"),
            "nested: every training set has its own x, noise and seeds; crossed: every "
            "draw of the training x (n_inputs) meets every draw of the label noise "
            "(n_noise) and every initialization (n_seeds), for the ANOVA of the variance "
            "(anova.csv); sweep.n_reps is then n_inputs x n_noise",
        ),
    )
    n_inputs: int = field(
        default=1,
        metadata=_key("int", check.at_least(1), "crossed: draws of the training inputs x"),
    )
    n_noise: int = field(
        default=1,
        metadata=_key(
            "int", check.at_least(1), "crossed: draws of the training-label noise vector"
        ),
    )


@dataclass(frozen=True)
class Config:
    """The whole resolved configuration of a sweep."""

    name: str = field(
        default="run",
        metadata=_key(
            "str",
            check.run_name,
            f"run name: the directory results/<name>; one path component, at most "
            f"{MAX_NAME_LENGTH} characters, no control characters, no leading or trailing "
            "whitespace",
        ),
    )
    seed: int = field(
        default=0, metadata=_key("int", check.root_seed, "root seed, 0 <= seed < 2**63")
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The instance attribute (not a field: no part of equality, the dump or the keys) that
#: marks a configuration whose user code was checked (:func:`mark_user_code_checked`):
#: the digests of the files that check read.
_USER_CODE_CHECKED = "_bvsim_user_code_checked"


def mark_user_code_checked(cfg: Config, digests: Mapping[str, str | None]) -> Config:
    """Mark ``cfg`` (this object) as one whose files and code were checked
    (:func:`bvsim.run.preflight.check_user_code`) as they were when their ``digests``
    (by key: ``data.path``, ``model.module``, ...;
    :func:`bvsim.run.fingerprint.user_digests`) were taken, so that a sweep does not
    check them again while they still have those digests; returns it. A copy made with
    :func:`dataclasses.replace` is not marked: what it names may have changed."""
    # a tuple of pairs: immutable, and a marked Config still pickles and deep-copies
    object.__setattr__(cfg, _USER_CODE_CHECKED, tuple(dict(digests).items()))
    return cfg


def user_code_checked(cfg: Config) -> Mapping[str, str | None] | None:
    """The digests of the files ``cfg``'s check read (:func:`mark_user_code_checked`),
    or None where it is not marked checked."""
    pairs = getattr(cfg, _USER_CODE_CHECKED, None)
    return None if pairs is None else MappingProxyType(dict(pairs))


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "sweep": SweepConfig,
}
