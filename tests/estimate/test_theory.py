"""Closed-form ridge theory (bvsim.estimate.theory) against bvsim's own Monte Carlo estimates.

Fixed design: exact, so the estimates must land within 3 SE. Random design: exact at
λ = 0 (minimum-norm least squares at finite n, p; checked against a Monte Carlo of the
closed form design by design, at the double-descent sizes where the limit is several SE
off); at λ > 0 the Marchenko–Pastur limit at n = 400, within 3 SE plus a 1 % relative
allowance for the finite-n drift (measured at n = 400: the Stieltjes transform is off
by < 0.3 %, bias² by < 0.6 %). Every sweep uses the exact closed-form solver in float64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.config import axis_configs
from bvsim.data.generator import draw_training_sets, make_test_set
from bvsim.estimate.anova_theory import ridgeless_anova_exact
from bvsim.estimate.closed_form import KINDS, ridge_alpha, theory_kinds
from bvsim.estimate.theory import (
    _limit_parts,
    factors_at_test_points,
    mp_stieltjes,
    ridge_fixed_design,
    ridge_random_design_limit,
    ridge_random_design_limit_classical,
    ridgeless_random_design_exact,
)
from bvsim.io.tables import read_tables
from bvsim.io.theory import theory_table
from bvsim.present.checks import theory_agreement
from bvsim.present.lambda_figures import fig_decomposition

DRIFT = 0.01  # relative finite-n allowance for the p, n -> infinity limit


def ridge_random_design_shrinkage(gamma, alpha_over_n):
    """The limit c of E ŵ = c·w* for a random isotropic Gaussian design (p/n = γ,
    λ_r = α/n = bvsim's λ / 2): 1 − λ_r m(−λ_r); at λ_r = 0, 1 for γ ≤ 1 and 1/γ for
    γ > 1. The oracle the limit's bias² is checked against (bias² = r² (1 − c)²)."""
    lm, _, _ = _limit_parts(gamma, alpha_over_n)
    return (1 - lm)[()]


def _compare(summary, theory, drift=0.0):
    s = summary.merge(theory, on="weight_decay")
    assert len(s) == len(summary)
    for col in ("bias2", "variance"):
        gap = np.abs(s[col] - s[f"{col}_theory"])
        allowed = 3 * s[f"{col}_se"] + drift * s[f"{col}_theory"]
        assert (gap < allowed).all(), s[["weight_decay", col, f"{col}_se", f"{col}_theory"]]
    return s


# --- fixed design: exact -----------------------------------------------------------


@pytest.mark.parametrize("dim", [20, 60])  # p < n, and p > n (minimum norm at lambda = 0)
def test_fixed_design_theory_matches_monte_carlo(dim):
    cfg = load_config(
        preset="linear",
        overrides=[
            f"data.dim={dim}",
            "sweep.n_reps=1000",
            "train.solver=closed_form",
            "train.dtype=float64",
        ],  # fmt: skip
    )
    result = run_sweep(cfg, progress=False)
    theory = result.tables.theory
    assert set(theory["kind"]) == {"fixed_design_exact"}
    s = _compare(result.summary, theory)
    np.testing.assert_allclose(
        s["expected_error_theory"], s["bias2_theory"] + s["variance_theory"] + 1.0
    )


def test_fixed_design_formula_equals_explicit_algebra():
    rng = np.random.default_rng(3)
    for n, p in ((40, 20), (30, 60)):
        x, x_test = rng.standard_normal((n, p)), rng.standard_normal((50, p))
        coef = rng.standard_normal(p)
        lams = np.array([0.0, 0.01, 1.0])
        bias2, variance = ridge_fixed_design(x, x_test, coef, 0.7, lams)
        assert bias2.shape == variance.shape == (3,)
        for i, lam in enumerate(lams):
            alpha = n * lam / 2
            s = np.linalg.pinv(x.T @ x + alpha * np.eye(p))  # pinv: min norm at alpha = 0
            mean_err = x_test @ (s @ x.T @ x - np.eye(p)) @ coef
            np.testing.assert_allclose(bias2[i], np.mean(mean_err**2), rtol=1e-9, atol=1e-14)
            var = 0.7 * np.trace(x_test @ s @ x.T @ x @ s @ x_test.T) / len(x_test)
            np.testing.assert_allclose(variance[i], var, rtol=1e-9)
        one = ridge_fixed_design(x, x_test, coef, 0.7, 0.01)
        assert np.ndim(one[0]) == 0
        np.testing.assert_allclose(one, (bias2[1], variance[1]))


# --- random design: the Marchenko–Pastur limit -------------------------------------


def test_stieltjes_transform_solves_the_mp_equation_and_differentiates():
    gamma = np.array([0.2, 0.5, 1.0, 2.0, 5.0])[:, None]
    lam = np.array([1e-6, 1e-3, 0.1, 1.0, 10.0])
    m, dm = mp_stieltjes(gamma, lam)
    z = -lam
    np.testing.assert_allclose(gamma * z * m**2 - (1 - gamma - z) * m + 1, 0, atol=1e-9)
    lam, dm = lam[1:], dm[:, 1:]  # a central difference is too noisy at 1e-6
    h = 1e-5 * lam
    fd = -(mp_stieltjes(gamma, lam + h)[0] - mp_stieltjes(gamma, lam - h)[0]) / (2 * h)
    np.testing.assert_allclose(dm, fd, rtol=1e-6)
    # against the empirical spectrum of one large Gaussian design
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 500))
    ev = np.linalg.eigvalsh(x.T @ x / 1000)
    m, dm = mp_stieltjes(0.5, 0.3)
    np.testing.assert_allclose(np.mean(1 / (ev + 0.3)), m, rtol=5e-3)
    np.testing.assert_allclose(np.mean(1 / (ev + 0.3) ** 2), dm, rtol=1e-2)


