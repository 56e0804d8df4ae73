"""A sweep's predictions and test labels, read one weight decay and one block of test
points at a time (from memory or from the chunk files), so that no table needs all
predictions in memory at once."""

from __future__ import annotations

import numpy as np

from ..run.result import SweepResult, TestLabels
from ..run.store import ChunkStack

__all__ = ["BLOCK_BYTES", "labels_block", "point_blocks", "pred_block"]

#: Predictions decomposed at once, in bytes (every training set and seed of one weight
#: decay): a larger test set is decomposed a block of test points at a time, which the
#: estimators combine exactly (:func:`bvsim.estimate.squared.combine_point_blocks`).
BLOCK_BYTES = 8 * 2**20


def point_blocks(r: SweepResult) -> list[slice]:
    """Blocks of test points whose predictions (all sets and seeds) fit BLOCK_BYTES."""
    n_test = len(r.test.x)
    per_point = int(np.prod(r.pred.shape[1:])) // n_test * 8
    size = max(1, BLOCK_BYTES // per_point)
    return [slice(a, min(a + size, n_test)) for a in range(0, n_test, size)]


def pred_block(r: SweepResult, i: int, points: slice) -> np.ndarray:
    """Predictions of weight decay ``i`` at test points ``points``: (K, S, J_b, ...)."""
    if isinstance(r.pred, ChunkStack):
        return r.pred.read(i, points)
    return r.pred[i][:, :, points]


def labels_block(r: SweepResult, points: slice) -> np.ndarray:
    """Noisy test labels of every training set at test points ``points``: (K, J_b)."""
    if isinstance(r.y_test, TestLabels):
        return r.y_test.read(points)
    return r.y_test[:, points]
