"""Keys without effect: a key that the chosen mode does not read (``data.path`` with
the generator, ``train.momentum`` with Adam, ...) is refused when the user sets it to
a value other than its default, naming the key that makes it moot; the same key set
by a preset is put back to its default (the preset set it for its own mode), so the
run's ``config.toml`` records only what the run uses and reads back as it is.

A value equal to the default is always accepted (a saved ``config.toml`` writes every
key). With a second sweep axis a key is moot only when it is moot in every one-axis
configuration the axis expands into (``train.momentum`` with ``sweep.axis =
'optimizer'`` over sgd and adam is used by the sgd runs). Pure: nothing is read or run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from .schema import CLASSIFICATION_TRUTHS, SECTIONS, Config, ConfigError

__all__ = [
    "MOOT_RULES",
    "GD_SOLVER_KEYS",
    "TORCH_TRAINING_KEYS",
    "Moot",
    "describe_moot",
    "drop_moot_keys",
    "is_classification",
    "moot_keys",
    "reset_moot_keys",
]


def is_classification(cfg: Config) -> bool:
    """True when the data-generating process is a classification task (here, below
    :mod:`.checks` and :mod:`.axis`, which use it too)."""
    if cfg.data.source == "csv":
        return cfg.data.task == "classification"
    return cfg.data.truth in CLASSIFICATION_TRUTHS


@dataclass(frozen=True)
class Moot:
    """``keys`` have no effect unless ``unless`` (a condition as the messages and the
    README say it) holds, which ``applies(cfg)`` decides; ``shows`` are the keys whose
    values a message quotes."""

    keys: tuple[str, ...]
    unless: str
    shows: tuple[str, ...]
    applies: Callable[[Config], bool]


def _value(cfg: Config, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _when(keys: tuple[str, ...], key: str, value: str) -> Moot:
    """A rule whose condition is one key holding one value: its words (``key =
    'value'``), the key its message quotes and its test, from the one pair."""
    return Moot(keys, f"{key} = {value!r}", (key,), lambda c: _value(c, key) == value)


#: The keys only the optimizer loop reads (``train.solver = 'gd'``), none of them read by
#: the exact ridge solution (``'closed_form'``).
GD_SOLVER_KEYS = (
    "train.optimizer",
    "train.lr",
    "train.momentum",
    "train.betas",
    "train.eps",
    "train.steps",
    "train.batch_size",
    "train.log_every",
    "train.diverge_threshold",  # closed_form: only a non-finite solution diverges
)

#: The ``train`` keys only the torch training loop reads (:mod:`bvsim.train.loop`): a
#: ``model.kind = 'sklearn'`` estimator reads none of them (:mod:`bvsim.train.sklearn`:
#: one ``fit`` per member on float64 arrays, a failed or non-finite fit diverged, one
#: logged step). It does read ``train.decompose_steps`` (the final step) and needs
#: ``train.solver = 'gd'`` (refused otherwise).
TORCH_TRAINING_KEYS = (
    *GD_SOLVER_KEYS,
    "train.penalty",
    "train.decay_bias",
    "train.dtype",
)

#: The rules, in the order they are tried: a key moot by several is reported by the
#: first (``data.frequency`` with data from a file: by data.source, not data.truth).
MOOT_RULES = (
    _when(
        (
            "data.truth",
            "data.coef_norm2",
            "data.class_sep",
            "data.frequency",
            "data.x_dist",
            "data.x_low",
            "data.x_high",
            "data.train_design",
            "data.test_design",
            "data.noise_std",
            "data.test_noise_std",
            "data.n_test",
        ),
        "data.source",
        "generator",
    ),
    _when(
        (
            "data.path",
            "data.target",
            "data.features",
            "data.test_fraction",
            "data.resample",
            "data.standardize",
            "data.task",
        ),
        "data.source",
        "csv",
    ),
    _when(("data.coef_norm2",), "data.truth", "linear"),
    _when(("data.frequency",), "data.truth", "sine"),
    Moot(
        ("data.class_sep",),
        "data.truth = 'gaussians'",
        ("data.truth",),
        lambda c: c.data.truth in CLASSIFICATION_TRUTHS,
    ),
    Moot(
        ("data.n_classes",),
        "a classification task (data.truth = 'gaussians', or data.task = "
        "'classification' with data.source = 'csv')",
        ("data.source", "data.truth", "data.task"),
        is_classification,
    ),
    Moot(
        ("data.noise_std", "data.test_noise_std", "data.x_dist"),
        "a regression truth (data.truth = 'gaussians' draws x and its noise from the "
        "normals of its classes)",
        ("data.truth",),
        lambda c: not is_classification(c),
    ),
    Moot(
        ("data.x_low", "data.x_high"),
        "data.x_dist = 'uniform' or 'grid' with a regression truth, or data.test_design = 'grid'",
        ("data.x_dist", "data.test_design", "data.truth"),
        lambda c: (
            c.data.test_design == "grid"
            or (c.data.x_dist in ("uniform", "grid") and not is_classification(c))
        ),
    ),
    _when(("model.estimator", "model.param", "model.estimator_args"), "model.kind", "sklearn"),
    _when(("model.module", "model.module_trainer"), "model.kind", "module"),
    _when(("model.hidden",), "model.kind", "mlp"),
    Moot(
        ("model.bias",),
        "model.kind = 'mlp' or 'linear' (a module's layers and an estimator bring their own)",
        ("model.kind",),
        lambda c: c.model.kind in ("mlp", "linear"),
    ),
    Moot(
        ("model.activation",),
        "model.kind = 'mlp' with hidden layers",
        ("model.kind", "model.hidden"),
        lambda c: c.model.kind == "mlp" and bool(c.model.hidden),
    ),
    Moot(
        TORCH_TRAINING_KEYS,
        "model.kind = 'mlp', 'linear' or 'module' (a model.kind = 'sklearn' estimator "
        "trains with its own fit, on float64 arrays)",
        ("model.kind",),
        lambda c: c.model.kind != "sklearn",
    ),
    Moot(
        ("train.decay_bias",),
        "the model has biases (model.bias = true, or a model.kind = 'module' layer's own)",
        ("model.kind", "model.bias"),
        lambda c: c.model.kind == "module" or (c.model.kind != "sklearn" and c.model.bias),
    ),
    _when(GD_SOLVER_KEYS, "train.solver", "gd"),  # closed_form: no optimizer, no steps
    Moot(  # the exact solution has no initialization: its seeds would fit copies
        ("sweep.n_seeds",),
        "train.solver = 'gd' (closed_form's fits of a training set would be identical)",
        ("train.solver",),
        lambda c: c.train.solver == "gd",
    ),
    _when(("train.momentum",), "train.optimizer", "sgd"),
    _when(("train.betas", "train.eps"), "train.optimizer", "adam"),
    # the nested design draws sweep.n_reps training sets (resolve_design: n_reps of crossed)
    _when(("sweep.n_inputs", "sweep.n_noise"), "sweep.design", "crossed"),
)


def _default(key: str):
    section, name = key.split(".")
    return getattr(SECTIONS[section](), name)


def moot_keys(cfg: Config, subs: list[Config]) -> list[tuple[str, Moot, Config]]:
    """The keys of ``cfg`` set to a value other than their default where they have no
    effect, each with the rule that makes it moot and the first configuration where it
    does: in every one of ``subs``, the one-axis configurations of ``cfg``
    (:func:`bvsim.config.axis.axis_configs`; ``[cfg]`` without a second axis)."""
    out = []
    for key in dict.fromkeys(k for rule in MOOT_RULES for k in rule.keys):
        if _value(cfg, key) == _default(key):
            continue
        rules = [rule for rule in MOOT_RULES if key in rule.keys]
        first = None
        for sub in subs:
            failed = next((rule for rule in rules if not rule.applies(sub)), None)
            if failed is None:  # it has an effect in this configuration
                first = None
                break
            first = first or (failed, sub)
        if first is not None:
            out.append((key, *first))
    return out


def _message(prefix: str, cfg: Config, key: str, rule: Moot, sub: Config) -> str:
    here = ", ".join(f"{k} = {_value(sub, k)!r}" for k in rule.shows)
    where = ""
    if cfg.sweep.axis != "none":
        where = f" in every run of sweep.axis = {cfg.sweep.axis!r}"
    return (
        f"{prefix}{key} = {_value(cfg, key)!r} has no effect unless {rule.unless} (here "
        f"{here}{where}); leave it out or set it to its default {_default(key)!r}"
    )


def _reset(cfg: Config, keys) -> Config:
    for key in keys:
        section, name = key.split(".")
        part = dataclasses.replace(getattr(cfg, section), **{name: _default(key)})
        cfg = dataclasses.replace(cfg, **{section: part})
    return cfg


def drop_moot_keys(cfg: Config, subs: list[Config], user_raw: dict, prefix: str) -> Config:
    """Refuse a key the user set (in ``user_raw``: the file and ``--set``) that has no
    effect (:func:`moot_keys` over ``subs``), naming the key that makes it moot; put
    such a key set by the preset back to its default. Returns the configuration."""
    found = moot_keys(cfg, subs)
    for key, rule, sub in found:
        section, name = key.split(".")
        table = user_raw.get(section)
        if isinstance(table, dict) and name in table:
            raise ConfigError(_message(prefix, cfg, key, rule, sub))
    return _reset(cfg, [key for key, _, _ in found])


def reset_moot_keys(sub: Config) -> Config:
    """A one-axis configuration of a second axis with its keys that have no effect
    there put back to their defaults (``train.momentum`` in the adam run of
    ``sweep.axis = 'optimizer'``): its ``config.toml`` then loads as it is."""
    return _reset(sub, [key for key, _, _ in moot_keys(sub, [sub])])


def describe_moot() -> list[tuple[str, str]]:
    """(keys, condition) of every rule, as the README's list of keys without effect."""
    return [(", ".join(f"`{k}`" for k in rule.keys), rule.unless) for rule in MOOT_RULES]
