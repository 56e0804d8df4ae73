"""The task of a run, regression or classification: what differs between the two,
decided in one place.

A :class:`Task` holds the training loss, the width of the models' output, each
training set's test loss, which decomposition of :mod:`bvsim.estimate.rows` fills the
summary and pointwise columns (and the lists of those columns), and the words figures
use for the error and for each term of the decomposition. :func:`task_for` decides a
configuration's task; :func:`task_of_run` reads it back from a run directory's tables.
Arrays in, arrays and dicts out: the tables that hold the rows are laid out by
:mod:`bvsim.io.summary`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MIN_SETS_CROSS_ENTROPY, Config, crossed_shape, is_classification
from .estimate.classification import per_set_cross_entropy
from .estimate.rows import cross_entropy_fill, crossed_fill, label_loss, squared_fill
from .estimate.squared import per_set_squared_error

__all__ = [
    "CLASSIFICATION",
    "ENSEMBLE_COLUMNS",
    "REGRESSION",
    "TASKS",
    "Task",
    "TermWords",
    "task_for",
    "task_of_run",
]

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
class TermWords:
    """What figures call one term of a decomposition: a curve's legend, a panel's
    title, a short name (in other labels)."""

    legend: str
    title: str = ""
    short: str = ""

    def __post_init__(self):
        for name in ("title", "short"):  # the legend where not given
            if not getattr(self, name):
                object.__setattr__(self, name, self.legend)


def _words(**terms) -> tuple[tuple[str, TermWords], ...]:
    """A task's :attr:`Task.words`: column -> legend, or (legend, title, short)."""
    return tuple(
        (column, TermWords(*(w if isinstance(w, tuple) else (w,)))) for column, w in terms.items()
    )


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
    #: What figures call the terms of the decomposition (summary columns, in no
    #: particular order), with a known noise: :class:`TermWords`.
    words: tuple[tuple[str, TermWords], ...]
    #: ... and with an unknown noise (data from a file: the noise is inside the bias,
    #: and there is no noise term).
    folded_words: tuple[tuple[str, TermWords], ...]
    #: The legend of the known noise drawn as the floor of a test loss.
    noise_floor_label: str
    #: The bias is a squared bias and the noise a variance (regression): only then are
    #: the null SE of bias² (``bias2_se0``), the ensemble error, the error against the
    #: truth of each member (``mse_truth``) and a crossed design's ANOVA computed.
    #: Otherwise the bias is a KL divergence and the noise an entropy (cross-entropy).
    squared: bool
    #: The columns of ``pointwise.csv``, in order.
    pointwise_columns: tuple[str, ...]

    def term_words(self, folded: bool = False) -> dict[str, TermWords]:
        """What figures call each term (:attr:`words`; :attr:`folded_words` where the
        noise is unknown and inside the bias)."""
        return dict(self.folded_words if folded else self.words)

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
        ``pred`` (K, S, J_b[, C]), ``labels`` (K, J_b) -> (K, S)
        (:func:`bvsim.estimate.rows.label_loss`)."""
        return label_loss(pred, labels, self.squared).sum(axis=-1)

    def crossed(self, cfg: Config) -> bool:
        """Whether a run's estimates are the crossed design's (``sweep.design =
        "crossed"`` with a squared error: the random-effects ANOVA and the multiway
        jackknife, :mod:`bvsim.estimate.crossed`); a classification run treats the
        sets of a crossed design as the nested design's."""
        return self.squared and cfg.sweep.design == "crossed"

    @property
    def min_sets(self) -> int:
        """The fewest usable training sets a λ's estimate needs: 2 for a squared error
        (a jackknife SE), 3 for the cross-entropy (its jackknife bias correction, also
        why a classification sweep needs ``sweep.n_reps >= 3``)."""
        return 2 if self.squared else MIN_SETS_CROSS_ENTROPY

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
            at = columns.index("bias2_includes_noise") + 1
            columns[at:at] = ["noise_estimate", "noise_estimate_se"]
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
            are the crossed estimators' instead, with its ANOVA of the variance
            (:func:`bvsim.estimate.rows.crossed_fill`).
        """
        n_seeds = cfg.sweep.n_seeds
        if not self.squared:
            noise_known = cfg.data.source != "csv"
            return cross_entropy_fill(row, blocks, test.p_true, n_seeds, noise_known)
        noise = float(test.noise_var)
        if self.crossed(cfg):
            factors, levels = crossed_shape(cfg)
            return crossed_fill(row, blocks, test.f, noise, factors, levels, n_seeds)
        return squared_fill(row, blocks, test.f, noise, n_seeds)


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


_POINT_HEAD = ("weight_decay", "point", "x", "truth", "mean_prediction", "bias2", "bias2_se")

#: Squared error's variance and measured error, with a known noise or not.
_SQUARED_WORDS = {
    "variance": "variance",
    "test_error": "measured test error",
}
#: Cross-entropy's variance (a KL divergence) and errors, with a known noise or not.
_KL_WORDS = {
    "variance": ("variance: mean KL(π̄ ‖ π)", "variance: mean KL(π̄ ‖ π)", "KL variance"),
    "expected_error": "expected cross-entropy (sum)",
    "test_error": "measured test cross-entropy",
}

#: Squared error: predictions are values, the bias a squared bias.
REGRESSION = Task(
    name="regression",
    loss="mse",
    error_label="mean squared error",
    words=_words(
        bias2=("bias² (corrected)", "bias² (bias-corrected; may dip below 0)", "bias²"),
        noise="noise σ²",
        expected_error="bias² + variance + noise",
        **_SQUARED_WORDS,
    ),
    folded_words=_words(
        bias2=(
            "bias² + noise (noise unknown)",
            "bias² + noise (noise unknown; bias-corrected)",
            "bias² + noise",
        ),
        expected_error="bias² + noise + variance",
        **_SQUARED_WORDS,
    ),
    noise_floor_label="noise σ² (test floor)",
    squared=True,
    pointwise_columns=(*_POINT_HEAD, "bias2_se0", "variance", "variance_se"),
)
#: Cross-entropy: predictions are class probabilities, the bias a KL divergence.
CLASSIFICATION = Task(
    name="classification",
    loss="cross_entropy",
    error_label="cross-entropy (nats)",
    words=_words(
        bias2=("bias: KL(p ‖ π̄)", "bias: KL(p ‖ π̄) (jackknife-corrected)", "KL bias"),
        noise="noise: entropy H(p)",
        **_KL_WORDS,
    ),
    folded_words=_words(
        bias2=(
            "bias + noise: KL(labels ‖ π̄) (noise unknown)",
            "bias + noise: KL(labels ‖ π̄) (noise unknown)",
            "KL bias + noise",
        ),
        **_KL_WORDS,
    ),
    noise_floor_label="noise: entropy H(p), nats (test floor)",
    squared=False,
    pointwise_columns=(*_POINT_HEAD, "variance", "variance_se"),
)
#: The tasks by name.
TASKS = {t.name: t for t in (REGRESSION, CLASSIFICATION)}


def task_for(cfg: Config) -> Task:
    """The task of a configuration: classification when its data are
    (:func:`bvsim.config.is_classification`), else regression."""
    return CLASSIFICATION if is_classification(cfg) else REGRESSION


def task_of_run(summary, meta: dict | None = None) -> Task:
    """The task of a finished run: as its ``run.json`` records it (``meta["task"]``),
    or, for a run written before bvsim recorded it, from its summary (a DataFrame; a
    classification summary names its ``loss``, ``cross_entropy``)."""
    if meta and meta.get("task") in TASKS:
        return TASKS[meta["task"]]
    if "loss" in summary and bool((summary["loss"] == CLASSIFICATION.loss).any()):
        return CLASSIFICATION
    return REGRESSION
