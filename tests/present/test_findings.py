"""Findings of report.md on hand-made summaries with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim.present.checks import variance_monotone
from bvsim.present.findings import Sweep, findings


def _sweep(variance, diff_se=None):
    n = len(variance)
    s = pd.DataFrame(
        {
            "weight_decay": np.r_[0.0, np.logspace(-3, 0, n - 1)],
            "variance": variance,
            "status": "ok",
        }
    )
    if diff_se is not None:
        s["variance_diff_prev"] = np.r_[np.nan, np.diff(variance)]
        s["variance_diff_prev_se"] = np.r_[np.nan, [diff_se] * (n - 1)]
    return Sweep(summary=s, valid=s, meta={})


def test_monotone_variance():
    assert variance_monotone(_sweep([5.0, 4, 3, 2])) == (
        "The variance estimate falls at every step of the λ grid."
    )


def test_a_two_se_rise_among_nine_pairs_can_be_chance():
    """Bonferroni over 9 one-sided comparisons at 5 %: z > 2.54."""
    var = [10.0, 9, 8, 7, 6, 5, 4, 3, 3.2, 2]  # a rise of 0.2 at the 9th λ
    text = variance_monotone(_sweep(var, diff_se=0.1))
    assert "a rise of 2.0 paired SE" in text
    assert text.startswith("No rise of the variance with λ is more than chance explains")
    assert "(none exceeds 2.54 paired SE" in text and "for the 9 adjacent pairs" in text


def test_a_large_rise_is_called_real():
    var = [10.0, 9, 8, 7, 6, 5, 4, 3, 3.4, 2]
    text = variance_monotone(_sweep(var, diff_se=0.1))
    assert "a rise of 4.0 paired SE" in text
    assert text.startswith("Variance is not monotone in λ: at λ = 0.421697 it rises by more than ")
    assert "2.54 paired SE" in text and "more than chance explains" in text


def test_the_rise_threshold_takes_students_t_with_the_rises_degrees_of_freedom():
    """With variance_diff_prev_df (19: 20 sets), Bonferroni over 9 one-sided comparisons
    at 5 % is t(19) > 2.81, not the normal 2.54: a 2.7-SE rise is chance."""
    var = [10.0, 9, 8, 7, 6, 5, 4, 3, 3.27, 2]
    run = _sweep(var, diff_se=0.1)
    run.summary["variance_diff_prev_df"] = 19.0
    text = variance_monotone(run)
    assert "(none exceeds 2.81 paired SE, the one-sided 5 % threshold (Student's t)" in text


def test_without_paired_se_no_threshold_is_claimed():
    text = variance_monotone(_sweep([3.0, 4.0]))
    assert "(3 → 4, no paired SE in this run); this run has no paired SE of those rises" in text
    assert "not tested" in text and "monotone" not in text


def _summary_from_sets(loss, weight_decay, crossed=False):
    """A summary whose paired columns come from per-set expected errors ``loss``
    (n_wd, K), with the few other columns the findings read; with ``crossed``, ``loss``
    is (n_wd, n_1, n_2) cells of a crossed design (delete-one-level replicates)."""
    from bvsim.estimate.crossed import level_means
    from bvsim.io.summary import paired_columns

    if crossed:
        reps = np.stack([level_means(c)[1] for c in loss])
        per_set = {"levels": loss.shape[1:], "expected": reps, "cells": loss}
        per_set |= {"test_error": reps, "variance": reps}
        loss = loss.reshape(len(loss), -1)
    else:
        per_set = {"expected": loss}
    k = loss.shape[1]
    s = pd.DataFrame(
        {
            "weight_decay": weight_decay,
            "n_reps_used": k,
            "n_diverged": 0,
            "expected_error": loss.mean(1),
            "expected_error_se": loss.std(1, ddof=1) / np.sqrt(k),
            "bias2": loss.mean(1) / 2,
            "bias2_se": 0.01,
            "variance": loss.mean(1) / 2,
            "variance_se": 0.01,
            "noise": 0.0,
            "test_error": np.nan,
            "status": "ok",
        }
    )
    return paired_columns(s, per_set, seed=0)


def _best_finding(summary):
    from bvsim.present.findings import findings

    return next(f for f in findings(summary) if f.startswith("**Best λ"))


def test_a_heavy_tailed_difference_within_2_se_is_not_called_a_tie():
    """At the interpolation threshold one training set can carry most of a mean
    difference: λ = 0 is worse in every set, yet within 2 paired SE of the best."""
    gen = np.random.default_rng(0)
    best = 1 + gen.random(50)
    heavy = best + 0.05
    heavy[7] += 1000.0  # one set dominates the mean difference and its SE
    other = best + gen.normal(0.0, 0.05, 50)  # as often better as worse
    s = _summary_from_sets(np.stack([heavy, best, other]), [0.0, 0.1, 1.0])
    assert s["n_worse_than_best"].tolist() == [50, 0, int((other > best).sum())]
    d, se = s["diff_from_best"].iloc[0], s["diff_from_best_se"].iloc[0]
    assert d <= 2 * se  # the mean alone would call it a tie
    text = _best_finding(s)
    assert "yet worse than it in more training sets than chance explains: λ = 0 (" in text
    assert "worse in 50 of 50 sets; sign test p < 1e-10" in text
    # 50 sets: the 95 % interval is Student's t with 49 degrees of freedom, 2.01 SE
    assert "Within 2.01 paired SE of it (a two-sided 95 % interval: Student's t with 49 " in text
    assert "Otherwise within 2.01 paired SE of it" in text and "λ = 1 (+" in text
    far = best + 1.0 + gen.normal(0.0, 0.01, 50)  # worse by far more than 2 SE
    s = _summary_from_sets(np.stack([heavy, best, far]), [0.0, 0.1, 1.0])
    text = _best_finding(s)
    assert "Otherwise" not in text and text.endswith(
        "Every other λ is worse by more than 2.01 paired SE."
    )


def test_a_best_lambda_at_the_end_of_the_grid_is_flagged():
    gen = np.random.default_rng(1)
    base = 1 + gen.random(30)
    s = _summary_from_sets(np.stack([base + 0.3, base + 0.1, base]), [0.0, 0.1, 1.0])
    text = _best_finding(s)
    assert "It is the largest λ of the grid: the optimum may lie beyond it" in text
    from bvsim.present.findings import findings

    assert any("there is no larger λ" in f for f in findings(s))
    s2 = _summary_from_sets(np.stack([base, base + 0.1, base + 0.3]), [0.01, 0.1, 1.0])
    assert "It is the smallest λ of the grid" in _best_finding(s2)
    s3 = _summary_from_sets(np.stack([base, base + 0.1, base + 0.3]), [0.0, 0.1, 1.0])
    assert "of the grid" not in _best_finding(s3)  # λ = 0 is no edge to look beyond


def test_data_from_a_file_gets_no_bias_zero_test_and_a_vacuous_identity_check():
    """With test labels standing in for the truth, bias² includes the noise (never 0)
    and the measured test error is bias² + variance computed a second way."""
    from bvsim.present.checks import bias_zero, identity_check

    v = pd.DataFrame(
        {
            "weight_decay": [0.0, 1.0],
            "bias2": [0.5, 0.6],
            "bias2_se": [0.01, 0.01],
            "bias2_se0": [0.01, 0.01],
            "expected_error": [0.9, 1.0],
            "test_error": [0.9 + 3e-9, 1.0],
            "identity_gap_se": [1e-9, 1e-9],
            "bias2_includes_noise": [True, True],
        }
    )
    assert bias_zero(v) is None
    text = identity_check(v)
    assert "by construction" in text and "checks nothing" in text and "NOT" not in text
    generated = v.assign(bias2_includes_noise=False)
    assert "does NOT agree" in identity_check(generated)  # 3 SE off: a real test there
    assert bias_zero(generated).startswith("Bias² is more than 2 SE from zero at every λ (|")
    assert "> 2, with bias2_se0" in bias_zero(generated)


def test_percentages_show_the_se_to_two_significant_digits():
    from bvsim.present.common import pct_pm

    assert pct_pm(0.43, 0.0309) == "43.0 % ± 3.1 %"
    assert pct_pm(0.99984, 0.00025) == "99.984 % ± 0.025 %"
    assert pct_pm(0.5, 0.15) == "50.0 % ± 15.0 %"
    assert pct_pm(0.5, 0.0) == "50.0 % ± 0.0 %"
    assert pct_pm(0.5, np.nan) == "50.0 %"


def test_the_axis_table_marks_a_reduction_whose_se_a_heavy_tail_spoils():
    from bvsim.present.axis_report import _value_row

    gen = np.random.default_rng(0)
    best = 1 + gen.random(50)
    heavy = best + 0.05
    heavy[7] += 1000.0
    s = _summary_from_sets(np.stack([heavy, best]), [0.0, 0.1]).assign(n_train=40)
    # within the interval (listed) but flagged, on the λ and on the reduction's SE
    assert "| 40 | 0.1 | 0 † | " in _value_row("n_train", 40, s, {})
    assert _value_row("n_train", 40, s, {}).count("†") == 2
    calm = _summary_from_sets(np.stack([best + 0.05, best]), [0.0, 0.1]).assign(n_train=40)
    assert "†" not in _value_row("n_train", 40, calm, {})
    # the column of the λ also within the best's 95 % interval: λ = 0 here, not above
    tie = _summary_from_sets(np.stack([best + gen.normal(0, 0.05, 50), best]), [0.0, 0.1])
    assert "| 40 | 0.1 | 0 | " in _value_row("n_train", 40, tie.assign(n_train=40), {})
    assert "| 40 | 0.1 | none | " in _value_row("n_train", 40, calm, {})


def test_a_crossed_difference_worse_in_every_cell_is_not_called_a_tie():
    """The double-descent-crossed run at n = p: λ = 0 within the interval of the best,
    yet worse in all 400 cells, was reported as tied (the crossed design had no sign
    test). Cells share their draws, so it is flagged by the count, with no p-value."""
    from bvsim.present.axis_report import _value_row

    gen = np.random.default_rng(3)
    best = 1 + gen.random((8, 5))
    heavy = best + 0.05
    heavy[2] += 1000.0  # one draw of x dominates the difference and its SE
    s = _summary_from_sets(np.stack([heavy, best]), [0.0, 0.1], crossed=True)
    assert s["n_worse_than_best"].tolist() == [40, 0] and s["n_common_with_best"][0] == 40
    assert s["diff_from_best_df"][0] == pytest.approx(7.0)  # one factor carries it all
    meta = {"crossed_factors": ["inputs", "label_noise"]}
    from bvsim.present.findings import findings

    text = next(f for f in findings(s, meta) if f.startswith("**Best λ"))
    assert "worse than it in every cell of the crossed design: λ = 0 (" in text
    assert "worse in 40 of 40 cells" in text and "sign test p" not in text
    assert "Student's t with Satterthwaite's 7 degrees of freedom" in text
    assert _value_row("n_train", 40, s.assign(n_train=40), meta).count("†") == 2
    mixed = best + gen.normal(0, 0.05, (8, 5))  # worse in some cells, better in others
    s = _summary_from_sets(np.stack([mixed, best]), [0.0, 0.1], crossed=True)
    text = next(f for f in findings(s, meta) if f.startswith("**Best λ"))
    assert "every cell" not in text


def test_a_lambda_better_in_most_sets_or_tied_is_not_flagged_as_worse():
    """The flag needs more sets worse than better: a λ usually better but blowing up in
    one set, or tied in most sets, is listed as within 2 SE with its counts only."""
    gen = np.random.default_rng(2)
    best = 1 + gen.random(50)
    usually_better = best - 0.05
    usually_better[7] += 1000.0  # worse on average, better in 49 of 50 sets
    s = _summary_from_sets(np.stack([usually_better, best]), [0.0, 0.1])
    text = _best_finding(s)
    assert "more training sets than chance" not in text
    assert "λ = 0 (+" in text and "worse in 1 of 50 sets" in text
    tied = best.copy()
    tied[:3] += 0.01  # 3 worse, 47 tied: the sign test sees 3 against 0, not 3 against 47
    s = _summary_from_sets(np.stack([tied, best]), [0.0, 0.1])
    assert s["n_better_than_best"].tolist() == [0, 0]
    text = _best_finding(s)
    assert "more training sets than chance" not in text
    assert "worse in 3 of 50 sets, better in 0" in text


def test_the_axis_report_names_the_values_whose_identity_check_fails():
    """double-descent n = 40 failed its identity check (3.26 SE) in its own report only;
    the axis report now names it, with the number of checks made."""
    from bvsim.present.axis_report import _identity_lines

    def part(z):
        return pd.DataFrame({"weight_decay": [0.0, 0.1], "expected_error": 1.0,
                             "status": "ok", "identity_gap": [0.1, z * 0.1],
                             "identity_gap_se": 0.1})  # fmt: skip

    groups = [(20, part(0.5)), (40, part(3.26))]
    text = " ".join(_identity_lines("n_train", groups))
    assert "for 4 checks (value × λ" in text
    assert "each value's report: n_train = 40 (3.26 SE at λ = 0.1)" in text
    assert "n_train = 20" not in text
    assert _identity_lines("n_train", groups[:1]) == []
    noise_unknown = part(5.0).assign(bias2_includes_noise=True)  # checks nothing there
    assert _identity_lines("n_train", [(40, noise_unknown)]) == []


def test_how_sure_says_how_few_resamples_a_few_sets_allow():
    """4 sets have 35 distinct bootstrap resamples: the report says so; 50 sets do not
    get the caveat."""
    from bvsim.present.common import valid_rows
    from bvsim.present.findings import how_sure
    from bvsim.present.run_view import Sweep

    gen = np.random.default_rng(4)
    for k, caveat in ((4, True), (50, False)):
        best = 1 + gen.random(k)
        s = _summary_from_sets(np.stack([best + 0.3, best]), [0.0, 0.1])
        text = how_sure(Sweep(s, valid_rows(s), {}))
        assert ("at most 35 distinct resamples" in text) is caveat, text


def test_a_run_written_before_the_df_columns_gets_one_rule_throughout():
    """A nested summary without diff_from_best_df / variance_diff_prev_df (older runs):
    the intervals, the variance-rise threshold and the early-stopping verdict all take
    Student's t from the sets compared; a crossed one without them (no df to rebuild)
    takes the normal quantile throughout (common.critical_value), says so, and does not
    claim Student's t anywhere."""
    from pathlib import Path

    from bvsim.present.early_stopping import early_stopping_finding
    from bvsim.present.findings import findings
    from bvsim.present.report import _pairing

    root = Path(__file__).resolve().parents[2] / "results"
    old = pd.read_csv(root / "seed-demo" / "summary.csv").drop(
        columns=["diff_from_best_df", "variance_diff_prev_df"]
    )
    text = " ".join(findings(old))
    assert "2.01 paired SE" in text and "(Student's t)" in text and "(normal)" not in text
    assert "Student's t with the sets compared minus one" in _pairing(old, {})
    es = {"diff": 0.01, "diff_se": 0.1, "n_common": 50, "weight_decay_min": 0.0,
          "best_step": 40, "last_step": 2000, "best_weight_decay": 0.1,
          "weight_decay_error": 0.15, "weight_decay_error_se": 0.01,
          "early_stopping_error": 0.16, "early_stopping_error_se": 0.01,
          "grid_best_step": 40, "grid_best_weight_decay": 0.1, "grid_best_error": 0.14}  # fmt: skip
    assert "2.01 paired SE, a two-sided 95 % interval" in early_stopping_finding(
        {"early_stopping": es}
    )
    crossed = pd.read_csv(root / "sine-crossed" / "summary.csv").drop(
        columns=["diff_from_best_df", "variance_diff_prev_df"]
    )
    meta = {"crossed_factors": ["inputs", "label_noise", "init"]}
    text = " ".join(findings(crossed, meta)) + _pairing(crossed, meta)
    assert "Within 1.96 paired SE of it (a two-sided 95 % interval from the normal" in text
    assert "2.45 paired SE, the one-sided 5 % threshold (normal)" in text
    assert "Student's t" not in text and "Satterthwaite" not in text
    es_crossed = early_stopping_finding({"early_stopping": es, **meta})
    assert "1.96 paired SE, a two-sided 95 % interval from the normal quantile" in es_crossed


