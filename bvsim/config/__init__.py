"""Configuration: the schema (frozen dataclasses, one per TOML table) and its reading
from presets, TOML files and ``--set`` overrides, checked before any compute."""

from .load import (
    axis_configs,
    axis_values,
    config_key,
    describe_keys,
    dumps_toml,
    from_dict,
    is_classification,
    list_presets,
    load_config,
    text_key,
)
from .schema import (
    CATEGORICAL_AXES,
    CLASSIFICATION_TRUTHS,
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
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "SweepConfig",
    "TrainConfig",
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
