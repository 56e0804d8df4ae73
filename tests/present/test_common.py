"""What figures and report share (bvsim.present.common, and the table of figures
bvsim.present.figure_table), on small hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bvsim.io.rundir import FIGURES
from bvsim.present import figure_table
from bvsim.present.common import best_position, lambda_label, lambda_text, share_of, valid_rows
from bvsim.present.figure_table import FIGURE_TABLE, axis_figures, drawn_figures, figure_lines
from bvsim.present.findings import findings


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "weight_decay": [1.0, 0.0, 0.1, 0.01],
            "expected_error": [3.0, 2.0, np.nan, 2.0],
            "status": ["ok", "some_diverged", "all_diverged", "ok"],
        }
    )


def test_valid_rows_keeps_rows_with_estimates_sorted_by_lambda():
    v = valid_rows(_summary())
    assert v["weight_decay"].tolist() == [0.0, 0.01, 1.0]
    assert v.index.tolist() == [0, 1, 2]
    empty = _summary().iloc[:0]
    assert valid_rows(empty).empty


def test_valid_rows_drops_a_bad_status_even_with_an_estimate():
    s = _summary().assign(expected_error=[3.0, 2.0, 1.0, 2.0])
    assert 0.1 not in valid_rows(s)["weight_decay"].tolist()


def test_best_position_takes_the_smaller_lambda_on_a_tie():
    assert best_position(valid_rows(_summary())) == 0


def test_summary_csv_and_the_report_pick_the_same_best_lambda():
    """On a grid given out of order with a tie, ``is_best`` (io.summary.paired_columns)
    and the report's best λ are the same, the smaller λ (io.summary.best_index); before,
    ``is_best`` took the first in grid order."""
    from bvsim.io.summary import paired_columns

    expected = np.array([[1.0, 1.2, 0.8], [0.5, 0.6, 0.4], [0.5, 0.6, 0.4]])
    s = pd.DataFrame({"weight_decay": [1.0, 0.1, 0.01], "expected_error": expected.mean(1)})
    s = paired_columns(s, {"expected": expected}, seed=0).assign(status="ok")
    assert s.loc[s["is_best"], "weight_decay"].tolist() == [0.01]
    v = valid_rows(s)
    assert v.iloc[best_position(v)]["weight_decay"] == 0.01


@pytest.mark.parametrize(
    ("value", "label", "text"),
    [(0.0, "0", "0"), (1e-4, "1e-4", "0.0001"), (3e-3, "0.003", "0.003"), (1.0, "1", "1")],
)
def test_the_two_lambda_formats(value, label, text):
    assert lambda_label(value) == label
    assert lambda_text(value) == text


def test_share_of_falls_back_to_the_ratio_for_an_older_run():
    assert share_of(pd.Series({"bias2_share": 0.25, "bias2": 1.0, "expected_error": 2.0}),
                    "bias2") == 0.25  # fmt: skip
    assert share_of(pd.Series({"bias2": 1.0, "expected_error": 4.0}), "bias2") == 0.25
    assert math.isnan(share_of(pd.Series({"bias2_share": np.nan, "bias2": np.nan,
                                          "expected_error": 1.0}), "bias2"))  # fmt: skip


AXIS_FIGURES = [f.name for f in FIGURE_TABLE if f.axis]


def test_every_figure_has_one_caption_and_a_file_name_overwrite_clears():
    names = [f.name for f in FIGURE_TABLE]
    assert sorted(names) == sorted(FIGURES) and len(set(names)) == len(names)
    assert not any(f.axis for f in FIGURE_TABLE[: len(names) - len(AXIS_FIGURES)])
    for f in FIGURE_TABLE:
        assert f.caption and ("{axis}" in f.caption) == f.axis and callable(f.make)
        assert f.applies is None or f.axis  # a run's figure: its maker alone decides


@pytest.mark.parametrize("names", [FIGURES[:-1], (*FIGURES, "extra"), (*FIGURES, FIGURES[0])])
def test_the_table_refuses_to_load_when_it_and_the_file_names_differ(monkeypatch, names):
    monkeypatch.setattr(figure_table, "FIGURES", names)
    with pytest.raises(ImportError, match="differ"):
        figure_table._check_names()


def test_a_run_report_embeds_the_drawn_figures_of_a_run_in_table_order(tmp_path):
    for name in ("steps", "decomposition", "axis_best"):
        (tmp_path / f"{name}.png").write_bytes(b"")
    assert drawn_figures(tmp_path) == ["decomposition", "steps"]
    assert drawn_figures(tmp_path / "missing") == []
    lines = figure_lines(["steps", "decomposition"])
    assert [line for line in lines if line.startswith("![")] == [
        "![decomposition](figures/decomposition.png)",
        "![steps](figures/steps.png)",
    ]


def test_axis_figures_name_the_axis_and_draw_curves_only_for_a_numeric_axis():
    numeric = pd.DataFrame({"n_train": [10, 20], "weight_decay": [0.0, 0.0]})
    named = pd.DataFrame({"penalty": ["l1", "l2"], "weight_decay": [0.0, 0.0]})
    anova = pd.DataFrame({"n_train": [10, 20], "term": ["inputs"] * 2, "value": [0.1, 0.2]})
    assert axis_figures(numeric, "n_train", anova) == AXIS_FIGURES
    plain = [n for n in AXIS_FIGURES if n != "axis_anova"]
    assert axis_figures(numeric, "n_train") == plain
    assert axis_figures(named, "penalty") == [n for n in plain if n != "axis_curves"]
    no_estimate = anova.assign(value=np.nan)
    assert axis_figures(numeric, "n_train", no_estimate) == plain
    lines = figure_lines(["axis_best"], "n_train")
    assert lines[0] == "![axis best](figures/axis_best.png)"
    assert lines[2].startswith("*Left: the best λ of the grid for each n_train.")


def test_findings_without_estimates_say_so_only():
    s = _summary().assign(expected_error=np.nan, n_diverged=[1, 2, 3, 4])
    assert findings(s) == [
        "No weight decay produced estimates (every λ diverged or had too few converged "
        "training sets)."
    ]


def test_one_rule_for_the_degrees_of_freedom_and_the_critical_value():
    """paired_dof: the recorded df; else, nested, the sets minus one; a crossed run has
    none to rebuild; below 1, none. critical_value: Student's t at the df, the normal
    quantile without (at every level)."""
    from bvsim.present.common import critical_value, paired_dof

    assert paired_dof(4.5, 10) == 4.5
    assert paired_dof(None, 10) == 9.0 and paired_dof(np.nan, 10) == 9.0
    assert math.isnan(paired_dof(None, 10, crossed=True))
    assert math.isnan(paired_dof(None)) and math.isnan(paired_dof(0.5))
    np.testing.assert_array_equal(paired_dof([3.0, np.nan, np.nan], [5, 8, 1]), [3.0, 7.0, np.nan])
    assert critical_value(19) == pytest.approx(2.093, abs=1e-3)
    assert critical_value(np.nan) == pytest.approx(1.960, abs=1e-3)
    assert critical_value(np.nan, level=1 - 0.05 / 77) == pytest.approx(3.410, abs=1e-3)
    np.testing.assert_allclose(
        critical_value(np.array([np.nan, 3.0])), [1.95996, 3.18245], atol=1e-5
    )
