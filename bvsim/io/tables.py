"""Tidy tables: estimators applied to a sweep, written to and read from a run dir.

This is the only module that writes CSVs. Every column is documented in
``results/README.md`` (and :data:`SCHEMA` keeps the names in one place).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..config import axis_values, config_key, dumps_toml, is_classification
from ..data.generator import draw_training_sets
from ..estimate import compare
from ..estimate.anova import anova_terms as anova_term_names
from ..estimate.anova import crossed_anova_blocks
from ..estimate.anova_theory import anova_theory_table
from ..estimate.squared import (
    combine_point_blocks,
    decompose,
    jackknife_se,
    mean_se,
    valid_training_sets,
)
from ..estimate.theory import has_theory, theory_table
from ..run.store import (
    ChunkStack,
    RunDirError,
    atomic_path,
    read_slice,
    write_npz,
    write_text_atomic,
)
from ..run.sweep import SweepResult, TestLabels

__all__ = ["Tables", "load_fits", "read_tables", "summarize", "write_marker", "write_run"]

FILES = ("summary", "pointwise", "curves", "members", "weight_hist")
#: Written only when the configuration has a closed-form theory (bvsim.estimate.theory).
THEORY = "theory"
#: Written only by a crossed design (``sweep.design = "crossed"``): the ANOVA of the
#: variance per λ, and per λ and test point.
ANOVA = ("anova", "anova_pointwise")
#: Written only with ``train.decompose_steps`` (:func:`bvsim.io.steps.steps_table`).
STEPS = "steps"
_HIST_BINS = 60


@dataclass
class Tables:
    """The tidy tables of one run (see ``results/README.md``)."""

    summary: pd.DataFrame
    pointwise: pd.DataFrame
    curves: pd.DataFrame
    members: pd.DataFrame
    weight_hist: pd.DataFrame
    meta: dict
    #: Closed-form bias² and variance per λ (:func:`bvsim.estimate.theory.theory_table`); None
    #: when the configuration has no theory. Written as ``theory.csv``.
    theory: pd.DataFrame | None = None
    #: The crossed design's ANOVA of the variance (:func:`anova_tables`); None otherwise.
    anova: pd.DataFrame | None = None
    anova_pointwise: pd.DataFrame | None = None
    #: The decomposition at every logged step (``train.decompose_steps``); None
    #: otherwise. Written as ``steps.csv``.
    steps: pd.DataFrame | None = None


#: Predictions decomposed at once, in bytes (every training set and seed of one weight
#: decay): a larger test set is decomposed a block of test points at a time, which the
#: estimators combine exactly (:func:`bvsim.estimate.squared.combine_point_blocks`).
BLOCK_BYTES = 8 * 2**20


def _point_blocks(r: SweepResult) -> list[slice]:
    """Blocks of test points whose predictions (all sets and seeds) fit BLOCK_BYTES."""
    n_test = len(r.test.x)
    per_point = int(np.prod(r.pred.shape[1:])) // n_test * 8
    size = max(1, BLOCK_BYTES // per_point)
    return [slice(a, min(a + size, n_test)) for a in range(0, n_test, size)]


def _pred_block(r: SweepResult, i: int, points: slice) -> np.ndarray:
    """Predictions of weight decay ``i`` at test points ``points``: (K, S, J_b, ...)."""
    if isinstance(r.pred, ChunkStack):
        return r.pred.read(i, points)
    return r.pred[i][:, :, points]


def _labels(r: SweepResult, points: slice) -> np.ndarray:
    """Noisy test labels of every training set at test points ``points``: (K, J_b)."""
    if isinstance(r.y_test, TestLabels):
        return r.y_test.read(points)
    return r.y_test[:, points]


#: Key of the bootstrap stream under the run's root seed (``SeedSequence(seed,
#: spawn_key=(BOOTSTRAP_STREAM,))``), apart from the data streams (bvsim.data.Stream).
BOOTSTRAP_STREAM = 100
#: bias2_se0 estimates the between-set covariance from at most this many training sets
#: (a K×K Gram matrix, summed over blocks of test points; any subset is unbiased).
GRAM_MAX_SETS = 1024


def _loo_means(parts: list, n_points: int) -> dict | None:
    """Leave-one-set-out estimates of each component over all test points, (K,) each,
    from the blocks of a decomposition (None when it has none: below 3 sets)."""
    if any(b[2] is None for b in parts):
        return None
    names = set.intersection(*(set(b[2]) for b in parts))
    return {name: sum(b[2][name] for b in parts) / n_points for name in names}


def _shares(row: dict, loo: dict, bias: str, total: str, offset: float = 0.0) -> None:
    """bias² and variance as shares of the expected error, and initialization variance
    as a share of the variance, with jackknife SEs of the ratios (``offset`` is the
    noise when ``total`` leaves it out)."""
    for col, name in (("bias2", bias), ("variance", "variance")):
        row[f"{col}_share"], row[f"{col}_share_se"] = compare.jackknife_ratio(
            row[col], row["expected_error"], loo[name], loo[total] + offset
        )
    if "variance_init" in loo:  # the initialization share of the variance
        row["variance_init_share"], row["variance_init_share_se"] = compare.jackknife_ratio(
            row["variance_init"], row["variance"], loo["variance_init"], loo["variance"]
        )


def _lambda_rows(r: SweepResult, usable: np.ndarray, head: dict, fill):
    """One summary row (and one pointwise frame) per weight decay.

    ``fill(row, i, ok, blocks)`` adds the decomposition of weight decay ``i`` over the
    usable training sets ``ok`` to ``row``, reading the predictions one block of test
    points at a time, and returns (per-set test error, pointwise columns, per-set
    values); it runs only where at least two sets converged. The per-set values are a
    dict of arrays of shape (n_ok,): ``expected`` (each set's expected error) and
    ``variance`` (pseudo-values of the variance, :func:`bvsim.estimate.compare.pseudo_values`).
    Everything else a row holds is common to every loss and filled here.

    Returns
    -------
    rows, points, per_set
        ``per_set`` holds ``expected``, ``test_error`` and ``variance`` of shape
        (n_wd, n_reps), NaN where a set is not usable, for the paired comparisons.
    """
    cfg = r.cfg
    n_reps = r.diverged.shape[1]  # sets trained: fewer than sweep.n_reps after target_se
    rows, points = [], []
    blocks = _point_blocks(r)
    per_set = {
        name: np.full((len(r.weight_decay), n_reps), np.nan)
        for name in ("expected", "test_error", "variance")
    }
    for i, wd in enumerate(r.weight_decay):
        ok = usable[i]
        n_ok = int(ok.sum())
        row = {
            "weight_decay": float(wd),
            "n_reps": n_reps,
            "n_seeds": cfg.sweep.n_seeds,
            "n_reps_used": n_ok,
            "n_diverged": int(r.diverged[i].sum()),
            **head,
        }
        if n_ok >= 2:
            err_k, point, sets = fill(row, i, ok, blocks)
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
            row["status"] = "ok" if n_ok == n_reps else "some_diverged"
            frame = {"weight_decay": float(wd), "point": np.arange(len(r.test.x))}
            points.append(pd.DataFrame({**frame, "x": r.test.x[:, 0], **point}))
        else:
            row["status"] = "all_diverged" if n_ok == 0 else "too_few_converged"
        rows.append(row)
    return rows, points, per_set


#: The comparison columns of every summary (see :func:`paired_columns`), before status.
COMPARE_COLUMNS = [
    "is_best", "is_one_se", "prob_best", "diff_from_best", "diff_from_best_se",
    "reduction_by_best", "reduction_by_best_se", "identity_gap", "identity_gap_se",
    "bias2_share", "bias2_share_se", "variance_share", "variance_share_se",
    "variance_init_share", "variance_init_share_se",
    "variance_diff_prev", "variance_diff_prev_se",
]  # fmt: skip


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
        set is not usable.
    seed : int or numpy.random.SeedSequence
        Seed of the bootstrap behind ``prob_best``.

    Returns
    -------
    DataFrame
        ``summary`` with ``is_best``, ``is_one_se``, ``prob_best``,
        ``diff_from_best(_se)``, ``reduction_by_best(_se)``, ``identity_gap(_se)``
        and ``variance_diff_prev(_se)`` set (see ``results/README.md``).
    """
    summary = summary.copy()
    n_wd = len(summary)
    ee = summary["expected_error"].to_numpy(float)
    best = int(np.nanargmin(ee)) if np.isfinite(ee).any() else -1
    summary["is_best"] = np.arange(n_wd) == best
    nan = np.full(n_wd, np.nan)
    for col in ("diff_from_best", "diff_from_best_se", "reduction_by_best",
                "reduction_by_best_se", "identity_gap", "identity_gap_se",
                "variance_diff_prev", "variance_diff_prev_se"):  # fmt: skip
        summary[col] = nan
    summary["prob_best"], summary["is_one_se"] = nan, False
    if best < 0:
        return summary
    expected = per_set["expected"]
    vs = compare.paired_vs_best(expected, best=best)
    summary["diff_from_best"], summary["diff_from_best_se"] = vs["diff"], vs["diff_se"]
    wd = summary["weight_decay"].to_numpy(float)
    one_se = compare.one_se_index(wd, vs["diff"], vs["diff_se"])
    summary["is_one_se"] = np.arange(n_wd) == one_se
    summary["prob_best"] = compare.prob_best(expected, seed=seed)
    for i in range(n_wd):
        red = compare.paired_ratio(expected[best], expected[i])
        summary.loc[i, ["reduction_by_best", "reduction_by_best_se"]] = 1 - red[0], red[1]
        if "test_error" in per_set:
            _, se, _ = compare.paired_difference(per_set["test_error"][i], expected[i])
            gap = summary["test_error"].iloc[i] - summary["expected_error"].iloc[i]
            summary.loc[i, ["identity_gap", "identity_gap_se"]] = gap, se
    if "variance" in per_set:  # each λ against the next smaller one with estimates
        valid = [i for i in np.argsort(wd, kind="stable") if np.isfinite(ee[i])]
        for prev, i in zip(valid[:-1], valid[1:], strict=True):
            _, se, _ = compare.paired_difference(per_set["variance"][i], per_set["variance"][prev])
            gap = summary["variance"].iloc[i] - summary["variance"].iloc[prev]
            summary.loc[i, ["variance_diff_prev", "variance_diff_prev_se"]] = gap, se
    return summary


def _finish(summary: pd.DataFrame, columns: list[str], points, per_set, seed,
            per_set_out: dict | None = None) -> tuple:  # fmt: skip
    """Order the summary's columns, add the paired comparisons (marking the best
    weight decay), stack the points; ``per_set_out`` (a dict), when given, receives the
    per-set values behind the comparisons (see :func:`paired_columns`)."""
    if per_set_out is not None:
        per_set_out.update(per_set)
    columns = columns[:-1] + [c for c in COMPARE_COLUMNS if c not in columns] + columns[-1:]
    summary = paired_columns(summary.reindex(columns=columns), per_set, seed)[columns]
    pointwise = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    return summary, pointwise


def _bootstrap_seed(root: int) -> np.random.SeedSequence:
    """The seed of the bootstrap behind ``prob_best``, derived from the root seed."""
    return np.random.SeedSequence(root, spawn_key=(BOOTSTRAP_STREAM,))


def _classification_rows(r: SweepResult, usable: np.ndarray, per_set_out: dict | None = None):
    """Summary and pointwise rows of a classification task: the exact cross-entropy
    decomposition (bias = KL(p || normalized geometric mean), variance, noise = entropy,
    jackknife-corrected) and Domingos' 0-1 decomposition, each with SEs."""
    from ..estimate.classification import (
        decompose_brier,
        decompose_cross_entropy,
        decompose_zero_one,
    )

    cfg, p_true = r.cfg, r.test.p_true

    def fill(row, i, ok, blocks):
        ce, zo, br, loss_sum = [], [], [], 0.0
        for b in blocks:
            proba = _pred_block(r, i, b)[ok]  # (K, S, J_b, C)
            labels = _labels(r, b)[ok].astype(np.int64)  # (K, J_b) sampled test labels
            ce.append(decompose_cross_entropy(proba, p_true[b], corrected=True, return_loo=True))
            zo.append(decompose_zero_one(proba.argmax(axis=-1), p_true[b], return_loo=True))
            br.append(decompose_brier(proba, p_true[b], return_loo=True))
            p_label = np.take_along_axis(proba, labels[:, None, :, None], axis=3)[..., 0]
            loss_sum = loss_sum - np.log(np.clip(p_label, 1e-12, 1)).sum(axis=(1, 2))
        loo = _loo_means(ce, len(p_true))
        (ce, ce_pw), (zo, _), (br, _) = map(combine_point_blocks, (ce, zo, br))
        err_k = loss_sum / (cfg.sweep.n_seeds * len(p_true))
        for name in ("bias", "variance", "variance_data", "variance_init", "noise"):
            col = "bias2" if name == "bias" else name
            row[col], row[f"{col}_se"] = ce[name], ce.get(f"{name}_se", np.nan)
        if cfg.data.source == "csv":  # observed labels as the truth: noise unknown
            row["noise"] = row["noise_se"] = np.nan
        row["expected_error"], row["expected_error_se"] = (
            ce["expected_loss"],
            ce["expected_loss_se"],
        )
        for name in ("expected_loss", "noise_term", "bias", "variance_term", "variance"):
            col = "zero_one_error" if name == "expected_loss" else f"zero_one_{name}"
            row[col], row[f"{col}_se"] = zo[name], zo.get(f"{name}_se", np.nan)
        for name in ("expected_loss", "bias2", "variance", "noise"):
            col = "brier_error" if name == "expected_loss" else f"brier_{name}"
            row[col], row[f"{col}_se"] = br[name], br.get(f"{name}_se", np.nan)
        point = {
            "truth": p_true[:, 1],
            "mean_prediction": ce_pw["mean_distribution"][:, 1],
            "bias2": ce_pw["bias"],
            "bias2_se": ce_pw["bias_se"],
            "variance": ce_pw["variance"],
            "variance_se": ce_pw["variance_se"],
        }
        row["bias2_se0"] = np.nan  # no null SE for the cross-entropy bias
        sets = {}
        if loo is not None:
            _shares(row, loo, "bias", "expected_loss")
            sets["expected"] = compare.pseudo_values(ce["expected_loss"], loo["expected_loss"])
            sets["variance"] = compare.pseudo_values(ce["variance"], loo["variance"])
        return err_k, point, sets

    rows, points, per_set = _lambda_rows(r, usable, {"loss": "cross_entropy"}, fill)
    summary = pd.DataFrame(rows)
    zero_one = [
        f"zero_one_{n}{se}"
        for n in ("error", "noise_term", "bias", "variance_term", "variance")
        for se in ("", "_se")
    ]
    brier = [
        f"brier_{n}{se}" for n in ("error", "bias2", "variance", "noise") for se in ("", "_se")
    ]
    columns = [
        "weight_decay", "n_reps", "n_seeds", "n_reps_used", "n_diverged", "loss",
        "bias2", "bias2_se", "bias2_se0", "variance", "variance_se",
        "variance_data", "variance_data_se", "variance_init", "variance_init_se",
        "noise", "noise_se", "expected_error", "expected_error_se",
        "test_error", "test_error_se", "train_error", "train_error_se",
        "weight_norm", "weight_norm_se", *zero_one, *brier, "bias2_includes_noise", "status",
    ]  # fmt: skip
    # observed labels as the truth (a CSV): the noise is inside the bias
    summary["bias2_includes_noise"] = cfg.data.source == "csv"
    return _finish(summary, columns, points, per_set, _bootstrap_seed(cfg.seed), per_set_out)


def _summary_rows(r: SweepResult, usable: np.ndarray, per_set_out: dict | None = None):
    if r.test.p_true is not None:
        return _classification_rows(r, usable, per_set_out)
    cfg = r.cfg
    noise = float(r.test.noise_var)
    noise_known = bool(np.isfinite(noise))

    def fill(row, i, ok, blocks):
        parts, sq_sum, gram, se0 = [], 0.0, 0.0, []
        for b in blocks:
            pred = _pred_block(r, i, b)[ok]  # (K, S, J_b)
            parts.append(decompose(pred, r.test.f[b], return_loo=True))
            sq_sum = sq_sum + np.square(pred - _labels(r, b)[ok][:, None, :]).sum(axis=(1, 2))
            means = pred.mean(axis=1)  # (K, J_b) set means
            dev = means - means.mean(axis=0)
            se0.append(compare.bias2_null_se_points(dev))
            gram = gram + dev[:GRAM_MAX_SETS] @ dev[:GRAM_MAX_SETS].T
        n_points = len(r.test.f)
        loo = _loo_means(parts, n_points)
        overall, pointwise = combine_point_blocks(parts)
        row |= {k: v for k, v in overall.items() if not k.startswith("mse_truth")}
        # with unknown noise (data from a file) the labels are the "truth": bias2
        # then includes the noise and expected_error is bias2 + variance
        row["expected_error"] = overall["mse_truth"] + (noise if noise_known else 0.0)
        row["expected_error_se"] = overall["mse_truth_se"]
        row["bias2_se0"] = compare.bias2_null_se(gram, n_points, n_reps=int(ok.sum()))
        err_k = sq_sum / (cfg.sweep.n_seeds * n_points)
        point = {"truth": r.test.f} | {
            k: pointwise[k] for k in ("mean_prediction", "bias2", "bias2_se")
        }
        point |= {"bias2_se0": np.concatenate(se0)}
        point |= {k: pointwise[k] for k in ("variance", "variance_se")}
        sets = {}
        if loo is not None:
            offset = noise if noise_known else 0.0
            _shares(row, loo, "bias2", "mse_truth", offset)
            sets["expected"] = compare.pseudo_values(overall["mse_truth"], loo["mse_truth"])
            sets["expected"] += offset
            sets["variance"] = compare.pseudo_values(overall["variance"], loo["variance"])
            if cfg.sweep.n_seeds >= 2:
                _ensemble(row, loo, cfg.sweep.n_seeds, offset)
        return err_k, point, sets

    rows, points, per_set = _lambda_rows(r, usable, {"noise": noise}, fill)
    summary = pd.DataFrame(rows)
    columns = [
        "weight_decay", "n_reps", "n_seeds", "n_reps_used", "n_diverged",
        "bias2", "bias2_se", "bias2_se0", "variance", "variance_se",
        "variance_data", "variance_data_se", "variance_init", "variance_init_se",
        "noise", "expected_error", "expected_error_se", "test_error", "test_error_se",
        "train_error", "train_error_se", "weight_norm", "weight_norm_se",
        "bias2_includes_noise", "status",
    ]  # fmt: skip
    if cfg.sweep.n_seeds >= 2:  # only then: the nested runs' columns stay as they were
        at = columns.index("expected_error_se") + 1
        columns[at:at] = ENSEMBLE_COLUMNS
    summary["bias2_includes_noise"] = not noise_known
    if cfg.data.source == "csv":  # an estimate of the noise from repeated x, if any
        from ..data.csv import repeated_x_noise

        summary["noise_estimate"], _ = repeated_x_noise(cfg)
        columns.insert(columns.index("bias2_includes_noise") + 1, "noise_estimate")
    return _finish(summary, columns, points, per_set, _bootstrap_seed(cfg.seed), per_set_out)


#: Summary columns of a squared-error run with ``sweep.n_seeds >= 2`` (:func:`_ensemble`).
ENSEMBLE_COLUMNS = ["ensemble_error", "ensemble_error_se", "ensemble_gain", "ensemble_gain_se"]


def _ensemble(row: dict, loo: dict, n_seeds: int, noise: float) -> None:
    """The expected error of the average of the ``n_seeds`` initializations trained on
    one training set: bias² + variance_data + variance_init / S + noise, that is the
    expected error less ``ensemble_gain = (1 - 1/S) variance_init``; SEs by the
    delete-one-training-set jackknife (``loo``: leave-one-set-out means)."""
    shrink = 1 - 1 / n_seeds
    row["ensemble_error"] = row["expected_error"] - shrink * row["variance_init"]
    row["ensemble_error_se"] = float(
        jackknife_se(loo["mse_truth"] + noise - shrink * loo["variance_init"])
    )
    row["ensemble_gain"] = shrink * row["variance_init"]
    row["ensemble_gain_se"] = shrink * row["variance_init_se"]


def crossed_factors(cfg) -> list[tuple[str, int]]:
    """The factors of the crossed design and their levels, in the order of the
    prediction axes (training set ``k = a * n_noise + b``, then the seed): the training
    inputs (``sample`` for data from a file: the drawn rows), the label noise and the
    initialization."""
    sw = cfg.sweep
    inputs = "sample" if cfg.data.source == "csv" else "inputs"
    return [(inputs, sw.n_inputs), ("label_noise", sw.n_noise), ("init", sw.n_seeds)]


def anova_tables(r: SweepResult, usable: np.ndarray) -> tuple:
    """The random-effects ANOVA of a crossed design per λ (``anova.csv``) and per λ and
    test point (``anova_pointwise.csv``); (None, None) for a nested design.

    A factor with one level is left out. A λ at which any member diverged has NaN
    values (dropping its cells would break the crossing). Rows per λ: one per term,
    then ``variance`` (their sum), ``bias2``, ``noise`` and ``expected_error`` =
    bias2 + variance + noise (exactly).
    """
    cfg = r.cfg
    if cfg.sweep.design != "crossed" or r.test.p_true is not None:
        return None, None
    levels = crossed_factors(cfg)
    factors = tuple(name for name, n in levels if n >= 2)
    shape = tuple(n for _, n in levels if n >= 2)
    terms = [":".join(t) for t in anova_term_names(factors)]
    noise = float(r.test.noise_var)
    known = bool(np.isfinite(noise))
    rows, points = [], []
    for i, wd in enumerate(r.weight_decay):
        head = {"weight_decay": float(wd)}
        if not usable[i].all() or r.diverged[i].any():
            rows += [head | {"term": t, "value": np.nan} for t in terms]
            continue
        blocks = ((_pred_block(r, i, b).reshape(*shape, -1), r.test.f[b]) for b in _point_blocks(r))
        overall, pointwise = crossed_anova_blocks(blocks, factors)
        for t in terms:
            rows.append(
                head
                | {
                    "term": t,
                    "value": overall[t],
                    "se": overall[f"{t}_se"],
                    "share": overall[f"{t}_share"],
                    "share_se": overall[f"{t}_share_se"],
                }
            )
        ee = overall["mse_truth"] + (noise if known else 0.0)
        for term, value, se in (
            ("variance", overall["variance"], overall["variance_se"]),
            ("bias2", overall["bias2"], overall["bias2_se"]),
            ("noise", noise if known else np.nan, 0.0 if known else np.nan),
            ("expected_error", ee, overall["mse_truth_se"]),
        ):
            rows.append(head | {"term": term, "value": value, "se": se})
        frame = {"weight_decay": float(wd), "point": np.arange(len(r.test.x)), "x": r.test.x[:, 0]}
        for t in [*terms, "variance", "bias2"]:
            points.append(pd.DataFrame({**frame, "term": t, "value": pointwise[t]}))
    columns = ["weight_decay", "term", "value", "se", "share", "share_se"]
    anova = _with_theory(pd.DataFrame(rows).reindex(columns=columns), r)
    pointwise = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    return anova, pointwise


def _with_theory(anova: pd.DataFrame, r: SweepResult) -> pd.DataFrame:
    """``anova`` with the closed form of each row (columns ``theory``, ``theory_kind``)
    where :func:`bvsim.estimate.anova_theory.has_anova_theory` finds one; unchanged
    otherwise."""
    theory = anova_theory_table(r.cfg, r.test, _design(r))
    if theory is None:
        return anova
    return anova.merge(theory, on=["weight_decay", "term"], how="left", validate="1:1")


def _curves(r: SweepResult, usable: np.ndarray) -> pd.DataFrame:
    frames = []
    for i, wd in enumerate(r.weight_decay):
        ok = usable[i]
        if ok.sum() < 1:
            continue
        for split, curve in (("train", r.curve_train[i]), ("test", r.curve_test[i])):
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


def _members(r: SweepResult) -> tuple[pd.DataFrame, np.ndarray]:
    """The per-member table, and the usable training sets of each weight decay
    ((n_wd, n_reps) bool: every member's predictions finite), in one pass over the
    predictions."""
    n_wd, n_reps, n_seeds = r.diverged.shape
    usable = np.ones((n_wd, n_reps), dtype=bool)
    w, k, s = np.meshgrid(np.arange(n_wd), np.arange(n_reps), np.arange(n_seeds),
                          indexing="ij")  # fmt: skip
    test_err = np.zeros(r.diverged.shape)
    mse_truth = np.zeros(r.diverged.shape) if r.test.p_true is None else None
    n_test = len(r.test.x)
    for i in range(n_wd):  # a block of one weight decay's predictions at a time
        for b in _point_blocks(r):
            pred = _pred_block(r, i, b)
            usable[i] &= valid_training_sets(pred)
            if mse_truth is None:  # classification: cross-entropy on sampled labels
                labels = _labels(r, b).astype(np.int64)[:, None, :, None]
                p_label = np.take_along_axis(pred, labels, axis=-1)[..., 0]
                test_err[i] -= np.log(np.clip(p_label, 1e-12, 1)).sum(axis=-1)
            else:
                test_err[i] += np.square(pred - _labels(r, b)[:, None, :]).sum(axis=-1)
                mse_truth[i] += np.square(pred - r.test.f[b]).sum(axis=-1)
    test_err /= n_test
    if mse_truth is None:
        mse_truth = np.full(r.diverged.shape, np.nan)
    else:
        mse_truth /= n_test
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


def _weight_hist(r: SweepResult) -> pd.DataFrame:
    """Histograms of the weights of training set 0 (all seeds), per layer and lambda.

    Bins are shared across lambda within a layer, so the shrinkage shows.
    """
    from ..train.engine import ParamLayout, TrainSpec

    if r.params0.shape[-1] == 0:  # no parameters to show (a user's estimator)
        return pd.DataFrame()
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
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _design(r: SweepResult):
    """The shared training inputs of a fixed design (for its closed-form theory)."""
    if has_theory(r.cfg) != "fixed_design_exact":
        return None
    return draw_training_sets(r.cfg, r.test, [0]).x[0]


#: The tasks a run can have; ``run.json`` records which (``task``).
TASKS = ("regression", "classification")


def task_of(summary: pd.DataFrame, meta: dict | None = None) -> str:
    """The task of a run: as its ``run.json`` records it, or, for a run written before
    bvsim recorded it, from its summary (a classification summary names its
    ``loss``, ``cross_entropy``). The one place figures and report learn the task."""
    if meta and meta.get("task") in TASKS:
        return meta["task"]
    if "loss" in summary and bool((summary["loss"] == "cross_entropy").any()):
        return "classification"
    return "regression"


def summarize(r: SweepResult) -> Tables:
    """Apply the estimators to a sweep and lay the results out as tidy tables."""
    members, usable = _members(r)
    summary, pointwise = _summary_rows(r, usable)
    anova, anova_pointwise = anova_tables(r, usable)
    meta = {
        "name": r.cfg.name,
        "seed": r.cfg.seed,
        "config_key": config_key(r.cfg),
        "task": "classification" if is_classification(r.cfg) else "regression",
        "bvsim": __version__,
        "prob_best_resamples": compare.N_BOOTSTRAP,
        "prob_best_seed": f"SeedSequence({r.cfg.seed}, spawn_key=({BOOTSTRAP_STREAM},))",
        **r.info,
    }
    return Tables(
        summary=summary,
        pointwise=pointwise,
        curves=_curves(r, usable),
        members=members,
        weight_hist=_weight_hist(r),
        meta=meta,
        theory=theory_table(r.cfg, r.test, _design(r)),
        anova=anova,
        anova_pointwise=anova_pointwise,
    )


def write_run(r: SweepResult, tables: Tables, out: str | Path) -> Path:
    """Write CSVs, ``predictions.npz`` and ``config.toml`` to ``out``; ``run.json``,
    the mark of a finished run, is written last by :func:`write_marker`.

    ``predictions.npz`` is streamed from the chunk files when the sweep kept them
    there, so writing it never holds all predictions in memory.
    """
    out = write_tables(r.cfg, tables, out)
    write_npz(
        out / "predictions.npz",
        {
            "weight_decay": r.weight_decay,
            "pred": r.pred,
            "x_test": r.test.x,
            "f_test": r.test.f,
            "y_test": r.y_test,
            "train_error": r.train_error,
            "diverged": r.diverged,
            "log_steps": r.log_steps,
            "curve_train": r.curve_train,
            "curve_test": r.curve_test,
        },
    )
    return out


def _table_record(df: pd.DataFrame) -> dict:
    """What ``run.json`` notes of a CSV, to recognise a truncated or damaged one."""
    return {
        "rows": len(df),
        "columns": [str(c) for c in df.columns],
        "numeric": [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c])],
        "cells": int(df.notna().to_numpy().sum()),
    }