def test_an_axis_identity_failure_is_weighed_against_the_number_of_checks():
    """double-descent: 3.26 SE at one of 77 (value x λ) checks is beyond the per-run 3 SE
    but within the family-wise 5 % threshold (3.41 SE): the report says both."""
    from bvsim.present.axis_report import _identity_lines

    def part(gaps):
        n = len(gaps)
        return pd.DataFrame(
            {"weight_decay": np.arange(n) / 10, "expected_error": 1.0, "status": "ok",
             "identity_gap": gaps, "identity_gap_se": 1.0}
        )  # fmt: skip

    calm = [(v, part(np.zeros(7))) for v in range(10)]
    text = " ".join(_identity_lines("n_train", [*calm, (40, part([0, 3.26, 0, 0, 0, 0, 0]))]))
    assert text.startswith("Across the values, the measured test error agrees with bias² + ")
    assert "n_train = 40 (3.26 SE at λ = 0.1)" in text
    assert "is within the family-wise 5 % threshold of 3.41 SE for 77 checks" in text
    assert "Bonferroni, two-sided, normal" in text
    # with the sets behind each SE: Student's t at the fewest df (200 sets: t(199) 3.47)
    sets = [(v, p.assign(n_reps_used=200)) for v, p in calm]
    text = " ".join(_identity_lines("n_train", [*sets, (40, part([0, 3.45, 0, 0, 0, 0, 0]))]))
    assert "within the family-wise 5 % threshold of 3.47 SE" in text
    assert "Student's t at 199 degrees of freedom" in text
    text = " ".join(_identity_lines("n_train", [*calm, (40, part([0, 4.0, 0, 0, 0, 0, 0]))]))
    assert text.startswith("The measured test error does not agree with bias² + variance")
    assert "is beyond the family-wise 5 % threshold" in text
    assert _identity_lines("n_train", calm) == []


