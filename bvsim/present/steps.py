"""Figures of the decomposition along training (``steps.csv``): bias² and variance
against the optimizer step, one line per λ, and the expected error over (step, λ).

Drawn by :func:`bvsim.present.figures.plot_all` when the run has ``steps.csv`` with
more than one logged step (``train.decompose_steps``; :mod:`.figure_table`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .common import error_label, lambda_label
from .style import band, lambda_colors, styled, term_names

__all__ = ["fig_steps", "fig_steps_heatmap"]

#: Cells of the heatmap above which the values are not written into them.
_ANNOTATE_MAX = 120
#: Rows of the heatmap labelled at most (every k-th step beyond it).
_ROW_LABELS_MAX = 25
#: Steps spanning this factor or more (largest / smallest positive) get a symlog x axis.
_SYMLOG_SPAN = 30


def _early_text(es: dict | None) -> str:
    """One line: early stopping against weight decay, with the paired SE."""
    if not es or not np.isfinite(es.get("diff", np.nan)):
        return ""
    return (
        f"early stopping at λ = {lambda_label(es['weight_decay_min'])} (step {es['best_step']}) "
        f"minus best λ = {lambda_label(es['best_weight_decay'])} at step {es['last_step']}: "
        f"{es['diff']:+.3g} ± {es['diff_se']:.2g} (paired SE, {es['n_common']} sets)"
    )


@styled
def fig_steps(steps: pd.DataFrame, early: dict | None = None, colors: dict | None = None) -> Figure:
    """Bias², variance and expected error against the optimizer step, one line per λ
    (bands ±2 SE); early stopping at the smallest λ and the best λ at the last step
    are marked on the expected error.

    Parameters
    ----------
    steps : DataFrame
        ``steps.csv``.
    early : dict, optional
        ``run.json``'s ``early_stopping`` (:func:`bvsim.io.steps.early_stopping`).
    colors : dict, optional
        λ → colour for the run (:func:`.style.lambda_colors` of its whole grid); default:
        of every λ in ``steps``.
    """
    colors = colors or lambda_colors(steps["weight_decay"])
    steps = steps[steps["expected_error"].notna()]
    lambdas = sorted(steps["weight_decay"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), sharex=True)
    names = term_names(steps)  # bias² + noise for data from a file, KL terms for CE
    panels = (("bias2", f"{names['bias2'][1]} (corrected, linear scale)"),
              ("variance", names["variance"][1]), ("expected_error", "expected error"))  # fmt: skip
    for ax, (col, title) in zip(axes, panels, strict=True):
        for wd in lambdas:
            c = steps[steps["weight_decay"] == wd].sort_values("step")
            band(ax, c["step"], c[col], c[f"{col}_se"], colors[wd], alpha=0.12, linewidth=1.5,
                 floor=0.0)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        positive = steps.loc[steps["step"] > 0, "step"]
        if not positive.empty and positive.max() >= _SYMLOG_SPAN * positive.min():
            # most of the change is early: linear up to the first logged step, log after
            ax.set_xscale("symlog", linthresh=float(positive.min()))
            ax.set_xlabel("optimizer step (symlog)")
    axes[0].axhline(0, color="black", linewidth=0.8)
    axes[0].set_ylabel(error_label(steps))
    if early:
        lam_min, lam_best = (
            lambda_label(early["weight_decay_min"]),
            lambda_label(early["best_weight_decay"]),
        )
        axes[2].plot(early["best_step"], early["early_stopping_error"], marker="*",
                     markersize=14, color="red", linestyle="none",
                     label=f"best step at λ = {lam_min}")  # fmt: skip
        axes[2].plot(early["last_step"], early["weight_decay_error"], marker="D",
                     markersize=8, color="black", linestyle="none",
                     label=f"best λ = {lam_best} at the end")  # fmt: skip
        # below the axes: inside the panel it covered the curves of the large λ
        fig.legend(*axes[2].get_legend_handles_labels(), loc="lower center", ncol=2,
                   frameon=False)  # fmt: skip
    handles = [plt.Line2D([], [], color=colors[wd], linewidth=2) for wd in lambdas]
    fig.legend(handles, [lambda_label(wd) for wd in lambdas], title="weight decay λ",
               loc="center left", bbox_to_anchor=(0.9, 0.5), frameon=False)  # fmt: skip
    title = "Bias² and variance along training (bands: ±2 SE)"
    text = _early_text(early)
    fig.suptitle(title + (f"\n{text}" if text else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0.07 if early else 0, 0.9, 1))
    return fig


@styled
def fig_steps_heatmap(steps: pd.DataFrame) -> Figure:
    """Expected error over (step × λ); the best cell is boxed in red (an argmin of
    noisy estimates, so optimistic)."""
    grid = steps.pivot(index="step", columns="weight_decay", values="expected_error")
    annotate = grid.size <= _ANNOTATE_MAX
    height = 1.4 + 0.32 * min(grid.shape[0], _ROW_LABELS_MAX)
    fig, ax = plt.subplots(figsize=(1.6 + 0.75 * grid.shape[1], height))
    sns.heatmap(grid, annot=annotate, fmt=".3g", cmap="viridis_r", ax=ax,
                cbar_kws={"label": f"expected error ({error_label(steps)})"},
                annot_kws={"fontsize": 7})  # fmt: skip
    ax.set_xticklabels([lambda_label(v) for v in grid.columns], rotation=0)
    every = -(-grid.shape[0] // _ROW_LABELS_MAX)  # label every k-th step at most
    ax.set_yticks(np.arange(0, grid.shape[0], every) + 0.5)
    ax.set_yticklabels([f"{int(v)}" for v in grid.index[::every]], rotation=0)
    ax.set_xlabel("weight decay λ")
    ax.set_ylabel("optimizer step")
    values = grid.to_numpy(float)
    if np.isfinite(values).any():
        row, col = np.unravel_index(np.nanargmin(values), values.shape)
        ax.add_patch(plt.Rectangle((col, row), 1, 1, fill=False, edgecolor="red", lw=2))
        best = f"best: step {int(grid.index[row])}, λ = {lambda_label(grid.columns[col])}"
        ax.set_title(f"Expected error over step × λ (red: {best})")
    return fig
