"""The summary and pointwise tables (``summary.csv``, ``pointwise.csv``): one row per
weight decay, decomposed by the run's :class:`bvsim.task.Task` a block of test points at
a time, and the comparisons across weight decays paired over training sets (in a crossed
design, over the levels of its factors: :mod:`bvsim.estimate.crossed`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import crossed_shape
from ..data.csv import file_rows
from ..data.seeds import Stream, node
from ..estimate import compare
from ..estimate.crossed import cell_mean, crossed_prob_best, split_df, split_se
from ..estimate.squared import mean_se, repeated_x_noise
from ..run.result import SweepResult
from ..task import Task, task_for
from .blocks import labels_block, point_blocks, pred_block

__all__ = [
    "COMPARE_COLUMNS",
    "STATUS_ALL_DIVERGED",
    "STATUS_CROSSING_BROKEN",
    "STATUS_OK",
    "STATUS_SOME_DIVERGED",
    "STATUS_TOO_FEW",
    "VALID_STATUSES",
    "best_index",
    "bootstrap_seed",
    "paired_columns",
    "summary_columns",
    "summary_rows",
]

#: A λ's ``status`` in ``summary.csv`` (:func:`_lambda_rows`): every training set
#: usable; some sets diverged (estimated from the usable ones); a crossed design with a
#: diverged member (its crossing broken: no estimate); fewer than two usable sets; none.
STATUS_OK, STATUS_SOME_DIVERGED = "ok", "some_diverged"
STATUS_CROSSING_BROKEN = "crossing_broken"
STATUS_TOO_FEW, STATUS_ALL_DIVERGED = "too_few_converged", "all_diverged"
#: The statuses of a λ whose estimates exist: only these rows are decomposed, so only
#: they have an ``expected_error`` (and only they can be :func:`best_index`).
VALID_STATUSES = (STATUS_OK, STATUS_SOME_DIVERGED)


def best_index(expected_error, weight_decay) -> int:
    """Position of the best λ: the least finite expected error, the smaller λ on a tie
    (whatever the order of the grid); -1 when no λ has an estimate. ``summary.csv``'s
    ``is_best`` and the figures and report (:func:`bvsim.present.common.best_position`)
    both pick it so."""
    ee = np.asarray(expected_error, dtype=float)
    wd = np.asarray(weight_decay, dtype=float)
    finite = np.flatnonzero(np.isfinite(ee))
    if not finite.size:
        return -1
    return int(finite[np.lexsort((wd[finite], ee[finite]))[0]])


def _lambda_rows(r: SweepResult, usable: np.ndarray, task: Task):
    """One summary row (and one pointwise frame) per weight decay.

    Where at least ``task.min_sets`` training sets converged, ``task.fill`` adds the decomposition
    of the usable sets to the row, reading the predictions one block of test points at
    a time, and returns (per-set test error, pointwise columns, per-set values).
    Everything else a row holds is common to every task and filled here.

    Returns
    -------
    rows, points, per_set
        ``per_set`` holds ``expected``, ``test_error`` and ``variance`` of shape
        (n_wd, n_reps), NaN where a set is not usable, for the paired comparisons. In a
        crossed design they are replicates (n_wd, sum of the levels), with ``cells``
        (n_wd, n_1, ..., n_F) and ``levels`` (:func:`_crossed_sets`).
    """
    cfg = r.cfg
    crossed = task.crossed(cfg)
    n_reps = r.diverged.shape[1]  # sets trained: fewer than sweep.n_reps after target_se
    rows, points = [], []
    blocks = point_blocks(r)
    per_set = {
        name: np.full((len(r.weight_decay), n_reps), np.nan)
        for name in ("expected", "test_error", "variance")
    }
    if crossed:
        per_set = _crossed_sets(cfg, len(r.weight_decay))
    for i, wd in enumerate(r.weight_decay):
        ok = usable[i]
        n_ok = int(ok.sum())
        row = {
            "weight_decay": float(wd),
            "n_reps": n_reps,
            "n_seeds": cfg.sweep.n_seeds,
            "n_reps_used": n_ok,
            "n_diverged": int(r.diverged[i].sum()),
            **task.summary_head(float(r.test.noise_var)),
        }
        if n_ok >= task.min_sets and (n_ok == n_reps or not crossed):  # a broken crossing
            parts = ((b, pred_block(r, i, b)[ok], labels_block(r, b)[ok]) for b in blocks)
            err_k, point, sets = task.fill(row, cfg, r.test, parts)
            if crossed:
                _crossed_measured(row, cfg, r, i, err_k, sets)
                for name, values in sets.items():
                    per_set[name][i] = values
            else:
                per_set["test_error"][i, ok] = err_k
                for name, values in sets.items():
                    per_set[name][i, ok] = values
                for name, values in (
                    ("test_error", err_k),
                    ("train_error", r.train_error[i][ok].mean(axis=1)),
                    ("weight_norm", r.weight_norm[i][ok].mean(axis=1)),
                ):
                    mean, se = mean_se(values)
                    row[name], row[f"{name}_se"] = float(mean), float(se)
            row["status"] = STATUS_OK if n_ok == n_reps else STATUS_SOME_DIVERGED
            frame = {"weight_decay": float(wd), "point": np.arange(len(r.test.x))}
            point = pd.DataFrame({**frame, "x": r.test.x[:, 0], **point})
            points.append(point[list(task.pointwise_columns)])
        elif n_ok >= task.min_sets:  # a crossed design with a diverged member: no estimate
            row["status"] = STATUS_CROSSING_BROKEN
        else:
            row["status"] = STATUS_ALL_DIVERGED if n_ok == 0 else STATUS_TOO_FEW
        rows.append(row)
    return rows, points, per_set


def _crossed_sets(cfg, n_wd: int) -> dict:
    """Empty per-λ replicates of a crossed design (NaN until a λ is filled): ``expected``,
    ``variance`` and ``test_error`` of shape (n_wd, sum of the levels), ``cells`` (each
    cell's expected error, (n_wd, n_1, ..., n_F)), ``levels`` (the level counts) and
    ``anova`` (λ index -> the ANOVA of the variance, for :func:`bvsim.io.anova.anova_tables`)."""
    _, shape = crossed_shape(cfg)
    sets = {n: np.full((n_wd, sum(shape)), np.nan) for n in ("expected", "test_error", "variance")}
    sets["cells"] = np.full((n_wd, *shape), np.nan)
    sets["levels"] = shape
    sets["anova"] = {}
    return sets


def _crossed_measured(row: dict, cfg, r: SweepResult, i: int, err_k, sets: dict) -> None:
    """The measured test error, train error and weight norm of a crossed design's λ
    ``i``: means over the members with their multiway-jackknife SEs."""
    row["test_error"] = float(np.mean(err_k))  # every set has n_seeds members
    row["test_error_se"] = split_se(sets["test_error"], crossed_shape(cfg)[1])
    for name, values in (("train_error", r.train_error[i]), ("weight_norm", r.weight_norm[i])):
        mean, se, _ = cell_mean(values, crossed_shape(cfg)[1])
        row[name], row[f"{name}_se"] = float(mean), float(se)


#: The comparison columns of every summary (see :func:`paired_columns`), before status.
COMPARE_COLUMNS = [
    "is_best", "is_one_se", "prob_best", "diff_from_best", "diff_from_best_se",
    "diff_from_best_df", "n_common_with_best", "n_worse_than_best", "n_better_than_best",
    "reduction_by_best", "reduction_by_best_se", "identity_gap", "identity_gap_se",
    "bias2_share", "bias2_share_se", "variance_share", "variance_share_se",
    "variance_init_share", "variance_init_share_se",
    "variance_diff_prev", "variance_diff_prev_se", "variance_diff_prev_df",
]  # fmt: skip


def ranked_expected(ee: np.ndarray, per_set: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The expected errors the best λ is chosen on (:func:`best_index` of them is
    ``is_best``) and the training sets they average, None for each λ's own ``ee``.

    Where members diverged at some λ, its estimates average its own converged sets,
    which leave out the sets hard at that λ, so the means of two λ are not of the same
    sets: the best λ, ``prob_best`` and every difference from the best are then
    computed on the sets usable at every λ that has per-set values, paired, and a λ
    with an estimate but no per-set values (2 sets) is not ranked. Each λ's own mean
    ranks where every estimated λ kept every set, in a crossed design (no λ with
    estimates lost a member), or where fewer than 2 sets are common (each pair is then
    compared on the sets both kept)."""
    expected = per_set.get("expected") if "levels" not in per_set else None
    if expected is None:
        return ee, None
    rows = np.isfinite(expected).any(axis=1)
    if not rows.any():
        return ee, None
    common = np.isfinite(expected[rows]).all(axis=0)
    if (common.all() and (rows == np.isfinite(ee)).all()) or common.sum() < 2:
        return ee, None
    ranked = np.full(len(ee), np.nan)
    ranked[rows] = expected[rows][:, common].mean(axis=1)
    return ranked, common


def paired_columns(summary: pd.DataFrame, per_set: dict, seed) -> pd.DataFrame:
    """The comparisons across weight decays, paired over training sets.

    Parameters
    ----------
    summary : DataFrame
        One row per weight decay, in the order of ``per_set``'s rows, with
        ``weight_decay``, ``expected_error``, ``test_error`` and ``variance``.
    per_set : dict of str to ndarray of shape (n_wd, n_reps)
        ``expected`` (each set's expected error), ``test_error`` (each set's measured
        test error; optional) and ``variance`` (pseudo-values; optional), NaN where a
        set is not usable. A crossed design's (with ``levels``) hold delete-one-level
        replicates instead, and ``cells`` (:func:`_crossed_paired`).
    seed : int or numpy.random.SeedSequence
        Seed of the bootstrap behind ``prob_best``.

    Returns
    -------
    DataFrame
        ``summary`` with ``is_best``, ``is_one_se``, ``prob_best``,
        ``diff_from_best(_se)``, ``diff_from_best_df`` (the degrees of freedom of its
        SE: the sets compared minus one; Satterthwaite's in a crossed design),
        ``n_common_with_best``, ``n_worse_than_best``,
        ``n_better_than_best`` (in a crossed design counted over its cells, which are
        not independent), ``reduction_by_best(_se)``, ``identity_gap(_se)`` and
        ``variance_diff_prev(_se, _df)`` set (see ``results/README.md``).
    """
    summary = summary.copy()
    n_wd = len(summary)
    own = summary["expected_error"].to_numpy(float)
    ee, common = ranked_expected(own, per_set)  # members diverged: on the common sets
    best = best_index(ee, summary["weight_decay"])
    summary["is_best"] = np.arange(n_wd) == best
    nan = np.full(n_wd, np.nan)
    for col in ("diff_from_best", "diff_from_best_se", "diff_from_best_df", "n_common_with_best",
                "n_worse_than_best", "n_better_than_best", "reduction_by_best",
                "reduction_by_best_se", "identity_gap", "identity_gap_se", "variance_diff_prev",
                "variance_diff_prev_se", "variance_diff_prev_df"):  # fmt: skip
        summary[col] = nan
    summary["prob_best"], summary["is_one_se"] = nan, False
    if best < 0:
        return summary
    if "levels" in per_set:
        return _crossed_paired(summary, per_set, best, seed)
    expected = per_set["expected"]
    if common is not None:  # every comparison with the best on the sets it was chosen on
        expected = np.where(common, expected, np.nan)
    vs = compare.paired_vs_best(expected, best=best)
    summary["diff_from_best"], summary["diff_from_best_se"] = vs["diff"], vs["diff_se"]
    summary["n_common_with_best"] = vs["n_common"]
    df = compare.paired_df(vs["n_common"])
    summary["diff_from_best_df"] = np.where(np.arange(n_wd) != best, df, np.nan)
    summary["n_worse_than_best"], summary["n_better_than_best"] = vs["n_worse"], vs["n_better"]
    wd = summary["weight_decay"].to_numpy(float)
    one_se = compare.one_se_index(wd, vs["diff"], vs["diff_se"])
    summary["is_one_se"] = np.arange(n_wd) == one_se
    summary["prob_best"] = compare.prob_best(expected, seed=seed)
    for i in range(n_wd):
        red = compare.paired_ratio(expected[best], expected[i])
        summary.loc[i, ["reduction_by_best", "reduction_by_best_se"]] = 1 - red[0], red[1]
        if "test_error" in per_set:  # a λ's own sets, as its row's estimates
            own_sets = per_set["expected"][i]
            _, se, _ = compare.paired_difference(per_set["test_error"][i], own_sets)
            gap = summary["test_error"].iloc[i] - summary["expected_error"].iloc[i]
            summary.loc[i, ["identity_gap", "identity_gap_se"]] = gap, se
    if "variance" in per_set:  # each λ against the next smaller one with estimates
        valid = [i for i in np.argsort(wd, kind="stable") if np.isfinite(own[i])]
        for prev, i in zip(valid[:-1], valid[1:], strict=True):
            _, se, n = compare.paired_difference(per_set["variance"][i], per_set["variance"][prev])
            gap = summary["variance"].iloc[i] - summary["variance"].iloc[prev]
            cols = ["variance_diff_prev", "variance_diff_prev_se", "variance_diff_prev_df"]
            summary.loc[i, cols] = gap, se, compare.paired_df(n)
    return summary


def _crossed_paired(summary: pd.DataFrame, per_set: dict, best: int, seed) -> pd.DataFrame:
    """:func:`paired_columns` of a crossed design: every λ shares every level of every
    factor, so a difference's (or ratio's) SE is the multiway jackknife of the
    difference (ratio) of the two λ's replicates; ``prob_best`` is the pigeonhole
    bootstrap of the cells (each factor's levels resampled independently)."""
    levels = per_set["levels"]
    ee = summary["expected_error"].to_numpy(float)
    wd = summary["weight_decay"].to_numpy(float)
    expected = per_set["expected"]
    n_wd = len(summary)
    diff = ee - ee[best]
    diff_se = np.array([split_se(expected[i] - expected[best], levels) for i in range(n_wd)])
    diff_se[best] = 0.0 if np.isfinite(ee[best]) else np.nan
    summary["diff_from_best"], summary["diff_from_best_se"] = diff, diff_se
    summary["diff_from_best_df"] = [
        split_df(expected[i] - expected[best], levels) if i != best else np.nan for i in range(n_wd)
    ]
    # counted over the cells (each its expected error), which share their draws: no test
    vs = compare.paired_vs_best(per_set["cells"].reshape(n_wd, -1), best=best)
    summary["n_common_with_best"] = vs["n_common"]
    summary["n_worse_than_best"], summary["n_better_than_best"] = vs["n_worse"], vs["n_better"]
    summary["is_one_se"] = np.arange(n_wd) == compare.one_se_index(wd, diff, diff_se)
    summary["prob_best"] = crossed_prob_best(per_set["cells"], compare.N_BOOTSTRAP, seed)
    test_error, variance = per_set["test_error"], per_set["variance"]
    gap = summary["test_error"].to_numpy(float) - ee
    with np.errstate(invalid="ignore", divide="ignore"):
        summary["reduction_by_best"] = 1 - ee[best] / ee
        summary["reduction_by_best_se"] = [
            split_se(expected[best] / expected[i], levels) for i in range(n_wd)
        ]
    summary["identity_gap"] = gap
    summary["identity_gap_se"] = [
        split_se(test_error[i] - expected[i], levels) for i in range(n_wd)
    ]
    valid = [i for i in np.argsort(wd, kind="stable") if np.isfinite(ee[i])]
    v = summary["variance"].to_numpy(float)
    for prev, i in zip(valid[:-1], valid[1:], strict=True):
        se = split_se(variance[i] - variance[prev], levels)
        df = split_df(variance[i] - variance[prev], levels)
        cols = ["variance_diff_prev", "variance_diff_prev_se", "variance_diff_prev_df"]
        summary.loc[i, cols] = v[i] - v[prev], se, df
    return summary


def summary_columns(cfg) -> list[str]:
    """The columns of ``summary.csv``: the task's (:meth:`bvsim.task.Task.summary_columns`)
    with the paired comparisons (:data:`COMPARE_COLUMNS`) before ``status``."""
    columns = task_for(cfg).summary_columns(cfg)
    return columns[:-1] + [c for c in COMPARE_COLUMNS if c not in columns] + columns[-1:]


def bootstrap_seed(root: int) -> np.random.SeedSequence:
    """The seed of the bootstrap behind ``prob_best``: the seed tree's
    :attr:`bvsim.data.seeds.Stream.BOOTSTRAP` node under the root seed (``run.json``
    records it, :func:`bvsim.data.seeds.node_text`)."""
    return node(root, Stream.BOOTSTRAP)


def summary_rows(r: SweepResult, usable: np.ndarray, per_set_out: dict | None = None):
    """The summary and pointwise tables of a sweep, decomposed by its task.

    Parameters
    ----------
    r : SweepResult
    usable : ndarray of bool, shape (n_wd, n_reps)
        The training sets whose members' predictions are all finite.
    per_set_out : dict, optional
        Receives the per-set values behind the paired comparisons
        (see :func:`paired_columns`).

    Returns
    -------
    summary, pointwise : DataFrame
    """
    cfg = r.cfg
    task = task_for(cfg)
    rows, points, per_set = _lambda_rows(r, usable, task)
    summary = pd.DataFrame(rows)
    columns = summary_columns(cfg)
    summary["bias2_includes_noise"] = task.bias2_includes_noise(cfg, r.test)
    if "noise_estimate" in columns:  # from repeated x in the file, if any (squared error)
        noise, se, _ = repeated_x_noise(*file_rows(cfg, r.test.data_digest))
        summary["noise_estimate"], summary["noise_estimate_se"] = noise, se
    if per_set_out is not None:
        per_set_out.update(per_set)
    seed = bootstrap_seed(cfg.seed)
    summary = paired_columns(summary.reindex(columns=columns), per_set, seed)[columns]
    pointwise = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    return summary, pointwise
