"""What the figures and the report share: which rows have estimates, the best λ, how a
λ and a number are written, what a run's errors are called, which λ a figure picks,
and the table of figures with their captions.

Nothing here draws or writes a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..io.rundir import AXIS_FIGURES, FIGURES
from ..task import CLASSIFICATION, task_of_run

__all__ = [
    "FIGURE_TABLE",
    "FigureFile",
    "VALID_STATUSES",
    "axis_figures",
    "best_position",
    "best_row",
    "crossed_factors_of",
    "crossed_se_text",
    "drawn_figures",
    "error_label",
    "figure_lines",
    "get",
    "is_classification",
    "key_lambdas",
    "lambda_label",
    "lambda_text",
    "noise_in_bias",
    "num",
    "panel_lambdas",
    "pct",
    "pct_pm",
    "pm",
    "share_of",
    "t_interval_text",
    "term_name",
    "training_phrase",
    "valid_rows",
    "z_score",
]

#: Statuses of a λ whose estimates exist (``summary.csv``'s ``status``).
VALID_STATUSES = ("ok", "some_diverged")


# --- rows -------------------------------------------------------------------------------


def valid_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The λ with estimates (status ok or some_diverged and a finite expected error),
    sorted by λ and numbered 0, 1, ... (an empty summary is returned as it is)."""
    if summary.empty:
        return summary
    ok = summary["expected_error"].notna()
    if "status" in summary:
        ok &= summary["status"].isin(VALID_STATUSES)
    return summary[ok].sort_values("weight_decay").reset_index(drop=True)


def best_position(valid: pd.DataFrame) -> int:
    """Position of the best λ (least expected error; the smaller λ on a tie) among
    :func:`valid_rows`."""
    return int(np.argmin(valid["expected_error"].to_numpy()))


def best_row(valid: pd.DataFrame) -> pd.Series:
    """The row of the best λ among :func:`valid_rows` (see :func:`best_position`)."""
    return valid.iloc[best_position(valid)]


# --- task -------------------------------------------------------------------------------


def noise_in_bias(summary: pd.DataFrame) -> bool:
    """Data from a file: the test labels stand in for the truth, so bias² includes the
    noise (``bias2_includes_noise``) and the noise is unknown."""
    return "bias2_includes_noise" in summary and bool(
        summary["bias2_includes_noise"].astype(bool).any()
    )


def is_classification(summary: pd.DataFrame, meta: dict | None = None) -> bool:
    """A cross-entropy run (:func:`bvsim.task.task_of_run`: its ``run.json``, else its
    summary); otherwise squared error."""
    return task_of_run(summary, meta) is CLASSIFICATION


def error_label(summary: pd.DataFrame) -> str:
    """What the errors of a run are, for axis labels (the task's ``error_label``)."""
    return task_of_run(summary).error_label


# --- text -------------------------------------------------------------------------------


def lambda_label(value: float) -> str:
    """A weight decay in a figure, short: ``0``, ``1e-4``, ``0.003``, ``1``."""
    if value == 0:
        return "0"
    if value < 1e-3:
        return f"{value:.0e}".replace("e-0", "e-")
    return f"{value:g}"


def lambda_text(value: float) -> str:
    """A weight decay in the report, as ``%g`` (``0``, ``0.0001``, ``1``): the form the
    grid is written in a configuration."""
    return "0" if value == 0 else f"{value:g}"


