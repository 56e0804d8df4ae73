"""The task of a run, regression or classification: what differs between the two,
decided in one place.

A :class:`Task` holds the training loss, the width of the models' output, each
training set's test loss, the decomposition of the predictions into summary and
pointwise columns (and the lists of those columns), and the words figures use for the
error. :func:`task_for` decides a configuration's task; :func:`task_of_run` reads it
back from a run directory's tables. Arrays in, arrays and dicts out: the tables that
hold the rows are laid out by :mod:`bvsim.io.summary`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config, is_classification
from .config.values import FACTOR_INIT, FACTOR_INPUTS, FACTOR_NOISE, FACTOR_ROWS
from .estimate import compare
from .estimate.classification import (
    decompose_brier,
    decompose_cross_entropy,
    per_set_cross_entropy,
)
from .estimate.crossed import crossed_decompose, level_means, split_se
from .estimate.squared import combine_point_blocks, decompose, jackknife_se, per_set_squared_error
from .estimate.zero_one import decompose_zero_one

__all__ = [
    "CLASSIFICATION",
    "ENSEMBLE_COLUMNS",
    "REGRESSION",
    "TASKS",
    "Task",
    "crossed_factors",
    "crossed_shape",
    "task_for",
    "task_named",
    "task_of_run",
]

#: bias2_se0 estimates the between-set covariance from at most this many training sets
#: (a K×K Gram matrix, summed over blocks of test points; any subset is unbiased).
GRAM_MAX_SETS = 1024

#: Summary columns of a squared-error run with ``sweep.n_seeds >= 2`` (:func:`_ensemble`).
ENSEMBLE_COLUMNS = ["ensemble_error", "ensemble_error_se", "ensemble_gain", "ensemble_gain_se"]

#: The columns every summary starts with (filled by :mod:`bvsim.io.summary`).
_HEAD = ["weight_decay", "n_reps", "n_seeds", "n_reps_used", "n_diverged"]
#: The variance split of every summary.
_VARIANCE = [
    "variance", "variance_se", "variance_data", "variance_data_se",
    "variance_init", "variance_init_se",
]  # fmt: skip
#: The measured errors and weight norms of every summary.
_MEASURED = [
    "test_error", "test_error_se", "train_error", "train_error_se",
    "weight_norm", "weight_norm_se",
]  # fmt: skip


@dataclass(frozen=True)
class Task:
    """What differs between regression and classification (:data:`REGRESSION`,
    :data:`CLASSIFICATION`; one instance each, compared with ``is``)."""

    #: As ``run.json`` records it (``task``).
    name: str
    #: The training loss of the engine (``TrainSpec.loss``).
    loss: str
    #: What the errors of a run are, for axis labels.
    error_label: str
    #: The label noise term, for figure legends.
    noise_label: str
    #: The bias is a squared bias and the noise a variance (regression): only then are
    #: the null SE of bias² (``bias2_se0``), the ensemble error, the error against the
    #: truth of each member (``mse_truth``) and a crossed design's ANOVA computed.
    #: Otherwise the bias is a KL divergence and the noise an entropy (cross-entropy).
    squared: bool
    #: The columns of ``pointwise.csv``, in order.
    pointwise_columns: tuple[str, ...]

    def n_out(self, cfg: Config) -> int:
        """Width of the models' output: one value, or one logit per class."""
        return 1 if self.squared else cfg.data.n_classes

    def per_set_loss(self, pred: np.ndarray, test) -> np.ndarray:
        """Each training set's expected test loss against the truth: ``pred`` (..., K,
        S, J[, C]) -> (..., K), the squared error against ``test.f`` or the
        cross-entropy against ``test.p_true`` (``test``: a
        :class:`bvsim.data.generator.TestSet`)."""
        if self.squared:
            return per_set_squared_error(pred, test.f)
        return per_set_cross_entropy(pred, test.p_true)

    def member_loss(self, pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each member's test loss on the noisy labels, summed over test points:
        ``pred`` (K, S, J_b[, C]), ``labels`` (K, J_b) -> (K, S)."""
        if self.squared:
            return np.square(pred - labels[:, None, :]).sum(axis=-1)
        p_label = np.take_along_axis(pred, labels.astype(np.int64)[:, None, :, None], axis=-1)
        return -np.log(np.clip(p_label[..., 0], 1e-12, 1)).sum(axis=-1)

    def crossed(self, cfg: Config) -> bool:
        """Whether a run's estimates are the crossed design's (``sweep.design =
        "crossed"`` with a squared error: the random-effects ANOVA and the multiway
        jackknife, :mod:`bvsim.estimate.crossed`); a classification run treats the
        sets of a crossed design as the nested design's."""
        return self.squared and cfg.sweep.design == "crossed"

    def summary_head(self, noise: float) -> dict:
        """The summary columns that are the same in every row of a run."""
        return {"noise": noise} if self.squared else {"loss": self.loss}

    def summary_columns(self, cfg: Config) -> list[str]:
        """The columns of ``summary.csv`` but the paired comparisons (which
        :func:`bvsim.io.summary.paired_columns` adds before ``status``)."""
        if not self.squared:
            return _classification_columns()
        columns = [
            *_HEAD, "bias2", "bias2_se", "bias2_se0", *_VARIANCE,
            "noise", "expected_error", "expected_error_se", *_MEASURED,
            "bias2_includes_noise", "status",
        ]  # fmt: skip
        if cfg.sweep.n_seeds >= 2:  # only then: the nested runs' columns stay as they were
            at = columns.index("expected_error_se") + 1
            columns[at:at] = ENSEMBLE_COLUMNS
        if cfg.data.source == "csv":  # an estimate of the noise from repeated x, if any
            columns.insert(columns.index("bias2_includes_noise") + 1, "noise_estimate")
        return columns

    def bias2_includes_noise(self, cfg: Config, test) -> bool:
        """The labels stand in for the truth (data from a file), so the noise is
        unknown and inside the bias."""
        if self.squared:
            return not np.isfinite(test.noise_var)
        return cfg.data.source == "csv"

    def fill(self, row: dict, cfg: Config, test, blocks) -> tuple:
        """The decomposition of one weight decay's usable training sets, into ``row``.

        Parameters
        ----------
        row : dict
            The summary row; receives the components with their SEs.
        cfg : Config
        test : TestSet
            The test set (``f``, ``p_true``, ``noise_var``).
        blocks : iterable of (slice, ndarray, ndarray)
            Per block of test points: the points, the predictions of the usable sets
            (K, S, J_b[, C]) and their noisy test labels (K, J_b).

        Returns
        -------
        err_k, point, sets
            Each set's measured test error (K,); the pointwise columns but
            ``weight_decay``, ``point`` and ``x``; the per-set values behind the
            paired comparisons (``expected``, ``variance``: pseudo-values, (K,) each;
            empty below 3 sets). A crossed design's (squared error; every set usable)
            are the crossed estimators' instead (:func:`_crossed_fill`).
        """
        if self.crossed(cfg):
            return _crossed_fill(row, cfg, test, blocks)
        if self.squared:
            return _regression_fill(row, cfg, test, blocks)
        return _classification_fill(row, cfg, test, blocks)


def crossed_factors(cfg: Config) -> list[tuple[str, int]]:
    """The factors of the crossed design and their levels, in the order of the
    prediction axes (training set ``k = a * n_noise + b``, then the seed): the training
    inputs (``sample`` for data from a file: the drawn rows), the label noise and the
    initialization."""
    sw = cfg.sweep
    inputs = FACTOR_ROWS if cfg.data.source == "csv" else FACTOR_INPUTS
    return [(inputs, sw.n_inputs), (FACTOR_NOISE, sw.n_noise), (FACTOR_INIT, sw.n_seeds)]


def crossed_shape(cfg: Config) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The crossed design's factors with at least 2 levels and their level counts: the
    shape that a λ's predictions (n_reps, n_seeds, ...) take as (n_1, ..., n_F, ...)."""
    levels = [(name, n) for name, n in crossed_factors(cfg) if n >= 2]
    return tuple(name for name, _ in levels), tuple(n for _, n in levels)


def crossed_cell_mean(values: np.ndarray, cfg: Config) -> tuple[float, float, np.ndarray]:
    """The mean of per-member values (n_reps, n_seeds) of a crossed design, its
    multiway-jackknife SE and its concatenated delete-one-level replicates
    (:mod:`bvsim.estimate.crossed`)."""
    _, shape = crossed_shape(cfg)
    mean, reps = level_means(np.asarray(values).reshape(shape))
    return mean, split_se(reps, shape), reps


def _classification_columns() -> list[str]:
    zero_one = [
        f"zero_one_{n}{se}"
        for n in ("error", "noise_term", "bias", "variance_term", "variance")
        for se in ("", "_se")
    ]
    brier = [
        f"brier_{n}{se}" for n in ("error", "bias2", "variance", "noise") for se in ("", "_se")
    ]
    return [
        *_HEAD, "loss", "bias2", "bias2_se", "bias2_se0", *_VARIANCE,
        "noise", "noise_se", "expected_error", "expected_error_se", *_MEASURED,
        *zero_one, *brier, "bias2_includes_noise", "status",
    ]  # fmt: skip


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


def _crossed_fill(row: dict, cfg: Config, test, blocks) -> tuple:
    """:meth:`Task.fill` of a crossed design's squared error: the crossed ANOVA's bias²
    and variance (``variance_init``: the terms with the initialization), every SE the
    multiway jackknife over the factors (:mod:`bvsim.estimate.crossed`); no null SE of
    bias² (its Gram-matrix estimate assumes independent sets). Every training set must
    be usable. ``sets`` holds replicates (concatenated delete-one-level estimates),
    the cells' expected errors and the level counts, for the paired comparisons."""
    noise = float(test.noise_var)
    offset = noise if np.isfinite(noise) else 0.0
    factors, shape = crossed_shape(cfg)
    acc = {"label": 0.0, "truth": 0.0}

    def cells():
        for b, pred, labels in blocks:  # pred (K, S, J_b), every set usable
            acc["label"] = acc["label"] + np.square(pred - labels[:, None, :]).sum(axis=2)
            acc["truth"] = acc["truth"] + np.square(pred - test.f[b]).sum(axis=2)
            yield pred.reshape(*shape, -1), test.f[b]

    overall, pointwise, reps = crossed_decompose(cells(), factors)
    n_points = len(test.f)
    row |= {k: v for k, v in overall.items() if not k.startswith("mse_truth")}
    row["expected_error"] = overall["mse_truth"] + offset
    row["expected_error_se"] = overall["mse_truth_se"]
    row["bias2_se0"] = np.nan
    member_err = acc["label"] / n_points  # (K, S)
    point = {"truth": test.f} | {k: pointwise[k] for k in ("mean_prediction", "bias2", "bias2_se")}
    point |= {"bias2_se0": np.full(n_points, np.nan)}
    point |= {k: pointwise[k] for k in ("variance", "variance_se")}
    expected = reps["mse_truth"] + offset

    def ratio(num: str, den: float, num_reps, den_reps):
        with np.errstate(invalid="ignore", divide="ignore"):
            return row[num] / den, split_se(num_reps / den_reps, shape)

    for col in ("bias2", "variance"):
        row[f"{col}_share"], row[f"{col}_share_se"] = ratio(
            col, row["expected_error"], reps[col], expected
        )
    row["variance_init_share"], row["variance_init_share_se"] = ratio(
        "variance_init", row["variance"], reps["variance_init"], reps["variance"]
    )
    if cfg.sweep.n_seeds >= 2:
        shrink = 1 - 1 / cfg.sweep.n_seeds
        row["ensemble_error"] = row["expected_error"] - shrink * row["variance_init"]
        row["ensemble_error_se"] = split_se(expected - shrink * reps["variance_init"], shape)
        row["ensemble_gain"] = shrink * row["variance_init"]
        row["ensemble_gain_se"] = shrink * row["variance_init_se"]
    sets = {
        "expected": expected,
        "variance": reps["variance"],
        "test_error": crossed_cell_mean(member_err, cfg)[2],
        "cells": (acc["truth"] / n_points + offset).reshape(shape),
    }
    return member_err.mean(axis=1), point, sets


def _regression_fill(row: dict, cfg: Config, test, blocks) -> tuple:
    """:meth:`Task.fill` of the squared error: bias², variance (split into data and
    initialization), the null SE of bias² and, with several seeds, the ensemble."""
    noise = float(test.noise_var)
    noise_known = bool(np.isfinite(noise))
    parts, sq_sum, gram, se0, n_ok = [], 0.0, 0.0, [], 0
    for b, pred, labels in blocks:  # pred (K, S, J_b)
        n_ok = len(pred)
        parts.append(decompose(pred, test.f[b], return_loo=True))
        sq_sum = sq_sum + np.square(pred - labels[:, None, :]).sum(axis=(1, 2))
        means = pred.mean(axis=1)  # (K, J_b) set means
        dev = means - means.mean(axis=0)
        se0.append(compare.bias2_null_se_points(dev))
        gram = gram + dev[:GRAM_MAX_SETS] @ dev[:GRAM_MAX_SETS].T
    n_points = len(test.f)
    loo = _loo_means(parts, n_points)
    overall, pointwise = combine_point_blocks(parts)
    row |= {k: v for k, v in overall.items() if not k.startswith("mse_truth")}
    # with unknown noise (data from a file) the labels are the "truth": bias2
    # then includes the noise and expected_error is bias2 + variance
    row["expected_error"] = overall["mse_truth"] + (noise if noise_known else 0.0)
    row["expected_error_se"] = overall["mse_truth_se"]
    row["bias2_se0"] = compare.bias2_null_se(gram, n_points, n_reps=n_ok)
    err_k = sq_sum / (cfg.sweep.n_seeds * n_points)
    point = {"truth": test.f} | {k: pointwise[k] for k in ("mean_prediction", "bias2", "bias2_se")}
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


def _classification_fill(row: dict, cfg: Config, test, blocks) -> tuple:
    """:meth:`Task.fill` of the cross-entropy: its exact decomposition (bias =
    KL(p || normalized geometric mean) and variance, jackknife-corrected; noise = the
    entropy, exact)
    and Domingos' 0-1 and the Brier decompositions, each with SEs."""
    p_true = test.p_true
    ce, zo, br, loss_sum = [], [], [], 0.0
    for b, proba, labels in blocks:  # proba (K, S, J_b, C); labels (K, J_b) sampled
        labels = labels.astype(np.int64)
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


_POINT_HEAD = ("weight_decay", "point", "x", "truth", "mean_prediction", "bias2", "bias2_se")

#: Squared error: predictions are values, the bias a squared bias.
REGRESSION = Task(
    name="regression",
    loss="mse",
    error_label="mean squared error",
    noise_label="noise σ²",
    squared=True,
    pointwise_columns=(*_POINT_HEAD, "bias2_se0", "variance", "variance_se"),
)
#: Cross-entropy: predictions are class probabilities, the bias a KL divergence.
CLASSIFICATION = Task(
    name="classification",
    loss="cross_entropy",
    error_label="cross-entropy (nats)",
    noise_label="noise: entropy H(p)",
    squared=False,
    pointwise_columns=(*_POINT_HEAD, "variance", "variance_se"),
)
#: The tasks by name.
TASKS = {t.name: t for t in (REGRESSION, CLASSIFICATION)}


def task_for(cfg: Config) -> Task:
    """The task of a configuration: classification when its data are
    (:func:`bvsim.config.is_classification`), else regression."""
    return CLASSIFICATION if is_classification(cfg) else REGRESSION


def task_named(name: str) -> Task:
    """The task called ``name`` (as ``run.json`` records it)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"no task {name!r}: one of {', '.join(TASKS)}") from None


def task_of_run(summary, meta: dict | None = None) -> Task:
    """The task of a finished run: as its ``run.json`` records it (``meta["task"]``),
    or, for a run written before bvsim recorded it, from its summary (a DataFrame; a
    classification summary names its ``loss``, ``cross_entropy``)."""
    if meta and meta.get("task") in TASKS:
        return TASKS[meta["task"]]
    if "loss" in summary and bool((summary["loss"] == CLASSIFICATION.loss).any()):
        return CLASSIFICATION
    return REGRESSION
