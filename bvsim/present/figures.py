"""Figures of a finished run, drawn from its tidy tables.

Each figure is one small function that takes tidy DataFrames and returns a matplotlib
``Figure``; it computes nothing beyond selecting and reshaping rows for plotting.
:func:`plot_all` picks the figures that apply and saves each as PNG and PDF under
``<run_dir>/figures/``.

Every figure with weight decay on its x axis uses :class:`LambdaAxis`: positive λ on a
log axis, and λ = 0 drawn 1.25 decades left of the smallest positive λ, labelled "0"
and set apart by a dotted separator with a "//" break mark on the axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402

from ..estimate.theory import KINDS as _THEORY_LABELS  # noqa: E402
from ..io.rundir import FIGURES, axis_value_text  # noqa: E402
from ..io.tables import Tables, load_fits, task_of  # noqa: E402
from ..run.store import atomic_path  # noqa: E402

__all__ = [
    "LambdaAxis",
    "fig_curves",
    "fig_decomposition",
    "fig_fits",
    "fig_pointwise",
    "fig_variance_split",
    "fig_weight_hist",
    "fig_weight_norm",
    "plot_all",
]

DPI = 150
#: Decades between the drawn position of λ = 0 and the smallest positive λ.
ZERO_GAP_DECADES = 1.25
_VALID = ("ok", "some_diverged")
_COMPONENTS = (
    # column, legend label, colour index in the "colorblind" palette, marker
    ("bias2", "bias² (corrected)", 0, "o"),
    ("variance", "variance", 1, "s"),
    ("noise", "noise σ²", 7, None),
    ("expected_error", "bias² + variance + noise", 3, "D"),
    ("test_error", "measured test error", 2, "^"),
)


def _is_classification(summary: pd.DataFrame) -> bool:
    """A cross-entropy run (:func:`bvsim.io.tables.task_of`); otherwise squared error."""
    return task_of(summary) == "classification"


def _error_label(summary: pd.DataFrame) -> str:
    """What the errors of a run are, for axis labels."""
    return "cross-entropy (nats)" if _is_classification(summary) else "mean squared error"


def _components(summary: pd.DataFrame):
    """The curves to draw; with unknown noise (data from a file) bias² includes it; for a
    classification task they are the terms of the cross-entropy decomposition."""
    folded = (
        "bias2_includes_noise" in summary and summary["bias2_includes_noise"].astype(bool).any()
    )
    if _is_classification(summary) and folded:
        labels = {
            "bias2": "bias + noise: KL(labels ‖ π̄) (noise unknown)",
            "variance": "variance: mean KL(π̄ ‖ π)",
            "expected_error": "expected cross-entropy (sum)",
            "test_error": "measured test cross-entropy",
        }
        return [(c, labels[c], ci, m) for c, _, ci, m in _COMPONENTS if c in labels]
    if _is_classification(summary):
        labels = {
            "bias2": "bias: KL(p ‖ π̄)",
            "variance": "variance: mean KL(π̄ ‖ π)",
            "noise": "noise: entropy H(p)",
            "expected_error": "expected cross-entropy (sum)",
            "test_error": "measured test cross-entropy",
        }
        return [(c, labels[c], ci, m) for c, _, ci, m in _COMPONENTS]
    if "bias2_includes_noise" in summary and summary["bias2_includes_noise"].astype(bool).any():
        return [
            (c, "bias² + noise (noise unknown)", ci, m) if c == "bias2" else
            (c, "bias² + noise + variance", ci, m) if c == "expected_error" else (c, lab, ci, m)
            for c, lab, ci, m in _COMPONENTS
            if c != "noise"
        ]  # fmt: skip
    return list(_COMPONENTS)


@contextmanager
def _style():
    """The house style: seaborn whitegrid, fonts of 9 pt or more, no global change."""
    rc = {"axes.titlesize": 11, "legend.title_fontsize": 10, "savefig.dpi": DPI}
    with (
        sns.axes_style("whitegrid"),
        sns.plotting_context("notebook", font_scale=0.85, rc=rc),
    ):
        yield


def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    @wraps(func)
    def inner(*args, **kwargs):
        with _style():
            return func(*args, **kwargs)

    return inner


def _fmt_lambda(value: float) -> str:
    """A weight decay for a label: ``0``, ``1e-04``, ``0.003``, ``1``."""
    if value == 0:
        return "0"
    if value < 1e-3:
        return f"{value:.0e}".replace("e-0", "e-")
    return f"{value:g}"


class LambdaAxis:
    """The weight-decay x axis shared by every λ figure.

    Positive λ are drawn at their value on a log axis; λ = 0 is drawn at
    ``min(λ > 0) / 10**ZERO_GAP_DECADES``, labelled "0" and separated from the rest by
    a dotted vertical line with a "//" break mark on the axis.

    Parameters
    ----------
    weight_decays : sequence of float
        All λ of the run (duplicates are fine).
    """

    def __init__(self, weight_decays: Sequence[float]):
        wd = np.unique(np.asarray(weight_decays, dtype=float))
        positive = wd[wd > 0]
        self.has_zero = bool((wd == 0).any())
        self.lo = float(positive.min()) if positive.size else 1.0
        self.hi = float(positive.max()) if positive.size else 1.0
        self.zero_at = self.lo / 10**ZERO_GAP_DECADES if positive.size else 1.0
        self.break_at = float(np.sqrt(self.zero_at * self.lo))

    def pos(self, values) -> np.ndarray:
        """Drawing positions of λ values (λ = 0 goes left of the break)."""
        v = np.asarray(values, dtype=float)
        return np.where(v == 0, self.zero_at, v)

    def apply(self, ax, label: str = "weight decay λ (log scale)") -> None:
        """Log-scale ``ax``'s x axis, tick it, and draw the break (if λ = 0 is present)."""
        ax.set_xscale("log")
        left = self.zero_at if self.has_zero else self.lo
        ax.set_xlim(left / 10**0.3, self.hi * 10**0.3)
        lo_dec, hi_dec = int(np.floor(np.log10(self.lo))), int(np.ceil(np.log10(self.hi)))
        decades = [10.0**k for k in range(lo_dec, hi_dec + 1)]
        floor = self.break_at * 10**0.2 if self.has_zero else 0.0
        ticks = [t for t in decades if floor < t <= self.hi * 10**0.3]
        if self.has_zero:
            ticks = [self.zero_at, *ticks]
        zero_at, has_zero = self.zero_at, self.has_zero

        def fmt(x, _pos):
            if has_zero and np.isclose(x, zero_at):
                return "0"
            return f"$10^{{{int(round(np.log10(x)))}}}$"

        ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(fmt))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        if self.has_zero:
            ax.axvline(self.break_at, color="0.45", linestyle=":", linewidth=1.0, zorder=1)
            trans = blended_transform_factory(ax.transData, ax.transAxes)
            ax.text(
                self.break_at, 0.0, "//", transform=trans, ha="center", va="center",
                fontsize=10, fontweight="bold", color="0.3", clip_on=False, zorder=5,
                bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none"},
            )  # fmt: skip
            label = f"{label}; λ = 0 left of //"
        ax.set_xlabel(label)


