"""Shared fixtures: small configurations and a helper that trains one chunk both ways."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim.config import load_config
from bvsim.data import draw_training_sets, make_test_set
from bvsim.engine import (
    ParamLayout,
    TrainSpec,
    batch_schedule,
    dropout_keys,
    init_params,
    setup_process,
)
from bvsim.sweep import member_grid

setup_process(1)


@pytest.fixture
def smoke_cfg():
    return load_config(preset="smoke")


def chunk_inputs(cfg, ks=(0, 1), n_seeds=2):
    """Per-member inputs of training sets ``ks`` for every weight decay and seed.

    Returns a dict of the arrays ``train_batched`` takes plus ``meta``, a list of
    (weight decay, set, seed) per member, laid out by :func:`member_grid`.
    """
    spec = TrainSpec.from_config(cfg)
    test = make_test_set(cfg)
    sets = draw_training_sets(cfg, test, ks)
    layout = ParamLayout(spec)
    init = init_params(cfg, ks, n_seeds)
    packed = layout.pack([p.reshape(len(ks) * n_seeds, *p.shape[2:]) for p in init])
    packed = packed.reshape(len(ks), n_seeds, -1)
    sched = batch_schedule(cfg, ks, n_seeds)
    wd = np.asarray(cfg.sweep.weight_decay)
    w, a, s = member_grid(len(wd), len(ks), n_seeds)
    return {
        "spec": spec,
        "x": sets.x[a],
        "y": sets.y[a],
        "x_test": test.x,
        "y_test": sets.y_test[a],
        "weight_decay": wd[w],
        "init": packed[a, s],
        "schedule": None if sched is None else sched[a, s],
        "dropout_keys": dropout_keys(cfg, ks, n_seeds)[a, s] if spec.dropout > 0 else None,
        "meta": list(zip(wd[w], a, s, strict=True)),
    }
