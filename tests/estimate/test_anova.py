"""The crossed-design ANOVA of the variance: known answers and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from bvsim.estimate.anova import anova_terms, crossed_anova

FACTORS = ("inputs", "noise", "init")
TRUE = {"inputs": 1.0, "noise": 0.0, "init": 0.5, "inputs:noise": 0.3, "inputs:init": 0.2,
        "noise:init": 0.1, "inputs:noise:init": 0.4}  # fmt: skip


def _draw(rng, sizes, components, factors=FACTORS, offset=0.5):
    """One study of the random-effects model: every term an independent normal effect."""
    y = np.full(sizes, offset)
    for term in anova_terms(factors):
        shape = [n if name in term else 1 for name, n in zip(factors, sizes, strict=True)]
        y = y + rng.normal(0, np.sqrt(components[":".join(term)]), shape)
    return y[..., None]  # one test point


def test_terms_are_every_subset_main_effects_first():
    assert [":".join(t) for t in anova_terms(FACTORS)] == list(TRUE)


def test_a_pure_main_effect_is_found_exactly():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(7, 1, 1, 3))
    y = np.broadcast_to(u, (7, 4, 5, 3)) + 2.0
    overall, pointwise = crossed_anova(y, np.zeros(3), FACTORS)
    np.testing.assert_allclose(pointwise["inputs"], u[:, 0, 0].var(axis=0, ddof=1), rtol=1e-12)
    for term in list(TRUE)[1:]:
        np.testing.assert_allclose(pointwise[term], 0.0, atol=1e-12)
    m = y.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(pointwise["bias2"], m**2 - pointwise["inputs"] / 7, rtol=1e-12)


def test_bias2_plus_variance_is_the_squared_error_exactly():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(5, 4, 3, 6))
    f = rng.normal(size=6)
    overall, pointwise = crossed_anova(y, f, FACTORS)
    mse = np.square(y - f).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(pointwise["bias2"] + pointwise["variance"], mse, atol=1e-12)
    assert overall["bias2"] + overall["variance"] == pytest.approx(overall["mse_truth"], abs=1e-12)
    assert sum(overall[t] for t in TRUE) == pytest.approx(overall["variance"], abs=1e-12)


@pytest.mark.parametrize("sizes", [(6, 4, 4), (3, 3, 3)])
def test_every_term_is_unbiased(sizes):
    """300 simulated studies: each term's mean estimate within 4 Monte Carlo SE of the
    truth, including the plug-in-biased main effects and the zero noise effect, down
    to 3 levels per factor."""
    rng = np.random.default_rng(2)
    est = {k: [] for k in [*TRUE, "variance", "bias2"]}
    for _ in range(300):
        overall, _ = crossed_anova(_draw(rng, sizes, TRUE), np.zeros(1), FACTORS)
        for k in est:
            est[k].append(overall[k])
    truth = {**TRUE, "variance": sum(TRUE.values()), "bias2": 0.25}
    for k, values in est.items():
        values = np.array(values)
        mc_se = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - truth[k]) < 4 * mc_se + 1e-12, k


def test_main_effect_se_is_calibrated_with_many_levels():
    """Inputs x init with 40 input draws: the jackknife SE of the inputs main effect
    and of the total variance give |z| > 2 in about 5 % of studies."""
    rng = np.random.default_rng(3)
    comps = {"inputs": 1.0, "init": 0.3, "inputs:init": 0.5}
    z = {"inputs": [], "variance": []}
    for _ in range(300):
        overall, _ = crossed_anova(_draw(rng, (40, 4), comps, ("inputs", "init")), None,
                                   ("inputs", "init"))  # fmt: skip
        z["inputs"].append((overall["inputs"] - 1.0) / overall["inputs_se"])
        z["variance"].append((overall["variance"] - 1.8) / overall["variance_se"])
    for name, values in z.items():
        rate = np.mean(np.abs(values) > 2)
        assert 0.01 <= rate <= 0.10, (name, rate)


@pytest.mark.parametrize(
    "shape, needle",
    [((4, 4, 4), "factor axes"), ((4, 1, 4, 2), "at least 2 levels")],
)
def test_bad_shapes(shape, needle):
    with pytest.raises(ValueError, match=needle):
        crossed_anova(np.zeros(shape), None, FACTORS)


def test_non_finite_is_refused_and_two_levels_give_no_se():
    y = np.random.default_rng(4).normal(size=(2, 3, 3, 2))
    overall, _ = crossed_anova(y, None, FACTORS)
    assert np.isnan(overall["inputs_se"]) and np.isfinite(overall["inputs"])
    y[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        crossed_anova(y, None, FACTORS)


def test_satterthwaite_df_of_the_multiway_jackknife():
    """One factor: n - 1; factors of equal weight: the sum of their n - 1; a factor
    without spread leaves the other's; nothing to estimate gives NaN."""
    from bvsim.estimate.anova import multiway_jackknife_df

    rng = np.random.default_rng(0)
    a = rng.normal(size=7)
    assert multiway_jackknife_df([a]) == pytest.approx(6)
    assert multiway_jackknife_df([a, a]) == pytest.approx(12)
    assert multiway_jackknife_df([a, np.full(4, 0.3)]) == pytest.approx(6)
    b = np.array([0.0, 0.0, 3.0])  # a small factor that dominates: near its own 2
    assert 2 <= multiway_jackknife_df([a * 1e-3, b]) < 2.01
    assert np.isnan(multiway_jackknife_df([]))
    assert np.isnan(multiway_jackknife_df([np.zeros(4), np.zeros(3)]))
    assert np.isnan(multiway_jackknife_df([np.array([1.0, np.nan, 2.0])]))


def test_student_t_with_satterthwaite_df_covers_where_two_se_does_not():
    """A crossed mean (3 x 3 x 3 levels) whose variance is mostly one factor's: ±2
    multiway-jackknife SE covers it in about 84 % of 1500 studies, ± t(Satterthwaite
    df) SE in about 94 % (scripts/crossed_t_coverage.py for more designs)."""
    from bvsim.estimate.anova import multiway_jackknife_df, multiway_jackknife_se
    from bvsim.estimate.compare import t_multiplier

    rng = np.random.default_rng(0)
    sizes = (3, 3, 3)
    comps = {t: 0.02 for t in ("noise", "init", "inputs:noise", "inputs:init", "noise:init")}
    comps |= {"inputs": 1.0, "inputs:noise:init": 0.02}
    two = satt = 0
    for _ in range(1500):
        y = _draw(rng, sizes, comps, offset=0.0)[..., 0]
        reps = [
            np.array([np.delete(y, lv, axis=ax).mean() for lv in range(n)])
            for ax, n in enumerate(sizes)
        ]
        z = abs(y.mean()) / multiway_jackknife_se(reps)
        two += z <= 2
        satt += z <= t_multiplier(multiway_jackknife_df(reps))
    assert two / 1500 < 0.88 and 0.92 <= satt / 1500 <= 0.98, (two, satt)
