"""Shared fixtures: small configurations and a helper that trains one chunk both ways."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bvsim import load_config
from bvsim.data.generator import make_test_set
from bvsim.run.chunks import members_of
from bvsim.train.devices import setup_process
from bvsim.train.engine import TrainSpec
from bvsim.train.trainers import seed_tree_members

setup_process(1)


@pytest.fixture
def smoke_cfg():
    return load_config(preset="smoke")


def chunk_inputs(cfg, ks=(0, 1), n_seeds=2):
    """Per-member inputs of training sets ``ks`` for every weight decay and seed, as a
    sweep's chunk gives them to ``train_batched``, plus ``spec`` and ``meta``, a list
    of (weight decay, set, seed) per member, laid out by :func:`member_grid`."""
    cfg = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, n_seeds=n_seeds))
    spec = TrainSpec.from_config(cfg)
    members, (w, a, s) = members_of(cfg, make_test_set(cfg), np.asarray(ks))
    extra = seed_tree_members(cfg, spec, np.asarray(ks), a, s)
    wd = np.asarray(cfg.sweep.weight_decay)
    return {"spec": spec, **members, **extra, "meta": list(zip(wd[w], a, s, strict=True))}