@pytest.mark.parametrize(("dim", "n_reps"), [(200, 150), (800, 60)])  # p/n = 0.5 and 2
def test_random_design_limit_matches_monte_carlo(dim, n_reps):
    cfg = load_config(
        preset="linear",
        overrides=[
            "data.train_design=random",
            "data.n_train=400",
            f"data.dim={dim}",
            "train.solver=closed_form",
            "train.dtype=float64",
            f"sweep.n_reps={n_reps}",
            "sweep.weight_decay=[0.0, 0.1, 0.6, 2.0]",
        ],  # fmt: skip
    )
    result = run_sweep(cfg, progress=False)  # one process: faster than shipping X to workers
    theory = result.tables.theory
    assert theory["kind"].tolist() == ["random_design_exact"] + 3 * ["random_design_limit"]
    _compare(result.summary, theory, drift=DRIFT)
    # lambda = 0 is exact at n = 400 (min-norm for p > n); bvsim's split, r = sigma = 1
    n, p = 400, dim
    test = make_test_set(cfg)
    coef = np.full(dim, np.sqrt(1 / dim))
    b_factor = np.mean((test.x @ coef) ** 2)
    v_factor = np.mean(np.square(test.x).sum(1)) / dim
    zero = theory.loc[theory["weight_decay"] == 0].iloc[0]
    if p < n:
        bias0, var0 = 0.0, p / (n - p - 1) * v_factor
    else:
        b = n * (p - n) / (p * (p - 1) * (p + 2))
        bias0 = (1 - n / p) ** 2 * b_factor
        var0 = b * p * v_factor + b * (p - 2) / p * b_factor + n / (p - n - 1) * v_factor
    np.testing.assert_allclose(zero["bias2_theory"], bias0, atol=1e-12)
    np.testing.assert_allclose(zero["variance_theory"], var0, rtol=1e-12)
    # ... and within O(1/n) of the ridgeless limit (gamma/(1 - gamma); 1/4 + 1 at gamma = 2)
    gamma = p / n
    limit = gamma / (1 - gamma) if gamma < 1 else 1.25
    assert abs(zero["variance_theory"] / v_factor - limit) < 2 / n * limit + 1e-3


# --- random design at lambda = 0: exact at finite n, p ---------------------------------


