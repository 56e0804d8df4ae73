"""Configuration: the schema (frozen dataclasses, one per TOML table) and its reading
from presets, TOML files and ``--set`` overrides, checked before any compute."""

from .axis import axis_configs, axis_values
from .checks import crossed_factors, crossed_shape, is_classification
from .dump import chunk_key, config_key, describe_keys, dumps_toml, text_key
from .load import check_key, from_dict, list_presets, load_config
from .schema import (
    CATEGORICAL_AXES,
    CLASSIFICATION_TRUTHS,
    MIN_SETS_CROSS_ENTROPY,
    BvsimRuntimeWarning,
    BvsimWarning,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    SweepConfig,
    TrainConfig,
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
    "SweepConfig",
    "TrainConfig",
    "axis_configs",
    "axis_values",
    "check_key",
    "chunk_key",
    "config_key",
    "crossed_factors",
    "crossed_shape",
    "describe_keys",
    "dumps_toml",
    "from_dict",
    "is_classification",
    "list_presets",
    "load_config",
    "text_key",
]
