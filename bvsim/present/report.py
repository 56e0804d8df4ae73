"""``report.md`` of a finished run: findings computed from the tables, a summary table,
the figures with captions, and how to reproduce the run.

Every number in the report is computed from :class:`bvsim.io.tables.Tables`; nothing is
hard-coded, and nothing new is estimated here. Every comparison across λ uses the paired
figures of ``summary.csv`` (``diff_from_best``, ``identity_gap``, ``variance_diff_prev``,
shares with jackknife SEs; :mod:`bvsim.estimate.compare`): the λ of one run share their training
sets (and test labels), so a difference is a mean over training sets of per-set
differences. A run written before these columns existed gets its findings without the
paired comparisons (and says so).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.tables import Tables, task_of
from ..run.store import write_text_atomic

__all__ = [
    "early_stopping_finding",
    "findings",
    "summary_table",
    "theory_agreement",
    "write_report",
]

_VALID = ("ok", "some_diverged")

_CAPTIONS = {
    "decomposition": (
        "Bias², variance and noise versus weight decay λ, with their sum (expected error) "
        "and the test error measured directly on noisy test labels; bands are ±2 SE of each "
        "estimate on its own (marginal, not paired: two λ whose bands overlap can still "
        "differ clearly, see `diff_from_best` in `summary.csv`). Bias² is bias-corrected, so "
        "it can be slightly negative where the true bias is near zero. The best λ is the "
        "dash-dotted line; the one-SE-rule λ (the largest λ within one paired SE of the "
        "best), where it differs, the dashed purple one. λ = 0 is drawn left of the axis "
        "break (//)."
    ),
    "fits": (
        "Fitted functions of individual members (thin lines) at the smallest, best and "
        "largest λ, with the truth (dashed) and the mean prediction over training sets."
    ),
    "pointwise": (
        "Bias² and variance at each test input for a few λ, with ±2 SE bands (jackknife, "
        "marginal: one estimate at a time, not differences between λ). Bias² is "
        "bias-corrected and may dip slightly below zero; where the true bias² is near zero "
        "its jackknife band is too narrow (`bias2_se0` in `pointwise.csv` is its SE under a "
        "zero bias). When the largest λ dwarfs the others, a zoomed panel leaves it out."
    ),
    "curves": (
        "Train and test loss during optimisation, averaged over training sets, one line "
        "per λ (log scale). The test loss is measured on noisy labels, so its expectation "
        "cannot fall below the noise variance (dashed)."
    ),
    "weight_norm": (
        "Mean weight norm of the trained members versus λ (±2 SE, marginal). λ = 0 is drawn "
        "left of the axis break (//)."
    ),
    "weight_hist": (
        "Histograms of the weights of training set 0, per layer, at a few λ; counts on a "
        "log scale above 1."
    ),
    "variance_split": (
        "Variance split into the part due to the training data and the part due to the "
        "initialisation seed, stacked; the line is the total variance with ±2 SE "
        "(marginal). "
        "λ = 0 is drawn left of the axis break (//)."
    ),
    "anova": (
        "Crossed design: the variance split by the random-effects ANOVA into the main "
        "effects of the training inputs x, the label noise ε and the initialization, and "
        "their interactions, stacked (left; a negative estimate, possible for an unbiased "
        "component, is drawn as 0 there) with the total variance ±2 SE; right, each "
        "term's share of the variance ±2 SE (multiway jackknife, conservative). "
        "λ = 0 is drawn left of the axis break (//)."
    ),
    "steps": (
        "Bias², variance and expected error against the optimizer step (`steps.csv`, "
        "`train.decompose_steps`), one line per λ, bands ±2 SE (marginal). Bias² is "
        "bias-corrected, on a linear axis (it can dip below zero); the step axis is symlog "
        "when the steps span 30× or more. The star is the best "
        "step at the smallest λ (early stopping), the diamond the best λ at the last step "
        "(weight decay); their difference is paired over training sets (title)."
    ),
    "steps_heatmap": (
        "Expected error over (optimizer step × λ); the red box is the best cell, an argmin "
        "of noisy estimates (optimistic)."
    ),
}
_ORDER = tuple(_CAPTIONS)

#: Short names of the crossed design's factors in the report.
_FACTOR_NAMES = {"inputs": "x", "sample": "rows", "label_noise": "ε", "init": "init"}


def _term_name(term: str) -> str:
    return " × ".join(_FACTOR_NAMES.get(f, f) for f in term.split(":"))


def anova_section(anova: pd.DataFrame | None, summary: pd.DataFrame) -> list[str]:
    """The report's section on the crossed design: every term per λ with its SE, and
    which source dominates the variance at each λ (empty for a nested run)."""
    if anova is None or anova.empty or not anova["value"].notna().any():
        return []
    terms = list(dict.fromkeys(anova.loc[anova["share"].notna(), "term"]))
    cols = ["bias2", *terms, "variance", "noise", "expected_error"]
    heads = ["bias²", *map(_term_name, terms), "variance", "noise", "expected error"]
    lines = [
        "## Where the variance comes from",
        "",
        "A crossed design: every draw of the training inputs meets every draw of the "
        "label noise and every initialization, so the variance splits into main effects "
        "and interactions (random-effects ANOVA, expected mean squares; unbiased, so a "
        "component can come out slightly negative). bias² + the terms + noise is the "
        "expected error exactly. ± is the multiway-jackknife SE (conservative). Factors "
        "with one level are left out; the summary's SEs above treat the training sets "
        "as independent, which in a crossed design they are not: use these.",
        "",
        "| λ | " + " | ".join(heads) + " |",
        "|" + "---|" * (len(heads) + 1),
    ]
    found = []
    for wd, part in anova.groupby("weight_decay", sort=True):
        t = part.set_index("term")
        cells = [_pm(_get(t.value, c), _get(t.se, c)) for c in cols]
        lines.append(f"| {_lam(wd)} | " + " | ".join(cells) + " |")
        v = t.loc[terms, "value"].astype(float)
        if not v.notna().all():
            continue
        order = list(v.sort_values(ascending=False).index)
        top = order[0]
        share, share_se = _get(t.share, top), _get(t.share_se, top)
        verb = (  # more than half of the variance by 2 SE, or just the largest estimate
            "dominates the variance"
            if share - 2 * share_se > 0.5
            else "is the largest estimated source of variance"
        )
        text = f"λ = {_lam(wd)}: {_term_name(top)} {verb} ({_pct(share)} ± {_pct(share_se)})"
        if len(order) > 1:
            nxt = order[1]
            text += f", then {_term_name(nxt)} ({_pct(t.share[nxt])} ± {_pct(t.share_se[nxt])})"
        found.append(text + ".")
    lines += ["", *[f"- {f}" for f in found], ""]
    return lines


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
        ee, gain = _get(row, "expected_error"), _get(row, "ensemble_gain")
        lines.append(
            f"| {_lam(row.weight_decay)} | {_pm(ee, _get(row, 'expected_error_se'))} | "
            f"{_pm(_get(row, 'ensemble_error'), _get(row, 'ensemble_error_se'))} | "
            f"{_pm(gain, _get(row, 'ensemble_gain_se'))} | "
            f"{_pct(gain / ee) if ee else '—'} |"
        )
    return [*lines, ""]


def _lam(value: float) -> str:
    return "0" if value == 0 else f"{value:g}"


def _num(value: float, sig: int = 4) -> str:
    """A number to ``sig`` significant digits; NaN as an em dash."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{sig}g}"