def _ridgeless_monte_carlo(n, p, noise_var, n_designs, seed=0):
    """Design-by-design closed form of minimum-norm least squares, averaged over Gaussian
    designs: the mean predictor at each test point against c·f_j (c = min(n, p)/p: bvsim's
    bias² is (1 − c)² mean_j f_j²) as its largest |z|, and bvsim's variance (spread of the
    noise-free fit over designs plus the mean conditional noise variance
    σ² x_jᵀ(XᵀX)⁺x_j), with Monte Carlo SEs, and the test points' factors."""
    rng = np.random.default_rng(seed)
    coef = np.full(p, np.sqrt(1 / p))
    x_test = rng.standard_normal((30, p))
    x = rng.standard_normal((n_designs, n, p))
    pinv = np.linalg.pinv(x)  # (K, p, n): X⁺, so ŵ = X⁺X w* + X⁺ε
    fit = x_test @ (pinv @ (x @ coef[:, None]))[..., 0].T  # (J, K): noise-free predictions
    # sigma^2 x_j^T X+ X+^T x_j per design, averaged over the test points
    noise = noise_var * np.square(x_test @ pinv).sum(-1).mean(-1)  # (K,)
    mean = fit.mean(1)
    spread = np.square(fit - mean[:, None]).mean(0) * n_designs / (n_designs - 1)  # (K,)
    variance = spread + noise
    sqrt_k = np.sqrt(n_designs)
    gap = mean - min(n, p) / p * (x_test @ coef)
    if n >= p:  # the fit is the truth in every design
        mean_z = 0.0 if np.allclose(fit, (x_test @ coef)[:, None], atol=1e-9) else np.inf
    else:
        mean_z = np.max(np.abs(gap) / (fit.std(1, ddof=1) / sqrt_k))
    return {
        "mean_z": mean_z,
        "variance": (variance.mean(), variance.std(ddof=1) / sqrt_k),
        "noise_part": (noise.mean(), noise.std(ddof=1) / sqrt_k),
        "factors": factors_at_test_points(x_test, coef),
    }


@pytest.mark.parametrize(("n", "p"), [(44, 40), (50, 40), (36, 40), (20, 40)])
def test_ridgeless_exact_matches_a_monte_carlo_of_the_closed_form(n, p):
    """The exact λ = 0 values at the double-descent sizes (p = 40, n on both sides of the
    threshold), against many Gaussian designs; the limit is several SE off at n = 36, 44."""
    sigma2 = 0.25
    mc = _ridgeless_monte_carlo(n, p, sigma2, 3000)
    bf, vf = mc["factors"]
    bias2, variance = ridgeless_random_design_exact(n, p, 1.0, sigma2, bf, vf)
    value, se = mc["variance"]
    assert abs(value - variance) <= 4 * se, (value, se, variance)
    assert mc["mean_z"] < 4.5  # E ŵ = (n/p) w* for n < p, w* for n >= p: at 30 points
    assert bias2 == pytest.approx((1 - min(n, p) / p) ** 2 * bf, abs=1e-15)
    limit_bias2, limit_var = ridge_random_design_limit(p / n, 1.0, sigma2, 0.0)
    assert bias2 == pytest.approx(limit_bias2 * bf, abs=1e-12)  # the limit's bias² is exact
    if n in (36, 44):  # 1/(n - p - 1) against 1/(n - p): the limit is 25-33 % low here
        assert abs(value - limit_var * vf) > 6 * se
    if n > p:  # the textbook sigma^2 p / (n - p - 1), times mean ||x_j||^2 / p
        assert variance == pytest.approx(sigma2 * p / (n - p - 1) * vf, rel=1e-12)
        assert mc["noise_part"][0] == pytest.approx(variance, rel=1e-9 + 4 * se / value)


def test_ridgeless_exact_is_the_sum_of_the_anova_terms_and_infinite_at_the_threshold():
    for n, p in ((44, 40), (42, 40), (36, 40), (10, 25), (8, 12), (3, 2), (1, 5)):
        terms = ridgeless_anova_exact(n, p, 1.7, 0.3, 0.9, 1.1)
        bias2, variance = ridgeless_random_design_exact(n, p, 1.7, 0.3, 0.9, 1.1)
        assert bias2 == terms["bias2"]
        assert variance == pytest.approx(
            terms["inputs"] + terms["label_noise"] + terms["inputs:label_noise"], rel=1e-12
        )
    for n in (39, 40, 41):
        assert ridgeless_random_design_exact(n, 40, 1.0, 0.25)[1] == np.inf
        assert ridgeless_random_design_exact(n, 40, 1.0, 0.0)[1] < np.inf  # no noise
    # n -> infinity at fixed p/n: the Marchenko–Pastur limit
    for gamma in (0.5, 2.0):
        n = 4000
        exact = ridgeless_random_design_exact(n, int(gamma * n), 1.0, 0.25)
        np.testing.assert_allclose(exact, ridge_random_design_limit(gamma, 1.0, 0.25, 0.0),
                                   rtol=2e-3)  # fmt: skip


