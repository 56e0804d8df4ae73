"""The linear model trained by the optimizer lands on closed-form ridge (README,
"Closed-form theory on the plots").

MSELoss + SGD weight_decay = lambda minimizes (1/n)|y - Xw|^2 + (lambda/2)|w|^2, whose
minimizer is ridge with alpha = n lambda / 2. For a fixed design X and S = (X^T X +
alpha I)^-1: bias^2 = mean_j (alpha x_j^T S w*)^2 and
variance = sigma^2 / m tr(X_test S X^T X S X_test^T).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.config.moot import GD_SOLVER_KEYS
from bvsim.data.generator import draw_training_sets, make_test_set
from bvsim.estimate.theory import ridge_fixed_design as ridge_theory


@pytest.fixture(scope="module")
def linear_run():
    cfg = load_config(
        preset="linear",
        overrides=["sweep.n_reps=300", "train.dtype=float64", "train.steps=800"],
    )
    return cfg, run_sweep(cfg, n_jobs=1, progress=False)


def test_converges_to_ridge_weights(linear_run):
    """Each trained model predicts what its ridge solution predicts."""
    cfg, result = linear_run
    test = make_test_set(cfg)
    sets = draw_training_sets(cfg, test, np.arange(5))
    n, p = cfg.data.n_train, cfg.data.dim
    for i, wd in enumerate(cfg.sweep.weight_decay):
        alpha = n * wd / 2
        for k in range(5):
            x, y = sets.x[k], sets.y[k]
            w = np.linalg.solve(x.T @ x + alpha * np.eye(p), x.T @ y)
            np.testing.assert_allclose(result.raw.pred[i, k, 0], test.x @ w, atol=1e-6)


def test_decomposition_matches_closed_form_within_3_se(linear_run):
    cfg, result = linear_run
    test = make_test_set(cfg)
    x = draw_training_sets(cfg, test, [0]).x[0]  # the fixed design
    coef = np.full(cfg.data.dim, np.sqrt(cfg.data.coef_norm2 / cfg.data.dim))
    s = result.summary
    for _, row in s.iterrows():
        bias2, variance = ridge_theory(x, test.x, coef, cfg.data.noise_std**2, row["weight_decay"])
        assert abs(row["bias2"] - bias2) < 3 * row["bias2_se"], (row["weight_decay"], bias2)
        assert abs(row["variance"] - variance) < 3 * row["variance_se"], (
            row["weight_decay"],
            variance,
        )
    # and the grid spans a real trade-off: bias^2 grows, variance shrinks with lambda
    assert s["bias2"].iloc[-1] > 10 * abs(s["bias2"].iloc[0])
    assert s["variance"].iloc[-1] < 0.2 * s["variance"].iloc[0]


def test_measured_error_matches_decomposition(linear_run):
    _, result = linear_run
    s = result.summary
    se = np.hypot(s["test_error_se"], s["expected_error_se"])
    assert (np.abs(s["test_error"] - s["expected_error"]) < 3 * se).all()


@pytest.mark.parametrize("dim", [20, 60])  # p < n (primal) and p > n (dual form)
def test_closed_form_solver_equals_converged_gradient_descent(dim):
    over = [f"data.dim={dim}", "sweep.n_reps=4", "train.dtype=float64",
            "sweep.weight_decay=[0.1, 0.3, 1.0]", "train.steps=3000", "train.lr=0.02"]  # fmt: skip
    gd = run_sweep(load_config(preset="linear", overrides=over), progress=False)
    no_loop = [o for o in over if o.split("=")[0] not in GD_SOLVER_KEYS]  # refused there
    exact = run_sweep(
        load_config(preset="linear", overrides=[*no_loop, "train.solver=closed_form"]),
        progress=False,
    )
    np.testing.assert_allclose(exact.raw.pred, gd.raw.pred, atol=1e-6)
    np.testing.assert_allclose(exact.raw.train_error, gd.raw.train_error, atol=1e-8)
    pd.testing.assert_frame_equal(exact.summary, gd.summary, atol=1e-6)