def _pm(value: float, se: float) -> str:
    """``value ± se`` (value to 4, SE to 2 significant digits)."""
    if value is None or not np.isfinite(value):
        return "—"
    if se is None or not np.isfinite(se):
        return _num(value)
    return f"{_num(value)} ± {_num(se, 2)}"


def _pct(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100 * value:.1f} %"


def _get(row, name: str) -> float:
    """``row[name]`` as a float; NaN when the column is missing (an older run)."""
    value = row.get(name, math.nan) if hasattr(row, "get") else getattr(row, name, math.nan)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _z(value: float, se: float) -> float:
    return value / se if np.isfinite(se) and se > 0 else math.nan


def _valid(summary: pd.DataFrame) -> pd.DataFrame:
    ok = summary["expected_error"].notna()
    if "status" in summary:
        ok &= summary["status"].isin(_VALID)
    return summary[ok].sort_values("weight_decay").reset_index(drop=True)


def _is_classification(summary: pd.DataFrame, meta: dict | None = None) -> bool:
    return task_of(summary, meta) == "classification"


def _zero_one_finding(s: pd.DataFrame, best) -> str | None:
    if "zero_one_error" not in s or pd.isna(best.get("zero_one_error")):
        return None
    return (
        f"0-1 loss at the best λ (Domingos 2000; the terms add up exactly): error "
        f"{_pm(best['zero_one_error'], best['zero_one_error_se'])} = noise term "
        f"{_num(best['zero_one_noise_term'])} + bias {_num(best['zero_one_bias'])} + "
        f"variance term {_num(best['zero_one_variance_term'])} (unweighted variance "
        f"{_num(best['zero_one_variance'])})."
    )