def test_a_grid_without_zero_does_not_say_weight_decay_did_not_help():
    """The best λ at the smallest λ > 0 says nothing about no weight decay at all."""
    from bvsim.present.findings import findings

    gen = np.random.default_rng(2)
    base = 1 + gen.random(30)
    s = _summary_from_sets(np.stack([base, base + 0.1, base + 0.3]), [0.01, 0.1, 1.0])
    text = " ".join(findings(s))
    assert "weight decay did not reduce" not in text
    assert "no larger λ of the grid reduced the expected error; λ = 0 is not in the grid" in text
    s0 = _summary_from_sets(np.stack([base, base + 0.1, base + 0.3]), [0.0, 0.1, 1.0])
    assert "λ = 0 itself: weight decay did not reduce the expected error." in " ".join(findings(s0))


def test_a_one_lambda_grid_compares_nothing():
    from bvsim.present.findings import findings

    gen = np.random.default_rng(3)
    s = _summary_from_sets(np.stack([1 + gen.random(30)]), [0.1])
    s["variance_share_se"], s["bias2_share_se"] = 0.01, 0.02
    found = findings(s)
    assert found[0].startswith("**λ = 0.1**, the one λ with estimates: expected error")
    text = " ".join(found)
    for claim in ("Best λ", "smallest λ", "largest λ", "weight decay did not", "reduces"):
        assert claim not in text
    assert "At λ = 0.1, variance is 50.0 % ± 1.0 % and bias² 50.0 % ± 2.0 %" in text


