"""A crossed closed-form ridge run against the closed form of its ANOVA terms (#15).

p = 20 Gaussian features, n_train through 10 (p > n) and 50 (n > p) as a second axis,
30 draws of x × 20 draws of the label noise: every row of ``anova.csv`` (each term,
variance, bias², expected error) is within 3 SE of its ``theory`` column. At λ = 0 the
closed form is exact at this n and p (minimum-norm least squares); at λ > 0 it is the
proportional limit, whose O(1/n) drift (a few per cent of a term, see
tests/estimate/test_anova_theory.py) is well below these SEs (10-25 % of a main
effect estimated from 30 levels). ``theory.csv`` of the same run has the same
closed form of the variance and bias² (and ``kind``) at every n and λ. The terms are
drawn against n_train
(``figures/axis_anova.png``) and the axis report names the figure. A fixed design's one
term (the label noise) is exact.
"""

from __future__ import annotations

import numpy as np

from bvsim import load_config, run_sweep
from bvsim.present.axis_report import write_axis_report
from bvsim.present.figures import plot_axis

OVERRIDES = [
    "sweep.design=crossed",
    "data.train_design=random",
    "train.solver=closed_form",
    "data.dim=20",
    "data.n_test=100",
    "sweep.n_inputs=30",
    "sweep.n_noise=20",
    "sweep.weight_decay=[0.0, 0.1, 1.0]",
    "sweep.axis=n_train",
    "sweep.axis_values=[10, 50]",
]


def test_measured_terms_match_the_closed_form_within_3_se(tmp_path):
    cfg = load_config(preset="linear", overrides=OVERRIDES)
    result = run_sweep(cfg, tmp_path, n_jobs=1, figures=False)
    a = result.tables.anova
    assert {"theory", "theory_kind"} <= set(a.columns) and a.theory.notna().all()
    assert set(a.n_train) == {10, 50}
    rows = a[a.term != "noise"]
    z = (rows.value - rows.theory) / rows.se
    assert np.isfinite(z).all()
    assert (z.abs() <= 3).all(), rows.assign(z=z)[z.abs() > 3]
    # the label-noise main effect is 0 by X -> -X; the interaction is not
    noise_main = a[a.term == "label_noise"]
    assert (noise_main.theory == 0).all()
    both = a[a.term == "inputs:label_noise"]
    assert (both.value > 3 * both.se).all()
    # theory.csv (the report's theory bullet, the decomposition's dotted lines) has the
    # same closed form at every n and λ, exact at λ = 0 in both (review item 5)
    keys = ["n_train", "weight_decay"]
    t = result.tables.theory.set_index(keys)
    for term, col in (("variance", "variance_theory"), ("bias2", "bias2_theory")):
        th = a[a.term == term].set_index(keys)
        np.testing.assert_allclose(t.loc[th.index, col], th.theory, rtol=1e-12, atol=1e-15)
        assert (t.loc[th.index, "kind"] == th.theory_kind).all()
    # the written CSV keeps the columns
    written = (tmp_path / "anova.csv").read_text().splitlines()[0]
    assert written.endswith(",theory,theory_kind")
    # the terms against the axis: a figure of their own, named in the axis report
    paths = plot_axis(result.tables, tmp_path, "n_train")
    assert tmp_path / "figures" / "axis_anova.png" in paths
    report = write_axis_report(result.tables, tmp_path, "n_train").read_text()
    assert "![axis anova](figures/axis_anova.png)" in report


def test_fixed_design_has_the_exact_label_noise_term():
    """One x (a fixed design): the only term is the label noise, exactly the fixed
    design's ridge variance."""
    fixed = ["sweep.design=crossed", "data.train_design=fixed", "train.solver=closed_form",
             "sweep.n_noise=40", "sweep.weight_decay=[0.0, 0.1, 1.0]"]  # fmt: skip
    result = run_sweep(load_config(preset="linear", overrides=fixed), None, n_jobs=1)
    a = result.tables.anova
    assert set(a.theory_kind) == {"fixed_design_exact"}
    assert set(a.term) == {"label_noise", "variance", "bias2", "noise", "expected_error"}
    rows = a[a.term != "noise"]
    assert ((rows.value - rows.theory).abs() <= 3 * rows.se).all(), rows
