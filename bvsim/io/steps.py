"""Bias and variance along training: the decomposition at every logged step.

With ``train.decompose_steps`` a sweep keeps each member's test predictions after
every step of ``log_steps`` (``SweepResult.pred_steps``). :func:`steps_table`
decomposes each step exactly as the final predictions are decomposed (the same
estimators, through :func:`bvsim.io.summary.summary_rows` on a view of the sweep at
that step), one weight decay and one block of test points at a time, so the last
step's rows equal ``summary.csv``. :func:`early_stopping` compares early stopping at
the smallest weight decay with the best weight decay at the end of training, paired
over the training sets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..estimate import compare
from ..estimate.crossed import split_df, split_se
from ..run.result import SweepResult
from ..run.store import ChunkStack, StepSlice
from .summary import best_index, ranked_expected, summary_rows
from .tables import Tables

__all__ = ["STEP_COLUMNS", "add_steps", "early_stopping", "step_view", "steps_table"]

#: The columns of ``steps.csv`` (those of the summary it has, in this order); every
#: column but ``step`` is the summary's column of the same name, at that step.
STEP_COLUMNS = [
    "weight_decay", "step", "n_reps_used", "n_diverged", "loss",
    "bias2", "bias2_se", "bias2_se0", "variance", "variance_se",
    "variance_data", "variance_data_se", "variance_init", "variance_init_se",
    "noise", "noise_se", "expected_error", "expected_error_se",
    "test_error", "test_error_se", "train_error", "train_error_se",
    "zero_one_error", "zero_one_error_se", "brier_error", "brier_error_se",
    "bias2_includes_noise", "status",
]  # fmt: skip


def step_view(r: SweepResult, t: int, curve_train: np.ndarray | None = None) -> SweepResult:
    """The sweep as it stood after logged step ``log_steps[t]``.

    Its predictions are those of step ``t`` (a :class:`bvsim.run.store.StepSlice`
    when they are stored in chunk files), its training error the training curve at
    that step, and a member counts as diverged when it was found diverged at or
    before that step. The weight norms are those of the end of training (not kept
    per step; ``steps.csv`` leaves them out).
    """
    if r.pred_steps is None:
        raise ValueError("the sweep kept no predictions per step (train.decompose_steps)")
    step = int(r.log_steps[t])
    if isinstance(r.pred_steps, ChunkStack):
        pred = StepSlice(r.pred_steps, t)
    else:
        pred = r.pred_steps[:, :, :, t]
    curve = np.asarray(r.curve_train if curve_train is None else curve_train)[..., t]
    diverged = r.diverged & (r.diverged_step <= step)
    return dataclasses.replace(r, pred=pred, train_error=curve, diverged=diverged)


def _usable_steps(r: SweepResult) -> np.ndarray:
    """(n_log, n_wd, n_reps) bool: at each logged step, the training sets whose
    members' predictions are all finite (as :func:`bvsim.io.members.members_table` finds
    them at the end), read chunk file by chunk file (or weight decay by weight decay
    in memory), each once."""
    ps = r.pred_steps

    def finite(block):  # (n_wd?, n_sets, S, n_log, J, ...) -> (..., n_sets, n_log)
        lead = 3 if block.ndim == len(ps.shape) else 2
        ok = np.isfinite(block).reshape(*block.shape[: lead + 1], -1).all(axis=-1)
        return ok.all(axis=lead - 1)  # every seed of the set

    if isinstance(ps, ChunkStack):
        parts = [finite(ps.part(p, (slice(None),))) for p in ps.paths]
        ok = np.concatenate(parts, axis=1)  # (n_wd, n_reps, n_log)
    else:
        ok = np.stack([finite(ps[i]) for i in range(len(ps))])
    return np.moveaxis(ok, -1, 0)


def steps_table(r: SweepResult, per_set: list | None = None) -> pd.DataFrame | None:
    """The decomposition at every logged step, long: one row per (weight decay, step).

    Parameters
    ----------
    r : SweepResult
        With ``pred_steps`` (else None is returned).
    per_set : list, optional
        Receives, per logged step, the dict of per-set values behind the summary's
        paired comparisons (``expected``: pseudo-values of each set's expected error,
        shape (n_wd, n_reps), NaN where a set is not usable).

    Returns
    -------
    DataFrame with :data:`STEP_COLUMNS` (those the task has), or None.
    """
    if r.pred_steps is None:
        return None
    frames = []
    curve_train = np.asarray(r.curve_train)  # (n_wd, n_reps, S, n_log): small, read once
    usable = _usable_steps(r)
    for t, step in enumerate(r.log_steps):
        view = step_view(r, t, curve_train)
        values: dict = {}
        summary, _ = summary_rows(view, usable[t], values)
        summary.insert(1, "step", int(step))
        frames.append(summary[[c for c in STEP_COLUMNS if c in summary.columns]])
        if per_set is not None:
            values.pop("anova", None)  # a crossed step's ANOVA: only the final one is a table
            per_set.append(values)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["weight_decay", "step"], kind="stable", ignore_index=True)


def early_stopping(steps: pd.DataFrame, per_set: list, log_steps, weight_decay) -> dict | None:
    """Early stopping at the smallest weight decay against the best weight decay at
    the end of training, paired over the training sets.

    Parameters
    ----------
    steps : DataFrame
        :func:`steps_table`'s rows.
    per_set : list of dict
        Per logged step (in ``log_steps`` order), the per-set values it filled.
    log_steps : array of int, shape (n_log,)
    weight_decay : array of float, shape (n_wd,)
        The sweep's weight decays, in the order of the per-set values' rows.

    Returns
    -------
    dict or None
        ``weight_decay_min``, ``best_step`` (the step of least expected error at the
        smallest weight decay) and its ``early_stopping_error(_se)``; ``last_step``,
        ``best_weight_decay`` (least expected error at the last step) and its
        ``weight_decay_error(_se)``; ``diff`` = early stopping minus weight decay with
        its paired ``diff_se`` over the ``n_common`` training sets usable in both (a
        crossed design: the multiway jackknife of the two replicates' difference) and
        that SE's degrees of freedom ``diff_df`` (``n_common - 1``; Satterthwaite's in
        a crossed design); and
        the best cell of the whole (step, weight decay) grid, ``grid_best_step``,
        ``grid_best_weight_decay``, ``grid_best_error(_se)`` (an argmin of noisy estimates:
        optimistic). None when either side has no estimate.
    """
    steps = steps[np.isfinite(steps["expected_error"].to_numpy(float))]
    if steps.empty:
        return None
    log_steps = [int(s) for s in log_steps]
    wds = [float(v) for v in weight_decay]
    last = log_steps[-1]
    lam_min = min(wds)
    early = steps[steps["weight_decay"] == lam_min]
    late = steps[steps["step"] == last]
    if early.empty or late.empty:
        return None
    e = early.loc[early["expected_error"].idxmin()]
    late_ee = late.set_index("weight_decay")["expected_error"].reindex(wds).to_numpy(float)
    ranked, _ = ranked_expected(late_ee, per_set[-1])  # as summary.csv's is_best
    w = late[late["weight_decay"] == wds[best_index(ranked, wds)]].iloc[0]
    g = steps.loc[steps["expected_error"].idxmin()]
    a = per_set[log_steps.index(int(e["step"]))]["expected"][wds.index(lam_min)]
    b = per_set[-1]["expected"][wds.index(float(w["weight_decay"]))]
    if "levels" in per_set[-1]:  # a crossed design's replicates: the multiway jackknife
        diff = float(e["expected_error"] - w["expected_error"])
        diff_se = split_se(a - b, per_set[-1]["levels"])
        diff_df = split_df(a - b, per_set[-1]["levels"])
        n = int(min(e["n_reps_used"], w["n_reps_used"]))
    else:
        diff, diff_se, n = compare.paired_difference(a, b)
        diff_df = compare.paired_df(n)
    return {
        "weight_decay_min": lam_min,
        "best_step": int(e["step"]),
        "early_stopping_error": float(e["expected_error"]),
        "early_stopping_error_se": float(e["expected_error_se"]),
        "last_step": last,
        "best_weight_decay": float(w["weight_decay"]),
        "weight_decay_error": float(w["expected_error"]),
        "weight_decay_error_se": float(w["expected_error_se"]),
        "diff": float(diff),
        "diff_se": float(diff_se),
        "diff_df": float(diff_df),
        "n_common": int(n),
        "grid_best_step": int(g["step"]),
        "grid_best_weight_decay": float(g["weight_decay"]),
        "grid_best_error": float(g["expected_error"]),
        "grid_best_error_se": float(g["expected_error_se"]),
    }


def add_steps(tables: Tables, r: SweepResult) -> Tables:
    """Put the decomposition along training into ``tables`` (in place, returned):
    ``tables.steps`` (``steps.csv``) and ``tables.meta["early_stopping"]``
    (:func:`early_stopping`, in ``run.json``). Nothing without ``r.pred_steps``."""
    per_set: list = []
    steps = steps_table(r, per_set)
    if steps is None:
        return tables
    tables.steps = steps
    tables.meta["early_stopping"] = early_stopping(steps, per_set, r.log_steps, r.weight_decay)
    return tables
