"""A λ's summary row from its prediction blocks (bvsim.estimate.rows)."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim.estimate.anova import anova_terms, crossed_anova_blocks
from bvsim.estimate.classification import EPS
from bvsim.estimate.rows import cross_entropy_fill, crossed_fill, label_loss, squared_fill


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


def test_every_fill_measures_the_test_error_with_label_loss():
    """The summary's test error (each fill's per-set error) is label_loss averaged over
    seeds and points, the same formula as members.csv's (Task.member_loss)."""
    gen = np.random.default_rng(3)
    k, s, j = 6, 3, 20
    cuts = [slice(0, 7), slice(7, j)]
    f = gen.normal(size=j)
    pred, labels = gen.normal(size=(k, s, j)), gen.normal(size=(k, j))
    want = label_loss(pred, labels, True).mean(axis=(1, 2))
    err, _, _ = squared_fill({}, _blocks(pred, labels, cuts), f, 0.01, n_seeds=s)
    np.testing.assert_allclose(err, want, rtol=1e-13)
    err, _, _ = crossed_fill({}, _blocks(pred, labels, cuts), f, 0.01, ("inputs", "init"),
                             (k, s), s)  # fmt: skip
    np.testing.assert_allclose(err, want, rtol=1e-13)
    p_true = gen.dirichlet(np.ones(3), size=j)
    proba = gen.dirichlet(np.ones(3), size=(k, s, j))
    classes = gen.integers(0, 3, size=(k, j)).astype(float)
    blocks = ((b, proba[:, :, b], classes[:, b]) for b in cuts)
    err, _, _ = cross_entropy_fill({}, blocks, p_true, s, noise_known=True)
    np.testing.assert_allclose(err, label_loss(proba, classes, False).mean(axis=(1, 2)))
    picked = np.take_along_axis(proba, classes.astype(int)[:, None, :, None], axis=-1)
    np.testing.assert_allclose(label_loss(proba, classes, False), -np.log(picked[..., 0]))
    proba[0, 0, 0] = 0.0  # a probability of 0 is clipped to EPS
    assert label_loss(proba, np.zeros((k, j)), False)[0, 0, 0] == -np.log(EPS)


def test_the_seed_ensemble_divides_every_term_with_the_initialization():
    """Both designs' ensemble columns: the expected error with every variance term that
    holds the initialization divided by the number of seeds (for a crossed design, the
    ANOVA terms with ``init``), its SE from the same replicates as the others'."""
    gen = np.random.default_rng(4)
    levels, factors = (4, 3, 3), ("inputs", "label_noise", "init")
    cells = gen.normal(size=(*levels, 30)) + gen.normal(size=(4, 1, 1, 30))
    f = gen.normal(size=30)
    pred = cells.reshape(12, 3, 30)
    labels = f + gen.normal(0, 0.1, (12, 30))
    cuts = [slice(0, 10), slice(10, 30)]
    crossed: dict = {}
    _, _, sets = crossed_fill(crossed, _blocks(pred, labels, cuts), f, 0.01, factors, levels, 3)
    terms = [":".join(t) for t in anova_terms(factors)]
    overall = sets["anova"][0]
    variance = sum(overall[t] / (3 if "init" in t.split(":") else 1) for t in terms)
    want = crossed["bias2"] + variance + 0.01
    assert crossed["ensemble_error"] == pytest.approx(want, rel=1e-12)
    nested: dict = {}
    squared_fill(nested, _blocks(pred, labels, cuts), f, 0.01, n_seeds=3)
    want = nested["bias2"] + nested["variance_data"] + nested["variance_init"] / 3 + 0.01
    assert nested["ensemble_error"] == pytest.approx(want, rel=1e-12)
    for row in (crossed, nested):
        assert row["ensemble_gain"] == pytest.approx(row["expected_error"] - row["ensemble_error"])
        assert row["ensemble_gain_se"] == pytest.approx(2 / 3 * row["variance_init_se"])
        assert 0 < row["ensemble_error_se"] < np.inf
