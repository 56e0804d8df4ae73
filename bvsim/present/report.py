"""``report.md`` of a finished run: an introduction, the findings
(:mod:`.findings`), a summary table, the crossed design's and the seed ensemble's
sections where they apply, the figures with their captions, and how to reproduce the
run. This module assembles them; the report of a second-axis run is
:mod:`.axis_report`.

Every number in the report is computed from :class:`bvsim.io.tables.Tables`; nothing is
hard-coded, and nothing new is estimated here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.checks import MIN_SETS_FOR_TARGET
from ..io.tables import Tables
from ..run.store import write_text_atomic
from .checks import theory_agreement
from .common import (
    critical_value,
    crossed_factors_of,
    crossed_se_text,
    get,
    is_classification_run,
    lambda_text,
    noise_in_bias,
    num,
    pct,
    pct_pm,
    pm,
    reproduce_lines,
    term_name,
    training_phrase,
    valid_rows,
)
from .early_stopping import early_stopping_finding
from .figure_table import drawn_figures, figure_lines
from .findings import findings

__all__ = [
    "anova_section",
    "ensemble_section",
    "summary_table",
    "write_report",
]


def write_report(tables: Tables, out_dir) -> Path:
    """Write ``out_dir/report.md`` from the tables (and the figures already drawn).

    Parameters
    ----------
    tables : Tables
        From :func:`bvsim.io.tables.read_tables` or :func:`bvsim.io.tables.summarize`.
    out_dir : path
        The run directory. Figures found in ``out_dir/figures/`` are embedded.

    Returns
    -------
    Path
        The report file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s, meta = tables.summary, tables.meta
    lines = [f"# Bias–variance report: {meta.get('name', out_dir.name)}", ""]
    if s.empty:
        lines += ["The summary table is empty: nothing to report.", ""]
    else:
        lines += [
            *_introduction(s, meta),
            *_findings_section(tables),
            *_summary_section(s, meta),
            *anova_section(tables.anova, s),
            *ensemble_section(s),
        ]
    figures = figure_lines(
        drawn_figures(out_dir / "figures"), crossed=bool(crossed_factors_of(meta))
    )
    if figures:
        lines += ["## Figures", "", *figures]
    lines += reproduce_lines(meta, out_dir)
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path


def _introduction(s: pd.DataFrame, meta: dict) -> list[str]:
    """What was run: the grid, the training, what the errors are, the precision target."""
    k, n_seeds = int(s["n_reps"].max()), int(s["n_seeds"].max())
    members = meta.get("n_members")
    return [
        f"{len(s)} weight decays λ, {k} training sets × {n_seeds} seed(s) each"
        + (f", {members} trained members in all" if members else "")
        + training_phrase(meta)
        + (f" on `{meta['device']}`" if "device" in meta else "")
        + (
            ". Errors are cross-entropies (nats) on the test points: in this report and "
            "in `summary.csv`, 'bias²' is the bias term KL(p ‖ π̄) of the exact "
            "cross-entropy decomposition (π̄ the normalized geometric mean of the "
            "members' predicted distributions), 'variance' is mean KL(π̄ ‖ π) (both "
            "jackknife-corrected) and 'noise' the entropy of the true class probabilities "
            + ("(unknown here: see below)" if noise_in_bias(s) else "(exact)")
            if is_classification_run(s, meta)
            else ". Errors are mean squared errors on the test points"
        )
        + (
            f"; ± values are Monte Carlo standard errors (SE): {crossed_se_text(meta)}, "
            "since the training sets of a crossed design share their draws and are not "
            "independent."
            if crossed_factors_of(meta)
            else "; ± values are Monte Carlo standard errors (SE) over training sets."
        )
        + (
            " The data come from a file: every estimate is conditional on its one "
            "held-out test split and on its pool of training rows, from which the "
            "training sets are drawn (`data.resample`), so the SEs measure the Monte Carlo "
            "error given that split and pool, not how much another split, or another "
            "sample from the population, would differ."
            if noise_in_bias(s)
            else ""
        )
        + (
            " Here every SE is empty (NaN in the CSVs): a factor has only 2 levels, and "
            "leaving one of them out leaves no variance to estimate; give every factor at "
            "least 3 levels for error bars."
            if crossed_factors_of(meta) and _no_se(s)
            else ""
        ),
        "",
        *_precision_lines(meta),
    ]


