"""Findings of report.md on hand-made summaries with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bvsim.present.findings import Sweep, variance_monotone


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
        "Variance decreases monotonically with λ over the grid."
    )


def test_a_two_se_rise_among_nine_pairs_can_be_chance():
    """Bonferroni over 9 one-sided comparisons at 5 %: z > 2.54."""
    var = [10.0, 9, 8, 7, 6, 5, 4, 3, 3.2, 2]  # a rise of 0.2 at the 9th λ
    text = variance_monotone(_sweep(var, diff_se=0.1))
    assert "a rise of 2.0 paired SE" in text
    assert "No rise exceeds 2.54 paired SE" in text and "for the 9 adjacent pairs" in text
    assert text.endswith(": chance can explain them.")


def test_a_large_rise_is_called_real():
    var = [10.0, 9, 8, 7, 6, 5, 4, 3, 3.4, 2]
    text = variance_monotone(_sweep(var, diff_se=0.1))
    assert "a rise of 4.0 paired SE" in text
    assert "the rise exceeds 2.54 paired SE" in text and text.endswith(": more than chance.")


def test_without_paired_se_no_threshold_is_claimed():
    text = variance_monotone(_sweep([3.0, 4.0]))
    assert text.endswith("(3 → 4, no paired SE in this run).")


def _summary_from_sets(loss, weight_decay):
    """A summary whose paired columns come from per-set expected errors ``loss``
    (n_wd, K), with the few other columns the findings read."""
    from bvsim.io.summary import paired_columns

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
    return paired_columns(s, {"expected": loss}, seed=0)


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
    assert _value_row("n_train", 40, s).count("†") == 1
    calm = _summary_from_sets(np.stack([best + 0.05, best]), [0.0, 0.1]).assign(n_train=40)
    assert "†" not in _value_row("n_train", 40, calm)


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