def _double_descent(n_train, *overrides):
    return load_config(
        preset="double-descent",
        overrides=[
            "sweep.axis=none",
            "sweep.axis_values=[]",
            f"data.n_train={n_train}",
            "sweep.weight_decay=[0.0, 0.001, 0.1]",
            *overrides,
        ],
    )


def test_theory_table_is_exact_at_zero_and_the_limit_above():
    for n in (36, 40, 44):
        cfg = _double_descent(n)
        test = make_test_set(cfg)
        t = theory_table(cfg, test)
        assert t["kind"].tolist() == ["random_design_exact"] + 2 * ["random_design_limit"]
        coef = np.full(40, np.sqrt(1 / 40))
        factors = factors_at_test_points(test.x, coef)
        bias2, variance = ridgeless_random_design_exact(n, 40, 1.0, 0.25, *factors)
        assert t["bias2_theory"][0] == bias2
        assert t["variance_theory"][0] == variance
        limit = ridge_random_design_limit(40 / n, 1.0, 0.25, np.array([0.0005, 0.05]))
        np.testing.assert_allclose(t["bias2_theory"][1:], limit[0] * factors[0], rtol=1e-12)
        np.testing.assert_allclose(t["variance_theory"][1:], limit[1] * factors[1], rtol=1e-12)
        expected = t["bias2_theory"] + t["variance_theory"] + test.noise_var
        np.testing.assert_allclose(t["expected_error_theory"], expected, rtol=1e-12)
    # n = 44: the value of the review (2.509 from the limit, 3.345 exact at these points)
    assert t["variance_theory"][0] == pytest.approx(0.25 * 40 / 3 * factors[1], rel=1e-12)


def test_double_descent_run_agrees_with_the_exact_value_at_zero(tmp_path):
    """n = 44, p = 40 at λ = 0: the limit (σ²p/(n − p) = 2.5) is about 3 SE below what 200
    training sets measure, the exact σ²p/(n − p − 1) = 3.33 is within 2 SE; the report
    states the two kinds apart."""
    cfg = _double_descent(44, "sweep.n_reps=200")
    result = run_sweep(cfg, tmp_path / "run", progress=False, figures=False)
    back = read_tables(tmp_path / "run")
    assert back.theory["kind"].tolist() == result.tables.theory["kind"].tolist()
    s = result.summary.merge(back.theory, on="weight_decay").set_index("weight_decay")
    z = (s["variance"] - s["variance_theory"]) / s["variance_se"]
    assert abs(z[0.0]) < 2
    text = theory_agreement(result.summary, back.theory)
    assert "at λ = 0, against the exact value of minimum-norm least squares" in text
    assert "at the 2 λ from 0.001 to 0.1, against the Marchenko–Pastur limit" in text


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_classical_split_matches_averages_conditional_on_the_design(gamma):
    """Hastie et al.'s split: E_X of the exact noise-only bias² and variance given X.

    Given X, B_X = λ_r² w*ᵀR²w* and V_X = σ²/n tr(R Σ̂ R), R = (Σ̂ + λ_r)⁻¹. Gaussian X is
    rotation-invariant, so E_X B_X = λ_r² r² E (1/p) tr R²: the average over X is taken
    with w* averaged over directions, which removes the O(√(2/p)) fluctuation of w*ᵀR²w*.
    """
    n = 400
    p = int(gamma * n)
    rng = np.random.default_rng(1)
    lam_r = np.array([0.05, 0.3, 1.0])
    b, v = np.zeros(3), np.zeros(3)
    draws = 20 if gamma < 1 else 4  # per-draw spread: 2 % at gamma = 0.5, 0.05 % at 2
    for _ in range(draws):
        x = rng.standard_normal((n, p))
        small = x.T @ x if p <= n else x @ x.T  # same nonzero eigenvalues
        ev = np.zeros(p)
        ev[: len(small)] = np.clip(np.linalg.eigvalsh(small / n), 0, None)
        b += (lam_r[:, None] ** 2 / (ev + lam_r[:, None]) ** 2).mean(1) / draws
        v += (ev / (ev + lam_r[:, None]) ** 2).sum(1) / n / draws
    bias2, variance = ridge_random_design_limit_classical(gamma, 1.0, 1.0, lam_r)
    np.testing.assert_allclose(bias2, b, rtol=0.02)  # drift <= 0.8 %, sampling <= 0.4 %
    np.testing.assert_allclose(variance, v, rtol=0.02)


