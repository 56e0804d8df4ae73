"""The seed tree: one stream of ``numpy.random.SeedSequence(root)`` per kind of draw and
per thing drawn (training set ``k``, member ``(k, s)``, ...), never per chunk, worker or
device, so a result does not depend on how the sweep is split."""

from __future__ import annotations

import numpy as np

__all__ = ["Stream", "rng"]


class Stream:
    """First element of a seed-tree key: which kind of draw a stream serves."""

    TEST = 0  # test x (fixed for the whole sweep)
    DATA = 1  # training set k: its x (random design), its labels, its test labels
    INIT = 2  # initialization of member (k, s)
    BATCH = 3  # minibatch order of member (k, s)
    DESIGN = 4  # the fixed design x shared by all training sets
    DROPOUT = 5  # dropout masks of member (k, s)


def rng(root: int, *key: int) -> np.random.Generator:
    """The generator of seed-tree node ``key`` under root seed ``root``."""
    return np.random.default_rng(np.random.SeedSequence(root, spawn_key=tuple(key)))
