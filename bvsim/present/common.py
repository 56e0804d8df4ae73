"""What the figures and the report share: which rows have estimates, the best λ, how a
λ and a number are written, what a run's errors are called, and which λ a figure picks
(the figures and their captions: :mod:`.figure_table`).

Nothing here draws or writes a file.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..estimate.compare import paired_df, t_multiplier
from ..io.summary import VALID_STATUSES, best_index
from ..task import CLASSIFICATION, task_of_run

__all__ = [
    "axis_value_text",
    "best_position",
    "best_row",
    "critical_value",
    "crossed_factors_of",
    "crossed_se_text",
    "error_label",
    "get",
    "is_classification_run",
    "key_lambdas",
    "lambda_label",
    "lambda_text",
    "noise_in_bias",
    "num",
    "p_text",
    "paired_dof",
    "panel_lambdas",
    "pct",
    "pct_pm",
    "pm",
    "reproduce_lines",
    "se_units_text",
    "share_of",
    "t_interval_text",
    "term_name",
    "training_phrase",
    "valid_mask",
    "valid_rows",
    "z_score",
]

# --- rows -------------------------------------------------------------------------------


def valid_mask(summary: pd.DataFrame) -> pd.Series:
    """Which rows of ``summary`` (on its own index) have estimates: a status of
    :data:`bvsim.io.summary.VALID_STATUSES` and an expected error."""
    ok = summary["expected_error"].notna()
    if "status" in summary:
        ok &= summary["status"].isin(VALID_STATUSES)
    return ok


def valid_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The λ with estimates (:func:`valid_mask`), sorted by λ and numbered 0, 1, ...
    (an empty summary is returned as it is)."""
    if summary.empty:
        return summary
    return summary[valid_mask(summary)].sort_values("weight_decay").reset_index(drop=True)


def best_position(valid: pd.DataFrame) -> int:
    """Position of the best λ among :func:`valid_rows`: ``summary.csv``'s ``is_best``
    (:func:`bvsim.io.summary.paired_columns`: where members diverged, ranked on the
    sets every λ kept), else as it picks it without divergence
    (:func:`bvsim.io.summary.best_index`: least expected error, the smaller λ on a
    tie)."""
    if "is_best" in valid and valid["is_best"].astype(bool).sum() == 1:
        return int(np.flatnonzero(valid["is_best"].astype(bool).to_numpy())[0])
    return best_index(valid["expected_error"], valid["weight_decay"])


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


def is_classification_run(summary: pd.DataFrame, meta: dict | None = None) -> bool:
    """A finished run is a cross-entropy run (:func:`bvsim.task.task_of_run`: its
    ``run.json``, else its summary); otherwise squared error. The question
    :func:`bvsim.config.is_classification` answers of a configuration, asked of a run's
    tables (named apart: the two take different things)."""
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


def axis_value_text(value: float | str) -> str:
    """A second-axis value for a label: a number as ``%g``, a name as it is."""
    return value if isinstance(value, str) else f"{value:g}"