def _band(ax, x, y, se, color, alpha=0.2, **line_kw):
    """A line with markers and a ±2 SE band (no band where the SE is missing)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.plot(x, y, color=color, **line_kw)
    if se is not None:
        se = np.asarray(se, float)
        ax.fill_between(x, y - 2 * se, y + 2 * se, color=color, alpha=alpha, linewidth=0)


def _legend_below(fig: Figure, ax, ncol: int = 3, **kw) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, **kw)


def _run_title(meta: dict, summary: pd.DataFrame) -> str:
    name = meta.get("name", "run")
    k = int(summary["n_reps"].max()) if "n_reps" in summary else 0
    s = int(summary["n_seeds"].max()) if "n_seeds" in summary else 0
    return f"{name}: {k} training sets × {s} seed{'s' if s != 1 else ''}"


def _mark_diverged(ax, axis: LambdaAxis, summary: pd.DataFrame) -> bool:
    """Red × on the x axis at each λ with diverged members, with the count."""
    bad = summary[summary["n_diverged"].fillna(0) > 0]
    if bad.empty:
        return False
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    x = axis.pos(bad["weight_decay"])
    ax.plot(x, np.full(len(x), 0.03), "x", color="tab:red", markersize=9, mew=2,
            transform=trans, clip_on=False, zorder=6, label="λ with diverged members")  # fmt: skip
    for xi, n in zip(x, bad["n_diverged"], strict=True):
        ax.text(xi, 0.07, f"{int(n)} div.", transform=trans, ha="center", va="bottom",
                fontsize=9, color="tab:red")  # fmt: skip
    return True


def _theory_lines(ax, axis: LambdaAxis, theory: pd.DataFrame) -> None:
    """Thin black dotted lines: theoretical bias², variance and expected error (one
    legend entry; each line runs over the estimate of the same quantity)."""
    t = theory.sort_values("weight_decay")
    x = axis.pos(t["weight_decay"])
    kind = str(t["kind"].iloc[0]) if "kind" in t else ""
    label = _THEORY_LABELS.get(kind, "theory")
    for i, col in enumerate(("bias2_theory", "variance_theory", "expected_error_theory")):
        y = t[col].to_numpy(float)
        y = np.where(np.isfinite(y), y, np.nan)  # a divergent limit: leave a gap
        ax.plot(x, y, color="black", linestyle=":", linewidth=1.3, zorder=5,
                label=label if i == 0 else None)  # fmt: skip


@_styled
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
    """
    s = summary.sort_values("weight_decay")
    axis = LambdaAxis(s["weight_decay"])
    x = axis.pos(s["weight_decay"])
    palette = sns.color_palette("colorblind", 10)
    fig, ax = plt.subplots(figsize=(7.5, 5.4))
    ax.axhline(0, color="0.3", linewidth=0.8, zorder=1)
    for col, label, ci, marker in _components(s):
        se = s[f"{col}_se"] if f"{col}_se" in s else None
        style = {"linestyle": "--", "linewidth": 1.3} if col == "noise" else {"linewidth": 1.8}
        _band(ax, x, s[col], se, palette[ci], label=label, marker=marker, markersize=5, **style)
    if theory is not None and not theory.empty:
        _theory_lines(ax, axis, theory)
    best = s[s["is_best"].astype(bool)]
    if not best.empty:
        b = best.iloc[0]
        bx = axis.pos([b["weight_decay"]])[0]
        # labelled in the legend (below the axes), so it never covers a curve
        ax.axvline(
            bx,
            color="0.2",
            linewidth=1,
            linestyle="-.",
            zorder=1,
            label=f"best λ = {_fmt_lambda(b['weight_decay'])}: expected error "
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
            label=f"one-SE rule λ = {_fmt_lambda(o['weight_decay'])} (within one paired SE "
            "of the best)",
        )
    _mark_diverged(ax, axis, s)
    axis.apply(ax)
    ax.set_ylabel(f"{_error_label(s)} on test points")
    ax.set_title(
        "Bias–variance decomposition vs weight decay\n"
        f"{_run_title(meta or {}, s)}  (bands: ±2 SE, marginal)"
    )
    _legend_below(fig, ax, ncol=3)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


