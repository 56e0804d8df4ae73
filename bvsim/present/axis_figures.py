"""The figures of a second-axis run (``sweep.axis``: n_train, hidden_width, noise_std,
...), drawn into its combined directory by :func:`bvsim.present.figures.plot_axis`:
the decomposition against λ for each value, the expected error over (value × λ), the
best λ per value, and bias², variance and expected error against a numeric axis
(:mod:`.figure_table` says which a run gets).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .common import (
    axis_value_text,
    best_row,
    error_label,
    lambda_label,
    panel_lambdas,
    valid_rows,
)
from .style import (
    LambdaAxis,
    band,
    components,
    dwarfed,
    limit_to_estimates,
    log_x_when_wide,
    styled,
    symlog_y,
    term_names,
)

__all__ = [
    "fig_axis_best",
    "fig_axis_curves",
    "fig_axis_decomposition",
    "fig_axis_heatmap",
]


def _axis_label(axis: str, value: float | str) -> str:
    return f"{axis} = {axis_value_text(value)}"


def _categorical(summary: pd.DataFrame, axis: str) -> bool:
    """Whether the second axis is categorical (penalty, optimizer: names)."""
    return not pd.api.types.is_numeric_dtype(summary[axis])


def _axis_values(summary: pd.DataFrame, axis: str) -> list:
    """The second axis's values in the order the figures show them: a categorical
    axis's names as the user listed them (``sweep.axis_labels``, the order of
    ``summary.csv``), never sorted by name; numbers ascending."""
    values = list(pd.unique(summary[axis]))
    return values if _categorical(summary, axis) else sorted(values)


@styled
def fig_axis_decomposition(summary: pd.DataFrame, axis: str) -> Figure:
    """Bias², variance, noise and expected error vs λ, one panel per second-axis value.

    A shared y axis, unless one value dwarfs the rest (an interpolation peak); then each
    panel has its own, symlog where one λ dwarfs the others in it. Bands stop at 0 (no
    quantity is negative), or at the estimate where a bias-corrected bias² is negative,
    and a linear axis is narrowed to the estimates."""
    values = _axis_values(summary, axis)
    ncol = 2 if len(values) == 4 else min(len(values), 3)
    nrow = int(np.ceil(len(values) / ncol))
    share = not dwarfed(valid_rows(summary)["expected_error"])
    fig, axes = plt.subplots(
        nrow,
        ncol,
        figsize=(4.3 * ncol, 3.4 * nrow + 1.0),
        sharey=share,
        squeeze=False,
        layout="constrained",
    )
    lam = LambdaAxis(summary["weight_decay"])
    palette = sns.color_palette("colorblind")
    every: list[np.ndarray] = []
    for ax, value in zip(axes.flat, values, strict=False):
        s = valid_rows(summary[summary[axis] == value])
        x = lam.pos(s["weight_decay"])
        drawn = components(s)
        for col, label, ci, marker in drawn:
            se = s[f"{col}_se"] if f"{col}_se" in s else None
            style = {"linestyle": "--", "linewidth": 1.2} if col == "noise" else {"linewidth": 1.6}
            band(ax, x, s[col], se, palette[ci], label=label, marker=marker, markersize=4,
                 floor=0.0, **style)  # fmt: skip
        estimates = s[[col for col, *_ in drawn]].to_numpy(float).ravel()
        every.append(estimates)
        ax.set_ylabel(error_label(summary))
        if share:
            pass
        elif dwarfed(s["expected_error"]):
            ax.set_ylabel(f"{error_label(summary)}\n({symlog_y(ax, estimates)})")
        else:
            limit_to_estimates(ax, estimates)
        best = s[s["is_best"].astype(bool)]
        if not best.empty:
            ax.axvline(lam.pos([best["weight_decay"].iloc[0]])[0], color="0.2", linestyle="-.",
                       linewidth=1, label="best λ")  # fmt: skip
        lam.apply(ax, label="weight decay λ")
        ax.set_title(_axis_label(axis, value))
    for ax in axes.flat[len(values) :]:
        ax.set_visible(False)
    if share:
        limit_to_estimates(axes.flat[0], np.concatenate(every))
        for ax in axes[:, 1:].flat:
            ax.set_ylabel("")
    scale = "" if share else "; each panel has its own y scale"
    fig.suptitle(f"Bias–variance decomposition by {axis} (bands: ±2 SE{scale})")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    return fig


@styled
def fig_axis_heatmap(summary: pd.DataFrame, axis: str) -> Figure:
    """Expected error over (second axis × λ); the best λ of each row is boxed."""
    grid = summary.pivot(index=axis, columns="weight_decay", values="expected_error")
    grid = grid.reindex(_axis_values(summary, axis))  # pivot sorts names alphabetically
    # a few rows still leave the colour bar's label room beside them and the title room
    # above (constrained layout keeps both inside the figure)
    n_rows, n_cols = grid.shape
    fig, ax = plt.subplots(figsize=(max(6.4, 2.2 + 0.75 * n_cols), max(3.8, 1.4 + 0.5 * n_rows)),
                           layout="constrained")  # fmt: skip
    finite = grid.to_numpy()[np.isfinite(grid.to_numpy())]
    norm = None
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 30:
        norm = LogNorm(finite.min(), finite.max())  # a wide range, e.g. a variance peak
    sns.heatmap(
        grid,
        annot=True,
        fmt=".3g",
        cmap="viridis_r",
        norm=norm,
        ax=ax,
        cbar_kws={
            "label": "expected error\n(bias² + variance + noise"
            + (", log colour scale)" if norm is not None else ")")
        },
        annot_kws={"fontsize": 8},
    )
    ax.set_xticklabels([lambda_label(v) for v in grid.columns], rotation=0)
    ax.set_yticklabels([axis_value_text(v) for v in grid.index], rotation=0)
    ax.set_xlabel("weight decay λ")
    ax.set_ylabel(axis)
    for row, (_, values) in enumerate(grid.iterrows()):
        if values.notna().any():
            col = int(np.nanargmin(values.to_numpy()))
            ax.add_patch(plt.Rectangle((col, row), 1, 1, fill=False, edgecolor="red", lw=2))
    ax.set_title(f"Expected error over {axis} × λ (red: best λ of each row)")
    return fig


def _best_by_value(summary: pd.DataFrame, axis: str) -> list[tuple]:
    """(axis value, best λ's row, smallest λ's row) for each value with estimates."""
    rows = []
    for value in _axis_values(summary, axis):
        v = valid_rows(summary[summary[axis] == value])
        if not v.empty:
            rows.append((value, best_row(v), v.iloc[0]))
    return rows


def _axis_ticks(ax, axis: str, names: list, values: np.ndarray, categorical: bool) -> None:
    """The second axis on x: names at 0, 1, ... for a categorical axis; a log scale with
    labels at least 0.12 decades apart for values spanning 8× or more."""
    ax.set_xlabel(axis)
    if categorical:
        ax.set_xticks(values)
        ax.set_xticklabels(names)
        ax.set_xlim(-0.5, len(values) - 0.5)
    else:
        log_x_when_wide(ax, values)


def _points(ax, x, y, se, color, label: str, log: bool) -> None:
    """Estimates of a categorical axis as points with ±2 SE bars, the lower bar stopping
    at 0 (an error is not negative), and left out on a log axis where it would reach 0
    (as :func:`.style.band` draws a band there)."""
    se = np.nan_to_num(np.asarray(se, float))
    below = np.minimum(2 * se, np.maximum(y, 0.0))
    if log:
        below = np.where(y - 2 * se <= 0, 0.0, below)
    ax.errorbar(x, y, yerr=[below, 2 * se], fmt="o", color=color, ecolor=color, elinewidth=1.4,
                capsize=4, markersize=6, label=label)  # fmt: skip


@styled
def fig_axis_best(summary: pd.DataFrame, axis: str) -> Figure:
    """Best λ and the error it reaches (against the smallest λ's), as the second axis
    varies."""
    rows = _best_by_value(summary, axis)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    if not rows:
        return fig
    names = [r[0] for r in rows]
    categorical = _categorical(summary, axis)
    # a categorical axis (penalty, optimizer): its names at positions 0, 1, ..., as
    # points with bars (a line or band would claim values between two names)
    values = np.arange(len(rows), dtype=float) if categorical else np.array(names, dtype=float)
    lam = LambdaAxis(summary["weight_decay"])
    ax1.plot(values, lam.pos([r[1]["weight_decay"] for r in rows]), "o" if categorical else "o-",
             color="C3")  # fmt: skip
    ax1.set_yscale("log")
    ticks = sorted(set(lam.pos(summary["weight_decay"].unique())))
    ax1.set_yticks(ticks)
    ax1.set_yticklabels([lambda_label(v) for v in sorted(summary["weight_decay"].unique())])
    ax1.minorticks_off()
    ax1.set_ylabel("best λ (grid value)")
    ax1.set_title(f"best λ vs {axis}")
    pal = sns.color_palette("colorblind")
    errors = np.array([r[i]["expected_error"] for r in rows for i in (1, 2)])
    # e.g. the interpolation peak of double descent; a band whose lower edge is at or
    # below 0 is then drawn as the upper half-bar (it would fill to the axis' bottom)
    log_y = bool(errors.min() > 0 and errors.max() / errors.min() > 30)
    for idx, label, color in ((1, "at the best λ", pal[3]), (2, "at the smallest λ", pal[0])):
        err = np.array([r[idx]["expected_error"] for r in rows])
        se = np.array([r[idx]["expected_error_se"] for r in rows])
        if categorical:  # side by side: the best λ is often the smallest
            _points(ax2, values + (0.08 if idx == 2 else -0.08), err, se, color, label, log_y)
        else:
            band(ax2, values, err, se, color, label=label, marker="o", linewidth=1.6,
                 floor=0.0, log=log_y)  # fmt: skip
    if log_y:
        ax2.set_yscale("log")
    ax2.set_ylabel(f"expected error ({error_label(summary)})")
    ax2.set_title(f"expected error vs {axis} (±2 SE)")
    ax2.legend()
    for ax in (ax1, ax2):
        _axis_ticks(ax, axis, names, values, categorical)
    return fig


@styled
def fig_axis_curves(summary: pd.DataFrame, axis: str, theory: pd.DataFrame | None = None) -> Figure:
    """Bias², variance and expected error against a numeric second axis (e.g. n_train
    through the interpolation threshold), one panel per chosen λ, ±2 SE (marginal),
    with the closed-form curves of ``theory.csv`` where they exist.

    Parameters
    ----------
    summary : DataFrame
        The combined ``summary.csv`` (one row per axis value and λ).
    axis : str
        The numeric second-axis column.
    theory : DataFrame, optional
        The combined ``theory.csv`` (with the axis column).
    """
    valid = valid_rows(summary)
    picks = panel_lambdas(valid["weight_decay"].unique())
    fig, axes = plt.subplots(1, len(picks), figsize=(3.9 * len(picks) + 0.6, 3.9),
                             squeeze=False, layout="constrained")  # fmt: skip
    pal = sns.color_palette("colorblind")
    values = valid[axis].to_numpy(float)
    errors = valid["expected_error"].to_numpy(float)
    log_y = errors.size and errors.min() > 0 and errors.max() / errors.min() > 30
    names = term_names(summary)  # bias² + noise for data from a file, KL terms for CE
    for ax, wd in zip(axes[0], picks, strict=True):
        s = valid[valid["weight_decay"] == wd].sort_values(axis)
        for col, label, color in (("bias2", names["bias2"][1], pal[0]),
                                  ("variance", names["variance"][1], pal[1]),
                                  ("expected_error", "expected error", pal[3])):  # fmt: skip
            y, se = s[col].to_numpy(float), s[f"{col}_se"].to_numpy(float)
            if log_y:  # no line to -inf; a band reaching 0 is drawn as its upper half
                y = np.where(y > 0, y, np.nan)
            band(ax, s[axis], y, se, color, label=label, marker="o", markersize=3,
                  linewidth=1.5, floor=0.0, log=bool(log_y))  # fmt: skip
        if theory is not None and not theory.empty and axis in theory:
            t = theory[np.isclose(theory["weight_decay"], wd)].sort_values(axis)
            for col, color in (("bias2", pal[0]), ("variance", pal[1]),
                               ("expected_error", pal[3])):  # fmt: skip
                yt = t[f"{col}_theory"].to_numpy(float)
                yt = np.where(yt > 0, yt, np.nan) if log_y else yt
                ax.plot(t[axis], yt, color=color, linestyle=":", linewidth=1.4)
        ax.set_title(f"λ = {lambda_label(wd)}")
        ax.set_xlabel(axis)
        log_x_when_wide(ax, values)
        if log_y:  # e.g. the interpolation peak: non-positive bias² is not drawn
            ax.set_yscale("log")
    axes[0, 0].set_ylabel(error_label(summary))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if theory is not None and not theory.empty and axis in theory:
        handles.append(plt.Line2D([], [], color="0.3", linestyle=":"))
        labels.append("closed form (theory.csv)")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"Bias², variance and expected error against {axis} (bands: ±2 SE, marginal)")
    return fig