def _read_csv(path: Path, record: dict | None) -> pd.DataFrame:
    """One CSV of a run, checked against its ``run.json`` record when there is one."""
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise RunDirError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    if record is None:
        return df
    got = _table_record(df)
    if got["columns"] != record["columns"]:
        raise RunDirError(f"{path}: columns differ from those written (damaged or edited)")
    if got["rows"] != record["rows"]:
        raise RunDirError(
            f"{path}: {got['rows']} rows where {record['rows']} were written (truncated?)"
        )
    text = [c for c in record["numeric"] if c not in got["numeric"]]
    if text:
        raise RunDirError(f"{path}: column {text[0]!r} is not numeric (damaged)")
    if got["cells"] != record["cells"]:
        raise RunDirError(f"{path}: values missing from what was written (truncated?)")
    return df


def read_tables(run_dir: str | Path) -> Tables:
    """Read the tables of a finished run (for plotting and reporting).

    Raises FileNotFoundError when a CSV or ``run.json`` (written last) is missing, and
    :class:`bvsim.run.store.RunDirError` when a CSV is unreadable or differs from what
    ``run.json`` records of it (rows, columns, numeric columns, missing values).
    """
    run_dir = Path(run_dir)
    missing = [f"{n}.csv" for n in FILES if not (run_dir / f"{n}.csv").exists()]
    if not (run_dir / "run.json").exists():
        missing.append("run.json")
    if missing:
        raise FileNotFoundError(f"{run_dir}: not a finished run (missing {', '.join(missing)})")
    try:
        meta = json.loads((run_dir / "run.json").read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise RunDirError(f"{run_dir / 'run.json'}: not readable JSON ({err})") from None
    records = meta.get("tables", {}) if isinstance(meta, dict) else {}
    frames = {name: _read_csv(run_dir / f"{name}.csv", records.get(name)) for name in FILES}
    theory_file = run_dir / f"{THEORY}.csv"
    theory = _read_csv(theory_file, records.get(THEORY)) if theory_file.exists() else None
    optional = {
        name: _read_csv(run_dir / f"{name}.csv", records.get(name))
        for name in (*ANOVA, STEPS)
        if (run_dir / f"{name}.csv").exists()
    }
    return Tables(**frames, meta=meta, theory=theory, **optional)


def load_fits(run_dir: str | Path, weight_decays, max_members: int = 40) -> pd.DataFrame:
    """Member predictions at chosen weight decays, long: for the fitted-curve fans.

    Returns
    -------
    DataFrame with columns weight_decay, rep, seed, x, prediction (first ``max_members``
    training sets, seed 0 and up, diverged members left out).
    """
    path = Path(run_dir) / "predictions.npz"
    with np.load(path) as z:
        wd, x = z["weight_decay"], z["x_test"][:, 0]
    frames = []
    for value in weight_decays:
        i = int(np.argmin(np.abs(wd - value)))
        p = read_slice(path, "pred", i)[:max_members]  # (K, S, J): one weight decay
        k, s, j = np.meshgrid(*map(np.arange, p.shape), indexing="ij")
        df = pd.DataFrame(
            {
                "weight_decay": float(wd[i]),
                "rep": k.ravel(),
                "seed": s.ravel(),
                "x": x[j.ravel()],
                "prediction": p.ravel(),
            }
        )
        frames.append(df.dropna())
    return pd.concat(frames, ignore_index=True)


def combine_axis(cfg, parts) -> Tables:
    """Stack the tables of a second-axis sweep; the axis value becomes the first column.

    Parameters
    ----------
    cfg : Config
        The configuration with ``sweep.axis`` set.
    parts : list of (float, Tables)
        The tables of each axis value, in order.
    """
    axis = cfg.sweep.axis
    frames = {}
    for name in _all_frames(parts[0][1]):
        pieces = []
        for value, t in parts:
            df = getattr(t, name)
            if df is None or df.empty:
                continue
            df = df.copy()
            df.insert(0, axis, value)
            pieces.append(df)
        frames[name] = pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()
    metas = [t.meta for _, t in parts]
    meta = {
        "name": cfg.name,
        "seed": cfg.seed,
        "config_key": config_key(cfg),
        "task": metas[0].get("task"),
        "bvsim": __version__,
        "axis": axis,
        "axis_values": axis_values(cfg),
        "train_seconds": float(sum(m.get("train_seconds", 0.0) for m in metas)),
        "n_members": int(sum(m.get("n_members", 0) for m in metas)),
        "device": metas[0].get("device"),
        "parts": [m.get("config_key") for m in metas],
    }
    return Tables(**frames, meta=meta)


def _all_frames(tables: Tables) -> list[str]:
    """Names of the DataFrame fields of ``tables`` (the CSV files), in order."""
    return [f.name for f in fields(tables) if f.name != "meta"]


def write_tables(cfg, tables: Tables, out: str | Path) -> Path:
    """Write the CSVs and ``config.toml`` of ``tables`` to ``out``, each to a temporary
    name and renamed, noting each CSV's rows and columns in ``tables.meta["tables"]``
    (for :func:`write_marker`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = {}
    for name in _all_frames(tables):
        df = getattr(tables, name)
        if name in (THEORY, STEPS, *ANOVA) and (df is None or df.empty):
            (out / f"{name}.csv").unlink(missing_ok=True)  # none, not a stale one either
        elif df is not None:
            with atomic_path(out / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False)
                records[name] = _table_record(_read_csv(tmp, None))  # as read back
    write_text_atomic(out / "config.toml", dumps_toml(cfg))
    tables.meta["tables"] = records
    return out


def write_marker(tables: Tables, out: str | Path) -> Path:
    """Write ``run.json`` (``tables.meta``), the last file of a run: its presence marks
    the run directory as finished."""
    meta = dict(tables.meta)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    path = Path(out) / "run.json"
    write_text_atomic(path, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path
