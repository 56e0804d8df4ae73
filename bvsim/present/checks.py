"""Findings of ``report.md`` that check the estimates against something else: bias²
against zero, the measured test error against bias² + variance + noise, the Monte
Carlo estimates against closed-form ridge theory (``theory.csv``), and the variance
against a monotone decrease in λ.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .common import (
    critical_value,
    get,
    lambda_text,
    noise_in_bias,
    num,
    paired_dof,
    valid_rows,
    z_score,
)
from .run_view import Sweep

__all__ = [
    "IDENTITY_SE",
    "bias_zero",
    "identity_check",
    "identity_worst",
    "theory_agreement",
    "variance_monotone",
]


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
        ratio = b[neg] / v["bias2_se"].to_numpy(float)[neg]
        worst = float(np.nanmin(ratio)) if np.isfinite(ratio).any() else math.nan
        how, se = (
            ("bias² (corrected by the crossed ANOVA's expected mean squares)", "multiway-jackknife")
            if crossed
            else ("jackknife-corrected bias²", "jackknife")
        )
        most = (
            f"the most negative is {abs(worst):.1f} {se} SE below zero. The {se} SE is "
            "unreliable where the true bias is near zero and"
            if np.isfinite(worst)
            else f"there is no {se} SE of it in this run, and"
        )
        return (
            f"The {how} is negative at {int(neg.sum())} λ "
            f"({', '.join(lambda_text(x) for x in lams[neg])}); {most} there is no SE "
            "under a zero bias here, so this is no test of whether the bias is zero."
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
    n = int(np.isfinite(z).sum())
    if (above.any() or below.any()) and n > 1:
        text += (
            f" Each λ is tested on its own ({n} tests, not corrected for their number): "
            "where the bias² is 0, about one λ in 20 lies beyond 2 SE by chance."
        )
    return text


#: The identity check passes where test error − expected error is within this many
#: paired SE at every λ.
IDENTITY_SE = 3


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
    verdict = "agrees with" if zmax <= IDENTITY_SE else "does NOT agree with"
    text = (
        f"The measured test error {verdict} bias² + variance + noise within {IDENTITY_SE} "
        f"{how} at every λ (max |difference| / SE = {zmax:.2f} at λ = "
        f"{lambda_text(v.loc[np.abs(z).idxmax(), 'weight_decay'])})."
    )
    if len(diff) > 1 and ((diff > 0).all() or (diff < 0).all()):
        text += (
            f" The difference has the same sign at every λ (mean {diff.mean():+.2g}): the "
            "test labels (and training sets) are shared across λ, so these checks are not "
            "independent, and one realisation of the test noise shifts all of them alike."
        )
    return text


def _largest_z(both: pd.DataFrame) -> list[str]:
    """'z for bias² (at λ = …)' and the same for variance: the largest |Monte Carlo −
    theory| / SE over the rows of ``both`` (summary merged with theory) where both are
    finite ('(at λ = …)' left out for one row); 'the variance is infinite in theory (at
    λ = …)' where only the measurement is finite."""
    parts = []
    lams = both["weight_decay"].to_numpy()
    for col, name in (("bias2", "bias²"), ("variance", "variance")):
        mc, se, th = (both[c].to_numpy(float) for c in (col, f"{col}_se", f"{col}_theory"))
        if col == "bias2" and "bias2_se0" in both:  # the jackknife SE collapses near 0
            se = np.fmax(se, both["bias2_se0"].to_numpy(float))
        ok = np.isfinite(mc) & np.isfinite(th) & (se > 0)
        if ok.any():
            z = np.abs(mc[ok] - th[ok]) / se[ok]
            i = int(np.argmax(z))
            at = f" (at λ = {lambda_text(lams[ok][i])})" if len(both) > 1 else ""
            parts.append(f"{z[i]:.2f} for {name}{at}")
        inf = np.isfinite(mc) & np.isinf(th)
        if inf.any():
            at = ", ".join(lambda_text(v) for v in lams[inf])
            at = f" (at λ = {at})" if len(both) > 1 else ""
            parts.append(f"the {name} is infinite in theory{at}")
    return parts


#: What each ``kind`` of ``theory.csv`` is, in the report's words.
_THEORY_WHAT = {
    "fixed_design_exact": "the exact closed form for this fixed design",
    "random_design_exact": (
        "the exact value of minimum-norm least squares at this n and p (Gaussian design "
        "redrawn per training set)"
    ),
    "random_design_limit": (
        "the Marchenko–Pastur limit (p, n → ∞ at this p/n, evaluated at these test "
        "points; a finite-n drift of order 1/n is expected, largest near n = p)"
    ),
}


