"""A weight decay's summary row from its predictions, one test-point block at a time:
the estimators of this package applied to the usable training sets, one function per
kind of decomposition (:meth:`bvsim.task.Task.fill` picks it).

* :func:`squared_fill`: the squared error of a nested design: bias², the variance split
  into data and initialization, the null SE of bias², the ensemble of the seeds;
* :func:`crossed_fill`: the squared error of a crossed design, every SE the multiway
  jackknife, and its ANOVA of the variance from the same pass over the predictions;
* :func:`cross_entropy_fill`: the cross-entropy, with Domingos' 0-1 and the Brier
  decompositions.

Each writes the components with their SEs into ``row`` and returns ``(err_k, point,
sets)``: each training set's measured test error (K,), the pointwise columns but
``weight_decay``, ``point`` and ``x``, and the per-set values behind the paired
comparisons across weight decays.
"""

from __future__ import annotations

import numpy as np

from . import compare
from .anova import anova_summary, crossed_estimates
from .classification import EPS, decompose_brier, decompose_cross_entropy
from .crossed import POINT_KEYS, cell_mean, crossed_summary, split_se
from .squared import combine_point_blocks, decompose, jackknife_se
from .zero_one import decompose_zero_one

__all__ = ["GRAM_MAX_SETS", "cross_entropy_fill", "crossed_fill", "label_loss", "squared_fill"]

#: bias2_se0 estimates the between-set covariance from at most this many training sets
#: (a K×K Gram matrix, summed over blocks of test points; any subset is unbiased).
GRAM_MAX_SETS = 1024


def label_loss(pred: np.ndarray, labels: np.ndarray, squared: bool) -> np.ndarray:
    """Each member's loss on the noisy test labels, per test point: ``pred`` (K, S,
    J[, C]), ``labels`` (K, J) -> (K, S, J). The squared error of the prediction, or
    the negative log of the probability given to the label (clipped to ``[EPS, 1]``,
    :data:`bvsim.estimate.classification.EPS`). The one formula behind the measured
    test error of ``members.csv`` (:meth:`bvsim.task.Task.member_loss`) and of the
    summary (the fills below)."""
    if squared:
        return np.square(pred - labels[:, None, :])
    p_label = np.take_along_axis(pred, labels.astype(np.int64)[:, None, :, None], axis=-1)
    return -np.log(np.clip(p_label[..., 0], EPS, 1))


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


def _ensemble(row: dict, n_seeds: int, expected, variance_init, se) -> None:
    """The expected error of the average of the ``n_seeds`` initializations trained on
    one training set: bias² + variance_data + variance_init / S + noise, that is the
    expected error less ``ensemble_gain = (1 - 1/S) variance_init`` (every variance
    term with the initialization shrinks by S). ``expected`` and ``variance_init`` are
    the replicates of the expected error and the initialization variance (a nested
    design's leave-one-set-out means, a crossed design's delete-one-level estimates)
    and ``se`` their SE (the jackknife or the multiway jackknife)."""
    shrink = 1 - 1 / n_seeds
    row["ensemble_error"] = row["expected_error"] - shrink * row["variance_init"]
    row["ensemble_error_se"] = se(expected - shrink * variance_init)
    row["ensemble_gain"] = shrink * row["variance_init"]
    row["ensemble_gain_se"] = shrink * row["variance_init_se"]


def _squared_points(f: np.ndarray, pointwise: dict, se0: np.ndarray) -> dict:
    """The pointwise columns of a squared error (``se0``: the null SE of bias²)."""
    point = {"truth": f} | {k: pointwise[k] for k in ("mean_prediction", "bias2", "bias2_se")}
    point |= {"bias2_se0": se0}
    return point | {k: pointwise[k] for k in ("variance", "variance_se")}


def crossed_fill(row: dict, blocks, f, noise: float, factors, levels, n_seeds: int) -> tuple:
    """A crossed design's squared error: the crossed ANOVA's bias² and variance
    (``variance_init``: the terms with the initialization), every SE the multiway
    jackknife over the factors (:mod:`bvsim.estimate.crossed`); no null SE of bias²
    (its Gram-matrix estimate assumes independent sets). Every training set is usable.

    ``blocks`` yields (slice, pred (K, S, J_b), labels (K, J_b)); ``factors`` and
    ``levels`` are the factors with at least 2 levels and their counts
    (:func:`bvsim.config.crossed_shape`); ``noise`` is NaN when unknown. ``sets`` holds
    replicates (concatenated delete-one-level estimates), the cells' expected errors
    (``cells``) and the ANOVA of the variance (``anova``: the overall and pointwise
    dicts of :func:`bvsim.estimate.anova.crossed_anova_blocks`), for the paired
    comparisons and ``anova.csv``.
    """
    offset = noise if np.isfinite(noise) else 0.0
    acc = {"label": 0.0, "truth": 0.0}

    def cells():
        for b, pred, labels in blocks:  # pred (K, S, J_b), every set usable
            acc["label"] = acc["label"] + label_loss(pred, labels, True).sum(axis=2)
            acc["truth"] = acc["truth"] + np.square(pred - f[b]).sum(axis=2)
            yield pred.reshape(*levels, -1), f[b]

    estimates = crossed_estimates(cells(), factors, point_keys=POINT_KEYS)
    overall, pointwise, reps = crossed_summary(*estimates, factors)
    n_points = len(f)
    row |= {k: v for k, v in overall.items() if not k.startswith("mse_truth")}
    row["expected_error"] = overall["mse_truth"] + offset
    row["expected_error_se"] = overall["mse_truth_se"]
    row["bias2_se0"] = np.nan
    member_err = acc["label"] / n_points  # (K, S)
    point = _squared_points(f, pointwise, np.full(n_points, np.nan))
    expected = reps["mse_truth"] + offset

    def ratio(num: str, den: float, num_reps, den_reps):
        with np.errstate(invalid="ignore", divide="ignore"):
            return row[num] / den, split_se(num_reps / den_reps, levels)

    for col in ("bias2", "variance"):
        row[f"{col}_share"], row[f"{col}_share_se"] = ratio(
            col, row["expected_error"], reps[col], expected
        )
    row["variance_init_share"], row["variance_init_share_se"] = ratio(
        "variance_init", row["variance"], reps["variance_init"], reps["variance"]
    )
    if n_seeds >= 2:
        _ensemble(row, n_seeds, expected, reps["variance_init"], lambda r: split_se(r, levels))
    sets = {
        "expected": expected,
        "variance": reps["variance"],
        "test_error": cell_mean(member_err, levels)[2],
        "cells": (acc["truth"] / n_points + offset).reshape(levels),
        "anova": (anova_summary(estimates[0], estimates[2], factors), estimates[1]),
    }
    return member_err.mean(axis=1), point, sets


