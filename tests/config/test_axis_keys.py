"""The key a second axis sets in each of its runs (sweep.axis = 'n_train' sets
data.n_train, ...): a value of it that the user sets has no effect and is refused,
naming the axis; a preset's is kept (its config key unchanged)."""

from __future__ import annotations

import tomllib

import pytest

from bvsim.config import ConfigError, axis_configs, dumps_toml, from_dict, load_config

#: (the user's --set of the axis key, the axis, the message's key)
AXIS_KEY_SET = [
    (
        "train.optimizer=adam",
        ["sweep.axis=optimizer", "sweep.axis_labels=['sgd', 'adam']"],
        "train.optimizer = 'adam'",
    ),
    (
        "data.noise_std=0.7",
        ["sweep.axis=noise_std", "sweep.axis_values=[0.1, 0.3]"],
        "data.noise_std = 0.7",
    ),
    ("data.n_train=50", ["sweep.axis=n_train", "sweep.axis_values=[4, 16]"], "data.n_train = 50"),
    (
        "train.penalty=l1",
        ["sweep.axis=penalty", "sweep.axis_labels=['l2', 'l1']"],
        "train.penalty = 'l1'",
    ),
]


@pytest.mark.parametrize("assignment, axis, key", AXIS_KEY_SET)
def test_a_users_value_of_the_axis_key_is_refused_naming_the_axis(assignment, axis, key):
    with pytest.raises(ConfigError) as err:
        load_config(preset="smoke", overrides=[assignment, *axis])
    message = str(err.value)
    assert key in message and "has no effect with sweep.axis = " in message
    assert "\n" not in message
    load_config(preset="smoke", overrides=axis)  # without it: accepted


def test_the_axis_keys_default_is_accepted_as_a_saved_config_toml_writes_it():
    over = ["sweep.axis=optimizer", "sweep.axis_labels=['sgd', 'adam']"]
    cfg = load_config(preset="smoke", overrides=["train.optimizer=sgd", *over])
    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


@pytest.mark.parametrize("preset", ["double-descent", "double-descent-crossed"])
def test_a_presets_own_axis_key_is_kept_and_its_run_reloads(preset):
    """double-descent sets data.n_train = 40 beside sweep.axis = 'n_train': kept (its
    config key unchanged), and its run's config.toml (read as bvsim's) loads."""
    cfg = load_config(preset=preset)
    assert cfg.data.n_train == 40 and cfg.sweep.axis == "n_train"
    assert from_dict(tomllib.loads(dumps_toml(cfg)), user_raw={}) == cfg
    assert [sub.data.n_train for _, sub in axis_configs(cfg)] == [
        int(v) for v in cfg.sweep.axis_values
    ]


def test_a_batch_size_above_an_n_train_axis_value_is_refused_naming_both():
    """--set train.batch_size=8 with sweep.axis_values = [4, 16] trained the n = 4 run
    full batch (batch_size 0) without a word."""
    over = ["train.batch_size=8", "sweep.axis=n_train", "sweep.axis_values=[4, 16, 2]"]
    with pytest.raises(ConfigError) as err:
        load_config(preset="smoke", overrides=over)
    message = str(err.value)
    assert "train.batch_size = 8" in message and "sweep.axis = 'n_train' values [4, 2]" in message
    assert "\n" not in message


def test_the_batch_size_is_held_to_the_axis_values_not_the_replaced_n_train():
    """smoke's data.n_train = 20 is replaced by the axis: a batch of 25 fits its runs
    of 32 and 64 (was refused against the 20), and every run keeps it."""
    over = ["train.batch_size=25", "sweep.axis=n_train", "sweep.axis_values=[32, 64, 25]"]
    cfg = load_config(preset="smoke", overrides=over)
    assert [sub.train.batch_size for _, sub in axis_configs(cfg)] == [25, 25, 25]
    with pytest.raises(ConfigError, match="data.n_train = 5 has no effect with sweep.axis"):
        load_config(preset="smoke", overrides=["data.n_train=5", *over])
