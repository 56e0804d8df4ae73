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
