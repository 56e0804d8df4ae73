"""The crossed design's summary estimators (bvsim.estimate.crossed): the ANOVA's own
bias² and variance, multiway-jackknife SEs that cover, paired differences across λ and
the pigeonhole bootstrap of ``prob_best``."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim.estimate.anova import anova_terms, crossed_anova
from bvsim.estimate.crossed import crossed_decompose, crossed_prob_best, level_means, split_se
from bvsim.estimate.squared import decompose

FACTORS = ("inputs", "label_noise", "init")
#: Additive and interaction components of the synthetic studies (variance 1.9).
TRUE = {"inputs": 0.5, "label_noise": 0.5, "init": 0.2, "inputs:label_noise": 0.3,
        "inputs:init": 0.1, "label_noise:init": 0.1, "inputs:label_noise:init": 0.2}  # fmt: skip


def _effects(rng, sizes, components, n_points):
    """One study's random effects: every term an independent normal effect per point."""
    y = np.zeros((*sizes, n_points))
    for term in anova_terms(FACTORS):
        shape = [n if name in term else 1 for name, n in zip(FACTORS, sizes, strict=True)]
        y = y + rng.normal(0, np.sqrt(components[":".join(term)]), (*shape, n_points))
    return y


def test_the_summary_estimates_are_the_anova_terms():
    rng = np.random.default_rng(0)
    y, f = rng.normal(size=(5, 4, 3, 7)), rng.normal(size=7)
    blocks = [(y[..., :3], f[:3]), (y[..., 3:], f[3:])]
    overall, pointwise, reps = crossed_decompose(blocks, FACTORS)
    anova, anova_points = crossed_anova(y, f, FACTORS)
    for k in ("bias2", "variance", "mse_truth"):
        assert overall[k] == pytest.approx(anova[k], rel=1e-12)
        assert overall[f"{k}_se"] == pytest.approx(anova[f"{k}_se"], rel=1e-12)
    init = [t for t in TRUE if "init" in t.split(":")]
    assert overall["variance_init"] == pytest.approx(sum(anova[t] for t in init), rel=1e-12)
    assert overall["variance_data"] + overall["variance_init"] == pytest.approx(
        overall["variance"], rel=1e-12
    )
    np.testing.assert_allclose(pointwise["variance"], anova_points["variance"], rtol=1e-12)
    assert np.isfinite(pointwise["bias2_se"]).all() and (pointwise["variance_se"] > 0).all()
    assert reps["mse_truth"].shape == (5 + 4 + 3,)
    # the mean of the cells' squared errors: the same estimate and SE by level means
    mean, cell_reps = level_means(np.square(y - f).mean(axis=-1))
    assert mean == pytest.approx(overall["mse_truth"], rel=1e-12)
    assert split_se(cell_reps, (5, 4, 3)) == pytest.approx(overall["mse_truth_se"], rel=1e-12)


def test_without_an_init_factor_there_is_no_init_variance_and_two_levels_no_se():
    rng = np.random.default_rng(1)
    overall, _, _ = crossed_decompose([(rng.normal(size=(4, 3, 5)), np.zeros(5))], FACTORS[:2])
    assert np.isnan(overall["variance_init"]) and overall["variance_data"] == overall["variance"]
    overall, points, reps = crossed_decompose(
        [(rng.normal(size=(4, 2, 5)), np.zeros(5))], FACTORS[:2]
    )
    assert np.isnan(overall["variance_se"]) and np.isnan(points["bias2_se"]).all()
    # replicates keep their documented shape (sum of the levels), all NaN: the summary
    # stacks them per λ
    for k in ("bias2", "variance", "variance_data", "variance_init", "mse_truth"):
        assert reps[k].shape == (4 + 2,) and np.isnan(reps[k]).all(), k


def test_multiway_jackknife_covers_where_the_iid_jackknife_does_not():
    """500 synthetic crossed studies (6 x 5 x 3 levels, 4 test points, additive and
    interaction effects of known variance) at two λ, the second correlated with the
    first. ±2 SE intervals of the expected error, of the paired difference between the
    two λ and of the variance cover the truth in at least 92-93 % of studies (1000
    studies measured 94.1 %, 97.2 % and 96.7 %), while treating the 30 training sets as
    i.i.d. (the nested estimators and SEs) covers far less (72 %, 74 %, 58 %)."""
    rng = np.random.default_rng(0)
    sizes, f = (6, 5, 3), np.zeros(4)
    mu1, mu2 = np.array([0.3, -0.2, 0.5, 0.0]), np.array([0.1, 0.1, 0.2, -0.4])
    rho, second = 0.7, {k: 0.3 * v for k, v in TRUE.items()}
    v1 = sum(TRUE.values())
    e1 = np.mean(np.square(mu1 - f)) + v1
    e2 = np.mean(np.square(mu2 - f)) + rho**2 * v1 + sum(second.values())
    hits = {k: [] for k in ("error", "diff", "variance", "iid_error", "iid_diff", "iid_variance")}
    for _ in range(500):
        u = _effects(rng, sizes, TRUE, len(f))
        y1, y2 = mu1 + u, mu2 + rho * u + _effects(rng, sizes, second, len(f))
        o1, _, r1 = crossed_decompose([(y1, f)], FACTORS)
        o2, _, r2 = crossed_decompose([(y2, f)], FACTORS)
        diff_se = split_se(r2["mse_truth"] - r1["mse_truth"], sizes)
        hits["error"].append(abs(o1["mse_truth"] - e1) <= 2 * o1["mse_truth_se"])
        hits["diff"].append(abs(o2["mse_truth"] - o1["mse_truth"] - (e2 - e1)) <= 2 * diff_se)
        hits["variance"].append(abs(o1["variance"] - v1) <= 2 * o1["variance_se"])
        iid, _ = decompose(y1.reshape(30, 3, len(f)), f)  # the sets as if independent
        d_k = (np.square(y2 - f) - np.square(y1 - f)).mean(axis=(2, 3)).ravel()
        d_se = d_k.std(ddof=1) / np.sqrt(len(d_k))
        hits["iid_error"].append(abs(iid["mse_truth"] - e1) <= 2 * iid["mse_truth_se"])
        hits["iid_diff"].append(abs(d_k.mean() - (e2 - e1)) <= 2 * d_se)
        hits["iid_variance"].append(abs(iid["variance"] - v1) <= 2 * iid["variance_se"])
    cover = {k: float(np.mean(v)) for k, v in hits.items()}
    assert cover["error"] >= 0.92 and cover["diff"] >= 0.93 and cover["variance"] >= 0.93, cover
    assert max(cover["iid_error"], cover["iid_diff"], cover["iid_variance"]) < 0.85, cover


def test_pigeonhole_bootstrap_of_prob_best():
    rng = np.random.default_rng(3)
    cells = rng.normal(1.0, 0.1, size=(1, 6, 5, 3))
    rows = np.concatenate([cells, cells + 0.5, cells - 0.5, np.full_like(cells, np.nan)])
    assert crossed_prob_best(rows, 200, seed=0).tolist() == [0.0, 0.0, 1.0, 0.0]
    tied = np.concatenate([cells, cells + rng.normal(0, 0.02, cells.shape)])
    p = crossed_prob_best(tied, 400, seed=1)
    assert p.sum() == pytest.approx(1.0) and 0.05 < p[0] < 0.95
    np.testing.assert_array_equal(p, crossed_prob_best(tied, 400, seed=1))  # its seed
