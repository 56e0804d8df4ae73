"""Closed-form ridge theory (bvsim.estimate.theory) against bvsim's own Monte Carlo estimates.

Fixed design: exact, so the estimates must land within 3 SE. Random design: the
Marchenko–Pastur limit at n = 400, within 3 SE plus a 1 % relative allowance for the
finite-n drift (measured at n = 400: the Stieltjes transform is off by < 0.3 %, bias²
by < 0.6 %). Every sweep uses the exact closed-form solver in float64.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.config import axis_configs
from bvsim.data.generator import draw_training_sets, make_test_set
from bvsim.estimate.theory import (
    mp_stieltjes,
    ridge_fixed_design,
    ridge_random_design_limit,
    ridge_random_design_limit_classical,
    ridge_random_design_shrinkage,
    theory_table,
)
from bvsim.io.tables import read_tables
from bvsim.present.checks import theory_agreement
from bvsim.present.lambda_figures import fig_decomposition

DRIFT = 0.01  # relative finite-n allowance for the p, n -> infinity limit


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
    assert set(theory["kind"]) == {"random_design_limit"}
    _compare(result.summary, theory, drift=DRIFT)
    # lambda = 0 is the ridgeless limit (min-norm for p > n); bvsim's split, r = sigma = 1
    gamma = dim / 400
    test = make_test_set(cfg)
    coef = np.full(dim, np.sqrt(1 / dim))
    b_factor = np.mean((test.x @ coef) ** 2)
    v_factor = np.mean(np.square(test.x).sum(1)) / dim
    zero = theory.loc[theory["weight_decay"] == 0].iloc[0]
    bias0, var0 = (0.0, gamma / (1 - gamma)) if gamma < 1 else ((1 - 1 / gamma) ** 2, 1.25)
    np.testing.assert_allclose(zero["bias2_theory"], bias0 * b_factor, atol=1e-12)
    np.testing.assert_allclose(zero["variance_theory"], var0 * v_factor, rtol=1e-12)


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
    ridge formulas, whatever the (unused) generator keys say."""
    over = ["model.kind=linear", "model.bias=false", "data.x_dist=gaussian"]
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
