"""Figures of the crossed design's ANOVA against a second axis (``figures/axis_anova``).

The terms of ``anova.csv`` (main effects and interactions of the training inputs, the
label noise and the initialization) against a numeric second-axis value, e.g.
``n_train`` through the interpolation threshold, one panel per λ: which source makes a
peak. Where ``anova.csv`` has the closed form of a term (``theory`` column, crossed
closed-form ridge: :mod:`bvsim.estimate.anova_theory`) it is drawn dotted.

:func:`bvsim.present.figures.plot_axis` draws it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .common import lambda_label, panel_lambdas, term_name
from .style import band, log_x_when_wide, styled, term_color

__all__ = ["fig_axis_anova"]


def _scale(ax, values: np.ndarray) -> None:
    """symlog y when the values span more than 30× (a threshold peak): it keeps the
    terms near 0, and slightly negative unbiased estimates, in view; linear otherwise."""
    pos = values[np.isfinite(values) & (values > 0)]
    if pos.size and pos.max() / pos.min() > 30:
        ax.set_yscale("symlog", linthresh=10 ** np.floor(np.log10(np.median(pos) / 10)))


@styled
def fig_axis_anova(anova: pd.DataFrame, axis: str) -> Figure:
    """The crossed design's variance terms against a numeric second axis.

    Top row: each term and the total variance against ``axis`` (±2 SE, multiway
    jackknife), dotted the closed form where ``anova.csv`` has a ``theory`` column;
    bottom row: each term's share of the variance (±2 SE). One column per chosen λ (up
    to four spread over the grid).

    Parameters
    ----------
    anova : DataFrame
        The combined ``anova.csv`` (the axis column first, then one row per λ and term).
    axis : str
        The numeric second-axis column, e.g. ``"n_train"``.
    """
    a = anova.dropna(subset=["value"])
    terms = list(dict.fromkeys(a.loc[a["share"].notna(), "term"]))
    picks = panel_lambdas(a["weight_decay"].unique())
    theory = "theory" in a and a["theory"].notna().any()
    fig, axes = plt.subplots(2, len(picks), figsize=(3.9 * len(picks) + 0.6, 6.8),
                             squeeze=False, sharex=True, layout="constrained")  # fmt: skip
    colors = {term: term_color(term, i) for i, term in enumerate(terms)} | {"variance": "0.15"}
    xs = a[axis].to_numpy(float)
    for col, wd in enumerate(picks):
        part = a[a["weight_decay"] == wd].sort_values(axis)
        top, bottom = axes[0, col], axes[1, col]
        for term in [*terms, "variance"]:
            t = part[part["term"] == term]
            label = "total variance" if term == "variance" else term_name(term)
            band(top, t[axis], t["value"], t["se"], colors[term], label=label, marker="o",
                  markersize=3, linewidth=1.5 if term == "variance" else 1.2,
                  floor=0.0)  # fmt: skip
            if theory:  # an infinite closed form (λ = 0 at n = p) is left out
                y = t["theory"].to_numpy(float)
                top.plot(t[axis], np.where(np.isfinite(y), y, np.nan), color=colors[term],
                         linestyle=":", linewidth=1.6)  # fmt: skip
            if term != "variance":
                band(bottom, t[axis], t["share"], t["share_se"], colors[term], marker="o",
                      markersize=3, linewidth=1.2)  # fmt: skip
                if theory:
                    v = part[part["term"] == "variance"]["theory"].to_numpy(float)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        share = t["theory"].to_numpy(float) / v
                    bottom.plot(t[axis], share, color=colors[term], linestyle=":",
                                linewidth=1.6)  # fmt: skip
        _scale(top, part[part["term"] == "variance"]["value"].to_numpy(float))
        top.axhline(0, color="0.3", linewidth=0.8)
        bottom.axhline(0, color="0.3", linewidth=0.8)
        bottom.set_ylim(-0.25, 1.25)
        top.set_title(f"λ = {lambda_label(wd)}")
        bottom.set_xlabel(axis)
        for ax in (top, bottom):
            log_x_when_wide(ax, xs)
    axes[0, 0].set_ylabel("variance (mean over test points)")
    axes[1, 0].set_ylabel("share of the variance")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if theory:
        handles.append(plt.Line2D([], [], color="0.3", linestyle=":"))
        labels.append("closed form (anova.csv theory)")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"Where the variance comes from, against {axis} (bands: ±2 SE, multiway "
                 "jackknife)")  # fmt: skip
    return fig
