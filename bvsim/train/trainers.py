"""Which trainer trains a ``model.kind``: the one place the kind is dispatched.

Every trainer takes the members of some training sets as
:func:`bvsim.run.chunks.members_of` lays them out (``x``, ``y``, ``x_test``,
``y_test``, ``weight_decay``, one row per member), the training sets ``ks``, each
member's row ``a`` among the sets and ``s`` among the seeds, and returns an
:class:`~bvsim.train.engine.EngineResult`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import Config
from .engine import (
    EngineResult,
    ParamLayout,
    TrainSpec,
    batch_schedule,
    dropout_keys,
    init_params,
)
from .mlp import train_batched

__all__ = ["TRAINERS", "seed_tree_members", "train_members"]


def seed_tree_members(cfg: Config, spec: TrainSpec, ks, a: np.ndarray, s: np.ndarray) -> dict:
    """The batched MLP's per-member extras for training sets ``ks`` (rows ``a`` of the
    sets, ``s`` of the seeds): packed initial parameters, minibatch orders and dropout
    streams, all from the seed tree."""
    n_sets, n_seeds = len(ks), cfg.sweep.n_seeds
    drawn = init_params(cfg, ks, n_seeds)
    init = ParamLayout(spec).pack([p.reshape(n_sets * n_seeds, *p.shape[2:]) for p in drawn])
    init = init.reshape(n_sets, n_seeds, -1)
    sched = batch_schedule(cfg, ks, n_seeds)
    dkeys = dropout_keys(cfg, ks, n_seeds) if spec.dropout > 0 else None
    return {
        "init": init[a, s],
        "schedule": None if sched is None else sched[a, s],
        "dropout_keys": None if dkeys is None else dkeys[a, s],
    }


def _train_mlp(cfg, spec, members, ks, a, s, device) -> EngineResult:
    """``mlp`` and ``linear``: the batched MLP (closed-form ridge when asked)."""
    extras = seed_tree_members(cfg, spec, ks, a, s)
    return train_batched(spec, **members, **extras, device=device)


def _train_module(cfg, spec, members, ks, a, s, device) -> EngineResult:
    """``module``: a stack of Linear layers runs in the batched MLP from the module's
    own initial weights; any other module through ``torch.func``."""
    from .module import batched_spec, make_members, pack_members, train_modules

    n_seeds = cfg.sweep.n_seeds
    modules = make_members(cfg, ks, n_seeds, spec.dtype)
    plain = batched_spec(cfg)
    if plain is not None:
        init = pack_members(modules).reshape(len(ks), n_seeds, -1)[a, s]
        res = train_batched(plain, **members, init=init, device=device)
        res.params = np.zeros((len(a), 0), dtype=np.float32)  # no weight histograms
        return res
    chosen = [modules[i * n_seeds + j] for i, j in zip(a, s, strict=True)]
    return train_modules(spec, chosen, **members, device=device)


def _train_sklearn(cfg, spec, members, ks, a, s, device) -> EngineResult:
    """``sklearn``: one fit per member on the CPU, seeded from the seed tree."""
    from .sklearn import fit_estimators, random_states

    return fit_estimators(cfg, **members, seeds=random_states(cfg, ks, cfg.sweep.n_seeds)[a, s])


#: ``model.kind`` -> trainer.
TRAINERS: dict[str, Callable[..., EngineResult]] = {
    "mlp": _train_mlp,
    "linear": _train_mlp,
    "module": _train_module,
    "sklearn": _train_sklearn,
}


def train_members(
    cfg: Config, members: dict, ks, a: np.ndarray, s: np.ndarray, device
) -> EngineResult:
    """Train the members of training sets ``ks`` with the trainer of ``cfg.model.kind``."""
    spec = TrainSpec.from_config(cfg)
    return TRAINERS[cfg.model.kind](cfg, spec, members, ks, a, s, device)
