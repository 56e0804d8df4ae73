"""The house style of bvsim's figures and the pieces every figure uses: the style
itself, the weight-decay axis, a line with its ±2 SE band, a legend below, colours by
λ, the decomposition's curves and their labels, and saving a figure as PNG and PDF.

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

from ..io.rundir import FIGURES  # noqa: E402
from ..run.store import atomic_path  # noqa: E402
from ..task import task_of_run  # noqa: E402
from .common import noise_in_bias  # noqa: E402

__all__ = [
    "DPI",
    "DWARF_RATIO",
    "TERM_COLORS",
    "ZERO_GAP_DECADES",
    "LambdaAxis",
    "band",
    "components",
    "drop_figure",
    "dwarfed",
    "lambda_colors",
    "legend_below",
    "limit_to_estimates",
    "literal_text",
    "noise_floor_label",
    "save_figure",
    "styled",
    "symlog_y",
    "term_color",
    "term_names",
]

DPI = 150
#: Decades between the drawn position of λ = 0 and the smallest positive λ.
ZERO_GAP_DECADES = 1.25
#: The decomposition's curves, in drawing order (their labels: the task's words).
_COMPONENTS = (
    # column, colour index in the "colorblind" palette, marker
    ("bias2", 0, "o"),
    ("variance", 1, "s"),
    ("noise", 7, None),
    ("expected_error", 3, "D"),
    ("test_error", 2, "^"),
)


#: One fixed colour per source of the variance in every figure that splits it
#: (variance_split, anova, axis_anova); none is a colour of the decomposition's curves
#: (bias², variance, noise, errors: the "colorblind" palette's 0-3 and 7). Paul Tol's
#: "muted" scheme. ``data``: the training data's whole part (variance_split).
TERM_COLORS = {
    "inputs": "#332288",  # indigo: x (the drawn rows, for data from a file)
    "sample": "#332288",
    "label_noise": "#CC6677",  # rose: ε
    "init": "#AA4499",  # purple: the initialisation, everywhere
    "inputs:label_noise": "#999933",  # olive
    "inputs:init": "#88CCEE",  # cyan
    "sample:init": "#88CCEE",
    "label_noise:init": "#882255",  # wine
    "inputs:label_noise:init": "#DDCC77",  # sand
    "data": "#44AA99",  # teal
}
_TERM_FALLBACK = ("#661100", "#6699CC", "#888855", "#BBBBBB")


def term_color(term: str, i: int = 0):
    """The colour of a source of the variance (:data:`TERM_COLORS`); a term outside it
    gets the ``i``-th of a few spare colours."""
    return TERM_COLORS.get(term, _TERM_FALLBACK[i % len(_TERM_FALLBACK)])


def term_names(summary: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """What ``bias2`` and ``variance`` are in a run, as (panel title, short name): the
    run's task's words (:meth:`bvsim.task.Task.term_words`; with an unknown noise bias²
    includes it; for cross-entropy they are the KL terms of its decomposition)."""
    words = task_of_run(summary).term_words(noise_in_bias(summary))
    return {c: (words[c].title, words[c].short) for c in ("bias2", "variance")}


def noise_floor_label(summary: pd.DataFrame) -> str:
    """The legend of the known noise drawn as the floor of a test loss (the task's
    ``noise_floor_label``: σ² for squared error, the entropy of the true class
    probabilities for cross-entropy)."""
    return task_of_run(summary).noise_floor_label


def components(summary: pd.DataFrame) -> list[tuple[str, str, int, str | None]]:
    """The decomposition's curves to draw, as (column, legend label, colour index,
    marker), labelled by the run's task (:meth:`bvsim.task.Task.term_words`): with
    unknown noise (data from a file) bias² includes it and there is no noise curve; for
    a classification task they are the terms of the cross-entropy decomposition."""
    words = task_of_run(summary).term_words(noise_in_bias(summary))
    return [(c, words[c].legend, ci, m) for c, ci, m in _COMPONENTS if c in words]


def literal_text(text: str) -> str:
    """``text`` (a user's string, e.g. the run name) escaped so that matplotlib draws it
    as written: a ``$`` would otherwise start mathtext (and an unpaired one fail)."""
    return str(text).replace("$", r"\$")


@contextmanager
def _style():
    """The house style: seaborn whitegrid, fonts of 9 pt or more, no global change."""
    rc = {"axes.titlesize": 11, "legend.title_fontsize": 10, "savefig.dpi": DPI}
    with (
        sns.axes_style("whitegrid"),
        sns.plotting_context("notebook", font_scale=0.85, rc=rc),
    ):
        yield


def styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw ``func``'s figure in the house style."""

    @wraps(func)
    def inner(*args, **kwargs):
        with _style():
            return func(*args, **kwargs)

    return inner


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


def band(ax, x, y, se, color, alpha=0.2, floor: float | None = None, log: bool = False,
         **line_kw):  # fmt: skip
    """A line with markers and a ±2 SE band (no band where the SE is missing).

    Parameters
    ----------
    floor : float, optional
        The least value the quantity can take (0 for a variance, an error, a norm): the
        band's lower edge stops there, or at the estimate where an unbiased estimator
        put it below (a ±2 SE band of an error reaching −2500 drew a negative error).
    log : bool
        The y axis is (or will be) a log axis: where the lower edge is at or below 0 the
        band is left out (it would fill to the axis' bottom, as if the value could be
        that small) and the upper half drawn as a bar from the estimate.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.plot(x, y, color=color, **line_kw)
    if se is None:
        return
    se = np.asarray(se, float)
    lower, upper = y - 2 * se, y + 2 * se
    if floor is not None:
        lower = np.maximum(lower, np.minimum(y, floor))
    if not log:
        ax.fill_between(x, lower, upper, color=color, alpha=alpha, linewidth=0)
        return
    open_below = np.isfinite(se) & (lower <= 0) & (y > 0)
    ax.fill_between(x, np.where(open_below, y, lower), upper, where=~open_below, color=color,
                    alpha=alpha, linewidth=0)  # fmt: skip
    if open_below.any():
        ax.errorbar(x[open_below], y[open_below], yerr=[np.zeros(open_below.sum()),
                    2 * se[open_below]], fmt="none", ecolor=color, elinewidth=1.2,
                    capsize=3, alpha=0.8)  # fmt: skip


#: An estimate more than this many times the median of its kind (the expected error at
#: λ = 0 at the interpolation threshold against the other λ) gets a symlog y axis.
DWARF_RATIO = 20


def dwarfed(values) -> bool:
    """Whether the largest of ``values`` (one estimate per λ, say) is more than
    :data:`DWARF_RATIO` times their median: on a linear axis every other one would lie
    flat on the bottom."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return bool(v.size > 1 and np.median(v) > 0 and v.max() > DWARF_RATIO * np.median(v))


def symlog_y(ax, values) -> str:
    """A symlog y axis, linear within 10^⌊log₁₀(median/10)⌋ of 0 (the median of the
    positive ``values``), so that values many decades apart and slightly negative
    bias-corrected ones all show; returns the note for the axis label."""
    v = np.asarray(values, float)
    pos = v[np.isfinite(v) & (v > 0)]
    linthresh = 10 ** np.floor(np.log10(np.median(pos) / 10)) if pos.size else 1.0
    ax.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
    ax.autoscale(axis="y")  # the limits again, with margins on the new scale
    return f"symlog: linear below {linthresh:g}"


def limit_to_estimates(ax, values, pad: float = 0.6) -> None:
    """Narrow a linear y axis to the estimates ``values`` (with 0) widened by ``pad``
    of their span each way: one wide ±2 SE band must not squash every other estimate
    (the band runs off the axes instead). Never widens the limits."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not v.size:
        return
    lo, hi = min(v.min(), 0.0), max(v.max(), 0.0)
    span = hi - lo
    if span <= 0:
        return
    bottom, top = ax.get_ylim()
    ax.set_ylim(max(bottom, lo - pad * span), min(top, hi + pad * span))


def log_x_when_wide(ax, values) -> None:
    """A log x axis when the positive ``values`` span 8× or more (a second axis such as
    n_train); linear otherwise. On the log axis the ticks are the values themselves,
    labelled ``%g``, skipping any within 0.12 decades of the last labelled one, and no
    minor ticks (a span under two decades gets labelled minor ticks, "3×10¹4×10¹",
    that collide)."""
    values = np.unique(np.asarray(values, float))
    if values.min() > 0 and values.max() / values.min() >= 8:
        ax.set_xscale("log")
        ticks = [values[0]]
        for v in values[1:]:
            if np.log10(v / ticks[-1]) >= 0.12:
                ticks.append(v)
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.xaxis.set_minor_locator(ticker.NullLocator())


def legend_below(fig: Figure, ax, ncol: int = 3, **kw) -> None:
    """The legend of ``ax``, for the whole figure, centred below it without a frame."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, **kw)


def lambda_colors(lambdas) -> dict:
    """Sequential colours by λ rank (viridis without its pale yellow end).

    Build it once per run from the run's whole grid (``summary.csv``'s λ) and pass it
    to every figure that colours by λ, so that one λ has one colour in all of them (a
    map of only a figure's few selected λ gives the same λ another colour)."""
    lambdas = sorted(set(np.asarray(lambdas, dtype=float).tolist()))
    pal = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.82, max(len(lambdas), 2)))
    return {wd: tuple(pal[i]) for i, wd in enumerate(lambdas)}


def save_figure(fig: Figure, out: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``out/<name>.png`` and ``.pdf`` (a name of
    :data:`bvsim.io.rundir.FIGURES`), close it, and return the two paths."""
    assert name in FIGURES, name
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


def drop_figure(out: Path, name: str) -> None:
    """Remove ``out/<name>.png`` and ``.pdf`` if an earlier drawing left them: a figure
    that no longer applies to a run (redrawn by ``bvsim plot``) must not stay behind for
    the report to list."""
    assert name in FIGURES, name
    for suffix in (".png", ".pdf"):
        (out / f"{name}{suffix}").unlink(missing_ok=True)
