"""A configuration that did not come from :func:`bvsim.load_config` (``from_dict``,
``Config(...)``, ``dataclasses.replace``) is checked by ``run_sweep`` (and
``train_sweep``) before any compute, with the one-line errors ``load_config`` gives:
the CSV file (its columns filled in), the truth function, the estimator and the
module factory. One that ``load_config`` checked is not checked again."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

import bvsim.run.executor
import bvsim.run.preflight
from bvsim import ConfigError, load_config, run_sweep
from bvsim.config import chunk_key, config_key, dumps_toml, from_dict
from bvsim.config.moot import TORCH_TRAINING_KEYS
from bvsim.run.sweep import train_sweep

pytest.importorskip("sklearn")

FIX = str(Path("tests/fixtures/user_code.py").resolve())  # as from_dict leaves it
LOADED = "preset 'smoke' with --set (overrides): "  # load_config's prefix here


@pytest.fixture
def no_training(monkeypatch):
    """Training any member fails the test."""

    def train_members(*args, **kwargs):
        raise AssertionError("trained before the configuration was checked")

    monkeypatch.setattr(bvsim.run.executor, "train_members", train_members)


def smoke_raw(over=()) -> dict:
    """The smoke preset as the dict from_dict takes, ``section.key=value`` strings set."""
    raw = tomllib.loads(dumps_toml(load_config(preset="smoke")))
    for assignment in over:
        key, value = assignment.split("=", 1)
        section, name = key.split(".")
        raw[section][name] = value
    if raw["model"]["kind"] != "mlp":
        del raw["model"]["hidden"]  # without effect there: refused
    if raw["model"]["kind"] == "sklearn":  # the torch training keys too
        for key in TORCH_TRAINING_KEYS:
            raw["train"].pop(key.split(".")[1], None)
    return raw


@pytest.fixture
def factory(tmp_path):
    path = tmp_path / "factory.py"
    path.write_text(
        "from torch import nn\n\ndef needs_width(width):\n    return nn.Linear(1, width)\n"
    )
    return f"{path}:needs_width"


@pytest.mark.parametrize(
    "over",
    [
        ["model.kind=sklearn", f"model.estimator={FIX}:NoPredict"],  # no predict
        ["model.kind=module", "model.module=FACTORY"],  # a factory taking an argument
        [f"data.truth={FIX}:wrong_shape"],
    ],
    ids=["no-predict", "factory-signature", "truth-shape"],
)
def test_a_from_dict_config_fails_before_compute_as_at_load(over, factory, tmp_path, no_training):
    over = [a.replace("FACTORY", factory) for a in over]
    with pytest.raises(ConfigError) as info:
        load_config(preset="smoke", overrides=over)
    expected = "config: " + str(info.value).removeprefix(LOADED)
    assert "\n" not in expected
    cfg = from_dict(smoke_raw(over))  # the user-code checks are not from_dict's by default
    for out in (None, tmp_path / "run"):
        with pytest.raises(ConfigError) as info:
            run_sweep(cfg, out, progress=False)
        assert str(info.value) == expected
    assert not (tmp_path / "run").exists()  # nothing created before the check
    with pytest.raises(ConfigError) as info:
        train_sweep(cfg, progress=False)
    assert str(info.value) == expected


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 60)
    y = np.sin(3 * x) + 0.1 * rng.normal(size=60)
    path = tmp_path / "xy.csv"
    path.write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(x, y, strict=True)))
    return path


def csv_raw(path, **data) -> dict:
    return {
        "data": {"source": "csv", "path": str(path), "n_train": 20, **data},
        "model": {"hidden": [4]},
        "train": {"steps": 5, "log_every": 5},
        "sweep": {"n_reps": 2, "n_seeds": 1, "weight_decay": [0.0, 0.1]},
    }


def test_a_from_dict_csv_config_trains_with_its_columns_filled(csv_file, tmp_path):
    """The repro: target and dim were never filled (a pandas KeyError: '')."""
    cfg = from_dict(csv_raw(csv_file))
    assert cfg.data.target == ""
    checked = from_dict(csv_raw(csv_file), check_user_code=bvsim.run.preflight.check_user_code)
    assert checked.data.target == "y" and checked.data.dim == 1
    result = run_sweep(cfg, tmp_path / "run", figures=False, progress=False)
    assert len(result.summary) == 2
    saved = (tmp_path / "run" / "config.toml").read_text()
    assert saved == dumps_toml(checked)  # the filled configuration is the run's
    assert 'target = "y"' in saved
    assert (tmp_path / "run" / "chunks" / chunk_key(checked)).is_dir()
    assert result.tables.meta["config_key"] == config_key(checked)


def test_a_bad_csv_fails_before_compute(csv_file, tmp_path, no_training):
    cfg = from_dict(csv_raw(csv_file, target="z"))
    with pytest.raises(ConfigError, match=r"^config: data.target = 'z': no such column"):
        run_sweep(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_loaded_config_is_checked_once(monkeypatch):
    calls = []
    check = bvsim.run.preflight.check_user_code

    def counting(cfg, prefix=""):
        calls.append(prefix)
        return check(cfg, prefix)

    monkeypatch.setattr(bvsim.run.preflight, "check_user_code", counting)
    monkeypatch.setattr(bvsim.api, "check_user_code", counting)
    over = [
        "sweep.n_reps=2",
        "train.steps=5",
        "sweep.axis=noise_std",
        "sweep.axis_values=[0.1, 0.2]",
    ]
    cfg = bvsim.load_config(preset="smoke", overrides=over)
    assert len(calls) == 1
    run_sweep(cfg, progress=False)
    assert len(calls) == 1  # not again, nor for each value of the second axis
    same = from_dict(tomllib.loads(dumps_toml(cfg)))
    assert same == cfg  # the mark is no part of equality, the dump or the keys
    assert config_key(same) == config_key(cfg)
    run_sweep(same, progress=False)
    assert len(calls) == 2  # checked here: from_dict did not
    changed = dataclasses.replace(cfg, seed=1)
    run_sweep(changed, progress=False)
    assert len(calls) == 3  # a copy made otherwise is checked again


@pytest.mark.parametrize(
    "section, change, needle",
    [
        ("sweep", {"weight_decay": [-1.0, 0.1]}, "sweep.weight_decay = [-1.0, 0.1]: every value"),
        ("sweep", {"n_reps": 1}, "sweep.n_reps = 1: must be >= 2"),
        ("train", {"optimizer": "rmsprop"}, "train.optimizer = 'rmsprop': must be one of"),
        ("train", {"optimizer": "adam", "momentum": 0.5}, "train.momentum = 0.5 has no effect"),
        ("sweep", {"weight_decay": "0.1"}, "sweep.weight_decay = '0.1': expected a list"),
    ],
)
def test_a_replaced_config_is_checked_whole_before_compute(section, change, needle, no_training):
    """dataclasses.replace skips every check load_config made: run_sweep reads the
    configuration back as a file is read (keys, values, cross-key rules, keys without
    effect) before anything trains (a negative λ trained and reported bias² 2.5e10)."""
    cfg = load_config(preset="smoke", overrides=["sweep.n_reps=4", "train.steps=60"])
    bad = dataclasses.replace(
        cfg, **{section: dataclasses.replace(getattr(cfg, section), **change)}
    )
    with pytest.raises(ConfigError, match=re.escape("config: " + needle)):
        run_sweep(bad, progress=False)


def test_from_dict_refuses_what_is_not_a_table():
    for raw in (None, [1], {1: 2}):
        with pytest.raises(ConfigError, match="config: "):
            from_dict(raw)
