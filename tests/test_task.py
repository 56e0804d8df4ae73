"""The task of a run (bvsim.task): decided once from the configuration, read back from
a run directory, and the columns it lays out are those of the committed runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bvsim.config import list_presets, load_config
from bvsim.data import generator
from bvsim.io.summary import summary_columns
from bvsim.task import (
    CLASSIFICATION,
    REGRESSION,
    task_for,
    task_of_run,
)

RESULTS = Path(__file__).parents[1] / "results"
#: The committed runs (a second-axis run has its axis as first summary column).
RUNS = sorted(p.parent.name for p in RESULTS.glob("*/summary.csv"))


def _header(path: Path) -> list[str]:
    return path.read_text().splitlines()[0].split(",")


def test_task_for_follows_the_data():
    tasks = {name: task_for(load_config(preset=name)) for name in list_presets()}
    assert tasks["gaussians"] is CLASSIFICATION and tasks["wine"] is CLASSIFICATION
    assert tasks["diabetes"] is REGRESSION and tasks["sine"] is REGRESSION
    assert set(tasks.values()) == {REGRESSION, CLASSIFICATION}
    csv = load_config(preset="diabetes", overrides=["data.task='classification'"])
    assert task_for(csv) is CLASSIFICATION


def test_output_width_and_training_loss():
    gaussians = load_config(preset="gaussians")
    assert CLASSIFICATION.n_out(gaussians) == gaussians.data.n_classes >= 2
    assert REGRESSION.n_out(load_config(preset="linear")) == 1
    assert (REGRESSION.loss, CLASSIFICATION.loss) == ("mse", "cross_entropy")
    assert REGRESSION.squared and not CLASSIFICATION.squared


@pytest.mark.parametrize("run", RUNS)
def test_committed_runs_read_back_their_task(run):
    """The committed runs' run.json (most written before it recorded the task) and
    summary give the task their preset has."""
    summary = pd.read_csv(RESULTS / run / "summary.csv")
    meta_file = RESULTS / run / "run.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    expected = task_for(load_config(preset=run))
    assert task_of_run(summary, meta) is expected
    assert task_of_run(summary, {}) is expected  # from the summary alone


def test_run_json_wins_over_the_summary():
    regression = pd.DataFrame({"weight_decay": [0.1], "bias2": [1.0]})
    classification = regression.assign(loss="cross_entropy")
    assert task_of_run(regression, None) is REGRESSION
    assert task_of_run(classification, None) is CLASSIFICATION
    assert task_of_run(regression, {"task": "classification"}) is CLASSIFICATION
    assert task_of_run(classification, {"task": "regression"}) is REGRESSION
    assert task_of_run(classification, {"task": "unknown"}) is CLASSIFICATION


@pytest.mark.parametrize("run", RUNS)
def test_columns_are_those_of_the_committed_runs(run):
    cfg = load_config(preset=run)
    header = _header(RESULTS / run / "summary.csv")
    axis = [] if cfg.sweep.axis == "none" else [cfg.sweep.axis]
    assert header == axis + summary_columns(cfg)
    task_columns = task_for(cfg).summary_columns(cfg)
    assert [c for c in header if c in task_columns] == task_columns
    pointwise = RESULTS / run / "pointwise.csv"
    if pointwise.exists():
        assert _header(pointwise) == axis + list(task_for(cfg).pointwise_columns)


def test_losses_per_set_and_per_member():
    rng = np.random.default_rng(0)
    k, s, j = 4, 3, 5
    f = rng.normal(size=j)
    pred = rng.normal(size=(k, s, j))
    test = generator.TestSet(x=np.zeros((j, 1)), f=f, noise_var=0.25)
    want = np.square(pred - f).mean(axis=(1, 2))
    np.testing.assert_allclose(REGRESSION.per_set_loss(pred, test), want)
    labels = rng.normal(size=(k, j))
    want = np.square(pred - labels[:, None, :]).sum(axis=-1)
    np.testing.assert_allclose(REGRESSION.member_loss(pred, labels), want)

    p_true = rng.dirichlet(np.ones(3), size=j)
    proba = rng.dirichlet(np.ones(3), size=(k, s, j))
    test = generator.TestSet(x=np.zeros((j, 1)), f=p_true[:, 1], noise_var=np.nan, p_true=p_true)
    want = -(p_true * np.log(proba)).sum(axis=-1).mean(axis=(1, 2))
    np.testing.assert_allclose(CLASSIFICATION.per_set_loss(proba, test), want)
    classes = rng.integers(0, 3, size=(k, j))
    picked = np.take_along_axis(proba, classes[:, None, :, None], axis=-1)[..., 0]
    want = -np.log(picked).sum(axis=-1)
    np.testing.assert_allclose(CLASSIFICATION.member_loss(proba, classes.astype(float)), want)


def test_bias2_includes_noise_only_where_labels_stand_in_for_the_truth():
    linear, wine = load_config(preset="linear"), load_config(preset="wine")
    known = generator.TestSet(x=np.zeros((2, 1)), f=np.zeros(2), noise_var=0.25)
    unknown = generator.TestSet(x=np.zeros((2, 1)), f=np.zeros(2), noise_var=np.nan)
    assert not REGRESSION.bias2_includes_noise(linear, known)
    assert REGRESSION.bias2_includes_noise(load_config(preset="diabetes"), unknown)
    assert CLASSIFICATION.bias2_includes_noise(wine, unknown)
    assert not CLASSIFICATION.bias2_includes_noise(load_config(preset="gaussians"), unknown)


@pytest.mark.parametrize("task", [REGRESSION, CLASSIFICATION], ids=lambda t: t.name)
def test_each_task_names_its_terms_for_the_figures(task):
    """The figures' words (present/style.py reads them): every term of the
    decomposition has a legend, title and short name; with an unknown noise (folded
    into the bias) there is no noise term, and bias² says it holds the noise."""
    from bvsim.present import style

    known, folded = task.term_words(), task.term_words(folded=True)
    assert set(known) == {"bias2", "variance", "noise", "expected_error", "test_error"}
    assert set(folded) == set(known) - {"noise"}
    assert "noise" in folded["bias2"].legend and "noise" not in known["bias2"].legend
    assert all(w.legend and w.title and w.short for w in [*known.values(), *folded.values()])
    s = pd.DataFrame({"weight_decay": [0.0], "bias2_includes_noise": [False]})
    if task is CLASSIFICATION:
        s["loss"] = task.loss
    assert [label for _, label, _, _ in style.components(s)] == [
        known[c].legend for c in ("bias2", "variance", "noise", "expected_error", "test_error")
    ]
    assert style.noise_floor_label(s) == task.noise_floor_label
    assert style.term_names(s)["bias2"] == (known["bias2"].title, known["bias2"].short)
