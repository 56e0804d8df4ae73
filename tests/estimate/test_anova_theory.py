"""Closed form of the crossed ANOVA terms for ridge (bvsim.estimate.anova_theory).

- λ = 0 (minimum-norm least squares): the exact finite-n terms equal the average over
  many Gaussian designs of the exact per-design quantities (conditional mean and
  conditional variance), within 4 Monte Carlo SE of that average.
- λ > 0: the proportional limit is within a few per cent of the same design average
  at p = 100 (its O(1/n) error).
- At every λ the terms add up to theory.csv's variance (exact at λ = 0 in both).
- The table: rows per λ and term, sums exact, only for a crossed closed-form run.
"""

from __future__ import annotations

import numpy as np
import pytest

from bvsim import load_config
from bvsim.data.generator import make_test_set
from bvsim.estimate.anova_theory import has_anova_theory, ridge_anova_limit, ridgeless_anova_exact
from bvsim.estimate.theory import factors_at_test_points
from bvsim.io.theory import anova_theory_table, theory_table

SIGMA2 = 0.25


def _design_average(n, p, lam, n_designs, seed=0):
    """Per-design exact terms averaged over designs, with Monte Carlo SEs: V_X (the
    variance over designs of the conditional mean at each test point), V_Xε (the mean
    conditional variance) and bias²; plus the test points' factors."""
    rng = np.random.default_rng(seed)
    coef = np.full(p, np.sqrt(1 / p))
    x_test = rng.standard_normal((40, p))
    means, cond = np.empty((n_designs, 40)), np.empty(n_designs)
    for i in range(n_designs):
        x = rng.standard_normal((n, p))
        gram = x.T @ x
        s = np.linalg.pinv(gram) if lam == 0 else np.linalg.inv(gram + n * lam / 2 * np.eye(p))
        means[i] = x_test @ (s @ gram @ coef)
        cond[i] = SIGMA2 * np.mean(np.square(x_test @ s @ x.T).sum(1))
    centred = np.square(means - means.mean(0)).mean(1) * n_designs / (n_designs - 1)
    sqrt_n = np.sqrt(n_designs)
    measured = {
        "inputs": (centred.mean(), centred.std() / sqrt_n),
        "inputs:label_noise": (cond.mean(), cond.std() / sqrt_n),
        "bias2": (np.mean(np.square(means.mean(0) - x_test @ coef)), None),
    }
    return measured, factors_at_test_points(x_test, coef)


@pytest.mark.parametrize(("n", "p"), [(25, 10), (10, 25), (8, 12)])
def test_ridgeless_terms_are_exact_at_finite_n(n, p):
    measured, (bf, vf) = _design_average(n, p, 0.0, 4000)
    exact = ridgeless_anova_exact(n, p, 1.0, SIGMA2, bf, vf)
    assert exact["label_noise"] == 0.0
    for term in ("inputs", "inputs:label_noise"):
        value, se = measured[term]
        assert abs(value - exact[term]) <= 4 * se + 1e-12, (term, value, exact[term], se)
    assert measured["bias2"][0] == pytest.approx(exact["bias2"], rel=0.05, abs=1e-12)


def test_ridgeless_interpolation_threshold_is_infinite_without_noise_only():
    assert ridgeless_anova_exact(40, 40, 1.0, SIGMA2)["inputs:label_noise"] == np.inf
    assert ridgeless_anova_exact(39, 40, 1.0, SIGMA2)["inputs:label_noise"] == np.inf
    assert ridgeless_anova_exact(40, 40, 1.0, 0.0)["inputs:label_noise"] == 0.0
    assert ridgeless_anova_exact(40, 40, 1.0, SIGMA2)["inputs"] == 0.0  # X full rank: A = I


@pytest.mark.parametrize(("n", "p"), [(200, 100), (50, 100)])
def test_the_limit_is_close_to_the_finite_n_design_average(n, p):
    lam = 0.4
    measured, (bf, vf) = _design_average(n, p, lam, 300, seed=1)
    limit = ridge_anova_limit(p / n, 1.0, SIGMA2, lam / 2, bf, vf)
    for term in ("inputs", "inputs:label_noise"):
        value, se = measured[term]
        # O(1/n) drift of the limit (measured: 0.03-4 % here) plus Monte Carlo error
        assert abs(value - limit[term]) <= 0.03 * value + 4 * se, (term, value, limit[term])
    assert limit["label_noise"] == 0.0


def _crossed(*overrides):
    base = [
        "sweep.design=crossed",
        "data.train_design=random",
        "train.solver=closed_form",
        "sweep.n_inputs=3",
        "sweep.n_noise=3",
        "sweep.weight_decay=[0.0, 0.1, 1.0]",
    ]
    return load_config(preset="linear", overrides=[*base, *overrides])


def test_table_rows_add_up_and_match_theory_csv():
    cfg = _crossed()
    test = make_test_set(cfg)
    t = anova_theory_table(cfg, test)
    assert list(t.columns) == ["weight_decay", "term", "theory", "theory_kind"]
    plain = theory_table(load_config(preset="linear", overrides=["data.train_design=random"]),
                         test).set_index("weight_decay")  # fmt: skip
    for wd, rows in t.groupby("weight_decay"):
        v = rows.set_index("term").theory
        terms = v["inputs"] + v["label_noise"] + v["inputs:label_noise"]
        assert v["variance"] == pytest.approx(terms)
        assert v["expected_error"] == pytest.approx(v["variance"] + v["bias2"] + v["noise"])
        kind = set(rows.theory_kind)
        assert kind == {"random_design_exact" if wd == 0 else "random_design_limit"}
        assert kind == {plain.kind[wd]}  # theory.csv: exact at 0 too, the same values
        assert v["variance"] == pytest.approx(plain.variance_theory[wd], rel=1e-12)
        assert v["bias2"] == pytest.approx(plain.bias2_theory[wd], rel=1e-12, abs=1e-15)


def test_only_crossed_closed_form_runs_with_both_factors_have_a_closed_form():
    assert has_anova_theory(_crossed()) == "random_design"
    assert has_anova_theory(_crossed("sweep.n_noise=1")) is None  # ε folds into bias²
    nested = load_config(preset="linear", overrides=["data.train_design=random"])
    assert has_anova_theory(nested) is None
    assert has_anova_theory(_crossed("train.solver=gd")) is None
    fixed = _crossed("data.train_design=fixed", "sweep.n_inputs=1")
    assert has_anova_theory(fixed) == "fixed_design"
    with pytest.raises(ValueError, match="x_design"):  # as theory.csv's (theory_kinds)
        anova_theory_table(fixed, make_test_set(fixed))
