"""Every figure bvsim draws, declared once: :data:`FIGURE_TABLE` holds, in the order
the reports show them, each figure's file name, its caption, whether it belongs to a
second-axis run, and its maker (:mod:`.figure_makers`), which draws it from a run's
tables or returns None where it does not apply. Adding a figure is adding an entry,
and its file name to :data:`bvsim.io.rundir.FIGURES` (what ``--overwrite`` clears):
the table is checked against those names when this module is imported.

:func:`bvsim.present.figures.plot_all` and :func:`~bvsim.present.figures.plot_axis`
draw the entries; the reports take their captions from here (:func:`figure_lines`).
Nothing here draws (no matplotlib is loaded) or writes a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..io.rundir import FIGURES
from . import figure_makers as makers
from .figure_makers import FigureInput

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FIGURE_TABLE",
    "FigureFile",
    "axis_figures",
    "drawn_figures",
    "figure_lines",
]


#: Whether a second-axis figure applies to a combined run: (summary, axis, anova).
Applies = Callable[[pd.DataFrame, str, pd.DataFrame | None], bool]


@dataclass(frozen=True)
class FigureFile:
    """One figure bvsim draws, as ``figures/<name>.png`` and ``.pdf``.

    Attributes
    ----------
    name : str
        The file name without suffix (one of :data:`bvsim.io.rundir.FIGURES`).
    caption : str
        Its caption in ``report.md``; ``{axis}`` stands for the second axis's name.
    make : callable
        ``make(FigureInput)``: the figure, or None where it does not apply to the run
        (its files from an earlier drawing are then removed); it raises
        :class:`.figure_makers.InputMissing` where a file it is drawn from is gone (its
        drawing is then kept).
    axis : bool
        Drawn for a second-axis run (its combined report), not for a single run.
    applies : callable, optional
        A second-axis figure's test on the combined tables alone, ``applies(summary,
        axis, anova)``: its report lists the figures that apply, drawn or not yet
        (none: always); :meth:`draw` makes only those.
    """

    name: str
    caption: str
    make: Callable[[FigureInput], Figure | None]
    axis: bool = False
    applies: Applies | None = None

    def applies_to(self, summary: pd.DataFrame, axis: str, anova=None) -> bool:
        """Whether this second-axis figure applies (:attr:`applies`)."""
        return self.applies is None or self.applies(summary, axis, anova)

    def draw(self, source: FigureInput) -> Figure | None:
        """The figure of ``source``, or None where it does not apply."""
        t = source.tables
        if self.axis and not self.applies_to(t.summary, source.axis, t.anova):
            return None
        return self.make(source)

    def alt_text(self) -> str:
        """The image's alt text in the report: the name (spaces for a second-axis one)."""
        return self.name.replace("_", " ") if self.axis else self.name


# --- the table ----------------------------------------------------------------------------

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

