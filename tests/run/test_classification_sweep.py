"""A classification task end to end: cross-entropy training, exact decompositions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import ConfigError, load_config, run_sweep

FAST = ["sweep.n_reps=8", "train.steps=200", "sweep.weight_decay=[0.0, 0.03, 0.3]"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gaussians")
    result = run_sweep(load_config(preset="gaussians", overrides=FAST), out, progress=False)
    return result, out


def test_summary_adds_up_and_matches_measured_cross_entropy(run):
    result, out = run
    s = pd.read_csv(out / "summary.csv")
    assert (s["loss"] == "cross_entropy").all()
    np.testing.assert_allclose(
        s["bias2"] + s["variance"] + s["noise"], s["expected_error"], rtol=0, atol=1e-10
    )
    zero_one = s["zero_one_noise_term"] + s["zero_one_bias"] + s["zero_one_variance_term"]
    np.testing.assert_allclose(zero_one, s["zero_one_error"], rtol=0, atol=1e-12)
    brier = s["brier_bias2"] + s["brier_variance"] + s["brier_noise"]
    np.testing.assert_allclose(brier, s["brier_error"], rtol=0, atol=1e-10)
    se = np.hypot(s["test_error_se"], s["expected_error_se"])
    assert (np.abs(s["test_error"] - s["expected_error"]) < 3 * se).all()
    # the noise is the entropy of the true class probabilities: the same at every λ
    assert s["noise"].nunique() == 1 and 0 < s["noise"].iloc[0] < np.log(3)
    assert result.raw.pred.shape[-1] == 3  # class probabilities
    np.testing.assert_allclose(np.asarray(result.raw.pred).sum(axis=-1), 1.0, rtol=1e-5)


def test_outputs_say_cross_entropy(run):
    result, out = run
    assert "cross-entropies" in (out / "report.md").read_text()
    assert (out / "figures" / "decomposition.png").stat().st_size > 0
    members = pd.read_csv(out / "members.csv")
    assert members["test_error"].notna().all()
    # every class's true probability is stored: the decomposition can be redone from it
    from bvsim.estimate.classification import decompose_cross_entropy

    with np.load(out / "predictions.npz") as z:
        p_test, pred, lam = z["p_test"], z["pred"], z["weight_decay"]
    assert p_test.shape == pred.shape[3:] and np.allclose(p_test.sum(axis=1), 1)
    row = result.summary.iloc[0]
    redo = decompose_cross_entropy(pred[0], p_test, corrected=True)[0]
    assert lam[0] == row.weight_decay and redo["bias"] == pytest.approx(row.bias2, rel=1e-6)


def test_no_figure_calls_cross_entropy_a_squared_error(run):
    from bvsim.io.tables import read_tables
    from bvsim.present import axis_figures, lambda_figures
    from bvsim.present.common import error_label

    _, out = run
    t = read_tables(out)
    s_axis = t.summary.assign(hidden_width=8)
    made = [
        lambda_figures.fig_decomposition(t.summary, t.meta),
        lambda_figures.fig_curves(t.curves, None, error_label(t.summary)),
        axis_figures.fig_axis_decomposition(s_axis, "hidden_width"),
        axis_figures.fig_axis_best(s_axis, "hidden_width"),
    ]
    labels = [ax.get_ylabel() for fig in made for ax in fig.axes]
    assert any("cross-entropy" in label for label in labels)
    assert not any("squared" in label for label in labels), labels


def test_classification_needs_a_trainable_model():
    with pytest.raises(ConfigError, match="classification task"):
        load_config(preset="gaussians", overrides=["model.kind=sklearn"])


def test_the_task_is_recorded_once_and_read_back(run):
    """run.json says the task; figures and report read it through one function, which
    falls back on the summary's loss column for a run written before it was recorded."""
    import json

    from bvsim.io.tables import read_tables
    from bvsim.task import task_of_run

    _, out = run
    meta = json.loads((out / "run.json").read_text())
    assert meta["task"] == "classification"
    t = read_tables(out)
    assert task_of_run(t.summary, t.meta).name == "classification"
    assert task_of_run(t.summary, {}).name == "classification"  # an older run.json
    assert task_of_run(t.summary.drop(columns="loss"), {}).name == "regression"
    assert (
        task_of_run(t.summary.drop(columns="loss"), {"task": "classification"}).name
        == "classification"
    )


def test_a_classification_lambda_with_two_usable_sets_is_too_few_not_a_crash(run):
    """The README review: the cross-entropy terms are jackknife-corrected, which needs 3
    sets; a λ left with 2 converged sets raised a ValueError after all the training
    (and n_reps = 2 was accepted). Now such a λ is too_few_converged, the others
    estimated, and a classification sweep needs n_reps >= 3 before any compute."""
    import dataclasses

    from bvsim.io.tables import summarize

    raw = run[0].raw
    diverged, pred = np.array(raw.diverged, copy=True), np.array(raw.pred, copy=True)
    diverged[1, 2:], pred[1, 2:] = True, np.nan  # λ = 0.03: 2 of 8 sets left
    s = summarize(dataclasses.replace(raw, diverged=diverged, pred=pred)).summary
    assert list(s["status"]) == ["ok", "too_few_converged", "ok"]
    assert s["expected_error"].isna().tolist() == [False, True, False]
    with pytest.raises(ConfigError, match="needs at least 3 training sets"):
        load_config(preset="gaussians", overrides=["sweep.n_reps=2"])
