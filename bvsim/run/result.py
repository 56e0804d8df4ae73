"""A sweep's raw outputs before estimation (:class:`SweepResult`), and the test labels
of every training set read back chunk by chunk (:class:`TestLabels`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import Config
from ..data.generator import TestSet, draw_training_sets
from .store import ChunkStack, read_part

__all__ = ["SweepResult", "TestLabels"]


class TestLabels:
    """The noisy test labels of every training set, shape (n_reps, n_test), read chunk
    by chunk from the chunk files (``y_test``), so the main process never holds them
    all. A chunk file written before bvsim kept them there has them drawn again from
    the seed tree (a set's labels do not depend on the chunk that draws them).

    ``read(points)`` gives the labels at test points ``points`` of every set (the last
    block read is kept, read-only); ``np.asarray`` reads them all. With ``stamp`` (the
    resume key of the chunk files) each read checks it, as a
    :class:`~bvsim.run.store.ChunkStack` does.
    """

    def __init__(self, cfg: Config, test: TestSet, chunks: list[np.ndarray], paths: list,
                 stamp: str | None = None):  # fmt: skip
        self.cfg, self.test, self.chunks, self.paths = cfg, test, chunks, paths
        self.stamp = stamp
        self.shape = (int(sum(len(ks) for ks in chunks)), len(test.f))
        self.ndim = 2
        self._cached: tuple[tuple, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def blocks(self, points: slice = slice(None)):
        """The labels of each chunk's training sets at ``points``, in set order."""
        for ks, path in zip(self.chunks, self.paths, strict=True):
            try:
                yield read_part(path, "y_test", (slice(None), points), self.stamp)
            except KeyError:  # an older chunk file without the labels
                labels = draw_training_sets(self.cfg, self.test, ks).y_test
                yield np.ascontiguousarray(labels[:, points])

    def iter_blocks(self):
        """C-order pieces of the whole array (for streaming it to a file)."""
        return self.blocks()

    def read(self, points: slice = slice(None)) -> np.ndarray:
        key = (points.start, points.stop, points.step)
        if self._cached is None or self._cached[0] != key:
            full = np.concatenate(list(self.blocks(points)))
            full.setflags(write=False)
            self._cached = (key, full)
        return self._cached[1]

    @property
    def dtype(self) -> np.dtype:
        return self.read(slice(0, 1)).dtype

    def __getitem__(self, key):
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        full = np.concatenate(list(self.blocks()))
        return full if dtype is None else full.astype(dtype)


@dataclass
class SweepResult:
    """Raw outputs of a sweep (numpy), before estimation.

    Attributes
    ----------
    cfg : Config
    test : TestSet
    weight_decay : ndarray of shape (n_wd,)
    pred : ndarray or ChunkStack of shape (n_wd, n_reps, n_seeds, n_test[, n_classes])
        Test predictions; NaN for diverged members. With a run directory this is a
        :class:`bvsim.run.store.ChunkStack`: ``pred[i]`` reads weight decay ``i`` from the
        chunk files, ``np.asarray(pred)`` reads all.
    train_error, weight_norm : ndarray of shape (n_wd, n_reps, n_seeds)
    curve_train, curve_test : ndarray or ChunkStack of shape (n_wd, n_reps, n_seeds, n_log)
    log_steps : ndarray of shape (n_log,)
    diverged : ndarray of bool, shape (n_wd, n_reps, n_seeds)
    diverged_step : ndarray of int, shape (n_wd, n_reps, n_seeds)
    params0 : ndarray of float32, shape (n_wd, n_seeds, n_params)
        Final parameters of training set 0 (for weight histograms).
    pred_steps : ndarray or ChunkStack of shape (n_wd, n_reps, n_seeds, n_log, n_test[, C])
        The test predictions after each of ``log_steps`` (``train.decompose_steps``;
        else None), NaN from a member's divergence on; the last step is ``pred``.
    y_test : ndarray or TestLabels of shape (n_reps, n_test)
        The noisy test labels of each training set (with a run directory a
        :class:`TestLabels`, read from the chunk files when needed).
    info : dict
        Timings, device, versions: what ``run.json`` records.
    """

    cfg: Config
    test: TestSet
    weight_decay: np.ndarray
    pred: np.ndarray | ChunkStack
    train_error: np.ndarray
    weight_norm: np.ndarray
    curve_train: np.ndarray | ChunkStack
    curve_test: np.ndarray | ChunkStack
    log_steps: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    params0: np.ndarray
    y_test: np.ndarray | TestLabels
    info: dict = field(default_factory=dict)
    pred_steps: np.ndarray | ChunkStack | None = None