def _no_se(s: pd.DataFrame) -> bool:
    """Whether no λ with estimates has an SE (a crossed factor with 2 levels)."""
    v = valid_rows(s)
    return not v.empty and v["expected_error_se"].isna().all()


def _findings_section(tables: Tables) -> list[str]:
    """The findings as bullets (the summary's, theory's, early stopping's), and how the
    comparisons across λ are paired."""
    s, meta = tables.summary, tables.meta
    bullets = [
        *findings(s, meta),
        *[t for t in [theory_agreement(s, tables.theory)] if t],
        *[t for t in [early_stopping_finding(meta)] if t],
    ]
    one_lambda = len(valid_rows(s)) <= 1  # nothing compared across λ
    return [
        "## Findings",
        "",
        *[f"- {b}" for b in bullets],
        "",
        *([] if one_lambda else [_pairing(s, meta), ""]),
    ]


def _pairing(s: pd.DataFrame, meta: dict) -> str:
    """How the comparisons across λ are paired, and how their 95 % interval is set
    (Student's t where the summary has degrees of freedom; none said otherwise)."""
    crossed = bool(crossed_factors_of(meta))
    has_df = "diff_from_best_df" in s
    if crossed:
        interval = (
            ", its 95 % interval ± t SE with Student's t at Satterthwaite's degrees of "
            "freedom" if has_df else ""
        )  # fmt: skip
    elif has_df or "n_common_with_best" in s:
        interval = (
            "; its 95 % interval is ± t paired SE, t the quantile of Student's t with the "
            "sets compared minus one degrees of freedom"
        )
    else:
        interval = ""
    df = " `diff_from_best_df`," if has_df else ""
    return (_CROSSED_PAIRING if crossed else _PAIRING).format(interval=interval, df=df)


#: How the comparisons across λ are paired (nested design).
_PAIRING = (
    "Comparisons across λ are paired: every λ trains on the same training sets, so a "
    "difference is the mean over training sets of each set's difference, with SE "
    "sd/√K over the sets usable at both λ (for a component that is not a plain mean, "
    "the jackknife of the difference of the leave-one-set-out estimates){interval}. The "
    "SE of a share is the jackknife SE of the ratio. `summary.csv` holds them "
    "(`diff_from_best`,{df} `prob_best`, `is_one_se`, `identity_gap`, `*_share`, "
    "`variance_diff_prev`, `bias2_se0`; see results/README.md)."
)
#: How the comparisons across λ are paired (crossed design).
_CROSSED_PAIRING = (
    "Comparisons across λ are paired: every λ trains every cell of the crossed design, "
    "so the SE of a difference (or a ratio) is the multiway jackknife of the difference "
    "(ratio) of the two λ's delete-one-level estimates{interval}, and `prob_best` "
    "resamples each factor's levels independently (pigeonhole bootstrap). `summary.csv` "
    "holds them (`diff_from_best`,{df} `prob_best`, `is_one_se`, `identity_gap`, "
    "`*_share`, "
    "`variance_diff_prev`; `bias2_se0` is empty: its estimate assumes independent "
    "training sets; see results/README.md)."
)


def _summary_section(s: pd.DataFrame, meta: dict) -> list[str]:
    """The summary table and how to read it."""
    return [
        "## Summary",
        "",
        summary_table(s),
        "",
        (
            "Bias² is the jackknife-corrected bias term (the plug-in minus its estimated "
            "excess, bias reduced but not exactly unbiased), able to go slightly negative; "
            if is_classification_run(s, meta)
            else "Bias² is the bias-corrected estimate (the plug-in minus its estimated "
            "excess), unbiased but able to go slightly negative; "
        )
        + "it is not clipped. '− best' is the expected error's difference from the best "
        + (
            "λ's, paired over the factor levels (± its multiway-jackknife SE); "
            if crossed_factors_of(meta)
            else "λ's, paired over training sets (± its paired SE); "
        )
        + "P(best) is `prob_best`; "
        "(1-SE) marks the one-SE-rule λ. Rows with status other than `ok`/`some_diverged` "
        "have no estimates (—).",
        "",
    ]


