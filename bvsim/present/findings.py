"""The findings of ``report.md``: one function per finding, each a factual statement
computed from ``summary.csv`` (and ``run.json``), in the order of :data:`FINDINGS`.

Every comparison across λ uses the paired figures of ``summary.csv``
(``diff_from_best``, ``identity_gap``, ``variance_diff_prev``, shares with jackknife SEs;
:mod:`bvsim.estimate.compare`): the λ of one run share their training sets (and test
labels), so a difference is a mean over training sets of per-set differences. A run
written before these columns existed gets its findings without the paired
comparisons (and says so). Nothing new is estimated here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from .checks import bias_zero, identity_check, theory_agreement, variance_monotone
from .common import (
    get,
    is_classification_run,
    lambda_text,
    noise_in_bias,
    num,
    p_text,
    pct,
    pct_pm,
    pm,
    se_units_text,
    share_of,
    valid_rows,
)
from .diverged import diverged, missing_estimates
from .run_view import Sweep

__all__ = [
    "FINDINGS",
    "Sweep",
    "findings",
    "theory_agreement",
]


def noise_unknown(run: Sweep) -> str | None:
    """Data from a file: bias² includes the noise."""
    s = run.summary
    if not noise_in_bias(s):
        return None
    return (
        "**The noise is unknown** (the data come from a file, with no generator): the "
        "test labels stand in for the truth, so every bias² below is **bias² + noise** "
        "and the expected error is bias² + noise + variance. The noise is not separated."
    )


def noise_estimate(run: Sweep) -> str | None:
    """With unknown noise, the estimate from rows with repeated x (where there is one)."""
    s = run.summary
    if not noise_in_bias(s):
        return None
    if not ("noise_estimate" in s and s["noise_estimate"].notna().any()):
        return None
    noise, se = s["noise_estimate"].iloc[0], get(s.iloc[0], "noise_estimate_se")
    said = num(noise) if math.isnan(se) else f"{pm(noise, se)} (SE: jackknife over the x)"
    return (
        f"Rows with repeated x give a noise estimate of {said} (pooled within-group "
        "variance): bias² itself is roughly bias2 minus that."
    )


def _parts(run: Sweep, row: pd.Series, se: bool) -> str:
    """A row's bias², variance and noise (with their SEs when ``se``), for a
    parenthesis; with an unknown noise (data from a file) 'bias² + noise' and variance."""

    def value(name):
        return pm(row[name], row[f"{name}_se"]) if se else num(row[name])

    if noise_in_bias(run.summary):
        return f"bias² + noise {value('bias2')}, variance {value('variance')}"
    return f"bias² {value('bias2')}, variance {value('variance')}, noise {num(row['noise'])}"


def best_lambda(run: Sweep) -> str:
    """The best λ, and which λ are within the 95 % interval (Student's t) of it."""
    v, ib, paired, best = run.valid, run.best_pos, run.paired, run.best
    if len(v) == 1:  # nothing to compare it with
        return (
            f"**λ = {lambda_text(best['weight_decay'])}**, the one λ with estimates: "
            f"expected error {pm(best['expected_error'], best['expected_error_se'])} "
            f"({_parts(run, best, True)})."
        )
    text = (
        f"**Best λ = {lambda_text(best['weight_decay'])}**: expected error "
        f"{pm(best['expected_error'], best['expected_error_se'])} ({_parts(run, best, True)})."
    )
    if not paired:
        has_diff = "diff_from_best" in v and v["diff_from_best"].drop(v.index[ib]).notna().any()
        if has_diff:  # the differences, but no SE of them (e.g. a 2-level crossed factor)
            return text + (
                " This run's `summary.csv` has the paired differences from the best "
                "(`diff_from_best`) but no SE of them (`diff_from_best_se` is empty), so "
                "whether the other λ are worse than the best is not tested."
            )
        return text + (
            " This run's `summary.csv` has no paired differences (`diff_from_best`), so "
            "how far the other λ are from the best is not stated."
        )
    if run.best_at_edge:
        text += (
            f" It is the {run.best_at_edge} λ of the grid: the optimum may lie beyond it, "
            "where a λ could lower the error further."
        )
    d, se = v["diff_from_best"].to_numpy(float), v["diff_from_best_se"].to_numpy(float)
    others = [i for i in range(len(v)) if i != ib and np.isfinite(se[i]) and se[i] > 0]
    near = run.near()
    signs, apart = run.signs, run.heavy_tailed
    tied = [i for i in near if i not in apart]
    width, how_set = run.interval(others)
    if apart:
        text += _apart_text(run, apart, d, se, width, how_set)
    if tied:
        lams = ", ".join(
            f"{lambda_text(v.loc[i, 'weight_decay'])} (+{pm(d[i], se[i])}"
            + (f"; worse in {signs[i][0]})" if i in signs else ")")
            for i in tied
        )
        how = (
            "every λ shares every level of every factor, so its SE is the multiway "
            "jackknife of the difference"
            if run.crossed
            else "paired over the training sets both λ can use"
        )
        note = f"{how_set}; " if how_set and not apart else ""
        text += (
            f" {'Otherwise w' if apart else 'W'}ithin {width} of it ({note}the difference "
            f"in expected error, {how}): "
            f"λ = {lams}; the optimum is not resolved more finely than that."
        )
        if len(near) < len(others):
            text += f" Every other λ is worse by more than {width}."
    elif apart and len(near) < len(others):
        text += f" Every other λ is worse by more than {width}."
    elif others and not apart:
        c = min(others, key=lambda i: d[i] / se[i])
        note = f"{how_set}; " if how_set else ""
        text += (
            f" Every other λ has a higher expected error by more than {width} ({note}the "
            f"difference paired over shared {'factor levels' if run.crossed else 'training sets'}"
            "); the closest is λ = "
            f"{lambda_text(v.loc[c, 'weight_decay'])}, worse by {pm(d[c], se[c])} "
            f"({se_units_text(d[c] / se[c])} SE)."
        )
    return text


def _apart_text(run: Sweep, apart, d, se, width: str, how_set: str) -> str:
    """The λ within the 95 % interval of the best that a sign test (in a crossed design:
    worse in every cell) tells apart from it."""
    v, signs = run.valid, run.signs
    within = f" Within {width} of it{f' ({how_set})' if how_set else ''}, yet worse than it"
    if run.crossed:
        parts = ", ".join(
            f"{lambda_text(v.loc[i, 'weight_decay'])} (+{pm(d[i], se[i])}, worse in {signs[i][0]})"
            for i in apart
        )
        return (
            f"{within} in every cell of the crossed design: λ = {parts}. A few draws of "
            "the factors dominate such a difference and its SE (a heavy tail; the mean "
            "may not even exist), so that SE is no guide, and the λ is not tied with the "
            "best but worse in a typical cell (a count, not a test: the cells share "
            "their draws, so no sign test applies)."
        )
    parts = ", ".join(
        f"{lambda_text(v.loc[i, 'weight_decay'])} (+{pm(d[i], se[i])}, worse in "
        f"{signs[i][0]}; sign test p {p_text(signs[i][1])})"
        for i in apart
    )
    return (
        f"{within} in more training sets than chance explains: λ = {parts}. Such per-set "
        "differences are skewed or heavy-tailed (the mean may not even exist): a few sets "
        "dominate their mean and its SE, so that SE is no guide, and the λ is not tied "
        "with the best but worse in a typical training set (two-sided sign test of the "
        "per-set differences, Bonferroni-corrected for the "
        f"{len(signs)} λ compared with the best)."
    )


#: Below this many training sets the report says how few resamples the bootstrap has.
FEW_SETS = 10


def how_sure(run: Sweep) -> str | None:
    """How often the best λ wins under a paired bootstrap, and the one-SE-rule λ (a run
    with paired comparisons only)."""
    if not run.paired:
        return None
    v, ib, meta, best = run.valid, run.best_pos, run.meta, run.best
    pb = v["prob_best"].to_numpy(float)
    n_boot = meta.get("prob_best_resamples")
    seed = meta.get("prob_best_seed")
    what = (
        "pigeonhole-bootstrap resamples of the crossed factors (each factor's levels "
        "resampled independently, Owen 2007; the same resample"
        if run.crossed
        else "bootstrap resamples of the training sets (the same resampled sets"
    )
    text = (
        f"How sure: λ = {lambda_text(best['weight_decay'])} is the best in {pct(pb[ib])} of "
        f"{n_boot or 'the'} {what} at every λ{f'; seed {seed}' if seed else ''}, `prob_best`)"
    )
    rivals = sorted((i for i in range(len(v)) if i != ib and pb[i] >= 0.01), key=lambda i: -pb[i])
    if rivals:
        text += "; other λ win in " + ", ".join(
            f"{pct(pb[i])} (λ = {lambda_text(v.loc[i, 'weight_decay'])})" for i in rivals
        )
    text += "."
    k = int(best["n_reps_used"]) if not run.crossed and "n_reps_used" in best else 0
    if 0 < k < FEW_SETS:
        text += (
            f" With only {k} training sets the bootstrap draws from at most "
            f"{math.comb(2 * k - 1, k)} distinct resamples, so this share is a rough guide "
            "(more sets make it reliable)."
        )
    one = v[v["is_one_se"].astype(bool)] if "is_one_se" in v else v.iloc[:0]
    if not one.empty and one.iloc[0]["weight_decay"] != best["weight_decay"]:
        o = one.iloc[0]
        text += (
            " Paired one-SE rule (the SE of the difference from the best, not the textbook "
            "rule's SE of the best λ's error alone): the largest λ within one paired SE of "
            f"the best is λ = "
            f"{lambda_text(o['weight_decay'])} (worse by "
            f"{pm(o['diff_from_best'], o['diff_from_best_se'])})."
        )
    elif not one.empty and run.best_at_edge == "largest":
        text += (
            " Paired one-SE rule: the best λ is the largest of the grid, so there is no larger λ."
        )
    elif not one.empty:
        text += (
            " Paired one-SE rule: no larger λ is within one paired SE of the best, so it "
            "keeps the best λ."
        )
    return text + (
        " The best λ's expected error is a minimum over noisy estimates, so it is "
        "optimistically biased: fresh training sets would on average give that λ a "
        "somewhat higher error."
    )


def reduction(run: Sweep) -> str | None:
    """How much the best λ lowers the expected error relative to the smallest λ."""
    first, ref = run.valid.iloc[0], run.reference
    if len(run.valid) == 1:
        return None
    if run.best_pos == 0:
        loss = "cross-entropy" if is_classification_run(run.summary, run.meta) else "error"
        if first["weight_decay"] == 0:
            text = f"The best λ is {ref} itself: weight decay did not reduce the expected {loss}"
        else:  # λ = 0 was not trained: nothing says what no weight decay would give
            text = (
                f"The best λ is {ref} itself: no larger λ of the grid reduced the expected "
                f"{loss}; λ = 0 is not in the grid, so whether weight decay reduces it at "
                "all is not measured here (add 0 to sweep.weight_decay)"
            )
        if loss == "cross-entropy":
            text += (
                ", the loss decomposed here (the 0-1 and Brier errors in `summary.csv`, "
                "`zero_one_error` and `brier_error`, may rank the λ otherwise)"
            )
        return text + "."
    e0, s0 = first["expected_error"], first["expected_error_se"]
    text = f"Relative to {ref} (expected error {pm(e0, s0)}), the best λ "
    if 0 in run.heavy_tailed:
        unit = "draws" if run.crossed else "sets"
        how_heavy = f"; a few {unit} dominate it, so its SE is no guide, see above"
    else:
        how_heavy = ""
    if run.paired:
        n = get(first, "n_common_with_best")
        how = (
            "paired, multiway jackknife over the factors"
            if run.crossed
            else "paired over the training sets usable at both"
            + (f", {int(n)} sets" if np.isfinite(n) else "")
        ) + how_heavy
        return text + (
            "reduces the expected error by "
            f"{pct_pm(get(first, 'reduction_by_best'), get(first, 'reduction_by_best_se'))} "
            "(absolute "
            f"{pm(first['diff_from_best'], first['diff_from_best_se'])}; {how})."
        )
    red = 1 - run.best["expected_error"] / e0
    return text + f"has a {pct(red)} lower expected error (no paired SE in this run)."


def shares(run: Sweep) -> str:
    """Variance's share of the expected error at the smallest λ, bias²'s (bias² +
    noise's, with an unknown noise) at the largest."""
    first, last = run.valid.iloc[0], run.valid.iloc[-1]
    bias = "bias² + noise" if noise_in_bias(run.summary) else "bias²"
    var_se, bias_se = get(first, "variance_share_se"), get(last, "bias2_share_se")
    how = (
        f"{'multiway-' if run.crossed else ''}jackknife SEs of the ratios"
        if np.isfinite(var_se) or np.isfinite(bias_se)
        else "no SE of the ratios in this run"
    )
    if len(run.valid) == 1:
        bias_share = pct_pm(share_of(first, "bias2"), get(first, "bias2_share_se"))
        return (
            f"At λ = {lambda_text(first['weight_decay'])}, variance is "
            f"{pct_pm(share_of(first, 'variance'), var_se)} and {bias} {bias_share} "
            f"of the expected error ({_parts(run, first, False)}; {how})."
        )
    return (
        f"At {run.reference}, variance is {pct_pm(share_of(first, 'variance'), var_se)} "
        f"of the expected error ({_parts(run, first, False)}). At the largest λ "
        f"({lambda_text(last['weight_decay'])}), {bias} is "
        f"{pct_pm(share_of(last, 'bias2'), bias_se)} of it ({how})."
    )


def zero_one(run: Sweep) -> str | None:
    """The 0-1 loss decomposition at the best λ (a classification run)."""
    s, best = run.valid, run.best
    if "zero_one_error" not in s or pd.isna(best.get("zero_one_error")):
        return None
    error = pm(best["zero_one_error"], best["zero_one_error_se"])
    terms = f"noise term {num(best['zero_one_noise_term'])} + bias {num(best['zero_one_bias'])}"
    if noise_in_bias(s):  # test labels stand in for the truth: the noise is in the bias
        terms = f"bias, noise included (unknown here) {num(best['zero_one_bias'])}"
    return (
        f"0-1 loss at the best λ (Domingos 2000; the terms add up exactly): error {error} "
        f"= {terms} + variance term {num(best['zero_one_variance_term'])} (unweighted "
        f"variance {num(best['zero_one_variance'])})."
    )


def variance_split(run: Sweep) -> str | None:
    """The initialization's and the data's parts of the variance at the smallest and the
    best λ (a run with several seeds)."""
    v, best = run.valid, run.best
    if not ("variance_init" in v and v["variance_init"].notna().any()):
        return None
    parts = []
    rows = [("λ = " + lambda_text(v.iloc[0]["weight_decay"]), v.iloc[0])]
    if best["weight_decay"] != v.iloc[0]["weight_decay"]:
        rows.append((f"the best λ = {lambda_text(best['weight_decay'])}", best))
    for label, row in rows:
        share = get(row, "variance_init_share")
        if not np.isfinite(share):  # an older run: the ratio without an SE
            share = row["variance_init"] / row["variance"] if row["variance"] > 0 else np.nan
        share_se = get(row, "variance_init_share_se")
        share_text = pct_pm(share, share_se)
        parts.append(
            f"at {label}, {share_text} of the variance is initialization variance "
            f"({pm(row['variance_init'], row['variance_init_se'])}) and the rest data "
            f"variance ({pm(row['variance_data'], row['variance_data_se'])})"
        )
    if run.crossed:
        how = "the ANOVA terms with the initialization"
    elif is_classification_run(run.summary, run.meta):
        how = (
            "the exact split of the variance term, mean KL(π̄ ‖ π), into mean KL(π̄ ‖ π̄ₖ) "
            "between training sets and mean KL(π̄ₖ ‖ π) between seeds, π̄ₖ the normalized "
            "geometric mean of set k's seeds"
        )
    else:
        how = "law of total variance"
    return f"Variance split ({how}): " + "; ".join(parts) + "."


#: The findings of a run with estimates, in report order; each gives a bullet or None.
FINDINGS: tuple[Callable[[Sweep], str | None], ...] = (
    noise_unknown,
    noise_estimate,
    best_lambda,
    how_sure,
    reduction,
    shares,
    lambda run: bias_zero(run.valid, run.crossed),
    lambda run: identity_check(run.valid, crossed=run.crossed),
    variance_monotone,
    zero_one,
    variance_split,
    diverged,
    missing_estimates,
)


def findings(summary: pd.DataFrame, meta: dict | None = None) -> list[str]:
    """Factual statements computed from ``summary.csv``, one markdown bullet each.

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``: one row per λ.
    meta : dict, optional
        ``run.json`` (the bootstrap's resamples and seed behind ``prob_best``).

    Returns
    -------
    list of str
        Bullet texts (without the leading ``-``): those of :data:`FINDINGS` that apply,
        or one saying that no λ has estimates.
    """
    s = summary.sort_values("weight_decay").reset_index(drop=True)
    v = valid_rows(s)
    if v.empty:
        return ["No weight decay produced estimates (every λ diverged or had too few "
                "converged training sets)."]  # fmt: skip
    run = Sweep(s, v, meta or {})
    return [text for finding in FINDINGS if (text := finding(run))]
