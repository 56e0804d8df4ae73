"""Bias and variance along training (train.decompose_steps): steps.csv decomposes every
logged step exactly as summary.csv decomposes the end of training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.io.steps import STEP_COLUMNS
from bvsim.io.tables import read_tables

ON = "train.decompose_steps=true"
SMALL = ["train.steps=60", "train.log_every=20", "sweep.n_reps=5"]
FIX = "tests/fixtures/user_code.py"


def _last_step_equals_summary(steps: pd.DataFrame, summary: pd.DataFrame) -> None:
    last = steps[steps["step"] == steps["step"].max()].reset_index(drop=True)
    order = summary["weight_decay"].to_numpy()
    last = last.set_index("weight_decay").loc[order].reset_index()
    shared = [c for c in last.columns if c != "step"]
    assert len(shared) > 15
    pd.testing.assert_frame_equal(last[shared], summary[shared].reset_index(drop=True))


@pytest.mark.parametrize("out", [True, False], ids=["chunk_files", "in_memory"])
def test_last_step_equals_summary_regression(tmp_path, out):
    cfg = load_config(preset="smoke", overrides=[ON, *SMALL])
    res = run_sweep(cfg, tmp_path if out else None, progress=False, figures=False)
    steps = res.tables.steps
    assert list(steps.columns) == [c for c in STEP_COLUMNS if c in steps.columns]
    assert sorted(steps["step"].unique()) == [0, 20, 40, 60]
    assert len(steps) == 4 * len(cfg.sweep.weight_decay)
    _last_step_equals_summary(steps, res.summary)
    # before training every weight decay is the same network: the same decomposition
    first = steps[steps["step"] == 0]
    assert first["bias2"].nunique() == 1 and first["variance"].nunique() == 1
    if out:  # written, recorded in run.json, read back
        back = read_tables(tmp_path)
        pd.testing.assert_frame_equal(back.steps, steps, check_dtype=False)
        assert back.meta["early_stopping"]["last_step"] == 60


def test_chunk_files_and_memory_give_the_same_steps(tmp_path):
    cfg = load_config(preset="smoke", overrides=[ON, *SMALL])
    a = run_sweep(cfg, tmp_path, progress=False, figures=False).tables.steps
    b = run_sweep(cfg, None, progress=False).tables.steps
    pd.testing.assert_frame_equal(a, b)


def test_last_step_equals_summary_classification():
    over = [ON, "train.steps=40", "train.log_every=20", "sweep.n_reps=4",
            "data.n_test=30", "sweep.weight_decay=[0.0, 0.1]"]  # fmt: skip
    res = run_sweep(load_config(preset="gaussians", overrides=over), progress=False)
    assert res.tables.steps["loss"].eq("cross_entropy").all()
    _last_step_equals_summary(res.tables.steps, res.summary)


def test_closed_form_has_the_final_step_only():
    over = [ON, "sweep.n_reps=6", "train.solver=closed_form"]
    res = run_sweep(load_config(preset="linear", overrides=over), progress=False)
    assert res.tables.steps["step"].nunique() == 1
    _last_step_equals_summary(res.tables.steps, res.summary)


def test_module_path_keeps_the_steps():
    over = [ON, *SMALL, "model.kind=module", f"model.module={FIX}:make_net"]
    res = run_sweep(load_config(preset="smoke", overrides=over), progress=False)
    assert res.raw.pred_steps.shape[3] == 4
    np.testing.assert_array_equal(res.raw.pred_steps[:, :, :, -1], res.raw.pred)
    _last_step_equals_summary(res.tables.steps, res.summary)


def test_engine_last_step_is_the_final_prediction():
    res = run_sweep(load_config(preset="smoke", overrides=[ON, *SMALL]), progress=False)
    np.testing.assert_array_equal(res.raw.pred_steps[:, :, :, -1], res.raw.pred)
    # step 0 is the initialization: the same for every weight decay
    np.testing.assert_array_equal(res.raw.pred_steps[0, :, :, 0], res.raw.pred_steps[-1, :, :, 0])


def test_off_by_default_writes_no_steps(tmp_path):
    cfg = load_config(preset="smoke", overrides=SMALL)
    assert cfg.train.decompose_steps is False
    res = run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert res.tables.steps is None and res.raw.pred_steps is None
    assert not (tmp_path / "steps.csv").exists()
    chunk = next((tmp_path / "chunks").rglob("*.npz"))
    with np.load(chunk) as z:
        assert "pred_steps" not in z.files


def test_early_stopping_against_weight_decay():
    res = run_sweep(load_config(preset="smoke", overrides=[ON, *SMALL]), progress=False)
    es, steps = res.tables.meta["early_stopping"], res.tables.steps
    at_min = steps[steps["weight_decay"] == 0.0]
    assert es["best_step"] == int(at_min.loc[at_min["expected_error"].idxmin(), "step"])
    best = res.summary.loc[res.summary["is_best"]].iloc[0]
    assert es["best_weight_decay"] == best["weight_decay"]
    assert es["weight_decay_error"] == best["expected_error"]
    assert es["n_common"] == 5 and np.isfinite(es["diff_se"]) and es["diff_df"] == 4
    # the paired difference is the difference of the two estimates
    gap = es["early_stopping_error"] - es["weight_decay_error"]
    assert es["diff"] == pytest.approx(gap, abs=1e-12)


def test_figures_and_report(tmp_path):
    from bvsim.cli import main

    over = [ON, *SMALL, "sweep.weight_decay=[0.0, 0.003, 0.03, 0.3]"]
    run_sweep(load_config(preset="smoke", overrides=over), tmp_path, progress=False)
    for name in ("steps", "steps_heatmap"):
        assert (tmp_path / "figures" / f"{name}.png").exists()
    report = (tmp_path / "report.md").read_text()
    assert "figures/steps.png" in report and "figures/steps_heatmap.png" in report
    assert "Early stopping against weight decay" in report and "paired over 5" in report
    assert main(["report", str(tmp_path)]) == 0  # from the CSVs and run.json alone
    assert (tmp_path / "report.md").read_text() == report
    (tmp_path / "figures" / "steps.png").unlink()
    assert main(["plot", str(tmp_path)]) == 0  # redrawn from the CSVs and run.json
    assert (tmp_path / "figures" / "steps.png").exists()


@pytest.mark.parametrize("momentum", [0.9])
def test_linear_gd_steps_match_the_closed_form(momentum):
    """A linear model on a fixed design, full-batch GD in float64 from nn.Linear's
    uniform init: bias² and variance at every logged step land on the closed form
    (tests/estimate/gd_theory.py; at the end of training it is the ridge theory)."""
    from bvsim.data.generator import draw_training_sets, make_test_set, truth
    from tests.estimate.gd_theory import gd_linear_theory

    over = [ON, "train.dtype=float64", f"train.momentum={momentum}", "train.steps=300",
            "train.log_every=50", "sweep.n_reps=1000", "sweep.weight_decay=[0.0, 0.3]",
            "data.dim=10", "data.n_train=20", "data.n_test=50"]  # fmt: skip
    cfg = load_config(preset="linear", overrides=over)
    res = run_sweep(cfg, progress=False)
    test = make_test_set(cfg)
    x = draw_training_sets(cfg, test, [0]).x[0]
    z = []
    for wd in cfg.sweep.weight_decay:
        th = gd_linear_theory(x, truth(x, cfg.data), test.x, test.f, cfg.data.noise_std**2,
                              1 / (3 * cfg.data.dim), cfg.train.lr, momentum, wd,
                              res.raw.log_steps)  # fmt: skip
        got = res.tables.steps[res.tables.steps["weight_decay"] == wd].sort_values("step")
        for col in ("bias2", "variance"):
            se = np.maximum(got[f"{col}_se"], got["bias2_se0"] if col == "bias2" else 0)
            z += list((got[col].to_numpy() - th[col]) / se.to_numpy())
    z = np.asarray(z)
    # the steps share their training sets, so the z are correlated: bound each one
    assert np.all(np.abs(z) < 4.0), z


def test_a_logged_step_is_the_model_trained_that_long():
    """The predictions kept at step 40 of a 60-step run are those of a 40-step run."""
    long = run_sweep(load_config(preset="smoke", overrides=[ON, *SMALL]), progress=False).raw
    short = load_config(preset="smoke", overrides=[*SMALL, "train.steps=40"])
    pred = run_sweep(short, progress=False).raw.pred
    t = list(long.log_steps).index(40)
    np.testing.assert_array_equal(long.pred_steps[:, :, :, t], pred)