def _best_finding(v: pd.DataFrame, ib: int, paired: bool) -> str:
    """The best λ, and which λ are within 2 paired SE of it."""
    best = v.iloc[ib]
    text = (
        f"**Best λ = {_lam(best['weight_decay'])}**: expected error "
        f"{_pm(best['expected_error'], best['expected_error_se'])} "
        f"(bias² {_pm(best['bias2'], best['bias2_se'])}, "
        f"variance {_pm(best['variance'], best['variance_se'])}, noise {_num(best['noise'])})."
    )
    if not paired:
        return text + (
            " This run's `summary.csv` has no paired differences (`diff_from_best`), so "
            "how far the other λ are from the best is not stated."
        )
    d, se = v["diff_from_best"].to_numpy(float), v["diff_from_best_se"].to_numpy(float)
    others = [i for i in range(len(v)) if i != ib and np.isfinite(se[i]) and se[i] > 0]
    near = [i for i in others if d[i] <= 2 * se[i]]
    if near:
        lams = ", ".join(f"{_lam(v.loc[i, 'weight_decay'])} (+{_pm(d[i], se[i])})" for i in near)
        text += (
            f" Within 2 paired SE of it (the difference in expected error, paired over the "
            f"training sets both λ can use): λ = {lams}; the optimum is not resolved more "
            "finely than that."
        )
        if len(near) < len(others):
            text += " Every other λ is worse by more than 2 paired SE."
    elif others:
        c = min(others, key=lambda i: d[i] / se[i])
        text += (
            " Every other λ has a higher expected error by more than 2 paired SE (the "
            f"difference paired over shared training sets); the closest is λ = "
            f"{_lam(v.loc[c, 'weight_decay'])}, worse by {_pm(d[c], se[c])} "
            f"({d[c] / se[c]:.1f} SE)."
        )
    return text


def _how_sure(v: pd.DataFrame, ib: int, meta: dict) -> str:
    """How often the best λ wins under a paired bootstrap, and the one-SE-rule λ."""
    best = v.iloc[ib]
    pb = v["prob_best"].to_numpy(float)
    n_boot = meta.get("prob_best_resamples")
    seed = meta.get("prob_best_seed")
    text = (
        f"How sure: λ = {_lam(best['weight_decay'])} is the best in {_pct(pb[ib])} of "
        f"{n_boot or 'the'} bootstrap resamples of the training sets (the same resampled "
        f"sets at every λ{f'; seed {seed}' if seed else ''}, `prob_best`)"
    )
    rivals = sorted((i for i in range(len(v)) if i != ib and pb[i] >= 0.01), key=lambda i: -pb[i])
    if rivals:
        text += "; other λ win in " + ", ".join(
            f"{_pct(pb[i])} (λ = {_lam(v.loc[i, 'weight_decay'])})" for i in rivals
        )
    text += "."
    one = v[v["is_one_se"].astype(bool)] if "is_one_se" in v else v.iloc[:0]
    if not one.empty and one.iloc[0]["weight_decay"] != best["weight_decay"]:
        o = one.iloc[0]
        text += (
            f" One-SE rule: the largest λ within one paired SE of the best is λ = "
            f"{_lam(o['weight_decay'])} (worse by "
            f"{_pm(o['diff_from_best'], o['diff_from_best_se'])})."
        )
    elif not one.empty:
        text += (
            " One-SE rule: no larger λ is within one paired SE of the best, so it keeps the best λ."
        )
    return text + (
        " The best λ's expected error is a minimum over noisy estimates, so it is "
        "optimistically biased: fresh training sets would on average give that λ a "
        "somewhat higher error."
    )