def _precision_lines(meta: dict) -> list[str]:
    """How many training sets a ``sweep.target_se`` run needed, and why it stopped."""
    if "target_se" not in meta:
        return []
    k = meta["n_reps_done"]
    stopped = "target_se reached" in meta["stop_reason"]
    if stopped:
        size = meta.get("chunk_size")
        checked = (  # the target is checked only at chunk ends, from MIN_SETS_FOR_TARGET on
            f"the first end of a chunk ({size} sets a chunk; checked from "
            f"{MIN_SETS_FOR_TARGET} sets on)"
            if size
            else "the first end of a chunk checked"
        )
        why = (
            f"it stopped at {k} training sets, {checked} at which every paired SE of a "
            f"λ's difference from the best, and the SE of the best λ's expected error, "
            f"were at most the target (worst {num(meta['worst_se'], 3)}); fewer sets may "
            "have met it between two checks"
        )
    else:
        need = k * (meta["worst_se"] / meta["target_se"]) ** 2  # SEs shrink as 1/√K
        about = (  # no estimate where no λ had an SE (every member diverged)
            f"it would take about {math.ceil(need)} sets (SEs shrink as 1/√K); "
            if np.isfinite(need)
            else ""
        )
        why = (
            f"it used all {k} training sets allowed by sweep.n_reps and still missed the "
            f"target (worst SE {num(meta['worst_se'], 3)}): {about}raise sweep.n_reps "
            + (
                "and run again into the same directory, which reuses its chunks"
                if meta.get("n_chunks", 0) > 1
                else "with sweep.chunk_size set (this run was one chunk, so it could not "
                "stop early, and a rerun with more sets trains that chunk again: a chunk is "
                "reused only whole)"
            )
        )
    optimistic = (
        " The SEs at such a stop are somewhat optimistic, since the rule stops where the "
        "estimated SEs happen to look small (±1.96 SE covered 85–87 % instead of 87–93 % "
        "in a simulation with skewed losses: `scripts/target_se_coverage.py`); a second "
        "run with a fixed sweep.n_reps and another root seed avoids that selection."
        if stopped
        else ""  # every set allowed was used: no stop was selected
    )
    return [
        f"Precision target: sweep.target_se = {meta['target_se']:g}; {why}. Training "
        "sets were added chunk by chunk in seed-tree order, so these results equal a run "
        f"with sweep.n_reps = {k}.{optimistic}",
        "",
    ]


