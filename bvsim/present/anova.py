"""Figures of the crossed design's ANOVA against a second axis (``figures/axis_anova``).

The terms of ``anova.csv`` (main effects and interactions of the training inputs, the
label noise and the initialization) against a numeric second-axis value, e.g.
``n_train`` through the interpolation threshold, one panel per λ: which source makes a
peak. Where ``anova.csv`` has the closed form of a term (``theory`` column, crossed
closed-form ridge: :mod:`bvsim.estimate.anova_theory`) it is drawn dotted.

:func:`bvsim.present.figures.plot_axis` imports this module to draw it, so this module
imports nothing from ``figures`` (no import cycle); its few drawing helpers repeat the
house style of ``figures`` (seaborn whitegrid, ±2 SE bands, λ labels).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .report import has_axis_anova  # noqa: E402

__all__ = ["fig_axis_anova", "has_axis_anova"]

#: The labels of the crossed design's factors (bvsim.io.tables.crossed_factors).
_FACTOR_LABELS = {"inputs": "x", "sample": "rows", "label_noise": "ε", "init": "init"}


def _term_label(term: str) -> str:
    return " × ".join(_FACTOR_LABELS.get(f, f) for f in term.split(":"))


def _fmt_lambda(value: float) -> str:
    """A weight decay for a label: ``0``, ``1e-04``, ``0.003``, ``1``."""
    if value == 0:
        return "0"
    return f"{value:.0e}".replace("e-0", "e-") if value < 1e-3 else f"{value:g}"


def _panel_lambdas(lambdas, most: int = 4) -> list[float]:
    """Up to ``most`` weight decays spread over the grid, its ends included."""
    lambdas = sorted(lambdas)
    if len(lambdas) <= most:
        return lambdas
    return [lambdas[int(round(i))] for i in np.linspace(0, len(lambdas) - 1, most)]


def _band(ax, x, y, se, color, **line_kw) -> None:
    """A line with markers and a ±2 SE band."""
    x, y, se = (np.asarray(v, float) for v in (x, y, se))
    ax.plot(x, y, color=color, **line_kw)
    ax.fill_between(x, y - 2 * se, y + 2 * se, color=color, alpha=0.2, linewidth=0)


def _scale(ax, values: np.ndarray) -> None:
    """symlog y when the values span more than 30× (a threshold peak): it keeps the
    terms near 0, and slightly negative unbiased estimates, in view; linear otherwise."""
    pos = values[np.isfinite(values) & (values > 0)]
    if pos.size and pos.max() / pos.min() > 30:
        ax.set_yscale("symlog", linthresh=10 ** np.floor(np.log10(np.median(pos) / 10)))


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
    rc = {"axes.titlesize": 11, "legend.title_fontsize": 10, "savefig.dpi": 150}
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.85, rc=rc):
        return _draw(anova, axis)


def _draw(anova: pd.DataFrame, axis: str) -> Figure:
    """:func:`fig_axis_anova` inside the house style."""
    a = anova.dropna(subset=["value"])
    terms = list(dict.fromkeys(a.loc[a["share"].notna(), "term"]))
    picks = _panel_lambdas(a["weight_decay"].unique())
    theory = "theory" in a and a["theory"].notna().any()
    fig, axes = plt.subplots(2, len(picks), figsize=(3.9 * len(picks) + 0.6, 6.8),
                             squeeze=False, sharex=True, layout="constrained")  # fmt: skip
    pal = sns.color_palette("colorblind", max(len(terms), 3))
    colors = dict(zip(terms, pal, strict=False)) | {"variance": "0.15"}
    xs = a[axis].to_numpy(float)
    for col, wd in enumerate(picks):
        part = a[a["weight_decay"] == wd].sort_values(axis)
        top, bottom = axes[0, col], axes[1, col]
        for term in [*terms, "variance"]:
            t = part[part["term"] == term]
            label = "total variance" if term == "variance" else _term_label(term)
            _band(top, t[axis], t["value"], t["se"], colors[term], label=label, marker="o",
                  markersize=3, linewidth=1.5 if term == "variance" else 1.2)  # fmt: skip
            if theory:  # an infinite closed form (λ = 0 at n = p) is left out
                y = t["theory"].to_numpy(float)
                top.plot(t[axis], np.where(np.isfinite(y), y, np.nan), color=colors[term],
                         linestyle=":", linewidth=1.6)  # fmt: skip
            if term != "variance":
                _band(bottom, t[axis], t["share"], t["share_se"], colors[term], marker="o",
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
        top.set_title(f"λ = {_fmt_lambda(wd)}")
        bottom.set_xlabel(axis)
        if xs.min() > 0 and xs.max() / xs.min() >= 8:
            for ax in (top, bottom):
                ax.set_xscale("log")
                ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
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