def test_total_risk_is_split_independent_and_splits_are_ordered():
    gamma = np.array([0.3, 0.5, 0.9, 1.0, 1.5, 2.0, 4.0])[:, None]
    lam = np.array([0.0, 1e-9, 1e-4, 0.05, 0.3, 1.0, 5.0])
    for r2, s2 in ((1.0, 1.0), (2.5, 0.3), (0.0, 1.0), (1.0, 0.0)):
        b, v = ridge_random_design_limit(gamma, r2, s2, lam)
        bc, vc = ridge_random_design_limit_classical(gamma, r2, s2, lam)
        finite = np.isfinite(v)
        assert (~finite == ((gamma == 1) & (lam == 0) & (s2 > 0))).all()
        np.testing.assert_allclose((b + v)[finite], (bc + vc)[finite], rtol=1e-10)
        # averaging over X moves the spread of the shrinkage from bias to variance
        assert (b <= bc + 1e-15).all() and (v[finite] >= vc[finite] - 1e-12).all()
        c = ridge_random_design_shrinkage(gamma, lam)
        np.testing.assert_allclose(b, r2 * (1 - c) ** 2, atol=1e-15)


def test_ridgeless_limits():
    for gamma in (0.25, 0.5, 0.8):
        b, v = ridge_random_design_limit(gamma, 1.0, 2.0, 0.0)
        bc, vc = ridge_random_design_limit_classical(gamma, 1.0, 2.0, 0.0)
        assert b == bc == 0.0
        assert v == pytest.approx(2.0 * gamma / (1 - gamma))
        assert vc == pytest.approx(2.0 * gamma / (1 - gamma))
        assert ridge_random_design_shrinkage(gamma, 0.0) == 1.0
    for gamma in (1.25, 2.0, 4.0):
        bc, vc = ridge_random_design_limit_classical(gamma, 3.0, 2.0, 0.0)
        assert bc == pytest.approx(3.0 * (1 - 1 / gamma))
        assert vc == pytest.approx(2.0 / (gamma - 1))
        b, v = ridge_random_design_limit(gamma, 3.0, 2.0, 0.0)
        assert ridge_random_design_shrinkage(gamma, 0.0) == pytest.approx(1 / gamma)
        assert b == pytest.approx(3.0 * (1 - 1 / gamma) ** 2)
        assert v == pytest.approx(3.0 * (1 - 1 / gamma) / gamma + 2.0 / (gamma - 1))
    # and lambda -> 0 is continuous
    for gamma in (0.5, 2.0):
        for limit in (ridge_random_design_limit, ridge_random_design_limit_classical):
            np.testing.assert_allclose(
                limit(gamma, 1.0, 1.0, 1e-9), limit(gamma, 1.0, 1.0, 0.0), rtol=1e-6, atol=1e-12
            )
    assert ridge_random_design_limit(1.0, 1.0, 1.0, 0.0)[1] == np.inf


# --- wiring: table, CSV, figure, report ----------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        [],  # the seed-demo MLP
        ["model.kind=linear", "model.bias=true"],
        ["model.kind=linear", "model.bias=false", "data.truth=cubic"],
        ["model.kind=linear", "model.bias=false", "data.x_dist=uniform"],  # random uniform x
        ["--preset=linear", "train.penalty=l1"],
        ["--preset=linear", "train.penalty=decoupled"],
    ],
)
def test_no_theory_outside_the_ridge_case(overrides):
    preset = "linear" if overrides[:1] == ["--preset=linear"] else None
    cfg = load_config(preset=preset, overrides=[o for o in overrides if o[0] != "-"])
    assert theory_table(cfg, make_test_set(cfg)) is None