def summary_table(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (values to 4 significant digits, "±" SE).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    """
    head = ["λ", "bias²", "variance", "noise", "expected error", "− best (paired)", "P(best)",
            "test error", "diverged", "status"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.sort_values("weight_decay").itertuples():
        one_se = bool(getattr(r, "is_one_se", False)) and not bool(r.is_best)
        marks = [m for m, on in (("best", r.is_best), ("1-SE", getattr(r, "is_one_se", False)))
                 if bool(on)]  # fmt: skip
        lam = lambda_text(r.weight_decay) + (f" ({', '.join(marks)})" if marks else "")
        cells = [
            f"**{lam}**" if bool(r.is_best) or one_se else lam,
            pm(r.bias2, r.bias2_se),
            pm(r.variance, r.variance_se),
            num(r.noise),
            pm(r.expected_error, r.expected_error_se),
            pm(get(r, "diff_from_best"), get(r, "diff_from_best_se")),
            pct(get(r, "prob_best")),
            pm(r.test_error, r.test_error_se),
            str(int(r.n_diverged)) if np.isfinite(r.n_diverged) else "—",
            str(r.status),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def anova_section(anova: pd.DataFrame | None, summary: pd.DataFrame) -> list[str]:
    """The report's section on the crossed design: every term per λ with its SE, and
    which source dominates the variance at each λ (empty for a nested run)."""
    if anova is None or anova.empty or not anova["value"].notna().any():
        return []
    terms = list(dict.fromkeys(anova.loc[anova["share"].notna(), "term"]))
    cols = ["bias2", *terms, "variance", "noise", "expected_error"]
    heads = ["bias²", *map(term_name, terms), "variance", "noise", "expected error"]
    lines = [
        "## Where the variance comes from",
        "",
        "A crossed design: every draw of the training inputs meets every draw of the "
        "label noise and every initialization, so the variance splits into main effects "
        "and interactions (random-effects ANOVA, expected mean squares; unbiased, so a "
        "component can come out slightly negative). bias² + the terms + noise is the "
        "expected error exactly. ± is the multiway-jackknife SE (conservative on average, "
        "but noisy where a factor has few levels: a main effect from 5–10 levels lies "
        "beyond 2 SE of the truth in about 15 % of simulated studies)."
        + _df_text(anova)
        + " Factors with one level are left out. The summary above takes its bias², "
        "variance and SEs from the same estimators.",
        "",
        "| λ | " + " | ".join(heads) + " |",
        "|" + "---|" * (len(heads) + 1),
    ]
    found = []
    for wd, part in anova.groupby("weight_decay", sort=True):
        t = part.set_index("term")
        cells = [pm(get(t.value, c), get(t.se, c)) for c in cols]
        lines.append(f"| {lambda_text(wd)} | " + " | ".join(cells) + " |")
        v = t.loc[terms, "value"].astype(float)
        if not v.notna().all():
            continue
        order = list(v.sort_values(ascending=False).index)
        top = order[0]
        share, share_se = get(t.share, top), get(t.share_se, top)
        mult = _share_t(t, top)
        verb = (  # more than half of the variance by t(df) SE, or just the largest estimate
            "dominates the variance"
            if share - mult * share_se > 0.5
            else "is the largest estimated source of variance"
        )
        text = f"λ = {lambda_text(wd)}: {term_name(top)} {verb} ({pct_pm(share, share_se)})"
        if len(order) > 1:
            nxt = order[1]
            text += f", then {term_name(nxt)} ({pct_pm(t.share[nxt], t.share_se[nxt])})"
        found.append(text + ".")
    lines += ["", *[f"- {f}" for f in found], ""]
    return lines


def _share_t(t: pd.DataFrame, term: str) -> float:
    """The one-sided 97.5 % multiplier of a term's share
    (:func:`bvsim.present.common.critical_value`): Student's t at its ``share_df``, the
    normal quantile for a run written before ``anova.csv`` had it, or where it is NaN."""
    return critical_value(t["share_df"].get(term, np.nan) if "share_df" in t else np.nan)


def _df_text(anova: pd.DataFrame) -> str:
    """The range of the shares' Satterthwaite df and the interval they give (without
    them: the normal quantile that :func:`_share_t` then uses)."""
    if "share_df" not in anova or not anova["share_df"].notna().any():
        return (
            " `anova.csv` has no degrees of freedom of the shares (`share_df`), so a source "
            f"is said to dominate when its share exceeds 50 % by {critical_value(np.nan):.2f} "
            "times its SE (the normal quantile; optimistic when the factors have few levels)."
        )
    lo, hi = anova["share_df"].min(), anova["share_df"].max()
    return (
        f" `anova.csv` gives each SE's Satterthwaite degrees of freedom (`df`, `share_df`;"
        f" here {lo:.1f} to {hi:.1f} for the shares): a 95 % interval spans ± t(df) SE, "
        f"± {critical_value(lo):.2f} SE at {lo:.1f} df; a source is said to "
        "dominate only when its share exceeds 50 % by t(`share_df`) times its SE."
    )


def ensemble_section(summary: pd.DataFrame) -> list[str]:
    """What averaging the S initializations of a training set would gain, per λ (empty
    without ``ensemble_error``: one seed, classification or an older run)."""
    if "ensemble_error" not in summary or not summary["ensemble_error"].notna().any():
        return []
    n_seeds = int(summary["n_seeds"].max())
    lines = [
        f"## An ensemble of the {n_seeds} initializations",
        "",
        f"Averaging the predictions of the {n_seeds} initializations trained on one "
        "training set removes all but 1/S of the initialization variance: expected error "
        "bias² + variance_data + variance_init/S + noise (`ensemble_error`), lower by "
        "(1 − 1/S)·variance_init (`ensemble_gain`).",
        "",
        "| λ | expected error | ensemble error | gain | gain / error |",
        "|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        ee, gain = get(row, "expected_error"), get(row, "ensemble_gain")
        lines.append(
            f"| {lambda_text(row.weight_decay)} | {pm(ee, get(row, 'expected_error_se'))} | "
            f"{pm(get(row, 'ensemble_error'), get(row, 'ensemble_error_se'))} | "
            f"{pm(gain, get(row, 'ensemble_gain_se'))} | "
            f"{pct(gain / ee) if ee else '—'} |"
        )
    return [*lines, ""]
