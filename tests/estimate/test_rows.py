"""A λ's summary row from its prediction blocks (bvsim.estimate.rows)."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim.estimate.anova import crossed_anova_blocks
from bvsim.estimate.rows import crossed_fill, squared_fill


def _blocks(pred, labels, cuts):
    return ((b, pred[:, :, b], labels[:, b]) for b in cuts)


def test_bias2_se_is_never_below_its_zero_bias_se():
    """seed-demo at λ = 1: every fit collapses to a constant near the truth's mean, so
    the first-order term of bias²'s variance vanishes and the jackknife SE can come out
    below the zero-bias (second-order) term, which every bias² carries."""
    gen = np.random.default_rng(0)
    f = np.sin(np.linspace(0, 2 * np.pi, 40))  # mean 0
    labels = f + gen.normal(0, 0.1, (50, 40))
    cuts = [slice(0, 15), slice(15, 40)]
    floored = 0
    for _ in range(20):  # 50 sets, 2 seeds, 40 points: one constant per set
        pred = np.broadcast_to(gen.normal(0, 0.05, (50, 1, 1)), (50, 2, 40))
        row: dict = {}
        _, point, _ = squared_fill(row, _blocks(pred, labels, cuts), f, 0.01, n_seeds=2)
        assert row["bias2_se"] >= row["bias2_se0"] > 0
        assert (point["bias2_se"] >= point["bias2_se0"]).all()
        floored += row["bias2_se"] == row["bias2_se0"]
    assert floored > 0  # the floor is reached in some of these studies


def test_a_crossed_fill_gives_the_anova_of_the_same_predictions():
    """One pass over the predictions serves summary.csv and anova.csv: the ANOVA a
    crossed fill returns equals crossed_anova_blocks of the same cells."""
    gen = np.random.default_rng(1)
    levels, factors = (4, 3, 3), ("inputs", "label_noise", "init")
    cells = gen.normal(size=(*levels, 30)) + gen.normal(size=(4, 1, 1, 30))
    f = gen.normal(size=30)
    pred = cells.reshape(12, 3, 30)  # set k = a * n_noise + b, then the seed
    labels = f + gen.normal(0, 0.1, (12, 30))
    cuts = [slice(0, 10), slice(10, 30)]
    row: dict = {}
    _, _, sets = crossed_fill(row, _blocks(pred, labels, cuts), f, 0.01, factors, levels, 3)
    overall, pointwise = sets["anova"]
    want, want_points = crossed_anova_blocks(((cells[..., b], f[b]) for b in cuts), factors)
    assert overall.keys() == want.keys() and "init_share_df" in overall
    for key, value in want.items():
        assert overall[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
    for key, value in want_points.items():
        np.testing.assert_allclose(pointwise[key], value, rtol=1e-12)
    assert row["variance"] == pytest.approx(overall["variance"], rel=1e-12)
    assert row["bias2_se"] == pytest.approx(overall["bias2_se"], rel=1e-12)