def test_no_theory_for_data_from_a_file():
    """A CSV run with a linear model has no w*, noise level or design to feed the
    ridge formulas (the generator's keys, unused, are refused with it: config.moot)."""
    over = ["model.kind=linear", "model.bias=false"]
    cfg = load_config(preset="diabetes", overrides=over)
    assert theory_table(cfg, make_test_set(cfg)) is None


def test_a_second_axis_stacks_one_theory_per_value():
    cfg = load_config(
        preset="linear",
        overrides=[
            "sweep.axis=n_train",
            "sweep.axis_values=[30, 50]",
            "sweep.n_reps=4",
            "train.solver=closed_form",
            "sweep.weight_decay=[0.1, 1.0]",
        ],  # fmt: skip
    )
    with pytest.raises(ValueError, match="axis_configs"):
        theory_table(cfg, make_test_set(cfg))
    theory = run_sweep(cfg, progress=False).tables.theory
    assert theory["n_train"].tolist() == [30, 30, 50, 50]
    for (value, sub), (key, part) in zip(axis_configs(cfg), theory.groupby("n_train"), strict=True):
        assert key == value
        test = make_test_set(sub)
        expect = theory_table(sub, test, x_design=draw_training_sets(sub, test, [0]).x[0])
        np.testing.assert_allclose(part["bias2_theory"], expect["bias2_theory"])
        np.testing.assert_allclose(part["variance_theory"], expect["variance_theory"])


def test_one_selector_picks_each_lambdas_closed_form():
    """theory.csv and anova.csv take their kinds from theory_kinds; λ -> α is one
    function (ridge's α = nλ/2, the per-sample λ/2 with n = 1)."""
    lam = [0.0, 0.1, 1.0]
    kinds = theory_kinds("random_design_limit", lam)
    assert kinds.tolist() == ["random_design_exact", "random_design_limit", "random_design_limit"]
    fixed = theory_kinds("fixed_design_exact", lam, x_design=np.zeros((4, 2)))
    assert fixed.tolist() == ["fixed_design_exact"] * 3
    assert {*kinds, *fixed} <= set(KINDS)
    with pytest.raises(ValueError, match="x_design"):
        theory_kinds("fixed_design_exact", lam)
    np.testing.assert_array_equal(ridge_alpha(np.array(lam), 40), [0.0, 2.0, 20.0])
    assert ridge_alpha(0.3) == 0.15


def test_theory_table_uses_the_fixed_design_of_the_run():
    cfg = load_config(preset="linear")
    test = make_test_set(cfg)
    with pytest.raises(ValueError, match="x_design"):
        theory_table(cfg, test)
    t = theory_table(cfg, test, x_design=draw_training_sets(cfg, test, [0]).x[0])
    assert list(t.columns) == ["weight_decay", "bias2_theory", "variance_theory",
                               "expected_error_theory", "kind"]  # fmt: skip
    assert t["weight_decay"].tolist() == cfg.sweep.weight_decay
    x = draw_training_sets(cfg, test, [3]).x[0]  # any set: the design is shared
    pd.testing.assert_frame_equal(theory_table(cfg, test, x_design=x), t)


def test_run_writes_theory_csv_and_overlays_it(tmp_path):
    cfg = load_config(
        preset="linear",
        overrides=["sweep.n_reps=40", "train.solver=closed_form", "train.dtype=float64"],
    )
    result = run_sweep(cfg, tmp_path / "run", progress=False)
    back = read_tables(tmp_path / "run")
    pd.testing.assert_frame_equal(back.theory, result.tables.theory)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Ridge theory (the exact closed form for this fixed design" in report
    assert theory_agreement(back.summary, back.theory) in report
    fig = fig_decomposition(back.summary, back.meta, back.theory)
    labels = fig.legends[0].texts
    assert "theory (exact, fixed design)" in [t.get_text() for t in labels]
    # a run without theory writes no theory.csv and reads back None
    cfg2 = load_config(preset="smoke", overrides=["sweep.n_reps=2", "train.steps=5"])
    run_sweep(cfg2, tmp_path / "smoke", progress=False, figures=False)
    assert not (tmp_path / "smoke" / "theory.csv").exists()
    assert read_tables(tmp_path / "smoke").theory is None
