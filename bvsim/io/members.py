"""The tables of the members (``members.csv``), of the training curves
(``curves.csv``) and of the weights (``weight_hist.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import crossed_shape
from ..estimate.crossed import cell_mean
from ..estimate.squared import mean_se, valid_training_sets
from ..run.result import SweepResult
from ..task import task_for
from ..train.engine import ParamLayout, TrainSpec
from .blocks import labels_block, point_blocks, pred_block

__all__ = ["WEIGHT_HIST_COLUMNS", "curves_table", "members_table", "weight_hist_table"]

_HIST_BINS = 60
#: The columns of ``weight_hist.csv``, written as a header row even when no weight
#: decay has a histogram (an estimator without weights, training set 0 diverged).
WEIGHT_HIST_COLUMNS = ["weight_decay", "layer", "bin_left", "bin_right", "count"]


def curves_table(r: SweepResult, usable: np.ndarray) -> pd.DataFrame:
    """The mean training and test curves over the usable training sets (with SEs), per
    weight decay; a weight decay with none is left out. The SE is over training sets,
    or in a crossed design the multiway jackknife over its factors (NaN at a λ with a
    diverged member, whose crossing is broken), as every SE of its summary."""
    frames = []
    crossed = task_for(r.cfg).crossed(r.cfg)
    for i, wd in enumerate(r.weight_decay):
        ok = usable[i]
        if ok.sum() < 1:
            continue
        for split, curve in (("train", r.curve_train[i]), ("test", r.curve_test[i])):
            if crossed:  # (n_reps, n_seeds, n_log): each step's cells
                mean, se = _crossed_curve(np.asarray(curve), ok, r.cfg)
            else:
                mean, se = mean_se(curve[ok].mean(axis=1))  # over training sets
            frames.append(
                pd.DataFrame(
                    {
                        "weight_decay": float(wd),
                        "step": r.log_steps,
                        "split": split,
                        "loss": mean,
                        "loss_se": se,
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["weight_decay", "step", "split", "loss", "loss_se"])
    return pd.concat(frames, ignore_index=True)


def _crossed_curve(curve: np.ndarray, ok: np.ndarray, cfg) -> tuple:
    """A crossed design's mean curve over its cells and the multiway-jackknife SE of
    each step; with a broken crossing the mean over the usable sets and no SE."""
    if not ok.all():
        return curve[ok].mean(axis=(0, 1)), np.full(curve.shape[-1], np.nan)
    levels = crossed_shape(cfg)[1]
    steps = [cell_mean(curve[..., t], levels)[:2] for t in range(curve.shape[-1])]
    return np.array([m for m, _ in steps]), np.array([se for _, se in steps])


def members_table(r: SweepResult) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-member table, and the usable training sets of each weight decay
    ((n_wd, n_reps) bool: every member's predictions finite), in one pass over the
    predictions."""
    n_wd, n_reps, n_seeds = r.diverged.shape
    usable = np.ones((n_wd, n_reps), dtype=bool)
    w, k, s = np.meshgrid(np.arange(n_wd), np.arange(n_reps), np.arange(n_seeds),
                          indexing="ij")  # fmt: skip
    task = task_for(r.cfg)
    test_err = np.zeros(r.diverged.shape)  # each member's loss on the noisy labels
    mse_truth = np.zeros(r.diverged.shape)  # and, for a squared error, against the truth
    n_test = len(r.test.x)
    for i in range(n_wd):  # a block of one weight decay's predictions at a time
        for b in point_blocks(r):
            pred = pred_block(r, i, b)
            usable[i] &= valid_training_sets(pred)
            test_err[i] += task.member_loss(pred, labels_block(r, b))
            if task.squared:
                mse_truth[i] += np.square(pred - r.test.f[b]).sum(axis=-1)
    test_err /= n_test
    mse_truth = mse_truth / n_test if task.squared else np.full(r.diverged.shape, np.nan)
    table = pd.DataFrame(
        {
            "weight_decay": r.weight_decay[w.ravel()],
            "rep": k.ravel(),
            "seed": s.ravel(),
            "train_error": r.train_error.ravel(),
            "test_error": test_err.ravel(),
            "mse_truth": mse_truth.ravel(),
            "weight_norm": r.weight_norm.ravel(),
            "diverged": r.diverged.ravel(),
            "diverged_step": r.diverged_step.ravel(),
        }
    )
    return table, usable


def weight_hist_table(r: SweepResult) -> pd.DataFrame:
    """Histograms of the weights of training set 0 (all seeds), per layer and lambda.

    Bins are shared across lambda within a layer, so the shrinkage shows. A lambda
    at which a member of training set 0 diverged has no rows; with no rows at all
    (a user's estimator has no weights) the table is empty with its columns.
    """
    empty = pd.DataFrame(columns=WEIGHT_HIST_COLUMNS)
    if r.params0.shape[-1] == 0:  # no parameters to show (a user's estimator)
        return empty
    layout = ParamLayout(TrainSpec.from_config(r.cfg))
    frames = []
    for layer, (wslice, _, _) in enumerate(layout.slices):
        weights = r.params0[:, :, wslice].astype(np.float64)  # (n_wd, S, n)
        finite = weights[np.isfinite(weights)]
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        edges = np.linspace(-bound, bound, _HIST_BINS + 1)
        for i, wd in enumerate(r.weight_decay):
            if r.diverged[i, 0].any():
                continue
            counts, _ = np.histogram(weights[i].ravel(), bins=edges)
            frames.append(
                pd.DataFrame(
                    {
                        "weight_decay": float(wd),
                        "layer": layer + 1,
                        "bin_left": edges[:-1],
                        "bin_right": edges[1:],
                        "count": counts,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else empty
