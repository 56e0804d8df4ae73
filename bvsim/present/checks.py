"""Findings of ``report.md`` that check the estimates against something else: bias²
against zero, the measured test error against bias² + variance + noise, and the Monte
Carlo estimates against closed-form ridge theory (``theory.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .common import lambda_text, noise_in_bias, valid_rows

__all__ = ["bias_zero", "identity_check", "identity_worst", "theory_agreement"]


def bias_zero(v: pd.DataFrame, crossed: bool = False) -> str | None:
    """Where bias² is consistent with zero, by its SE under a true bias² of 0.

    ``v``: the rows with estimates (:func:`bvsim.present.common.valid_rows`);
    ``crossed``: a crossed design (bias² corrected by the ANOVA's expected mean squares,
    SEs by the multiway jackknife, no SE under a zero bias). None for data from a file,
    whose bias² includes the noise and so cannot be zero.
    """
    if noise_in_bias(v):
        return None
    b = v["bias2"].to_numpy(float)
    se0 = v["bias2_se0"].to_numpy(float) if "bias2_se0" in v else np.full(len(v), np.nan)
    lams = v["weight_decay"].to_numpy()
    neg = b < 0
    if not np.isfinite(se0).any():  # cross-entropy (or an older run): no null SE
        if not neg.any():
            return None
        worst = float((b[neg] / v["bias2_se"].to_numpy(float)[neg]).min())
        how, se = (
            ("bias² (corrected by the crossed ANOVA's expected mean squares)", "multiway-jackknife")
            if crossed
            else ("jackknife-corrected bias²", "jackknife")
        )
        return (
            f"The {how} is negative at {int(neg.sum())} λ "
            f"({', '.join(lambda_text(x) for x in lams[neg])}); the most negative is "
            f"{abs(worst):.1f} {se} SE below zero. The {se} SE is unreliable where "
            "the true bias is near zero and there is no SE under a zero bias here, so this is "
            "no test of whether the bias is zero."
        )
    z = b / se0
    zero = np.isfinite(z) & (np.abs(z) <= 2)
    above, below = np.isfinite(z) & (z > 2), np.isfinite(z) & (z < -2)
    se0_text = (
        "bias2_se0 the SE of bias² when the true bias² is 0; the jackknife SE shrinks "
        "with the estimate there and cannot test this"
    )
    what = f"(|bias² / bias2_se0| ≤ 2, with {se0_text})"
    if zero.any():
        at = [
            f"{lambda_text(x)} (z = {zz:+.2f})" for x, zz in zip(lams[zero], z[zero], strict=True)
        ]
        text = f"Bias² is consistent with a true bias² of zero at λ = {', '.join(at)} " + what + "."
        if above.any():
            text += (
                f" At λ = {', '.join(lambda_text(x) for x in lams[above])} it is more than 2 "
                "such SE above zero."
            )
    else:
        text = (
            "Bias² is more than 2 SE from zero at every λ (|bias² / bias2_se0| > 2, with "
            f"{se0_text})."
        )
    if below.any():
        text += (
            f" At λ = {', '.join(lambda_text(x) for x in lams[below])} it is more than 2 "
            "such SE below zero, which a true bias² of 0 does not explain."
        )
    return text


def identity_worst(v: pd.DataFrame) -> tuple[float, float] | None:
    """The largest |test error − expected error| / paired SE over the rows with
    estimates ``v``, and the λ where it is; None without paired SEs, or where the check
    tests nothing (data from a file)."""
    if "identity_gap_se" not in v or noise_in_bias(v):
        return None
    z = (v["identity_gap"] / v["identity_gap_se"]).abs()
    if not np.isfinite(z).any():
        return None
    return float(z.max()), float(v.loc[z.idxmax(), "weight_decay"])


def identity_check(v: pd.DataFrame, crossed: bool = False) -> str | None:
    """Whether the measured test error agrees with bias² + variance + noise at every λ.

    ``v``: the rows with estimates (:func:`bvsim.present.common.valid_rows`);
    ``crossed``: a crossed design (its paired SE is the multiway jackknife). Data from a
    file get a sentence saying the check cannot test anything there: the test labels
    stand in for the truth, so both sides are the same mean computed two ways.
    """
    te = v["test_error"].notna()
    if not te.any():
        return None
    if noise_in_bias(v):
        gap = float((v["test_error"] - v["expected_error"])[te].abs().max())
        return (
            "The measured test error equals bias² + variance by construction here (the "
            "test labels stand in for the truth, so both are the same mean, computed two "
            f"ways; the largest difference is {gap:.1g}, float rounding), so it checks "
            "nothing in this run."
        )
    diff = (v["test_error"] - v["expected_error"])[te]
    if "identity_gap_se" in v and v["identity_gap_se"][te].notna().all():
        z = diff / v["identity_gap_se"][te]
        how = (
            "paired SE (the multiway jackknife over the factors of the test error minus "
            "the expected error)"
            if crossed
            else "paired SE (the SE of the mean over training sets of each set's test error "
            "minus its expected error)"
        )
    else:
        z = diff / np.sqrt(v["test_error_se"][te] ** 2 + v["expected_error_se"][te] ** 2)
        how = "combined SE (no paired SE in this run)"
    if not np.isfinite(z).any():  # a crossed factor with 2 levels: no SE at all
        return (
            "The measured test error minus bias² + variance + noise is at most "
            f"{float(diff.abs().max()):.2g} in absolute value, but this run has no SE to "
            "judge it by (a factor with fewer than 3 levels has no jackknife SE)."
        )
    zmax = float(np.abs(z).max())
    verdict = "agrees with" if zmax <= 3 else "does NOT agree with"
    text = (
        f"The measured test error {verdict} bias² + variance + noise within 3 {how} at "
        f"every λ (max |difference| / SE = {zmax:.2f} at λ = "
        f"{lambda_text(v.loc[np.abs(z).idxmax(), 'weight_decay'])})."
    )
    if len(diff) > 1 and ((diff > 0).all() or (diff < 0).all()):
        text += (
            f" The difference has the same sign at every λ (mean {diff.mean():+.2g}): the "
            "test labels (and training sets) are shared across λ, so these checks are not "
            "independent, and one realisation of the test noise shifts all of them alike."
        )
    return text


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
    both = valid_rows(summary).merge(theory, on="weight_decay", how="inner")
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
        lam = lambda_text(both["weight_decay"].to_numpy()[ok][i])
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