#: Every figure, in the order the reports show them.
FIGURE_TABLE: tuple[FigureFile, ...] = (
    FigureFile(
        "decomposition",
        make=makers.decomposition,
        caption=(
            "Bias², variance and noise versus weight decay λ, with their sum (expected error) "
            "and the test error measured directly on noisy test labels; bands are ±2 SE of each "
            "estimate on its own (marginal, not paired: two λ whose bands overlap can still "
            "differ clearly, see `diff_from_best` in `summary.csv`). Bias² is bias-corrected, so "
            "it can be negative where the true bias is near zero (far below 0 where its SE is "
            "large, as at the interpolation threshold). The best λ is the dash-dotted line; the "
            "one-SE-rule λ (the largest λ within one paired SE of the best), where it differs, "
            "the dashed purple one. λ = 0 is drawn left of the axis break (//). Bands stop at 0, "
            "as none of these quantities can be negative, except below a negative bias² "
            "estimate: its band reaches down to the estimate. Where one λ's "
            "expected error dwarfs the others' (λ = 0 at the interpolation threshold, where it "
            "diverges) the y axis is symlog, linear only near 0 (axis label); otherwise it "
            "spans the estimates, and a band far wider than them runs off it. " + _TERMS
        ),
    ),
    FigureFile(
        "fits",
        make=makers.fits,
        caption=(
            "Fitted functions of individual members (thin lines) at the smallest, best and "
            "largest λ, with the truth (dashed) and the mean prediction over training sets."
        ),
    ),
    FigureFile(
        "pointwise",
        make=makers.pointwise,
        caption=(
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
    ),
    FigureFile(
        "curves",
        make=makers.curves,
        caption=(
            "Train and test loss during optimisation, averaged over training sets, one line "
            "per λ (log scale; where −2 SE reaches 0 only the upper half of a band is drawn, "
            "as a bar). The test loss is measured on noisy labels, so its expectation cannot "
            "fall below the noise, dashed where it is known: σ² for squared error, the "
            "entropy of the true class probabilities (nats) for cross-entropy; data from a "
            "file has no known noise and no line."
        ),
    ),
    FigureFile(
        "weight_norm",
        make=makers.weight_norm,
        caption=(
            "Mean weight norm of the trained members versus λ (±2 SE, marginal): the L2 norm "
            "of the weight matrices, biases excluded (a member whose weights decayed to 0 can "
            "still predict a constant through its output bias). λ = 0 is drawn left of the "
            "axis break (//)."
        ),
    ),
    FigureFile(
        "weight_hist",
        make=makers.weight_hist,
        caption=(
            "Histograms of the weights of training set 0, per layer, at a few λ; counts on a "
            "log scale above 1."
        ),
    ),
    FigureFile(
        "variance_split",
        make=makers.variance_split,
        caption=(
            "Variance split into the part due to the training data and the part due to the "
            "initialisation seed, stacked; the line is the total variance with ±2 SE bars "
            "(marginal; a λ whose total dwarfs the others' runs off the top, its value written "
            "there). "
            "λ = 0 is drawn left of the axis break (//)."
        ),
    ),
    FigureFile(
        "anova",
        make=makers.anova,
        caption=(
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
    ),
    FigureFile(
        "steps",
        make=makers.steps,
        caption=(
            "Bias², variance and expected error against the optimizer step (`steps.csv`, "
            "`train.decompose_steps`), one line per λ, bands ±2 SE (marginal). Bias² is "
            "bias-corrected, on a linear axis (it can dip below zero); the step axis is symlog "
            "when the steps span 30× or more. The star is the best "
            "step at the smallest λ (early stopping), the diamond the best λ at the last step "
            "(weight decay); their difference is paired over training sets (title)."
        ),
    ),
    FigureFile(
        "steps_heatmap",
        make=makers.steps_heatmap,
        caption=(
            "Expected error over (optimizer step × λ); the red box is the best cell, an argmin "
            "of noisy estimates (optimistic)."
        ),
    ),
    FigureFile(
        "axis_decomposition",
        make=makers.axis_decomposition,
        caption=(
            "Bias², variance, noise and their sum against λ, one panel per {axis}; bands ±2 SE "
            "(marginal), stopping at 0 except below a negative bias² estimate, down to which "
            "its band reaches (data from a file: no noise line, bias² includes it). Bias² is "
            "bias-corrected and can be negative; λ = 0 is drawn left of //. "
            "A panel where one λ dwarfs the others (the interpolation threshold) has its own "
            "symlog y axis, linear only near 0."
        ),
        axis=True,
    ),
    FigureFile(
        "axis_heatmap",
        make=makers.axis_heatmap,
        caption="Expected error over {axis} × λ; the best λ of each row is boxed in red.",
        axis=True,
    ),
    FigureFile(
        "axis_best",
        make=makers.axis_best,
        caption=(
            "Left: the best λ of the grid for each {axis}. Right: the expected error at that λ "
            "and at the smallest λ, ±2 SE (marginal; the paired reduction is in the table); on "
            "a log axis, where −2 SE reaches 0 (a heavy tail, e.g. λ = 0 at the interpolation "
            "threshold) only the upper half is drawn, as a bar."
        ),
        axis=True,
    ),
    FigureFile(
        "axis_curves",
        make=makers.axis_curves,
        caption=(
            "Bias², variance and expected error against {axis}, one panel per λ (up to "
            "four spread over the grid), ±2 SE (marginal); dotted: the closed-form ridge "
            "values of `theory.csv` where they exist. On a log error axis a negative "
            "bias² estimate is not drawn, and where −2 SE reaches 0 only the upper half of the "
            "band is drawn, as a bar."
        ),
        axis=True,
        applies=makers.numeric_axis,
    ),
    FigureFile(
        "axis_anova",
        make=makers.axis_anova,
        caption=(
            "Crossed design: the variance terms of `anova.csv` (main effects and interactions) "
            "and the total variance against {axis}, one column per λ, ±2 SE (multiway "
            "jackknife); below, each term's share of the variance. Dotted: the closed form "
            "(`theory` column) where it exists. Each value's table of terms is in its own "
            "report (`axis/`), whose summary takes its bias², variance and SEs from the same "
            "estimators."
        ),
        axis=True,
        applies=makers.has_axis_anova,
    ),
)


def _check_names() -> None:
    """The table and :data:`bvsim.io.rundir.FIGURES` (the file names ``--overwrite``
    removes, in io/, which may not import this module) name the same figures, each
    once; an ImportError names those that differ."""
    names = [f.name for f in FIGURE_TABLE]
    if sorted(names) != sorted(FIGURES):
        twice = {n for n in (*names, *FIGURES) if names.count(n) > 1 or FIGURES.count(n) > 1}
        raise ImportError(
            "bvsim.present.figure_table.FIGURE_TABLE and bvsim.io.rundir.FIGURES differ: "
            f"{sorted(set(names) ^ set(FIGURES) | twice)}"
        )


_check_names()


def drawn_figures(fig_dir) -> list[str]:
    """The figures of a run (not of a second axis) drawn in ``fig_dir``, in table order."""
    return [f.name for f in FIGURE_TABLE if not f.axis and (fig_dir / f"{f.name}.png").exists()]


def axis_figures(summary: pd.DataFrame, axis: str, anova: pd.DataFrame | None = None) -> list[str]:
    """The figures :func:`bvsim.present.figures.plot_axis` draws for a second axis, in
    table order: ``axis_curves`` only for a numeric axis, ``axis_anova`` only for a
    crossed design's ANOVA with estimates against a numeric axis, the others always."""
    return [f.name for f in FIGURE_TABLE if f.axis and f.applies_to(summary, axis, anova)]


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