@_styled
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
            f"λ = {_fmt_lambda(wd)}{tag}, {n} fits\n"
            f"bias² {row['bias2']:.3g}, variance {row['variance']:.3g}"
        )
        ax.set_xlabel("x")
    axes[0].set_ylabel("prediction  f̂(x)")
    axes[0].plot([], [], color=colors[0], alpha=0.6, linewidth=0.9, label="member fits")
    _legend_below(fig, axes[0], ncol=3)
    fig.suptitle("Fitted functions of individual members", fontsize=12)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _lambda_colors(lambdas) -> dict:
    """Sequential colours by λ rank (viridis without its pale yellow end)."""
    lambdas = sorted(lambdas)
    pal = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.82, max(len(lambdas), 2)))
    return {wd: tuple(pal[i]) for i, wd in enumerate(lambdas)}


@_styled
def fig_pointwise(
    pointwise: pd.DataFrame, lambdas: Sequence[float] | None = None, one_d: bool = True
) -> Figure:
    """Bias²(x) and variance(x) with ±2 SE bands, one line per selected λ.

    When the largest λ's bias² dwarfs the others (a collapsed fit), a second bias²
    panel zooms in on the other λ, so that small (possibly negative) values show.

    Parameters
    ----------
    pointwise : DataFrame
        ``pointwise.csv``.
    lambdas : sequence of float, optional
        The λ to draw (default: all).
    one_d : bool
        Inputs are 1-D: draw lines. Otherwise draw dots against the first coordinate.
    """
    lambdas = sorted(pointwise["weight_decay"].unique() if lambdas is None else lambdas)
    colors = _lambda_colors(lambdas)
    rows = {wd: pointwise[np.isclose(pointwise["weight_decay"], wd)].sort_values("x")
            for wd in lambdas}  # fmt: skip
    peak = {wd: float(np.nanmax(np.abs(r["bias2"]), initial=0.0)) for wd, r in rows.items()}
    rest = lambdas[:-1]
    zoom = len(lambdas) > 1 and peak[lambdas[-1]] > 5 * max(max(peak[w] for w in rest), 1e-12)
    panels = [("bias2", lambdas, "bias² (bias-corrected; may dip below 0)")]
    if zoom:
        panels.append(("bias2", rest, f"bias², zoomed: λ = {_fmt_lambda(lambdas[-1])} left out"))
    panels.append(("variance", lambdas, "variance"))
    if zoom:
        fig, grid = plt.subplots(2, 2, figsize=(9.5, 7.6), sharex=True)
        axes = [grid[0, 0], grid[0, 1], grid[1, 0]]
        grid[1, 1].set_axis_off()
    else:
        fig, grid = plt.subplots(1, 2, figsize=(9.5, 4.4), sharex=True)
        axes = list(grid)
    for ax, (col, wds, title) in zip(axes, panels, strict=True):
        ax.axhline(0, color="0.3", linewidth=0.8)
        for wd in wds:
            p = rows[wd]
            kw = {} if one_d else {"linestyle": "none", "marker": "."}
            _band(ax, p["x"], p[col], p[f"{col}_se"], colors[wd], alpha=0.15,
                  label=f"λ = {_fmt_lambda(wd)}", linewidth=1.6, **kw)  # fmt: skip
        ax.set_title(title)
        ax.set_xlabel("test input x (first coordinate)")
        ax.set_ylabel(f"{col.replace('bias2', 'bias²')} at x")
        ax.xaxis.set_tick_params(labelbottom=True)
    if zoom:
        handles, labels = axes[0].get_legend_handles_labels()
        grid[1, 1].legend(handles, labels, loc="center", frameon=False, title="weight decay")
        fig.suptitle("Pointwise bias² and variance across the test inputs (bands: ±2 SE)",
                     fontsize=12)  # fmt: skip
        fig.tight_layout()
    else:
        _legend_below(fig, axes[0], ncol=len(lambdas))
        fig.suptitle("Pointwise bias² and variance across the test inputs (bands: ±2 SE)",
                     fontsize=12)  # fmt: skip
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _plain_log_label(value: float, _pos=None) -> str:
    """Plain-number label for log-axis ticks at 1, 2, 3 and 5 times a power of ten."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if np.isclose(mantissa, [1, 2, 3, 5]).any() else ""


@_styled
def fig_curves(
    curves: pd.DataFrame, noise: float | None = None, error: str = "mean squared error"
) -> Figure:
    """Mean train and test loss vs optimisation step, one line per λ (log y).

    Parameters
    ----------
    curves : DataFrame
        ``curves.csv``.
    noise : float, optional
        Test-noise variance, drawn as the floor of the test loss.
    error : str
        What the loss is, for the y label.
    """
    lambdas = sorted(curves["weight_decay"].unique())
    colors = _lambda_colors(lambdas)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True)
    for ax, split in zip(axes, ("train", "test"), strict=True):
        for wd in lambdas:
            c = curves[(curves["weight_decay"] == wd) & (curves["split"] == split)]
            c = c.sort_values("step")
            y, se = c["loss"].to_numpy(float), c["loss_se"].to_numpy(float)
            ax.plot(c["step"], y, color=colors[wd], linewidth=1.5, label=_fmt_lambda(wd))
            # display only: keep the lower band edge positive on the log axis
            lower = np.maximum(y - 2 * se, y / 10)
            ax.fill_between(c["step"], lower, y + 2 * se, color=colors[wd], alpha=0.12,
                            linewidth=0)  # fmt: skip
        if split == "test" and noise is not None and np.isfinite(noise):
            ax.axhline(noise, color="black", linestyle="--", linewidth=1,
                       label="noise σ² (test floor)")  # fmt: skip
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


@_styled
def fig_weight_norm(summary: pd.DataFrame) -> Figure:
    """Mean weight norm of the trained members vs λ (±2 SE).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    """
    s = summary.sort_values("weight_decay")
    axis = LambdaAxis(s["weight_decay"])
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    _band(ax, axis.pos(s["weight_decay"]), s["weight_norm"], s["weight_norm_se"],
          sns.color_palette("colorblind")[0], marker="o", linewidth=1.8)  # fmt: skip
    _mark_diverged(ax, axis, s)
    axis.apply(ax)
    ax.set_ylabel("weight norm ‖w‖ (mean over members)")
    ax.set_title("Weight norm vs weight decay (band: ±2 SE)")
    fig.tight_layout()
    return fig


@_styled
def fig_weight_hist(weight_hist: pd.DataFrame, lambdas: Sequence[float]) -> Figure:
    """Histograms of the weights of training set 0, one panel per layer, a few λ.

    Parameters
    ----------
    weight_hist : DataFrame
        ``weight_hist.csv``.
    lambdas : sequence of float
        The λ to overlay.
    """
    layers = sorted(weight_hist["layer"].unique())
    ncol = min(len(layers), 2)
    nrow = int(np.ceil(len(layers) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.8 * ncol, 3.3 * nrow + 0.6), squeeze=False)
    colors = _lambda_colors(lambdas)
    for ax, layer in zip(axes.ravel(), layers, strict=False):
        for wd in lambdas:
            h = weight_hist[(weight_hist["layer"] == layer) & (weight_hist["weight_decay"] == wd)]
            if h.empty:
                continue
            h = h.sort_values("bin_left")
            edges = np.append(h["bin_left"].to_numpy(), h["bin_right"].iloc[-1])
            ax.stairs(h["count"].to_numpy(), edges, color=colors[wd], linewidth=1.6,
                      label=f"λ = {_fmt_lambda(wd)}")  # fmt: skip
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(bottom=0)
        ax.set_title(f"layer {layer}")
        ax.set_xlabel("weight value")
        ax.set_ylabel("count")
    for ax in axes.ravel()[len(layers) :]:
        ax.set_visible(False)
    _legend_below(fig, axes[0, 0], ncol=len(lambdas))
    fig.suptitle("Weights of training set 0 by layer (count axis: log above 1)", fontsize=12)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


@_styled
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
    pal = sns.color_palette("colorblind", 10)
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ax.fill_between(x, 0, data, color=pal[0], alpha=0.45, linewidth=0,
                    label="variance from the training data")  # fmt: skip
    ax.fill_between(x, data, data + init, color=pal[1], alpha=0.45, linewidth=0,
                    label="variance from the initialisation seed")  # fmt: skip
    _band(ax, x, s["variance"], s["variance_se"], "0.15", alpha=0.12, marker="o",
          markersize=4, linewidth=1.4, label="total variance ±2 SE")  # fmt: skip
    ax.axhline(0, color="0.3", linewidth=0.8)
    axis.apply(ax)
    ax.set_ylabel("variance (mean over test points)")
    ax.set_title("Where the variance comes from: data vs initialisation")
    _legend_below(fig, ax, ncol=2)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


#: The labels of the crossed design's factors (bvsim.io.tables.crossed_factors).
_FACTOR_LABELS = {"inputs": "x", "sample": "rows", "label_noise": "ε", "init": "init"}


def _term_label(term: str) -> str:
    return " × ".join(_FACTOR_LABELS.get(f, f) for f in term.split(":"))


@_styled
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
    pal = sns.color_palette("colorblind", max(len(terms), 3))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    base = np.zeros(len(wd))
    for color, term in zip(pal, terms, strict=False):
        top = base + np.clip(table[term].to_numpy(float), 0, None)
        left.fill_between(x, base, top, color=color, alpha=0.5, linewidth=0,
                          label=_term_label(term))  # fmt: skip
        base = top
    _band(left, x, table["variance"], se["variance"], "0.15", alpha=0.12, marker="o",
          markersize=4, linewidth=1.4, label="total variance ±2 SE")  # fmt: skip
    left.axhline(0, color="0.3", linewidth=0.8)
    axis.apply(left)
    left.set_ylabel("variance (mean over test points)")
    left.set_title("Variance by source (stacked; negative estimates drawn as 0)")
    for color, term in zip(pal, terms, strict=False):
        _band(right, x, share[term], share_se[term], color, marker="o", markersize=3,
              linewidth=1.2)  # fmt: skip
    right.axhline(0, color="0.3", linewidth=0.8)
    axis.apply(right)
    right.set_ylabel("share of the variance (±2 SE)")
    right.set_title("Share of each source")
    _legend_below(fig, left, ncol=min(len(terms) + 1, 4))
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


#: Every figure bvsim draws (each as ``figures/<name>.png`` and ``.pdf``); ``--overwrite``
#: removes these and leaves other files in ``figures/`` alone.
NAMES = FIGURES  # the file names, declared with the run directory


def _save(fig: Figure, out: Path, name: str) -> list[Path]:
    assert name in NAMES, name
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    # no timestamps or software versions in the files: the same run gives the same bytes;
    # each written to a temporary name and renamed (never a half-written figure)
    try:
        with atomic_path(paths[0]) as tmp:
            fig.savefig(
                tmp, dpi=DPI, bbox_inches="tight", pad_inches=0.1, metadata={"Software": None}
            )
        with atomic_path(paths[1]) as tmp:
            fig.savefig(
                tmp,
                bbox_inches="tight",
                pad_inches=0.1,
                metadata={"CreationDate": None, "Producer": None},
            )
    finally:
        plt.close(fig)
    return paths


def _valid(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows with estimates (status ok or some_diverged and a finite expected error)."""
    if summary.empty:
        return summary
    ok = summary["expected_error"].notna()
    if "status" in summary:
        ok &= summary["status"].isin(_VALID)
    return summary[ok].sort_values("weight_decay")


