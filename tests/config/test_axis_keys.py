"""A second axis over n_train and train.batch_size: the batch is held to the axis
values (the runs' n_train), not to the n_train the axis replaces."""

from __future__ import annotations

import pytest

from bvsim.config import ConfigError, axis_configs, load_config


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