def test_differences_without_their_se_are_named_as_such():
    """A crossed factor with 2 levels gives diff_from_best but no SE of it: the report
    says the SE is missing, not the differences, and claims no SE of the shares."""
    from bvsim.present.findings import findings

    gen = np.random.default_rng(4)
    base = 1 + gen.random(30)
    s = _summary_from_sets(np.stack([base, base + 0.1, base + 0.3]), [0.0, 0.1, 1.0])
    s["diff_from_best_se"] = np.nan
    s["variance_share_se"] = s["bias2_share_se"] = np.nan
    text = " ".join(findings(s))
    assert "has the paired differences from the best (`diff_from_best`) but no SE" in text
    assert "(no SE of the ratios in this run)" in text and "jackknife SEs" not in text


def test_a_negative_bias_without_any_se_prints_no_nan():
    from bvsim.present.checks import bias_zero

    v = pd.DataFrame(
        {"weight_decay": [0.0, 0.1], "bias2": [-0.01, 0.2], "bias2_se": np.nan, "noise": 0.1}
    )
    text = bias_zero(v, crossed=True)
    assert "nan" not in text.lower()
    assert "negative at 1 λ (0); there is no multiway-jackknife SE of it in this run" in text


def test_rises_without_a_paired_se_are_said_to_be_untested():
    run = _sweep([10.0, 11.0, 9.0, 9.5], diff_se=0.1)
    run.summary.loc[3, "variance_diff_prev_se"] = np.nan  # one rise has no SE
    text = variance_monotone(run)
    assert text.startswith("Variance is not monotone in λ: at λ = 0.001 it rises by more")
    assert text.endswith(" 1 of the rises has no paired SE and is not tested.")