def theory_agreement(summary: pd.DataFrame, theory: pd.DataFrame | None) -> str | None:
    """One sentence: the largest |Monte Carlo − theory| / SE of bias² and of variance.

    A random design's ``theory.csv`` is exact at λ = 0 and the Marchenko–Pastur limit at
    λ > 0 (its ``kind`` column): the two are reported apart, so that a miss of the
    approximate limit is not read as one of the simulation, nor hidden by the exact rows.

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    theory : DataFrame or None
        ``theory.csv`` (:func:`bvsim.io.theory.theory_table`); None gives None.
    """
    if theory is None or theory.empty:
        return None
    both = valid_rows(summary).merge(theory, on="weight_decay", how="inner")
    if "kind" not in both:
        both = both.assign(kind="")
    kind = both["kind"].astype(str)
    found = [(k, both[kind == k]) for k in dict.fromkeys(kind)]
    found = [(k, g, parts) for k, g in found if (parts := _largest_z(g))]
    if not found:
        return None
    if "bias2_se0" in both and both["bias2_se0"].notna().any():
        se0 = (
            " (for bias², the SE is the larger of its jackknife SE and its SE under a zero "
            "bias, `bias2_se0`: the jackknife SE collapses where the true bias is near zero)."
        )
    elif "bias2_se0" in both:  # a crossed design: no SE under a zero bias
        se0 = (
            " (for bias², the multiway-jackknife SE, which shrinks with the estimate where "
            "the true bias is near zero: a crossed design has no SE under a zero bias)."
        )
    else:
        se0 = "."
    where = "`theory.csv`, dotted black lines in the decomposition figure"
    if len(found) == 1:
        k, group, parts = found[0]
        return (
            f"Ridge theory ({_THEORY_WHAT.get(k, k or 'closed form')}; {where}): the "
            f"largest |Monte Carlo − theory| / SE over {len(group)} λ is "
            + " and ".join(parts)
            + se0
        )
    clauses = []
    for k, group, parts in found:
        lams = group["weight_decay"].to_numpy(float)
        if len(lams) == 1:
            at, how = f"at λ = {lambda_text(lams[0])}", "|Monte Carlo − theory| / SE is"
        else:
            at = f"at the {len(lams)} λ from {lambda_text(lams.min())} to {lambda_text(lams.max())}"
            how = "the largest |Monte Carlo − theory| / SE is"
        clauses.append(f"{at}, against {_THEORY_WHAT.get(k, k)}, {how} " + " and ".join(parts))
    return (
        f"Ridge theory ({where}; exact where a closed form is known, a limit only where "
        "none is): " + "; ".join(clauses) + se0
    )


def variance_monotone(run: Sweep) -> str | None:
    """Where variance rises from one λ to the next, with the paired SE of the rise, and
    whether any rise clears the one-sided 5 % Bonferroni threshold for the number of
    adjacent pairs compared (a 2-SE rise at one of many pairs is common by chance):
    :func:`bvsim.present.common.critical_value` at the rise's degrees of freedom
    (:func:`_rise_df`)."""
    v = run.valid
    var = v["variance"].to_numpy()
    rises = [i for i in range(1, len(v)) if var[i] > var[i - 1]]
    if not rises:
        # point estimates only: no test is needed to say that none of them rises
        return "The variance estimate falls at every step of the λ grid." if len(v) > 1 else None
    parts, zs, normal = [], {}, 0
    pairs = len(v) - 1
    alpha = 0.05 / pairs  # one-sided, Bonferroni over the adjacent pairs
    for i in rises:
        row = v.iloc[i]
        z = z_score(get(row, "variance_diff_prev"), get(row, "variance_diff_prev_se"))
        size = f"a rise of {z:.1f} paired SE" if np.isfinite(z) else "no paired SE in this run"
        lam = f"λ = {lambda_text(row['weight_decay'])}"
        parts.append(f"{lam} ({num(var[i - 1])} → {num(var[i])}, {size})")
        if np.isfinite(z):
            dof = _rise_df(run, i)
            zs[lam] = (z, critical_value(dof, level=1 - 2 * alpha))
            normal += not np.isfinite(dof)
    where = "; ".join(parts)
    if not zs:
        return (
            f"The variance estimate rises from the previous λ at {where}; this run has no "
            "paired SE of those rises, so whether they are more than chance is not tested."
        )
    crits = [c for _, c in zs.values()]
    width = f"{min(crits):.2f}" + (f"–{max(crits):.2f}" if max(crits) - min(crits) >= 0.005 else "")
    dist = (
        "Student's t" if not normal else "normal" if normal == len(zs)
        else "Student's t; normal where no degrees of freedom"
    )  # fmt: skip
    threshold = (
        f"{width} paired SE, the one-sided 5 % threshold ({dist}) after a Bonferroni "
        f"correction for the {pairs} adjacent pairs of λ" if pairs > 1 else
        f"{width} paired SE, the one-sided 5 % threshold ({dist})"
    )  # fmt: skip
    real = [lam for lam, (z, crit) in zs.items() if z > crit]
    untested = len(rises) - len(zs)
    caveat = (
        f" {untested} of the rises {'has' if untested == 1 else 'have'} no paired SE and "
        f"{'is' if untested == 1 else 'are'} not tested."
        if untested
        else ""
    )
    if real:  # the test's verdict first, then what it was computed from
        return (
            f"Variance is not monotone in λ: at {', '.join(real)} it rises by more than "
            f"{threshold}, more than chance explains. It rises from the previous λ at "
            f"{where}.{caveat}"
        )
    tested = "No tested rise" if untested else "No rise"
    return (
        f"{tested} of the variance with λ is more than chance explains (none exceeds "
        f"{threshold}), so the estimates agree with a variance that falls as λ grows; "
        f"the estimate rises from the previous λ at {where}.{caveat}"
    )


def _rise_df(run: Sweep, i: int) -> float:
    """The degrees of freedom of row ``i``'s variance rise
    (:func:`bvsim.present.common.paired_dof`): ``variance_diff_prev_df``; in a nested run
    written before it, the fewer usable sets of the two λ minus one."""
    v = run.valid
    n = np.minimum(get(v.iloc[i], "n_reps_used"), get(v.iloc[i - 1], "n_reps_used"))
    return paired_dof(get(v.iloc[i], "variance_diff_prev_df"), n, run.crossed)
