"""Estimators against known answers, exact identities and their own error bars."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim.estimate.anova import multiway_jackknife_df, multiway_jackknife_se
from bvsim.estimate.squared import (
    decompose,
    jackknife_se,
    jackknife_variance,
    mean_se,
    valid_training_sets,
)


def _random_pred(rng, k=12, s=3, j=5):
    f = rng.normal(size=j)
    pred = f + 0.3 + rng.normal(size=(k, 1, j)) + 0.5 * rng.normal(size=(k, s, j))
    return pred, f


@pytest.mark.parametrize("s", [1, 2, 4])
def test_identity_bias2_plus_variance_is_mse_against_truth(s):
    rng = np.random.default_rng(0)
    pred, f = _random_pred(rng, s=s)
    overall, point = decompose(pred, f)
    mse = np.square(pred - f).mean(axis=(0, 1))
    np.testing.assert_allclose(point["bias2"] + point["variance"], mse, rtol=0, atol=1e-12)
    assert overall["bias2"] + overall["variance"] == pytest.approx(mse.mean(), abs=1e-12)
    assert overall["mse_truth"] == pytest.approx(mse.mean(), abs=1e-12)


def test_known_answer_offset_plus_symmetric_spread():
    """pred = f + offset +- spread (half the sets each way): exact finite-K values."""
    k, offset, spread = 10, 0.4, 0.7
    f = np.linspace(-1, 1, 6)
    signs = np.where(np.arange(k) % 2 == 0, 1.0, -1.0)
    pred = (f + offset + spread * signs[:, None])[:, None, :]
    overall, _ = decompose(pred, f)
    b = spread**2 * k / (k - 1)  # ddof=1 variance of +-spread
    assert overall["variance"] == pytest.approx(b, abs=1e-12)
    assert overall["bias2"] == pytest.approx(offset**2 - b / k, abs=1e-12)
    # the plug-in (m - f)^2 is offset^2 exactly; the correction removes Var(m)
    assert overall["bias2"] + b / k == pytest.approx(offset**2, abs=1e-12)


def test_zero_variance_iff_members_agree():
    f = np.arange(4.0)
    pred = np.broadcast_to(f + 1.0, (5, 2, 4)).copy()
    overall, _ = decompose(pred, f)
    assert overall["variance"] == 0
    assert overall["bias2"] == pytest.approx(1.0)
    assert overall["variance_se"] == 0


def test_shift_invariance():
    rng = np.random.default_rng(1)
    pred, f = _random_pred(rng)
    a, _ = decompose(pred, f)
    b, _ = decompose(pred + 3.7, f + 3.7)
    for name in ("bias2", "variance", "bias2_se", "variance_se"):
        assert a[name] == pytest.approx(b[name], abs=1e-10)


def test_variance_split_sums_to_total():
    rng = np.random.default_rng(2)
    pred, f = _random_pred(rng, s=3)
    overall, _ = decompose(pred, f)
    assert overall["variance_data"] + overall["variance_init"] == pytest.approx(
        overall["variance"], abs=1e-12
    )
    single, _ = decompose(pred[:, :1], f)
    assert np.isnan(single["variance_init"])
    assert single["variance_data"] == pytest.approx(single["variance"], abs=1e-12)


def test_unbiased_and_error_bars_calibrated():
    """Over many simulated studies the estimates average to the true components and
    their jackknife SEs match the spread of the estimates."""
    rng = np.random.default_rng(3)
    k, s, j = 8, 3, 4
    offset, sd_data, sd_init = 0.5, 0.6, 0.4
    f = np.zeros(j)
    est, ses = [], []
    for _ in range(3000):
        pred = (
            offset
            + sd_data * rng.standard_normal((k, 1, j))
            + sd_init * rng.standard_normal((k, s, j))
        )
        o, _ = decompose(pred, f)
        est.append([o["bias2"], o["variance"], o["variance_data"], o["variance_init"]])
        ses.append([o["bias2_se"], o["variance_se"]])
    est, ses = np.array(est), np.array(ses)
    mean = est.mean(axis=0)
    err = est.std(axis=0) / np.sqrt(len(est))
    truth = [offset**2, sd_data**2 + sd_init**2, sd_data**2, sd_init**2]
    assert np.all(np.abs(mean - truth) < 4 * err), (mean, truth, err)
    # the plug-in bias^2 would be off by Var(m) = (sd_data^2 + sd_init^2/s)/k: resolvable
    assert (sd_data**2 + sd_init**2 / s) / k > 10 * err[0]
    # jackknife SEs: on average within 20% of the actual spread
    ratio = ses.mean(axis=0) / est[:, :2].std(axis=0)
    assert np.all((ratio > 0.8) & (ratio < 1.2)), ratio


def test_bias2_se_is_conservative_when_bias_is_near_zero():
    """Where bias^2 ~ 0 the corrected estimate is a degenerate quadratic and the
    jackknife over-covers (Efron-Stein): its SE errs on the large side, never small."""
    rng = np.random.default_rng(6)
    est, ses = [], []
    for _ in range(1500):
        pred = 0.6 * rng.standard_normal((30, 1, 4))
        o, _ = decompose(pred, np.zeros(4))
        est.append(o["bias2"])
        ses.append(o["bias2_se"])
    assert abs(np.mean(est)) < 3 * np.std(est) / np.sqrt(len(est))  # unbiased at 0
    ratio = np.mean(ses) / np.std(est)
    assert 0.95 < ratio < 1.6, ratio


def test_se_shrinks_like_one_over_sqrt_k():
    rng = np.random.default_rng(4)
    se = {}
    for k in (50, 800):
        pred = 0.2 + rng.standard_normal((k, 1, 30))
        o, _ = decompose(pred, np.zeros(30))
        se[k] = o["variance_se"]
    assert se[50] / se[800] == pytest.approx(4.0, rel=0.25)


def test_jackknife_of_mean_is_clt_se():
    x = np.random.default_rng(5).normal(size=(40, 3))
    k = len(x)
    loo = (x.sum(axis=0) - x) / (k - 1)
    np.testing.assert_allclose(jackknife_se(loo), mean_se(x)[1], rtol=1e-12)


def test_one_jackknife_variance_behind_every_jackknife_se():
    """jackknife_se and the multiway jackknife (one factor: the same SE; its df n - 1)
    take the one formula of jackknife_variance."""
    loo = np.random.default_rng(6).normal(size=(9, 4))
    dev = loo - loo.mean(axis=0)
    np.testing.assert_allclose(jackknife_variance(loo), 8 / 9 * (dev**2).sum(axis=0))
    np.testing.assert_array_equal(jackknife_se(loo), np.sqrt(jackknife_variance(loo)))
    np.testing.assert_array_equal(multiway_jackknife_se([loo]), jackknife_se(loo))
    assert multiway_jackknife_df([loo[:, 0]]) == pytest.approx(8.0)
    assert np.isnan(jackknife_se(loo[:1])).all() and (jackknife_variance(loo[:1]) == 0).all()


def test_too_few_sets():
    with pytest.raises(ValueError, match="at least 2"):
        decompose(np.zeros((1, 1, 3)), np.zeros(3))
    o, _ = decompose(np.random.default_rng(0).normal(size=(2, 1, 3)), np.zeros(3))
    assert np.isnan(o["bias2_se"]) and np.isfinite(o["bias2"])


def test_valid_training_sets():
    pred = np.zeros((3, 2, 4))
    pred[1, 1, 2] = np.nan
    np.testing.assert_array_equal(valid_training_sets(pred), [True, False, True])


def test_repeated_x_noise_se_matches_its_spread():
    """The noise estimate from repeated x (CSV data) came without an SE; its group
    jackknife SE matches the spread of the estimate over 400 datasets, for normal and
    for t(10) noise (no normal-theory formula: its kurtosis widens the spread)."""
    from bvsim.estimate.squared import repeated_x_noise

    x = np.repeat(np.arange(40.0), 3)[:, None]
    for draw, var in ((lambda g: g.standard_normal(120), 1.0),
                      (lambda g: g.standard_t(10, size=120), 1.25)):  # fmt: skip
        gen = np.random.default_rng(5)
        draws = [repeated_x_noise(x, draw(gen)) for _ in range(400)]
        est, se, groups = (np.array(v) for v in zip(*draws, strict=True))
        assert (groups == 40).all()
        assert abs(est.mean() - var) < 0.05 * var
        assert 0.85 < est.std(ddof=1) / se.mean() < 1.15