def num(value: float, sig: int = 4) -> str:
    """A number to ``sig`` significant digits; NaN as an em dash."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{sig}g}"


def pm(value: float, se: float) -> str:
    """``value ± se`` (value to 4, SE to 2 significant digits)."""
    if value is None or not np.isfinite(value):
        return "—"
    if se is None or not np.isfinite(se):
        return num(value)
    return f"{num(value)} ± {num(se, 2)}"


def pct(value: float) -> str:
    """A fraction as a percentage to one decimal; NaN as an em dash."""
    return "—" if not np.isfinite(value) else f"{100 * value:.1f} %"


def pct_pm(value: float, se: float) -> str:
    """``value ± se`` as percentages, to the decimals that show the SE to two significant
    digits (at least one decimal): ``43.0 % ± 3.1 %``, ``99.984 % ± 0.025 %``; without a
    finite SE, :func:`pct` alone."""
    if se is None or not np.isfinite(se) or not np.isfinite(value):
        return pct(value)
    digits = 1 if se <= 0 else min(6, max(1, 1 - math.floor(math.log10(100 * se))))
    return f"{100 * value:.{digits}f} % ± {100 * se:.{digits}f} %"


def get(row, name: str) -> float:
    """``row[name]`` as a float; NaN when the column is missing (an older run)."""
    value = row.get(name, math.nan) if hasattr(row, "get") else getattr(row, name, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def share_of(row, part: str) -> float:
    """``part``'s share of the expected error at ``row`` (``<part>_share``; for a run
    written before that column, the plain ratio)."""
    share = get(row, f"{part}_share")
    return share if np.isfinite(share) else row[part] / row["expected_error"]


def z_score(value: float, se: float) -> float:
    """``value / se``; NaN without a positive SE."""
    return value / se if np.isfinite(se) and se > 0 else math.nan


#: Short names of the crossed design's factors (:func:`bvsim.config.crossed_factors`).
_FACTOR_NAMES = {"inputs": "x", "sample": "rows", "label_noise": "ε", "init": "init"}


def crossed_factors_of(meta: dict | None) -> list[str]:
    """A crossed run's factors with at least 2 levels, as ``run.json`` records them
    (``crossed_factors``); empty for a nested run."""
    return list((meta or {}).get("crossed_factors") or [])


def training_phrase(meta: dict) -> str:
    """How long training took, saying so when chunks came from an earlier run."""
    if "train_seconds" not in meta:
        return ""
    resumed, chunks = meta.get("n_chunks_resumed", 0), meta.get("n_chunks", 0)
    if chunks and resumed == chunks:
        return (
            "; every chunk was resumed from an earlier run's chunk files "
            f"({meta.get('chunk_seconds_total', 0):.0f} s of chunk training time)"
        )
    text = f"; training took {meta['train_seconds']:.0f} s"
    return text + (f" ({resumed} of {chunks} chunks resumed)" if resumed else "")


def t_interval_text(dof: float, crossed: bool) -> str:
    """How a two-sided 95 % interval of ``dof`` degrees of freedom was set, as the
    report words it (Satterthwaite's in a crossed design)."""
    how = "Satterthwaite's " if crossed else ""
    return (
        f"a two-sided 95 % interval: Student's t with {how}{round(float(dof), 1):g} "
        "degrees of freedom"
    )


def crossed_se_text(meta: dict | None) -> str:
    """How a crossed run's SEs are computed, for the report."""
    names = " × ".join(_FACTOR_NAMES.get(f, f) for f in crossed_factors_of(meta))
    return (
        f"the multiway jackknife over the crossed factors ({names}): the sum of each "
        "factor's delete-one-level jackknife variance (conservative on average, but "
        "itself noisy where a factor has few levels, where ±2 SE can cover less than "
        "95 %)"
    )


def term_name(term: str) -> str:
    """An ANOVA term for a label, e.g. ``inputs:init`` as ``x × init``."""
    return " × ".join(_FACTOR_NAMES.get(f, f) for f in term.split(":"))


# --- the figures ------------------------------------------------------------------------

#: What the decomposition's terms are in a run without a known noise or with another
#: loss (the figures' legends and titles say which applies).
_TERMS = (
    "Data from a file: the noise is unknown, bias² includes it (legend) and no noise "
    "is drawn. Cross-entropy: the terms of its exact decomposition, in nats (bias "
    "KL(p ‖ π̄), variance mean KL(π̄ ‖ π), noise the entropy H(p) of the true class "
    "probabilities)."
)

#: The pointwise caption's pointer to ``bias2_se0``, and what a crossed run says instead.
_NULL_SE = (
    "for a squared error its band is never narrower than `bias2_se0` in `pointwise.csv`, "
    "its SE under a zero bias (the jackknife's alone shrinks with the estimate where the "
    "true bias² is near zero)"
)
_CROSSED_NULL_SE = (
    "where the true bias² is near zero its band is too narrow (a crossed design has no SE "
    "under a zero bias: `bias2_se0` is empty)"
)


_CAPTIONS = {
    "decomposition": (
        "Bias², variance and noise versus weight decay λ, with their sum (expected error) "
        "and the test error measured directly on noisy test labels; bands are ±2 SE of each "
        "estimate on its own (marginal, not paired: two λ whose bands overlap can still "
        "differ clearly, see `diff_from_best` in `summary.csv`). Bias² is bias-corrected, so "
        "it can be slightly negative where the true bias is near zero. The best λ is the "
        "dash-dotted line; the one-SE-rule λ (the largest λ within one paired SE of the "
        "best), where it differs, the dashed purple one. λ = 0 is drawn left of the axis "
        "break (//). No band reaches below 0, as none of these can. Where one λ's "
        "expected error dwarfs the others' (λ = 0 at the interpolation threshold, where it "
        "diverges) the y axis is symlog, linear only near 0 (axis label); otherwise it "
        "spans the estimates, and a band far wider than them runs off it. " + _TERMS
    ),
    "fits": (
        "Fitted functions of individual members (thin lines) at the smallest, best and "
        "largest λ, with the truth (dashed) and the mean prediction over training sets."
    ),
    "pointwise": (
        "Bias² and variance at each test input for a few λ, ±2 SE (jackknife, "
        "marginal: one estimate at a time, not differences between λ): bands along x for "
        "1-D inputs; for inputs of several dimensions dots against the first coordinate, "
        "each with its own bar (neighbours on that axis are not neighbouring test points); "
        "bias² + noise where the noise is unknown, the KL terms for cross-entropy (panel "
        "titles). Bias² is bias-corrected and may dip slightly below zero; "
        + _NULL_SE
        + ". When one λ dwarfs the others (the largest λ's bias² after a collapsed fit, "
        "λ = 0's variance at the interpolation threshold), a zoomed panel below leaves it "
        "out."
    ),
    "curves": (
        "Train and test loss during optimisation, averaged over training sets, one line "
        "per λ (log scale; where −2 SE reaches 0 only the upper half of a band is drawn, "
        "as a bar). The test loss is measured on noisy labels, so its expectation cannot "
        "fall below the noise, dashed where it is known: σ² for squared error, the "
        "entropy of the true class probabilities (nats) for cross-entropy; data from a "
        "file has no known noise and no line."
    ),
    "weight_norm": (
        "Mean weight norm of the trained members versus λ (±2 SE, marginal): the L2 norm "
        "of the weight matrices, biases excluded (a member whose weights decayed to 0 can "
        "still predict a constant through its output bias). λ = 0 is drawn left of the "
        "axis break (//)."
    ),
    "weight_hist": (
        "Histograms of the weights of training set 0, per layer, at a few λ; counts on a "
        "log scale above 1."
    ),
    "variance_split": (
        "Variance split into the part due to the training data and the part due to the "
        "initialisation seed, stacked; the line is the total variance with ±2 SE bars "
        "(marginal; a λ whose total dwarfs the others' runs off the top, its value written "
        "there). "
        "λ = 0 is drawn left of the axis break (//)."
    ),
    "anova": (
        "Crossed design: the variance split by the random-effects ANOVA into the main "
        "effects of the training inputs x, the label noise ε and the initialization, and "
        "their interactions, stacked (left; a negative estimate, possible for an unbiased "
        "component, is drawn as 0 there) with the total variance and its ±2 SE bars (a λ "
        "whose total dwarfs the others' runs off the top, its value written there); "
        "right, each "
        "term's share of the variance ±2 SE (multiway jackknife: conservative on average, "
        "noisy where a factor has few levels). "
        "λ = 0 is drawn left of the axis break (//)."
    ),
    "steps": (
        "Bias², variance and expected error against the optimizer step (`steps.csv`, "
        "`train.decompose_steps`), one line per λ, bands ±2 SE (marginal). Bias² is "
        "bias-corrected, on a linear axis (it can dip below zero); the step axis is symlog "
        "when the steps span 30× or more. The star is the best "
        "step at the smallest λ (early stopping), the diamond the best λ at the last step "
        "(weight decay); their difference is paired over training sets (title)."
    ),
    "steps_heatmap": (
        "Expected error over (optimizer step × λ); the red box is the best cell, an argmin "
        "of noisy estimates (optimistic)."
    ),
    "axis_decomposition": (
        "Bias², variance, noise and their sum against λ, one panel per {axis}; bands ±2 SE "
        "(marginal), none below 0 (data from a file: no noise line, bias² includes it). "
        "Bias² is bias-corrected and may be slightly negative; λ = 0 is drawn left of //. "
        "A panel where one λ dwarfs the others (the interpolation threshold) has its own "
        "symlog y axis, linear only near 0."
    ),
    "axis_heatmap": "Expected error over {axis} × λ; the best λ of each row is boxed in red.",
    "axis_best": (
        "Left: the best λ of the grid for each {axis}. Right: the expected error at that λ "
        "and at the smallest λ, ±2 SE (marginal; the paired reduction is in the table); on "
        "a log axis, where −2 SE reaches 0 (a heavy tail, e.g. λ = 0 at the interpolation "
        "threshold) only the upper half is drawn, as a bar."
    ),
    "axis_curves": (
        "Bias², variance and expected error against {axis}, one panel per λ (up to "
        "four spread over the grid), ±2 SE (marginal); dotted: the closed-form ridge "
        "values of `theory.csv` where they exist. On a log error axis a negative "
        "bias² estimate is not drawn, and where −2 SE reaches 0 only the upper half of the "
        "band is drawn, as a bar."
    ),
    "axis_anova": (
        "Crossed design: the variance terms of `anova.csv` (main effects and interactions) "
        "and the total variance against {axis}, one column per λ, ±2 SE (multiway "
        "jackknife); below, each term's share of the variance. Dotted: the closed form "
        "(`theory` column) where it exists. Each value's table of terms is in its own "
        "report (`axis/`), whose summary takes its bias², variance and SEs from the same "
        "estimators."
    ),
}


@dataclass(frozen=True)
class FigureFile:
    """One figure bvsim draws, as ``figures/<name>.png`` and ``.pdf``.

    Attributes
    ----------
    name : str
        The file name without suffix (:data:`bvsim.io.rundir.FIGURES`).
    caption : str
        Its caption in ``report.md``; ``{axis}`` stands for the second axis's name.
    axis : bool
        Drawn for a second-axis run (its combined report), not for a single run.
    """

    name: str
    caption: str
    axis: bool

    def alt_text(self) -> str:
        """The image's alt text in the report: the name (spaces for a second-axis one)."""
        return self.name.replace("_", " ") if self.axis else self.name


#: Every figure, in the order the reports show them (a KeyError here: a figure of
#: bvsim.io.rundir.FIGURES without a caption).
FIGURE_TABLE = tuple(FigureFile(n, _CAPTIONS[n], n in AXIS_FIGURES) for n in FIGURES)


def drawn_figures(fig_dir) -> list[str]:
    """The figures of a run (not of a second axis) drawn in ``fig_dir``, in table order."""
    return [f.name for f in FIGURE_TABLE if not f.axis and (fig_dir / f"{f.name}.png").exists()]


def has_axis_anova(anova: pd.DataFrame | None, axis: str) -> bool:
    """Whether a combined ``anova.csv`` is drawn against ``axis`` (``axis_anova``): it
    has estimates and ``axis`` is a numeric column of it."""
    if anova is None or anova.empty or axis not in anova:
        return False
    return pd.api.types.is_numeric_dtype(anova[axis]) and bool(anova["value"].notna().any())


def axis_figures(summary: pd.DataFrame, axis: str, anova: pd.DataFrame | None = None) -> list[str]:
    """The figures :func:`bvsim.present.axis_figures.plot_axis` draws for a second axis:
    ``axis_curves`` only for a numeric axis, ``axis_anova`` only for a crossed design's
    ANOVA against a numeric axis (:func:`has_axis_anova`), the others always."""
    drawn = {
        "axis_curves": pd.api.types.is_numeric_dtype(summary[axis]),
        "axis_anova": has_axis_anova(anova, axis),
    }
    return [f.name for f in FIGURE_TABLE if f.axis and drawn.get(f.name, True)]


def key_lambdas(summary: pd.DataFrame, extra: bool = False) -> list[float]:
    """Smallest, best and largest λ with estimates (plus one between smallest and best).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    extra : bool
        Also include the λ midway (by index) between the smallest and the best.
    """
    v = valid_rows(summary)
    if v.empty:
        return []
    wds = v["weight_decay"].tolist()
    best = best_row(v)["weight_decay"]
    picks = [wds[0], best, wds[-1]]
    if extra:
        picks.append(wds[wds.index(best) // 2])
    return sorted(set(picks))


def panel_lambdas(lambdas, most: int = 4) -> list[float]:
    """Up to ``most`` weight decays spread over the grid, its ends included (the panels
    of a figure with one panel per λ)."""
    lambdas = sorted(lambdas)
    if len(lambdas) <= most:
        return lambdas
    return [lambdas[int(round(i))] for i in np.linspace(0, len(lambdas) - 1, most)]


def figure_lines(names, axis: str | None = None, crossed: bool = False) -> list[str]:
    """The figures ``names`` (of a run, or with ``axis`` of a second-axis run) as report
    paragraphs in table order: the image, then its caption in italics (``crossed``: a
    crossed design's, whose bands are the multiway jackknife and have no ``bias2_se0``)."""
    lines: list[str] = []
    for fig in FIGURE_TABLE:
        if fig.name in names:
            caption = fig.caption.format(axis=axis) if fig.axis else fig.caption
            if crossed:
                caption = caption.replace("(jackknife,", "(multiway jackknife,")
                caption = caption.replace(_NULL_SE, _CROSSED_NULL_SE)
            lines += [f"![{fig.alt_text()}](figures/{fig.name}.png)", "", f"*{caption}*", ""]
    return lines
