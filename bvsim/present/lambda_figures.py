"""The figures of a λ sweep: the decomposition against λ, member fits, pointwise bias²
and variance, learning curves, weight norms and weight histograms.

Each figure is one small function that takes tidy DataFrames and returns a matplotlib
``Figure``; it computes nothing beyond selecting and reshaping rows for plotting.
The makers of :mod:`bvsim.present.figure_table` decide which of them a run gets.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from ..estimate.closed_form import KINDS as _THEORY_LABELS
from ..task import REGRESSION
from .common import error_label, lambda_label
from .style import (
    LambdaAxis,
    band,
    components,
    dwarfed,
    lambda_colors,
    legend_below,
    limit_to_estimates,
    literal_text,
    styled,
    symlog_y,
    term_names,
)

__all__ = [
    "fig_curves",
    "fig_decomposition",
    "fig_fits",
    "fig_pointwise",
    "fig_weight_hist",
    "fig_weight_norm",
]


def _run_title(meta: dict, summary: pd.DataFrame) -> str:
    name = literal_text(meta.get("name", "run"))
    k = int(summary["n_reps"].max()) if "n_reps" in summary else 0
    s = int(summary["n_seeds"].max()) if "n_seeds" in summary else 0
    return f"{name}: {k} training sets × {s} seed{'s' if s != 1 else ''}"


def _mark_diverged(ax, axis: LambdaAxis, summary: pd.DataFrame) -> None:
    """Red × on the x axis at each λ with diverged members, with the count."""
    bad = summary[summary["n_diverged"].fillna(0) > 0]
    if bad.empty:
        return
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    x = axis.pos(bad["weight_decay"])
    ax.plot(x, np.full(len(x), 0.03), "x", color="tab:red", markersize=9, mew=2,
            transform=trans, clip_on=False, zorder=6, label="λ with diverged members")  # fmt: skip
    for xi, n in zip(x, bad["n_diverged"], strict=True):
        ax.text(xi, 0.07, f"{int(n)} div.", transform=trans, ha="center", va="bottom",
                fontsize=9, color="tab:red")  # fmt: skip


def _theory_lines(ax, axis: LambdaAxis, theory: pd.DataFrame) -> None:
    """Thin black dotted lines: theoretical bias², variance and expected error, one
    legend entry per ``kind`` (a random design's exact λ = 0 value is a lone point, not
    joined to the limit at λ > 0); each line runs over the estimate of its quantity."""
    t = theory.sort_values("weight_decay")
    kinds = t["kind"].astype(str) if "kind" in t else pd.Series("", index=t.index)
    for kind in dict.fromkeys(kinds):
        part = t[kinds == kind]
        x, label = axis.pos(part["weight_decay"]), _THEORY_LABELS.get(kind, "theory")
        style = {"marker": "x", "linestyle": "none"} if len(part) == 1 else {"linestyle": ":"}
        for i, col in enumerate(("bias2_theory", "variance_theory", "expected_error_theory")):
            y = part[col].to_numpy(float)
            y = np.where(np.isfinite(y), y, np.nan)  # a divergent value: leave a gap
            ax.plot(x, y, color="black", linewidth=1.3, zorder=5,
                    label=label if i == 0 else None, **style)  # fmt: skip


@styled
def fig_decomposition(
    summary: pd.DataFrame, meta: dict | None = None, theory: pd.DataFrame | None = None
) -> Figure:
    """Bias², variance, noise, their sum and the measured test error vs λ (±2 SE).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``: one row per λ.
    meta : dict, optional
        ``run.json`` (for the run name in the title).
    theory : DataFrame, optional
        ``theory.csv``: closed-form bias², variance and expected error per λ, drawn as
        thin black dotted lines over the estimates, labelled by its ``kind``.

    Every quantity is non-negative, so no band reaches below 0 (below the estimate
    where a bias-corrected bias² is negative). When one λ's expected error dwarfs the
    others' (λ = 0 at the interpolation threshold) the y axis is symlog; otherwise it
    is narrowed to the estimates, so one wide band cannot squash the rest.
    """
    s = summary.sort_values("weight_decay")
    axis = LambdaAxis(s["weight_decay"])
    x = axis.pos(s["weight_decay"])
    palette = sns.color_palette("colorblind", 10)
    fig, ax = plt.subplots(figsize=(7.5, 5.4))
    ax.axhline(0, color="0.3", linewidth=0.8, zorder=1)
    drawn = components(s)
    for col, label, ci, marker in drawn:
        se = s[f"{col}_se"] if f"{col}_se" in s else None
        style = {"linestyle": "--", "linewidth": 1.3} if col == "noise" else {"linewidth": 1.8}
        band(ax, x, s[col], se, palette[ci], label=label, marker=marker, markersize=5,
             floor=0.0, **style)  # fmt: skip
    if theory is not None and not theory.empty:
        _theory_lines(ax, axis, theory)
    _mark_best(ax, axis, s, palette)
    _mark_diverged(ax, axis, s)
    axis.apply(ax)
    estimates = s[[col for col, *_ in drawn]].to_numpy(float).ravel()
    ylabel = f"{error_label(s)} on test points"
    if dwarfed(s["expected_error"]):
        ylabel += f"\n({symlog_y(ax, estimates)})"
    else:
        limit_to_estimates(ax, estimates)
    ax.set_ylabel(ylabel)
    ax.set_title(
        "Bias–variance decomposition vs weight decay\n"
        f"{_run_title(meta or {}, s)}  (bands: ±2 SE, marginal)"
    )
    legend_below(fig, ax, ncol=3)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def _mark_best(ax, axis: LambdaAxis, s: pd.DataFrame, palette) -> None:
    """Vertical lines at the best λ and, where it differs, the one-SE-rule λ; labelled
    in the legend (below the axes), so they never cover a curve."""
    best = s[s["is_best"].astype(bool)]
    if not best.empty:
        b = best.iloc[0]
        bx = axis.pos([b["weight_decay"]])[0]
        ax.axvline(
            bx,
            color="0.2",
            linewidth=1,
            linestyle="-.",
            zorder=1,
            label=f"best λ = {lambda_label(b['weight_decay'])}: expected error "
            f"{b['expected_error']:.3g} ± {b['expected_error_se']:.2g}",
        )
    one = s[s["is_one_se"].astype(bool) & ~s["is_best"].astype(bool)] if "is_one_se" in s else s[:0]
    if not one.empty:
        o = one.iloc[0]
        ax.axvline(
            axis.pos([o["weight_decay"]])[0],
            color=palette[4],
            linewidth=1.2,
            linestyle=(0, (6, 3)),
            zorder=1,
            label=f"one-SE rule λ = {lambda_label(o['weight_decay'])} (within one paired SE "
            "of the best)",
        )


@styled
def fig_fits(fits: pd.DataFrame, pointwise: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """Fans of member fits at a few λ, with the truth and the mean prediction.

    Parameters
    ----------
    fits : DataFrame
        From :func:`bvsim.io.tables.load_fits`: weight_decay, rep, seed, x, prediction.
    pointwise : DataFrame
        ``pointwise.csv`` (truth and mean prediction per test point).
    summary : DataFrame
        ``summary.csv`` (bias² and variance for the panel titles).
    """
    lambdas = sorted(fits["weight_decay"].unique())
    best = set(summary.loc[summary["is_best"].astype(bool), "weight_decay"])
    bias_name = term_names(summary)["bias2"][1]
    fig, axes = plt.subplots(1, len(lambdas), figsize=(3.6 * len(lambdas), 4.2),
                             sharex=True, sharey=True, squeeze=False)  # fmt: skip
    axes = axes[0]
    colors = sns.color_palette("colorblind", 10)
    for ax, wd in zip(axes, lambdas, strict=True):
        f = fits[fits["weight_decay"] == wd]
        for _, member in f.groupby(["rep", "seed"]):
            m = member.sort_values("x")
            ax.plot(m["x"], m["prediction"], color=colors[0], alpha=0.25, linewidth=0.7)
        p = pointwise[np.isclose(pointwise["weight_decay"], wd)].sort_values("x")
        ax.plot(p["x"], p["truth"], color="black", linestyle="--", linewidth=1.8, label="truth")
        ax.plot(p["x"], p["mean_prediction"], color=colors[3], linewidth=2.2,
                label="mean prediction")  # fmt: skip
        row = summary[np.isclose(summary["weight_decay"], wd)].iloc[0]
        tag = " (best)" if wd in best else ""
        n = f.groupby(["rep", "seed"]).ngroups
        ax.set_title(
            f"λ = {lambda_label(wd)}{tag}, {n} fits\n"
            f"{bias_name} {row['bias2']:.3g}, variance {row['variance']:.3g}"
        )
        ax.set_xlabel("x")
    axes[0].set_ylabel("prediction  f̂(x)")
    axes[0].plot([], [], color=colors[0], alpha=0.6, linewidth=0.9, label="member fits")
    legend_below(fig, axes[0], ncol=3)
    fig.suptitle("Fitted functions of individual members", fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


#: A λ whose largest |value| over the test points is more than this many times every
#: other λ's gets a zoomed panel without it.
_ZOOM_RATIO = 5


def _dwarfing(rows: dict, col: str) -> float | None:
    """The λ whose ``col`` dwarfs every other λ's (largest |value| over the points more
    than :data:`_ZOOM_RATIO` times theirs), e.g. a collapsed fit's bias² at the largest
    λ or the variance at λ = 0 at the interpolation threshold; None if none does."""
    if len(rows) < 2:
        return None
    peak = {wd: float(np.nanmax(np.abs(r[col]), initial=0.0)) for wd, r in rows.items()}
    top = max(peak, key=peak.get)
    others = max(v for wd, v in peak.items() if wd != top)
    return top if peak[top] > _ZOOM_RATIO * max(others, 1e-12) else None


def _per_point_bars(ax, x, y, se, color, offset: float, label: str) -> None:
    """Dots with ±2 SE bars at each test point (lower bar stopping at 0), nudged
    sideways by ``offset`` so that the λ at one point do not hide one another."""
    x, y, se = (np.asarray(v, float) for v in (x, y, se))
    lower = np.maximum(y - 2 * se, np.minimum(y, 0.0))
    ax.errorbar(x + offset, y, yerr=[y - lower, 2 * se], fmt="o", color=color, markersize=2.5,
                elinewidth=0.6, alpha=0.7, capsize=0, label=label)  # fmt: skip


@styled
def fig_pointwise(
    pointwise: pd.DataFrame,
    lambdas: Sequence[float] | None = None,
    one_d: bool = True,
    colors: dict | None = None,
    summary: pd.DataFrame | None = None,
) -> Figure:
    """Bias²(x) and variance(x) ±2 SE, one line per selected λ (1-D inputs) or dots
    with error bars against the first coordinate (several dimensions: a band along it
    would join test points that are not neighbours).

    When one λ dwarfs the others in a column (a collapsed fit's bias² at the largest λ,
    the variance at λ = 0 at the interpolation threshold), a panel below zooms in on the
    other λ, so that their values (small, possibly negative) show.

    Parameters
    ----------
    pointwise : DataFrame
        ``pointwise.csv``.
    lambdas : sequence of float, optional
        The λ to draw (default: all).
    one_d : bool
        Inputs are 1-D: draw lines with bands. Otherwise dots with per-point ±2 SE bars
        against the first coordinate.
    colors : dict, optional
        λ → colour for the run (:func:`.style.lambda_colors` of its whole grid); default:
        of every λ in ``pointwise``.
    summary : DataFrame, optional
        ``summary.csv``, for what the terms are (:func:`.style.term_names`: bias² + noise
        when the noise is unknown, KL terms for cross-entropy); default: squared error
        with a known noise.
    """
    lambdas = sorted(pointwise["weight_decay"].unique() if lambdas is None else lambdas)
    colors = colors or lambda_colors(pointwise["weight_decay"])
    rows = {wd: pointwise[np.isclose(pointwise["weight_decay"], wd)].sort_values("x")
            for wd in lambdas}  # fmt: skip
    names = term_names(summary if summary is not None else pd.DataFrame())
    columns = [(col, _dwarfing(rows, col)) for col in ("bias2", "variance")]
    zoom = any(top is not None for _, top in columns)
    nrow = 2 if zoom else 1
    fig, grid = plt.subplots(nrow, 2, figsize=(9.5, 7.6 if zoom else 4.4), sharex=True,
                             squeeze=False)  # fmt: skip
    span = float(np.ptp(pointwise["x"])) if len(pointwise) else 0.0
    dodge = {wd: (i - (len(lambdas) - 1) / 2) * 0.006 * span for i, wd in enumerate(lambdas)}
    spare = []
    for c, (col, top) in enumerate(columns):
        title, short = names[col]
        panels = [(grid[0, c], lambdas, title)]
        if top is not None:
            panels.append((grid[1, c], [wd for wd in lambdas if wd != top],
                           f"{short}, zoomed: λ = {lambda_label(top)} left out"))  # fmt: skip
        elif zoom:
            spare.append(grid[1, c])
        for ax, wds, panel_title in panels:
            ax.axhline(0, color="0.3", linewidth=0.8)
            for wd in wds:
                p, label = rows[wd], f"λ = {lambda_label(wd)}"
                if one_d:
                    band(ax, p["x"], p[col], p[f"{col}_se"], colors[wd], alpha=0.15,
                         floor=0.0, label=label, linewidth=1.6)  # fmt: skip
                else:
                    _per_point_bars(ax, p["x"], p[col], p[f"{col}_se"], colors[wd],
                                    dodge[wd], label)  # fmt: skip
            ax.set_title(panel_title)
            ax.set_xlabel("test input x" if one_d else "test input x (first coordinate)")
            ax.set_ylabel(f"{short} at x")
            ax.xaxis.set_tick_params(labelbottom=True)
    what = "bands" if one_d else "bars"
    bias, variance = names["bias2"][1], names["variance"][1]
    fig.suptitle(f"Pointwise {bias} and {variance} across the test inputs ({what}: ±2 SE)",
                 fontsize=12)  # fmt: skip
    handles, labels = grid[0, 0].get_legend_handles_labels()
    if spare:
        spare[0].set_axis_off()
        spare[0].legend(handles, labels, loc="center", frameon=False, title="weight decay")
        fig.tight_layout()
    else:
        fig.legend(handles, labels, loc="lower center", ncol=len(lambdas), frameon=False)
        fig.tight_layout(rect=(0, 0.07 if nrow == 1 else 0.04, 1, 1))
    return fig


def _plain_log_label(value: float, _pos=None) -> str:
    """Plain-number label for log-axis ticks at 1, 2, 3 and 5 times a power of ten."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if np.isclose(mantissa, [1, 2, 3, 5]).any() else ""