def squared_fill(row: dict, blocks, f, noise: float, n_seeds: int) -> tuple:
    """A nested design's squared error: bias², variance (split into data and
    initialization), the null SE of bias² and, with several seeds, the ensemble.
    ``bias2_se`` (overall and per point) is the larger of the jackknife SE and
    ``bias2_se0``, the SE under a zero bias.

    ``blocks`` yields (slice, pred (K, S, J_b), labels (K, J_b)) of the usable sets;
    ``noise`` is NaN when unknown (data from a file: the labels stand in for the truth,
    bias² includes the noise and the expected error is bias² + variance). ``sets``
    holds the pseudo-values of the expected error and the variance (none below 3 sets).
    """
    noise_known = bool(np.isfinite(noise))
    parts, sq_sum, gram, se0, n_ok = [], 0.0, 0.0, [], 0
    for b, pred, labels in blocks:  # pred (K, S, J_b)
        n_ok = len(pred)
        parts.append(decompose(pred, f[b], return_loo=True))
        sq_sum = sq_sum + label_loss(pred, labels, True).sum(axis=(1, 2))
        means = pred.mean(axis=1)  # (K, J_b) set means
        dev = means - means.mean(axis=0)
        se0.append(compare.bias2_null_se_points(dev))
        gram = gram + dev[:GRAM_MAX_SETS] @ dev[:GRAM_MAX_SETS].T
    n_points = len(f)
    loo = _loo_means(parts, n_points)
    overall, pointwise = combine_point_blocks(parts)
    row |= {k: v for k, v in overall.items() if not k.startswith("mse_truth")}
    offset = noise if noise_known else 0.0
    row["expected_error"] = overall["mse_truth"] + offset
    row["expected_error_se"] = overall["mse_truth_se"]
    row["bias2_se0"] = compare.bias2_null_se(gram, n_points, n_reps=n_ok)
    # the variance of bias² is at least its zero-bias (second-order) term, which the
    # jackknife misses by chance where the first-order term vanishes
    row["bias2_se"] = float(np.fmax(row["bias2_se"], row["bias2_se0"]))
    err_k = sq_sum / (n_seeds * n_points)
    se0 = np.concatenate(se0)
    pointwise = pointwise | {"bias2_se": np.fmax(pointwise["bias2_se"], se0)}
    point = _squared_points(f, pointwise, se0)
    sets = {}
    if loo is not None:
        _shares(row, loo, "bias2", "mse_truth", offset)
        sets["expected"] = compare.pseudo_values(overall["mse_truth"], loo["mse_truth"])
        sets["expected"] += offset
        sets["variance"] = compare.pseudo_values(overall["variance"], loo["variance"])
        if n_seeds >= 2:
            expected = loo["mse_truth"] + offset
            _ensemble(
                row, n_seeds, expected, loo["variance_init"], lambda r: float(jackknife_se(r))
            )
    return err_k, point, sets


def cross_entropy_fill(row: dict, blocks, p_true, n_seeds: int, noise_known: bool) -> tuple:
    """The cross-entropy: its exact decomposition (bias = KL(p || normalized geometric
    mean) and variance, jackknife-corrected; noise = the entropy, exact) and Domingos'
    0-1 and the Brier decompositions, each with SEs.

    ``blocks`` yields (slice, proba (K, S, J_b, C), labels (K, J_b)) of the usable
    sets; ``noise_known`` is False for data from a file (the observed labels stand in
    for the truth: no noise column). ``sets`` as :func:`squared_fill`'s.
    """
    ce, zo, br, loss_sum = [], [], [], 0.0
    for b, proba, labels in blocks:  # proba (K, S, J_b, C); labels (K, J_b) sampled
        ce.append(decompose_cross_entropy(proba, p_true[b], corrected=True, return_loo=True))
        zo.append(decompose_zero_one(proba.argmax(axis=-1), p_true[b], return_loo=True))
        br.append(decompose_brier(proba, p_true[b], return_loo=True))
        loss_sum = loss_sum + label_loss(proba, labels, False).sum(axis=(1, 2))
    loo = _loo_means(ce, len(p_true))
    (ce, ce_pw), (zo, _), (br, _) = map(combine_point_blocks, (ce, zo, br))
    err_k = loss_sum / (n_seeds * len(p_true))
    for name in ("bias", "variance", "variance_data", "variance_init", "noise"):
        col = "bias2" if name == "bias" else name
        row[col], row[f"{col}_se"] = ce[name], ce.get(f"{name}_se", np.nan)
    if not noise_known:
        row["noise"] = row["noise_se"] = np.nan
    row["expected_error"], row["expected_error_se"] = ce["expected_loss"], ce["expected_loss_se"]
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
