"""Where the variance comes from: the training data against the initialisation
(``variance_split``, a nested design with several seeds) and the crossed design's
random-effects ANOVA terms (``anova``).

Like every figure function, these take tidy DataFrames and compute nothing beyond
selecting and reshaping rows; :func:`variance_split_figure` and :func:`anova_figure`
say whether a run has the figure at all.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from .common import lambda_label, term_name
from .style import LambdaAxis, band, dwarfed, legend_below, styled, term_color

__all__ = ["anova_figure", "fig_anova", "fig_variance_split", "variance_split_figure"]


def _total_variance(ax, axis: LambdaAxis, wd, variance, se) -> None:
    """The total variance over a stack of its parts, on the λ axis, its ±2 SE as error
    bars (a translucent band over the stack would shade its areas into false extra
    categories); the lower bar stops at 0, where a variance does.

    When one λ's total dwarfs the others' (λ = 0 at the interpolation threshold) the
    axis is scaled to the others and that λ runs off its top, its value written there
    (a log axis would distort the areas the stack compares; its shares are on the
    right or in the report)."""
    wd = np.asarray(wd, float)
    x = axis.pos(wd)
    y, se = np.asarray(variance, float), np.asarray(se, float)
    lower = np.maximum(y - 2 * se, np.minimum(y, 0.0))
    ax.errorbar(x, y, yerr=[y - lower, 2 * se], color="0.15", marker="o", markersize=4,
                linewidth=1.4, elinewidth=1.1, capsize=3, zorder=4,
                label="total variance, ±2 SE bars")  # fmt: skip
    ax.axhline(0, color="0.3", linewidth=0.8)
    axis.apply(ax)
    ax.set_ylabel("variance (mean over test points)")
    if not dwarfed(y):
        return
    top = int(np.nanargmax(y))
    high = float(np.nanmax(np.delete(y + 2 * np.nan_to_num(se), top)))
    low = min(0.0, float(np.nanmin(np.delete(lower, top))))
    ax.set_ylim(low - 0.05 * (high - low), 1.25 * high)
    trans = blended_transform_factory(ax.transData, ax.transAxes)

    def short(v: float) -> str:
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"

    ax.text(x[top], 0.98, f" ↑ λ = {lambda_label(wd[top])}: {short(y[top])} ± "
            f"{short(2 * se[top])} (2 SE),\n off scale", transform=trans, ha="left", va="top",
            fontsize=9, color="0.15", zorder=6,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})  # fmt: skip


@styled
def fig_variance_split(summary: pd.DataFrame) -> Figure:
    """Variance split into the data part and the initialisation part, stacked vs λ.

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv`` with ``variance_data`` and ``variance_init`` (n_seeds ≥ 2).
    """
    s = summary.sort_values("weight_decay")
    axis = LambdaAxis(s["weight_decay"])
    x = axis.pos(s["weight_decay"])
    data, init = s["variance_data"].to_numpy(float), s["variance_init"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.fill_between(x, 0, data, color=term_color("data"), alpha=0.45, linewidth=0,
                    label="variance from the training data")  # fmt: skip
    ax.fill_between(x, data, data + init, color=term_color("init"), alpha=0.45, linewidth=0,
                    label="variance from the initialisation seed")  # fmt: skip
    _total_variance(ax, axis, s["weight_decay"], s["variance"], s["variance_se"])
    ax.set_title("Where the variance comes from: data vs initialisation")
    legend_below(fig, ax, ncol=2)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


@styled
def fig_anova(anova: pd.DataFrame) -> Figure:
    """The crossed design's variance terms stacked against λ, and their shares.

    Parameters
    ----------
    anova : DataFrame
        ``anova.csv``: rows per λ and term (main effects, interactions, ``variance``).
    """
    a = anova.dropna(subset=["value"])
    terms = [t for t in dict.fromkeys(a.loc[a["share"].notna(), "term"])]
    wd = np.sort(a["weight_decay"].unique())
    axis = LambdaAxis(wd)
    x = axis.pos(wd)
    table = a.pivot(index="weight_decay", columns="term", values="value").reindex(wd)
    se = a.pivot(index="weight_decay", columns="term", values="se").reindex(wd)
    share = a.pivot(index="weight_decay", columns="term", values="share").reindex(wd)
    share_se = a.pivot(index="weight_decay", columns="term", values="share_se").reindex(wd)
    colors = [term_color(term, i) for i, term in enumerate(terms)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    base = np.zeros(len(wd))
    for color, term in zip(colors, terms, strict=True):
        top = base + np.clip(table[term].to_numpy(float), 0, None)
        left.fill_between(x, base, top, color=color, alpha=0.5, linewidth=0,
                          label=term_name(term))  # fmt: skip
        base = top
    _total_variance(left, axis, wd, table["variance"], se["variance"])
    left.set_title("Variance by source (stacked; negative estimates drawn as 0)")
    for color, term in zip(colors, terms, strict=True):
        band(right, x, share[term], share_se[term], color, marker="o", markersize=3,
              linewidth=1.2)  # fmt: skip
    right.axhline(0, color="0.3", linewidth=0.8)
    axis.apply(right)
    right.set_ylabel("share of the variance (±2 SE)")
    right.set_title("Share of each source")
    legend_below(fig, left, ncol=min(len(terms) + 1, 4))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def variance_split_figure(summary: pd.DataFrame) -> Figure | None:
    """:func:`fig_variance_split` for a run with an initialisation variance (n_seeds ≥ 2);
    None otherwise."""
    return fig_variance_split(summary) if summary["variance_init"].notna().any() else None


def anova_figure(anova: pd.DataFrame | None) -> Figure | None:
    """:func:`fig_anova` for a crossed run with ANOVA estimates; None otherwise."""
    if anova is None or anova.empty or not anova["value"].notna().any():
        return None
    return fig_anova(anova)