def test_a_lambda_whose_hard_sets_diverged_is_not_made_best_by_their_absence():
    """The statistics review: λ = 0.01 is 0.02 worse than λ = 0 in every set, but its 8
    hardest sets diverged, so its mean over the sets it kept was the lower one: it was
    named best with 82 % prob_best, λ = 0 'within 2 SE' at -16 SE, and a negative
    reduction. The best and prob_best are now chosen on the sets both kept."""
    from bvsim.io.summary import paired_columns

    gen = np.random.default_rng(3)
    base = np.sort(gen.uniform(0.2, 1.0, 32))  # the last sets are the hard ones
    loss = np.stack([base, base + 0.02])
    loss[1, 24:] = np.nan  # diverged at λ = 0.01
    s = pd.DataFrame(
        {
            "weight_decay": [0.0, 0.01],
            "n_reps_used": [32, 24],
            "n_diverged": [0, 8],
            "expected_error": np.nanmean(loss, axis=1),
            "expected_error_se": np.nanstd(loss, axis=1, ddof=1) / np.sqrt([32, 24]),
            "bias2": 0.1, "bias2_se": 0.01, "variance": 0.1, "variance_se": 0.01,
            "noise": 0.0, "test_error": np.nan, "status": ["ok", "some_diverged"],
        }
    )  # fmt: skip
    assert s["expected_error"].iloc[1] < s["expected_error"].iloc[0]  # the trap
    out = paired_columns(s, {"expected": loss}, seed=0)
    assert out["is_best"].tolist() == [True, False]
    assert out["prob_best"].tolist() == [1.0, 0.0]
    np.testing.assert_allclose(out["diff_from_best"].iloc[1], 0.02)
    text = " ".join(findings(out))
    assert _best_finding(out).startswith("**Best λ = 0**: ")
    assert "every difference from the best are computed on the 24 training sets usable" in text