def key_lambdas(summary: pd.DataFrame, extra: bool = False) -> list[float]:
    """Smallest, best and largest λ with estimates (plus one between smallest and best).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    extra : bool
        Also include the λ midway (by index) between the smallest and the best.
    """
    v = _valid(summary)
    if v.empty:
        return []
    wds = v["weight_decay"].tolist()
    best = v.loc[v["expected_error"].idxmin(), "weight_decay"]
    picks = [wds[0], best, wds[-1]]
    if extra:
        picks.append(wds[wds.index(best) // 2])
    return sorted(set(picks))


def _input_dim(run_dir: Path) -> int | None:
    try:
        with np.load(run_dir / "predictions.npz") as z:
            return int(z["x_test"].shape[1])
    except (OSError, KeyError, IndexError, ValueError):
        return None


def plot_all(tables: Tables, out_dir) -> list[Path]:
    """Draw every figure that applies and save it as PNG and PDF.

    Parameters
    ----------
    tables : Tables
        From :func:`bvsim.io.tables.read_tables` or :func:`bvsim.io.tables.summarize`.
    out_dir : path
        The run directory; figures go to ``out_dir/figures/``. ``predictions.npz`` is
        read from it for the fitted-curve fans (skipped when it is missing).

    Returns
    -------
    list of Path
        The files written (each figure's ``.png`` and ``.pdf``).
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    s = tables.summary
    written: list[Path] = []
    if s.empty:
        return written
    valid = _valid(s)
    noise = float(s["noise"].dropna().iloc[0]) if s["noise"].notna().any() else None

    written += _save(fig_decomposition(s, tables.meta, tables.theory), fig_dir, "decomposition")

    pw = tables.pointwise
    dim = _input_dim(out_dir)
    if dim == 1 and not _is_classification(s) and not pw.empty and not valid.empty:
        fits = load_fits(out_dir, key_lambdas(s), max_members=30)
        if not fits.empty:
            written += _save(fig_fits(fits, pw, s), fig_dir, "fits")
    if not pw.empty and not valid.empty:
        picks = [wd for wd in key_lambdas(s, extra=True) if (pw["weight_decay"] == wd).any()]
        if picks:
            fig = fig_pointwise(pw, picks, one_d=dim in (1, None))
            written += _save(fig, fig_dir, "pointwise")
    if not tables.curves.empty:
        fig = fig_curves(tables.curves, noise, _error_label(s))
        written += _save(fig, fig_dir, "curves")
    if s["weight_norm"].notna().any():
        written += _save(fig_weight_norm(s), fig_dir, "weight_norm")
    wh = tables.weight_hist
    if not wh.empty:
        present = set(wh["weight_decay"])
        picks = [wd for wd in key_lambdas(s) if wd in present]
        if not picks:
            picks = sorted(present)[:: max(1, len(present) - 1)]
        written += _save(fig_weight_hist(wh, picks), fig_dir, "weight_hist")
    if s["variance_init"].notna().any():
        written += _save(fig_variance_split(s), fig_dir, "variance_split")
    anova = tables.anova
    if anova is not None and not anova.empty and anova["value"].notna().any():
        written += _save(fig_anova(anova), fig_dir, "anova")
    return written


def _axis_label(axis: str, value: float | str) -> str:
    return f"{axis} = {axis_value_text(value)}"


@_styled
def fig_axis_decomposition(summary: pd.DataFrame, axis: str) -> Figure:
    """Bias², variance, noise and expected error vs λ, one panel per second-axis value."""
    values = sorted(summary[axis].unique())
    ncol = 2 if len(values) == 4 else min(len(values), 3)
    nrow = int(np.ceil(len(values) / ncol))
    errors = _valid(summary)["expected_error"].to_numpy()
    # a shared y axis, unless one value dwarfs the rest (an interpolation peak)
    share = not (errors.size and errors.max() > 20 * np.median(errors))
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
    for ax, value in zip(axes.flat, values, strict=False):
        s = _valid(summary[summary[axis] == value])
        x = lam.pos(s["weight_decay"])
        for col, label, ci, marker in _components(s):
            se = s[f"{col}_se"] if f"{col}_se" in s else None
            style = {"linestyle": "--", "linewidth": 1.2} if col == "noise" else {"linewidth": 1.6}
            _band(ax, x, s[col], se, palette[ci], label=label, marker=marker, markersize=4, **style)
        best = s[s["is_best"].astype(bool)]
        if not best.empty:
            ax.axvline(lam.pos([best["weight_decay"].iloc[0]])[0], color="0.2", linestyle="-.",
                       linewidth=1, label="best λ")  # fmt: skip
        lam.apply(ax, label="weight decay λ")
        ax.set_title(_axis_label(axis, value))
    for ax in axes.flat[len(values) :]:
        ax.set_visible(False)
    for ax in axes[:, 0] if share else axes.flat:
        ax.set_ylabel(_error_label(summary))
    scale = "" if share else "; each panel has its own y scale"
    fig.suptitle(f"Bias–variance decomposition by {axis} (bands: ±2 SE{scale})")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    return fig


@_styled
def fig_axis_heatmap(summary: pd.DataFrame, axis: str) -> Figure:
    """Expected error over (second axis × λ); the best λ of each row is boxed."""
    grid = summary.pivot(index=axis, columns="weight_decay", values="expected_error")
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * grid.shape[1], 1.2 + 0.5 * grid.shape[0]))
    finite = grid.to_numpy()[np.isfinite(grid.to_numpy())]
    norm = None
    if finite.size and finite.min() > 0 and finite.max() / finite.min() > 30:
        from matplotlib.colors import LogNorm

        norm = LogNorm(finite.min(), finite.max())  # a wide range, e.g. a variance peak
    sns.heatmap(
        grid,
        annot=True,
        fmt=".3g",
        cmap="viridis_r",
        norm=norm,
        ax=ax,
        cbar_kws={
            "label": "expected error (bias² + variance + noise)"
            + (", log colour scale" if norm is not None else "")
        },
        annot_kws={"fontsize": 8},
    )
    ax.set_xticklabels([_fmt_lambda(v) for v in grid.columns], rotation=0)
    ax.set_yticklabels([axis_value_text(v) for v in grid.index], rotation=0)
    ax.set_xlabel("weight decay λ")
    ax.set_ylabel(axis)
    for row, (_, values) in enumerate(grid.iterrows()):
        if values.notna().any():
            col = int(np.nanargmin(values.to_numpy()))
            ax.add_patch(plt.Rectangle((col, row), 1, 1, fill=False, edgecolor="red", lw=2))
    ax.set_title(f"Expected error over {axis} × λ (red: best λ of each row)")
    return fig


@_styled
def fig_axis_best(summary: pd.DataFrame, axis: str) -> Figure:
    """Best λ and the error it reaches (against λ = 0), as the second axis varies."""
    rows = []
    for value, s in summary.groupby(axis):
        s = _valid(s)
        if s.empty:
            continue
        best = s.loc[s["expected_error"].idxmin()]
        first = s.loc[s["weight_decay"].idxmin()]
        rows.append((value, best, first))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    if not rows:
        return fig
    names = [r[0] for r in rows]
    categorical = any(isinstance(v, str) for v in names)
    # a categorical axis (penalty, optimizer): its names at positions 0, 1, ...
    values = np.arange(len(rows), dtype=float) if categorical else np.array(names, dtype=float)
    lam = LambdaAxis(summary["weight_decay"])
    ax1.plot(values, lam.pos([r[1]["weight_decay"] for r in rows]), "o-", color="C3")
    ax1.set_yscale("log")
    ticks = sorted(set(lam.pos(summary["weight_decay"].unique())))
    ax1.set_yticks(ticks)
    ax1.set_yticklabels([_fmt_lambda(v) for v in sorted(summary["weight_decay"].unique())])
    ax1.minorticks_off()
    ax1.set_ylabel("best λ (grid value)")
    ax1.set_title(f"best λ vs {axis}")
    pal = sns.color_palette("colorblind")
    for idx, label, color in ((1, "at the best λ", pal[3]), (2, "at the smallest λ", pal[0])):
        err = np.array([r[idx]["expected_error"] for r in rows])
        se = np.array([r[idx]["expected_error_se"] for r in rows])
        _band(ax2, values, err, se, color, label=label, marker="o", linewidth=1.6)
    errors = np.array([r[i]["expected_error"] for r in rows for i in (1, 2)])
    if errors.min() > 0 and errors.max() / errors.min() > 30:
        ax2.set_yscale("log")  # e.g. the interpolation peak of double descent
    ax2.set_ylabel(f"expected error ({_error_label(summary)})")
    ax2.set_title(f"expected error vs {axis} (±2 SE)")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.set_xlabel(axis)
        if categorical:
            ax.set_xticks(values)
            ax.set_xticklabels(names)
            ax.set_xlim(-0.5, len(values) - 0.5)
        elif values.min() > 0 and values.max() / values.min() >= 8:
            ax.set_xscale("log")
            ticks = [values[0]]
            for v in values[1:]:  # keep tick labels at least 0.12 decades apart
                if np.log10(v / ticks[-1]) >= 0.12:
                    ticks.append(v)
            ax.set_xticks(ticks)
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
            ax.xaxis.set_minor_locator(ticker.NullLocator())
    return fig


def _panel_lambdas(lambdas: Sequence[float], most: int = 4) -> list[float]:
    """Up to ``most`` weight decays spread over the grid, its ends included."""
    lambdas = sorted(lambdas)
    if len(lambdas) <= most:
        return lambdas
    return [lambdas[int(round(i))] for i in np.linspace(0, len(lambdas) - 1, most)]


@_styled
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
    valid = _valid(summary)
    picks = _panel_lambdas(valid["weight_decay"].unique())
    fig, axes = plt.subplots(1, len(picks), figsize=(3.9 * len(picks) + 0.6, 3.9),
                             squeeze=False, layout="constrained")  # fmt: skip
    pal = sns.color_palette("colorblind")
    values = valid[axis].to_numpy(float)
    errors = valid["expected_error"].to_numpy(float)
    log_y = errors.size and errors.min() > 0 and errors.max() / errors.min() > 30
    for ax, wd in zip(axes[0], picks, strict=True):
        s = valid[valid["weight_decay"] == wd].sort_values(axis)
        for col, label, color in (("bias2", "bias²", pal[0]), ("variance", "variance", pal[1]),
                                  ("expected_error", "expected error", pal[2])):  # fmt: skip
            y, se = s[col].to_numpy(float), s[f"{col}_se"].to_numpy(float)
            if log_y:  # display only: no line to -inf, band kept above zero
                y = np.where(y > 0, y, np.nan)
                se = np.minimum(se, 0.45 * y)
            _band(ax, s[axis], y, se, color, label=label, marker="o", markersize=3,
                  linewidth=1.5)  # fmt: skip
        if theory is not None and not theory.empty and axis in theory:
            t = theory[np.isclose(theory["weight_decay"], wd)].sort_values(axis)
            for col, color in (("bias2", pal[0]), ("variance", pal[1]),
                               ("expected_error", pal[2])):  # fmt: skip
                yt = t[f"{col}_theory"].to_numpy(float)
                yt = np.where(yt > 0, yt, np.nan) if log_y else yt
                ax.plot(t[axis], yt, color=color, linestyle=":", linewidth=1.4)
        ax.set_title(f"λ = {_fmt_lambda(wd)}")
        ax.set_xlabel(axis)
        if values.min() > 0 and values.max() / values.min() >= 8:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
        if log_y:  # e.g. the interpolation peak: non-positive bias² is not drawn
            ax.set_yscale("log")
    axes[0, 0].set_ylabel(_error_label(summary))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if theory is not None and not theory.empty and axis in theory:
        handles.append(plt.Line2D([], [], color="0.3", linestyle=":"))
        labels.append("closed form (theory.csv)")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"Bias², variance and expected error against {axis} (bands: ±2 SE, marginal)")
    return fig


def plot_axis(tables: Tables, out_dir, axis: str) -> list[Path]:
    """Draw the second-axis figures of a combined run into ``out_dir/figures``."""
    out = Path(out_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    summary = tables.summary
    paths: list[Path] = []
    if summary.empty:
        return paths
    paths += _save(fig_axis_decomposition(summary, axis), out, "axis_decomposition")
    paths += _save(fig_axis_heatmap(summary, axis), out, "axis_heatmap")
    paths += _save(fig_axis_best(summary, axis), out, "axis_best")
    if pd.api.types.is_numeric_dtype(summary[axis]):
        paths += _save(fig_axis_curves(summary, axis, tables.theory), out, "axis_curves")
    from .anova import fig_axis_anova, has_axis_anova  # its own module; it imports this one

    if has_axis_anova(tables.anova, axis):
        paths += _save(fig_axis_anova(tables.anova, axis), out, "axis_anova")
    return paths