def num(value: float, sig: int = 4) -> str:
    """A number to ``sig`` significant digits; NaN as an em dash."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{sig}g}"


def p_text(p: float) -> str:
    """A p-value for the report: ``< 1e-10`` below that, else two significant digits."""
    return "< 1e-10" if p < 1e-10 else f"= {p:.2g}"


def se_units_text(ratio: float) -> str:
    """A difference in SE units: one decimal (3.9), or 3 significant digits from 1000
    on (1.24e+16 where a difference hardly varies over the sets)."""
    return f"{ratio:.1f}" if abs(ratio) < 1000 else f"{ratio:.3g}"


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


def paired_dof(recorded, n_common=None, crossed: bool = False):
    """The degrees of freedom of a paired SE, as every statement of the report takes them.

    ``recorded``: the df the run wrote (``diff_from_best_df``, ``variance_diff_prev_df``,
    ``run.json``'s ``diff_df``; a float or array, None where the run predates it): the
    sets compared minus one, or Satterthwaite's df of a crossed design's multiway
    jackknife. Where it is missing or NaN, a nested run's ``n_common`` (the sets the
    SE is over, float or array) gives :func:`bvsim.estimate.compare.paired_df`, as the
    run would have written it; a crossed design's Satterthwaite df cannot be rebuilt
    from the summary, so it has none. Below 1, none (Student's t needs at least one).

    Returns a float or an array, NaN where there are no usable degrees of freedom.
    """
    df = np.asarray(np.nan if recorded is None else recorded, dtype=float)
    n = np.asarray(np.nan if n_common is None or crossed else n_common, dtype=float)
    df = np.where(np.isfinite(df), df, paired_df(n))  # the shape of either
    with np.errstate(invalid="ignore"):
        df = np.where(df >= 1, df, np.nan)
    return float(df) if df.ndim == 0 else df


def critical_value(dof, level: float = 0.95):
    """How many SE a two-sided ``level`` interval spans (a one-sided test at ``alpha``:
    ``level = 1 - 2 alpha``): the one critical value of the report's statements.

    Student's t at ``dof`` (float or array, :func:`paired_dof`) where the df are usable:
    the SE is itself estimated from the sets (the levels of a crossed design's
    factors), and t widens the interval by that uncertainty (± 2 SE covers 86 % at 4
    sets). Where there are none (NaN: a crossed run written before the df columns, a
    summary without them or the sets), the normal quantile, Student's t as df → ∞: with
    nothing to tell how uncertain the SE is, it is taken as exact. That is the one
    rule that holds at every level (the Bonferroni levels of the variance-rise and
    identity checks too; the conventional 2 is the 95 % normal quantile rounded, with
    no counterpart at other levels), and it is optimistic where the df are in fact few,
    so the report names the normal quantile wherever it uses it.
    """
    q = np.asarray(t_multiplier(dof, level=level), dtype=float)
    q = np.where(np.isfinite(q), q, float(t_multiplier(np.inf, level=level)))
    return float(q) if q.ndim == 0 else q


def t_interval_text(dof: float, crossed: bool) -> str:
    """How a two-sided 95 % interval of ``dof`` degrees of freedom was set, as the
    report words it (Satterthwaite's in a crossed design)."""
    how = "Satterthwaite's " if crossed else ""
    return (
        f"a two-sided 95 % interval: Student's t with {how}{round(float(dof), 1):g} "
        "degrees of freedom"
    )


def reproduce_lines(meta: dict, run_dir) -> list[str]:
    """The "Reproduce" section of a report (a run's and a second-axis run's alike): the
    shipped preset by name where the run is one unchanged (``run.json``'s ``preset``),
    the saved ``config.toml`` into the same directory, and the device it trained on."""
    lines = ["## Reproduce", ""]
    name = meta.get("preset")  # a shipped preset run unchanged (bvsim.run_sweep notes it)
    if name:
        lines += [
            f"This run uses the shipped preset `{name}`:",
            "",
            "```sh",
            f"bvsim sweep --preset {name}",
            "```",
            "",
        ]
        if name == "seed-demo":
            lines += ["or `make sweep` (which writes `results/seed-demo/`).", ""]
        else:
            lines += [f"or `make sweep PRESET={name}`.", ""]
    lines += [
        "To rerun exactly this configuration, use the `config.toml` saved in the run "
        "directory (rerunning into the same directory resumes from its finished chunks):",
        "",
        "```sh",
        f"bvsim sweep {run_dir}/config.toml --out {run_dir}",
        "```",
        "",
    ]
    device = meta.get("device")
    if device:
        lines += [
            f"This run trained on `{device}`; pass `--device` to choose the device "
            "(the default is `cpu`).",
            "",
        ]
    return lines


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


# --- the λ a figure picks ---------------------------------------------------------------


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