def _bias_zero_finding(v: pd.DataFrame) -> str | None:
    """Where bias² is consistent with zero, by its SE under a true bias² of 0."""
    b = v["bias2"].to_numpy(float)
    se0 = v["bias2_se0"].to_numpy(float) if "bias2_se0" in v else np.full(len(v), np.nan)
    lams = v["weight_decay"].to_numpy()
    neg = b < 0
    if not np.isfinite(se0).any():  # cross-entropy (or an older run): no null SE
        if not neg.any():
            return None
        worst = float((b[neg] / v["bias2_se"].to_numpy(float)[neg]).min())
        return (
            f"The jackknife-corrected bias² is negative at {int(neg.sum())} λ "
            f"({', '.join(_lam(x) for x in lams[neg])}); the most negative is "
            f"{abs(worst):.1f} jackknife SE below zero. The jackknife SE is unreliable where "
            "the true bias is near zero and there is no SE under a zero bias here, so this is "
            "no test of whether the bias is zero."
        )
    z = b / se0
    zero = np.isfinite(z) & (np.abs(z) <= 2)
    above, below = np.isfinite(z) & (z > 2), np.isfinite(z) & (z < -2)
    what = (
        "(|bias² / bias2_se0| ≤ 2, with bias2_se0 the SE of bias² when the true bias² is 0; "
        "the jackknife SE shrinks with the estimate there and cannot test this)"
    )
    if zero.any():
        at = [f"{_lam(x)} (z = {zz:+.2f})" for x, zz in zip(lams[zero], z[zero], strict=True)]
        text = f"Bias² is consistent with a true bias² of zero at λ = {', '.join(at)} " + what + "."
        if above.any():
            text += (
                f" At λ = {', '.join(_lam(x) for x in lams[above])} it is more than 2 such SE "
                "above zero."
            )
    else:
        text = f"Bias² is more than 2 SE from zero at every λ {what}."
    if below.any():
        text += (
            f" At λ = {', '.join(_lam(x) for x in lams[below])} it is more than 2 such SE "
            "below zero, which a true bias² of 0 does not explain."
        )
    return text


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
        Bullet texts (without the leading ``-``).
    """
    out: list[str] = []
    meta = meta or {}
    s = summary.sort_values("weight_decay").reset_index(drop=True)
    if "bias2_includes_noise" in s and s["bias2_includes_noise"].astype(bool).any():
        out.append(
            "**The noise is unknown** (the data come from a file, with no generator): the "
            "test labels stand in for the truth, so every bias² below is **bias² + noise** "
            "and the expected error is bias² + noise + variance. The noise is not separated."
        )
        if "noise_estimate" in s and s["noise_estimate"].notna().any():
            out.append(
                f"Rows with repeated x give a noise estimate of "
                f"{_num(s['noise_estimate'].iloc[0])} (pooled within-group variance): "
                "bias² itself is roughly bias2 minus that."
            )
    v = _valid(s)
    if v.empty:
        return ["No weight decay produced estimates (every λ diverged or had too few "
                "converged training sets)."]  # fmt: skip
    ib = int(np.argmin(v["expected_error"].to_numpy()))
    best = v.iloc[ib]
    paired = "diff_from_best_se" in v and v["diff_from_best_se"].notna().any()
    out.append(_best_finding(v, ib, paired))
    if paired:
        out.append(_how_sure(v, ib, meta))

    first = v.iloc[0]
    ref = (
        "λ = 0" if first["weight_decay"] == 0 else f"the smallest λ ({_lam(first['weight_decay'])})"
    )
    if ib != 0:
        e0, s0 = first["expected_error"], first["expected_error_se"]
        text = f"Relative to {ref} (expected error {_pm(e0, s0)}), the best λ "
        if paired:
            n = int(first["n_reps_used"])
            text += (
                f"reduces the expected error by {_pct(_get(first, 'reduction_by_best'))} ± "
                f"{_pct(_get(first, 'reduction_by_best_se'))} (absolute "
                f"{_pm(first['diff_from_best'], first['diff_from_best_se'])}; paired over the "
                f"training sets usable at both, {n if n else '—'} sets)."
            )
        else:
            red = 1 - best["expected_error"] / e0
            text += f"has a {_pct(red)} lower expected error (no paired SE in this run)."
        out.append(text)
    else:
        out.append(f"The best λ is {ref} itself: weight decay did not reduce the expected error.")

    last = v.iloc[-1]
    share_v, share_b = _get(first, "variance_share"), _get(last, "bias2_share")
    if not np.isfinite(share_v):  # an older run: the ratio without an SE
        share_v, share_b = (first["variance"] / first["expected_error"],
                            last["bias2"] / last["expected_error"])  # fmt: skip
    out.append(
        f"At {ref}, variance is {_pct(share_v)} ± {_pct(_get(first, 'variance_share_se'))} "
        f"of the expected error (bias² {_num(first['bias2'])}, variance "
        f"{_num(first['variance'])}, noise {_num(first['noise'])}). At the largest λ "
        f"({_lam(last['weight_decay'])}), bias² is {_pct(share_b)} ± "
        f"{_pct(_get(last, 'bias2_share_se'))} of it (jackknife SEs of the ratios)."
    )
    bias_zero = _bias_zero_finding(v)
    if bias_zero:
        out.append(bias_zero)

    te = v["test_error"].notna()
    if te.any():
        diff = (v["test_error"] - v["expected_error"])[te]
        if "identity_gap_se" in v and v["identity_gap_se"][te].notna().all():
            z = diff / v["identity_gap_se"][te]
            how = (
                "paired SE (the SE of the mean over training sets of each set's test error "
                "minus its expected error)"
            )
        else:
            z = diff / np.sqrt(v["test_error_se"][te] ** 2 + v["expected_error_se"][te] ** 2)
            how = "combined SE (no paired SE in this run)"
        zmax = float(np.abs(z).max())
        verdict = "agrees with" if zmax <= 3 else "does NOT agree with"
        text = (
            f"The measured test error {verdict} bias² + variance + noise within 3 {how} at "
            f"every λ (max |difference| / SE = {zmax:.2f} at λ = "
            f"{_lam(v.loc[np.abs(z).idxmax(), 'weight_decay'])})."
        )
        if len(diff) > 1 and ((diff > 0).all() or (diff < 0).all()):
            text += (
                f" The difference has the same sign at every λ (mean {diff.mean():+.2g}): the "
                "test labels (and training sets) are shared across λ, so these checks are not "
                "independent, and one realisation of the test noise shifts all of them alike."
            )
        out.append(text)

    var = v["variance"].to_numpy()
    rises = [i for i in range(1, len(v)) if var[i] > var[i - 1]]
    if rises:
        parts = []
        for i in rises:
            row = v.iloc[i]
            z = _z(_get(row, "variance_diff_prev"), _get(row, "variance_diff_prev_se"))
            size = f"a rise of {z:.1f} paired SE" if np.isfinite(z) else "no paired SE in this run"
            parts.append(
                f"λ = {_lam(row['weight_decay'])} ({_num(var[i - 1])} → {_num(var[i])}, {size})"
            )
        out.append(
            "Variance is not monotone in λ: it rises from the previous λ at "
            + "; ".join(parts)
            + "."
        )
    elif len(v) > 1:
        out.append("Variance decreases monotonically with λ over the grid.")

    zero_one = _zero_one_finding(v, best)
    if zero_one:
        out.append(zero_one)

    if "variance_init" in v and v["variance_init"].notna().any():
        parts = []
        rows = [("λ = " + _lam(v.iloc[0]["weight_decay"]), v.iloc[0])]
        if best["weight_decay"] != v.iloc[0]["weight_decay"]:
            rows.append((f"the best λ = {_lam(best['weight_decay'])}", best))
        for label, row in rows:
            share = _get(row, "variance_init_share")
            if not np.isfinite(share):  # an older run: the ratio without an SE
                share = row["variance_init"] / row["variance"] if row["variance"] > 0 else np.nan
            share_se = _get(row, "variance_init_share_se")
            share_text = _pct(share) + (f" ± {_pct(share_se)}" if np.isfinite(share_se) else "")
            parts.append(
                f"at {label}, {share_text} of the variance is initialization variance "
                f"({_pm(row['variance_init'], row['variance_init_se'])}) and the rest data "
                f"variance ({_pm(row['variance_data'], row['variance_data_se'])})"
            )
        out.append("Variance split (law of total variance): " + "; ".join(parts) + ".")

    n_div = int(s["n_diverged"].fillna(0).sum())
    if n_div:
        per = ", ".join(
            f"λ = {_lam(r.weight_decay)}: {int(r.n_diverged)}"
            for r in s.itertuples()
            if r.n_diverged > 0
        )
        out.append(
            f"{n_div} member(s) diverged and were left out, with their whole training set ({per})."
        )
    else:
        out.append("No member diverged.")
    bad = s[~s["status"].isin(_VALID)] if "status" in s else s.iloc[:0]
    if not bad.empty:
        out.append(
            "No estimates at "
            + ", ".join(f"λ = {_lam(r.weight_decay)} ({r.status})" for r in bad.itertuples())
            + "."
        )
    return out


def theory_agreement(summary: pd.DataFrame, theory: pd.DataFrame | None) -> str | None:
    """One sentence: the largest |Monte Carlo − theory| / SE of bias² and of variance.

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    theory : DataFrame or None
        ``theory.csv`` (:func:`bvsim.estimate.theory.theory_table`); None gives None.
    """
    if theory is None or theory.empty:
        return None
    both = _valid(summary).merge(theory, on="weight_decay", how="inner")
    parts = []
    for col, name in (("bias2", "bias²"), ("variance", "variance")):
        mc, se, th = (both[c].to_numpy(float) for c in (col, f"{col}_se", f"{col}_theory"))
        if col == "bias2" and "bias2_se0" in both:  # the jackknife SE collapses near 0
            se = np.fmax(se, both["bias2_se0"].to_numpy(float))
        ok = np.isfinite(mc) & np.isfinite(th) & (se > 0)
        if not ok.any():
            continue
        z = np.abs(mc[ok] - th[ok]) / se[ok]
        i = int(np.argmax(z))
        lam = _lam(both["weight_decay"].to_numpy()[ok][i])
        parts.append(f"{z[i]:.2f} for {name} (at λ = {lam})")
    if not parts:
        return None
    kind = str(theory["kind"].iloc[0])
    what = {
        "fixed_design_exact": "the exact closed form for this fixed design",
        "random_design_limit": (
            "the Marchenko–Pastur limit (p, n → ∞ at this p/n, evaluated at these test "
            "points; a finite-n drift of order 1/n is expected)"
        ),
    }.get(kind, kind)
    return (
        f"Ridge theory ({what}; `theory.csv`, dotted black lines in the decomposition "
        f"figure): the largest |Monte Carlo − theory| / SE over {len(both)} λ is "
        + " and ".join(parts)
        + (
            " (for bias², the SE is the larger of its jackknife SE and its SE under a zero "
            "bias, `bias2_se0`: the jackknife SE collapses where the true bias is near zero)."
            if "bias2_se0" in both
            else "."
        )
    )


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
        lam = _lam(r.weight_decay) + (f" ({', '.join(marks)})" if marks else "")
        cells = [
            f"**{lam}**" if bool(r.is_best) or one_se else lam,
            _pm(r.bias2, r.bias2_se),
            _pm(r.variance, r.variance_se),
            _num(r.noise),
            _pm(r.expected_error, r.expected_error_se),
            _pm(_get(r, "diff_from_best"), _get(r, "diff_from_best_se")),
            _pct(_get(r, "prob_best")),
            _pm(r.test_error, r.test_error_se),
            str(int(r.n_diverged)) if np.isfinite(r.n_diverged) else "—",
            str(r.status),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is_unmodified_preset(name: str, run_dir: Path) -> bool | None:
    """Whether ``run_dir/config.toml`` equals preset ``name`` (None: cannot tell)."""
    from ..config import dumps_toml, list_presets, load_config
    from ..run.preflight import check_user_code

    if name not in list_presets():
        return False
    cfg_file = run_dir / "config.toml"
    if not cfg_file.exists():
        return None
    # the shipped preset resolved as a sweep resolves it (a CSV preset's columns)
    preset = load_config(preset=name, check_user_code=check_user_code)
    return cfg_file.read_text() == dumps_toml(preset)


def _reproduce(meta: dict, run_dir: Path) -> list[str]:
    name = meta.get("name", "")
    lines = ["## Reproduce", ""]
    preset = _is_unmodified_preset(name, run_dir) if name else False
    if preset is not False:
        lines += [
            f"This run {'uses' if preset else 'is named after'} the shipped preset "
            f"`{name}`{'' if preset else ' (config.toml is missing, so this is not checked)'}:",
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
    name = meta.get("name", out_dir.name)
    lines = [f"# Bias–variance report: {name}", ""]
    if s.empty:
        lines += ["The summary table is empty: nothing to report.", ""]
    else:
        k, n_seeds = int(s["n_reps"].max()), int(s["n_seeds"].max())
        members = meta.get("n_members")
        lines += [
            f"{len(s)} weight decays λ, {k} training sets × {n_seeds} seed(s) each"
            + (f", {members} trained members in all" if members else "")
            + _training_phrase(meta)
            + (f" on `{meta['device']}`" if "device" in meta else "")
            + (
                ". Errors are cross-entropies (nats) on the test points: in this report and "
                "in `summary.csv`, 'bias²' is the bias term KL(p ‖ π̄) of the exact "
                "cross-entropy decomposition (π̄ the normalized geometric mean of the "
                "members' predicted distributions), 'variance' is mean KL(π̄ ‖ π) and "
                "'noise' the entropy of the true class probabilities (jackknife-corrected)"
                if _is_classification(s, meta)
                else ". Errors are mean squared errors on the test points"
            )
            + "; ± values are Monte Carlo standard errors (SE) over training sets.",
            "",
            *_precision_lines(meta),
            "## Findings",
            "",
            *[f"- {f}" for f in findings(s, meta)],
            *[f"- {t}" for t in [theory_agreement(s, tables.theory)] if t],
            *[f"- {t}" for t in [early_stopping_finding(tables.meta)] if t],
            "",
            "Comparisons across λ are paired: every λ trains on the same training sets, so a "
            "difference is the mean over training sets of each set's difference, with SE "
            "sd/√K over the sets usable at both λ (for a component that is not a plain mean, "
            "the jackknife of the difference of the leave-one-set-out estimates). The SE of a "
            "share is the jackknife SE of the ratio. `summary.csv` holds them "
            "(`diff_from_best`, `prob_best`, `is_one_se`, `identity_gap`, `*_share`, "
            "`variance_diff_prev`, `bias2_se0`; see results/README.md).",
            "",
            "## Summary",
            "",
            summary_table(s),
            "",
            (
                "Bias² is the jackknife-corrected bias term (the plug-in minus its estimated "
                "excess, bias reduced but not exactly unbiased), able to go slightly negative; "
                if _is_classification(s, meta)
                else "Bias² is the bias-corrected estimate (the plug-in minus its estimated "
                "excess), unbiased but able to go slightly negative; "
            )
            + "it is not clipped. '− best' is the expected error's difference from the best "
            "λ's, paired over training sets (± its paired SE); P(best) is `prob_best`; "
            "(1-SE) marks the one-SE-rule λ. Rows with status other than `ok`/`some_diverged` "
            "have no estimates (—).",
            "",
        ]
    if not s.empty:
        lines += [*anova_section(tables.anova, s), *ensemble_section(s)]
    figs = [n for n in _ORDER if (out_dir / "figures" / f"{n}.png").exists()]
    if figs:
        lines += ["## Figures", ""]
        for n in figs:
            lines += [f"![{n}](figures/{n}.png)", "", f"*{_CAPTIONS[n]}*", ""]
    lines += _reproduce(meta, out_dir)
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path


def early_stopping_finding(meta: dict) -> str | None:
    """Early stopping at the smallest λ against the best λ at the last step (from
    ``run.json``'s ``early_stopping``, written with ``train.decompose_steps``), with
    the paired SE of their difference; None without it."""
    es = meta.get("early_stopping")
    if not es or not np.isfinite(es.get("diff", np.nan)):
        return None
    diff, se = es["diff"], es["diff_se"]
    z = _z(diff, se)
    if es["best_step"] == es["last_step"] and es["best_weight_decay"] == es["weight_decay_min"]:
        verdict = "the same models (no step before the last and no larger λ does better)"
    elif not np.isfinite(z) or abs(z) < 2:
        verdict = "they are not distinguishable at this precision (|difference| < 2 paired SE)"
    elif diff < 0:
        verdict = "early stopping is better"
    else:
        verdict = "weight decay is better"
    return (
        f"Early stopping against weight decay (`steps.csv`): at λ = {_lam(es['weight_decay_min'])} "
        f"the best step is {es['best_step']} of {es['last_step']} "
        f"(expected error {_pm(es['early_stopping_error'], es['early_stopping_error_se'])}); "
        f"at the last step the best λ is {_lam(es['best_weight_decay'])} "
        f"({_pm(es['weight_decay_error'], es['weight_decay_error_se'])}). Early stopping "
        f"minus weight decay: {_pm(diff, se)} (paired over {es['n_common']} training sets): "
        f"{verdict}. Over the whole grid the least expected error is at step "
        f"{es['grid_best_step']}, λ = {_lam(es['grid_best_weight_decay'])} "
        f"({_num(es['grid_best_error'])}); both minima are argmins of noisy estimates."
    )


def _precision_lines(meta: dict) -> list[str]:
    """How many training sets a ``sweep.target_se`` run needed, and why it stopped."""
    if "target_se" not in meta:
        return []
    k = meta["n_reps_done"]
    if "target_se reached" in meta["stop_reason"]:
        why = (
            f"it stopped at {k} training sets, the first at which every paired SE of a "
            f"λ's difference from the best, and the SE of the best λ's expected error, "
            f"were at most the target (worst {_num(meta['worst_se'], 3)})"
        )
    else:
        why = (
            f"it used all {k} training sets allowed by sweep.n_reps and still missed the "
            f"target (worst SE {_num(meta['worst_se'], 3)}): raise sweep.n_reps"
        )
    return [
        f"Precision target: sweep.target_se = {meta['target_se']:g}; {why}. Training "
        "sets were added chunk by chunk in seed-tree order, so these results equal a run "
        f"with sweep.n_reps = {k}.",
        "",
    ]


def _training_phrase(meta: dict) -> str:
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


def _axis_pairing(axis: str) -> str:
    """Whether the values of a second axis share their training sets."""
    if axis in ("hidden_width", "dropout", "penalty", "optimizer"):
        return (
            f"Every value of {axis} trains on the same training sets and test labels (the "
            "same root seed; the data do not depend on the model), so differences across "
            "values could be paired too; this report makes no such comparison, and the "
            "SEs in the table are marginal."
        )
    if axis == "noise_std":
        return (
            "The values of noise_std share the training inputs, the test labels and the "
            "standard-normal noise draws of each training set (the same seed streams), "
            "scaled by noise_std: coupled, but not the same data, so no comparison across "
            "values is paired; the SEs in the table are marginal, one value at a time."
        )
    return (
        f"The values of {axis} do not share training sets: each draws its own from the "
        "same seed streams (a different number of points, so different inputs, noise and "
        "test labels), so no comparison across values is paired; the SEs in the table are "
        "marginal, one value at a time."
    )


#: The axis report's entry for ``figures/axis_anova.png`` (bvsim.present.anova).
_AXIS_ANOVA_CAPTION = [
    "![axis anova](figures/axis_anova.png)",
    "",
    "*Crossed design: the variance terms of `anova.csv` (main effects and interactions) and "
    "the total variance against the axis, one column per λ, ±2 SE (multiway jackknife); "
    "below, each term's share of the variance. Dotted: the closed form (`theory` column) "
    "where it exists. Each value's table of terms is in its own report (`axis/`). In a "
    "crossed design the table's SEs above treat the training sets as independent, which "
    "they are not: `anova.csv`'s SEs are the valid ones.*",
    "",
]


def has_axis_anova(anova: pd.DataFrame | None, axis: str) -> bool:
    """Whether a combined ``anova.csv`` is drawn against ``axis`` (``figures/axis_anova``,
    bvsim.present.anova): it has estimates and ``axis`` is a numeric column of it."""
    if anova is None or anova.empty or axis not in anova:
        return False
    return pd.api.types.is_numeric_dtype(anova[axis]) and bool(anova["value"].notna().any())


def write_axis_report(tables: Tables, out_dir, axis: str) -> Path:
    """``report.md`` of a second-axis sweep: best λ per value, figures, sub-reports."""
    out_dir = Path(out_dir)
    s = tables.summary
    meta = tables.meta
    lines = [
        f"# Bias–variance report: {meta.get('name', out_dir.name)} ({axis} × λ)",
        "",
        f"{len(meta.get('axis_values', []))} values of {axis} crossed with "
        f"{s['weight_decay'].nunique()} weight decays λ; {meta.get('n_members', '?')} trained "
        f"members in all, {meta.get('train_seconds', 0):.0f} s of training. ± values are "
        "Monte Carlo standard errors over training sets. Each value of "
        f"{axis} is a complete run of its own under `axis/` (CSVs, figures, report). "
        "The reduction (best λ against the smallest λ) is paired over each run's training "
        "sets. " + _axis_pairing(axis),
        "",
        "## Best λ for each value",
        "",
        f"| {axis} | best λ | expected error at best λ | at the smallest λ | reduction | "
        "bias² share at the largest λ | diverged | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    from ..io.rundir import axis_dir_name, axis_value_text

    for value, part in s.groupby(axis, sort=True):
        v = _valid(part)
        sub = axis_dir_name(axis, value)
        if v.empty:
            n_div = int(part["n_diverged"].sum())
            lines.append(f"| {axis_value_text(value)} | — | — | — | — | — | {n_div} "
                         f"| [report](axis/{sub}/report.md) |")  # fmt: skip
            continue
        best = v.loc[v["expected_error"].idxmin()]
        first = v.loc[v["weight_decay"].idxmin()]
        last = v.loc[v["weight_decay"].idxmax()]
        red, red_se = _get(first, "reduction_by_best"), _get(first, "reduction_by_best_se")
        if not np.isfinite(red):  # an older run
            red = 1 - best["expected_error"] / first["expected_error"]
        share, share_se = _get(last, "bias2_share"), _get(last, "bias2_share_se")
        if not np.isfinite(share):  # an older run
            share = last["bias2"] / last["expected_error"]
        lines.append(
            f"| {axis_value_text(value)} | {_lam(best['weight_decay'])} | "
            f"{_pm(best['expected_error'], best['expected_error_se'])} | "
            f"{_pm(first['expected_error'], first['expected_error_se'])} | {_pct(red)}"
            + (f" ± {_pct(red_se)}" if np.isfinite(red_se) else "")
            + " | "
            f"{_pct(share)}"
            + (f" ± {_pct(share_se)}" if np.isfinite(share_se) else "")
            + f" | {int(part['n_diverged'].sum())} | [report](axis/{sub}/report.md) |"
        )
    lines += [
        "",
        "## Figures",
        "",
        "![axis decomposition](figures/axis_decomposition.png)",
        "",
        f"*Bias², variance, noise and their sum against λ, one panel per {axis}; bands ±2 SE "
        "(marginal). "
        "Bias² is bias-corrected and may be slightly negative; λ = 0 is drawn left of //.*",
        "",
        "![axis heatmap](figures/axis_heatmap.png)",
        "",
        f"*Expected error over {axis} × λ; the best λ of each row is boxed in red.*",
        "",
        "![axis best](figures/axis_best.png)",
        "",
        f"*Left: the best λ of the grid for each {axis}. Right: the expected error at that λ "
        "and at the smallest λ, ±2 SE (marginal; the paired reduction is in the table).*",
        "",
        *(
            [
                "![axis curves](figures/axis_curves.png)",
                "",
                f"*Bias², variance and expected error against {axis}, one panel per λ (up to "
                "four spread over the grid), ±2 SE (marginal); dotted: the closed-form ridge "
                "values of `theory.csv` where they exist. On a log error axis a negative "
                "bias² estimate is not drawn.*",
                "",
            ]
            if pd.api.types.is_numeric_dtype(s[axis])  # drawn for a numeric axis
            else []
        ),
        *(_AXIS_ANOVA_CAPTION if has_axis_anova(tables.anova, axis) else []),
        "## Reproduce",
        "",
        "```sh",
        f"bvsim sweep {out_dir}/config.toml --out {out_dir}",
        "```",
        "",
    ]
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
