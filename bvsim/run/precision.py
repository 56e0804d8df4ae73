"""Sweeps that stop at a target precision (``sweep.target_se``)."""

from __future__ import annotations

import numpy as np

from ..config import Config
from ..config.checks import MIN_SETS_FOR_TARGET
from ..data.generator import TestSet
from ..estimate.compare import paired_vs_best
from ..task import task_for

__all__ = ["MIN_SETS_FOR_TARGET", "PrecisionStop"]


class PrecisionStop:
    """The stopping rule of ``sweep.target_se``.

    Chunks are added in seed-tree order; after each one the training sets of the
    finished leading chunks are compared: the run stops once the paired SE of every
    weight decay's difference from the best (:func:`bvsim.estimate.compare.paired_vs_best`,
    on each set's loss against the truth) and the SE of the best one's expected error
    are all <= the target, with at least :data:`MIN_SETS_FOR_TARGET` sets. Chunks may
    finish out of order (workers, devices, a chunk file recomputed on resume), so the
    finished prefix can grow by several chunks at once: every chunk boundary it passes
    is then checked in order, as if the chunks had come one by one. The sets used are
    therefore exactly the first K that meet the target, and the result equals a run
    with ``sweep.n_reps = K`` whatever the order the chunks finished in.
    """

    def __init__(self, cfg: Config, test: TestSet, chunks: list[np.ndarray]):
        self.target = cfg.sweep.target_se
        self.task, self.test, self.chunks = task_for(cfg), test, chunks
        self.losses: list[np.ndarray | None] = [None] * len(chunks)
        self.n_chunks = len(chunks)  # chunks the result keeps
        self.n_checked = 0  # leading chunks whose boundaries have been checked
        self.stopped = False
        self.worst_se = float("nan")
        self._min_sets = min(MIN_SETS_FOR_TARGET, sum(map(len, chunks)))

    def add(self, i: int, res: dict) -> bool:
        """Note finished chunk ``i`` (its full result); True once the target is met."""
        if self.stopped:
            return True
        self.losses[i] = self.task.per_set_loss(res["pred"], self.test)
        m = next((j for j, x in enumerate(self.losses) if x is None), len(self.losses))
        while self.n_checked < m:  # each boundary the finished prefix passed, in order
            self.n_checked += 1
            if self._met(self.n_checked):
                self.n_chunks, self.stopped = self.n_checked, True
                break
        return self.stopped

    def _met(self, m: int) -> bool:
        """Whether the first ``m`` chunks meet the target (noting their worst SE)."""
        loss = np.concatenate(self.losses[:m], axis=1)
        if loss.shape[1] < self._min_sets:
            return False
        paired = paired_vs_best(loss)
        ses = np.append(paired["diff_se"], paired["best_se"])
        self.worst_se = float(np.nanmax(ses)) if paired["best"] >= 0 else float("nan")
        return self.worst_se <= self.target

    def info(self) -> dict:
        """What run.json records about the stop."""
        k = int(sum(len(ks) for ks in self.chunks[: self.n_chunks]))
        if self.stopped:
            reason = f"target_se reached: worst paired SE {self.worst_se:.3g} <= {self.target:g}"
        else:
            reason = (
                f"sweep.n_reps reached: worst paired SE {self.worst_se:.3g} > target "
                f"{self.target:g}"
            )
        return {"target_se": self.target, "worst_se": self.worst_se, "stop_reason": reason,
                "n_reps_done": k}  # fmt: skip