@styled
def fig_curves(
    curves: pd.DataFrame,
    noise: float | None = None,
    error: str = REGRESSION.error_label,
    colors: dict | None = None,
    noise_label: str = REGRESSION.noise_floor_label,
) -> Figure:
    """Mean train and test loss vs optimisation step, one line per λ (log y).

    Parameters
    ----------
    curves : DataFrame
        ``curves.csv``.
    noise : float, optional
        The known noise (σ², or the entropy H(p) for cross-entropy), drawn as the floor
        of the test loss; None when it is unknown (data from a file).
    error : str
        What the loss is, for the y label.
    colors : dict, optional
        λ → colour for the run (:func:`.style.lambda_colors` of its whole grid); default:
        of the λ in ``curves``.
    noise_label : str
        The noise line's legend (:func:`.style.noise_floor_label`).
    """
    lambdas = sorted(curves["weight_decay"].unique())
    colors = colors or lambda_colors(lambdas)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True)
    for ax, split in zip(axes, ("train", "test"), strict=True):
        for wd in lambdas:
            c = curves[(curves["weight_decay"] == wd) & (curves["split"] == split)]
            c = c.sort_values("step")
            band(ax, c["step"], c["loss"], c["loss_se"], colors[wd], alpha=0.12, floor=0.0,
                 log=True, linewidth=1.5, label=lambda_label(wd))  # fmt: skip
        if split == "test" and noise is not None and np.isfinite(noise):
            ax.axhline(noise, color="black", linestyle="--", linewidth=1, label=noise_label)
        ax.set_yscale("log")
        if split == "test":  # spans under two decades: plain numbers read better
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(_plain_log_label))
            ax.yaxis.set_minor_formatter(ticker.FuncFormatter(_plain_log_label))
        ax.set_title(f"{split} loss (mean over training sets)")
        ax.set_xlabel("optimisation step")
    axes[0].set_ylabel(f"{error} (log scale)")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, title="weight decay λ", loc="center left",
               bbox_to_anchor=(0.86, 0.5), frameon=False)  # fmt: skip
    fig.suptitle("Learning curves by weight decay (bands: ±2 SE)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return fig


@styled
def fig_weight_norm(summary: pd.DataFrame) -> Figure:
    """Mean weight norm of the trained members vs λ (±2 SE): the L2 norm of the weight
    matrices, the biases left out (``summary.csv``'s ``weight_norm``).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    """
    s = summary.sort_values("weight_decay")
    axis = LambdaAxis(s["weight_decay"])
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    band(ax, axis.pos(s["weight_decay"]), s["weight_norm"], s["weight_norm_se"],
          sns.color_palette("colorblind")[0], marker="o", linewidth=1.8, floor=0.0)  # fmt: skip
    _mark_diverged(ax, axis, s)
    axis.apply(ax)
    limit_to_estimates(ax, s["weight_norm"])
    ax.set_ylabel("‖w‖, weight matrices only: biases excluded\n(mean over members)")
    ax.set_title("Weight norm vs weight decay (band: ±2 SE)")
    fig.tight_layout()
    return fig


@styled
def fig_weight_hist(
    weight_hist: pd.DataFrame, lambdas: Sequence[float], colors: dict | None = None
) -> Figure:
    """Histograms of the weights of training set 0, one panel per layer, a few λ.

    Parameters
    ----------
    weight_hist : DataFrame
        ``weight_hist.csv``.
    lambdas : sequence of float
        The λ to overlay.
    colors : dict, optional
        λ → colour for the run (:func:`.style.lambda_colors` of its whole grid); default:
        of every λ in ``weight_hist``.
    """
    layers = sorted(weight_hist["layer"].unique())
    ncol = min(len(layers), 2)
    nrow = int(np.ceil(len(layers) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.8 * ncol, 3.3 * nrow + 0.6), squeeze=False)
    colors = colors or lambda_colors(weight_hist["weight_decay"])
    for ax, layer in zip(axes.ravel(), layers, strict=False):
        for wd in lambdas:
            h = weight_hist[(weight_hist["layer"] == layer) & (weight_hist["weight_decay"] == wd)]
            if h.empty:
                continue
            h = h.sort_values("bin_left")
            edges = np.append(h["bin_left"].to_numpy(), h["bin_right"].iloc[-1])
            ax.stairs(h["count"].to_numpy(), edges, color=colors[wd], linewidth=1.6,
                      label=f"λ = {lambda_label(wd)}")  # fmt: skip
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
    for ax in axes.ravel()[len(layers) :]:
        ax.set_visible(False)
    legend_below(fig, axes[0, 0], ncol=len(lambdas))
    fig.suptitle("Weights of training set 0 by layer (count axis: log above 1)", fontsize=12)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