def test_a_lambda_with_an_estimate_but_no_per_set_values_is_not_ranked_and_said():
    """The diff review, then a real run (smoke, lr 0.9): λ = 0.1 and 1 kept 2 sets each,
    enough for an estimate, too few for per-set values; their own means were the
    lowest, unpaired. They are not ranked, the ranking is on the sets the others share,
    and the report names them (it first said the ranking had fallen back)."""
    from bvsim.io.summary import paired_columns

    gen = np.random.default_rng(4)
    base = gen.uniform(0.4, 0.8, 12)
    loss = np.stack([base, base + 0.1, np.full(12, np.nan)])
    loss[1, 9:] = np.nan
    s = pd.DataFrame(
        {
            "weight_decay": [0.0, 0.01, 0.1],
            "n_reps_used": [12, 9, 2],
            "n_diverged": [0, 3, 10],
            "expected_error": [base.mean(), np.nanmean(loss[1]), 0.1],  # the trap: lowest
            "expected_error_se": 0.02, "bias2": 0.1, "bias2_se": 0.01, "variance": 0.1,
            "variance_se": 0.01, "noise": 0.0, "test_error": np.nan,
            "status": ["ok", "some_diverged", "some_diverged"],
        }
    )  # fmt: skip
    out = paired_columns(s, {"expected": loss}, seed=0)
    assert out["is_best"].tolist() == [True, False, False]
    assert out["n_common_with_best"].tolist()[:2] == [9, 9]
    text = " ".join(findings(out))
    assert (
        "computed on the 9 training sets usable at every λ ranked, paired (not ranked: λ = 0.1,"
        in text
    )
