"""The crossed design (#15): every draw of the training x meets every draw of the label
noise and every initialization; the random-effects ANOVA of the variance per λ.

- Configuration: a factor the data or solver do not have must have one level (one-line
  ConfigError), classification is refused, ``sweep.n_reps`` becomes n_inputs x n_noise
  (a user's other n_reps is a one-line error; a preset's is replaced), and a nested
  run's ``config.toml`` (so its resume key) is what it was before.
- Seed tree: one noise draw is shared by every x, one initialization by every (x, noise).
- Reductions: with one x the ANOVA's init + noise:init terms are the nested estimator's
  variance_init of the same predictions, exactly; bias² + Σ terms + noise is the
  expected error exactly; the terms' sum is the nested variance within its SE.
- Ridge with a Gaussian random design (closed form, no init factor): the label-noise
  main effect is 0 by the X -> -X symmetry, within 3 SE.
- A factor with 2 levels (no jackknife SE): the run finishes with its estimates and
  NaN SEs, figures and a report that says so (it crashed after training before).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.config import ConfigError, dumps_toml
from bvsim.data.generator import draw_training_sets, make_test_set, truth
from bvsim.estimate.anova import crossed_anova, crossed_anova_blocks
from bvsim.estimate.theory import ridge_fixed_design
from bvsim.present.figure_table import figure_lines
from bvsim.present.report import write_report
from bvsim.present.style import save_figure
from bvsim.present.variance_figures import fig_anova
from bvsim.train.engine import init_params

CROSSED = ["sweep.design=crossed"]


def _cfg(preset="smoke", *overrides):
    return load_config(preset=preset, overrides=[*CROSSED, *overrides])


@pytest.mark.parametrize(
    ("preset", "overrides", "message"),
    [
        ("gaussians", ["sweep.n_inputs=3"], "not for classification"),
        ("seed-demo", ["sweep.n_inputs=3", "sweep.n_noise=3"], "set sweep.n_inputs = 1"),
        ("diabetes", ["sweep.n_inputs=3", "sweep.n_noise=2"], "set sweep.n_noise = 1"),
        (
            "linear",
            ["sweep.n_noise=3", "train.solver=closed_form", "sweep.n_seeds=2"],
            "sweep.n_seeds = 2 has no effect unless train.solver = 'gd'",
        ),  # fmt: skip
        ("smoke", ["sweep.n_seeds=4"], "n_inputs x sweep.n_noise >= 2"),
        ("smoke", ["sweep.n_inputs=3", "sweep.target_se=0.01"], "set sweep.target_se = 0"),
    ],
)
def test_a_factor_that_does_not_exist_is_one_line_config_error(preset, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        _cfg(preset, *overrides)
    assert "\n" not in str(err.value)


def test_nested_design_refuses_crossed_keys_and_keeps_its_config_text():
    with pytest.raises(ConfigError, match="has no effect unless sweep.design = 'crossed'"):
        load_config(preset="smoke", overrides=["sweep.n_inputs=3"])
    text = dumps_toml(load_config(preset="smoke"))
    assert "\ndesign =" not in text and "n_inputs" not in text  # resume keys unchanged
    cfg = _cfg("smoke", "sweep.n_inputs=3", "sweep.n_noise=4")  # the preset's n_reps: 8
    assert cfg.sweep.n_reps == 12
    assert _cfg("smoke", "sweep.n_inputs=3", "sweep.n_noise=4", "sweep.n_reps=12") == cfg
    assert load_config(overrides=[]).sweep.design == "nested"


def test_a_users_n_reps_other_than_inputs_times_noise_is_refused(tmp_path):
    """Set in --set or a file (not a preset), n_reps must be n_inputs x n_noise: a
    one-line error names both, instead of silently training another number of sets."""
    crossed = ["sweep.n_inputs=3", "sweep.n_noise=4"]
    with pytest.raises(ConfigError, match=r"sweep.n_reps = 50 conflicts .* = 12") as err:
        _cfg("smoke", *crossed, "sweep.n_reps=50")
    assert "\n" not in str(err.value) and "sweep.n_inputs x sweep.n_noise" in str(err.value)
    path = tmp_path / "my.toml"
    path.write_text("[sweep]\ndesign = 'crossed'\nn_inputs = 3\nn_noise = 4\nn_reps = 50\n")
    with pytest.raises(ConfigError, match=f"{path}: sweep.n_reps = 50 conflicts"):
        load_config(path, preset="smoke")
    saved = tmp_path / "config.toml"  # a crossed run's config.toml (n_reps = 12) loads
    saved.write_text(dumps_toml(_cfg("smoke", *crossed)))
    assert load_config(saved).sweep.n_reps == 12


def test_one_noise_draw_pairs_with_every_x_and_one_init_with_every_set():
    cfg = _cfg("smoke", "sweep.n_inputs=3", "sweep.n_noise=4", "sweep.n_seeds=2")
    test = make_test_set(cfg)
    ks = np.arange(12)
    sets = draw_training_sets(cfg, test, ks)
    a, b = ks // 4, ks % 4
    eps = (sets.y - np.stack([truth(x, cfg.data) for x in sets.x])) / cfg.data.noise_std
    for k in ks:
        np.testing.assert_array_equal(sets.x[k], sets.x[a[k] * 4])  # x of level a
        np.testing.assert_allclose(eps[k], eps[b[k]], atol=1e-12)  # noise of level b
    assert not np.allclose(sets.x[0], sets.x[4]) and not np.allclose(eps[0], eps[1])
    # a chunk asking for sets 5..7 alone gets the same sets
    part = draw_training_sets(cfg, test, ks[5:8])
    np.testing.assert_array_equal(part.y, sets.y[5:8])
    np.testing.assert_array_equal(part.y_test, sets.y_test[5:8])
    # initialization c is the same for every training set, and differs between seeds
    first = init_params(cfg, ks, 2)[0]  # (n_sets, n_seeds, fan_in, fan_out)
    assert (first == first[:1]).all()
    assert not np.array_equal(first[0, 0], first[0, 1])
    nested = init_params(load_config(preset="smoke"), ks[:2], 2)[0]
    assert not np.array_equal(nested[0], nested[1])


def test_blocks_of_test_points_combine_exactly():
    rng = np.random.default_rng(3)
    y, f = rng.normal(size=(4, 3, 5, 23)), rng.normal(size=23)
    whole, points = crossed_anova(y, f, ("a", "b", "c"))
    cuts = [slice(0, 7), slice(7, 8), slice(8, 23)]
    blocks, bpoints = crossed_anova_blocks(((y[..., c], f[c]) for c in cuts), ("a", "b", "c"))
    for key, value in whole.items():
        assert blocks[key] == pytest.approx(value, rel=1e-10, abs=1e-14), key
    for key, value in points.items():
        np.testing.assert_allclose(bpoints[key], value, rtol=1e-10)
    shares = [blocks[f"{t}_share"] for t in ("a", "b", "c", "a:b", "a:c", "b:c", "a:b:c")]
    assert sum(shares) == pytest.approx(1.0)
    assert all(np.isfinite(blocks[f"{t}_share_se"]) for t in ("a", "a:b:c"))


FIXED_DESIGN = (
    "data.train_design=fixed",
    "sweep.n_noise=4",
    "sweep.n_seeds=3",
    "train.steps=100",
    "sweep.weight_decay=[0.0, 0.1]",
)


@pytest.fixture(scope="module")
def fixed_design_run(tmp_path_factory):
    """One x (a fixed design), 4 noise draws x 3 initializations, small MLP."""
    cfg = _cfg("smoke", *FIXED_DESIGN)
    out = tmp_path_factory.mktemp("crossed")
    result = run_sweep(cfg, out, n_jobs=1, figures=False)  # the ANOVA's own figure below
    (out / "figures").mkdir()
    fig_dir = out / "figures"
    save_figure(fig_anova(result.tables.anova), fig_dir, "anova")
    write_report(result.tables, out)
    return result, out


def test_with_one_x_the_init_terms_are_the_nested_variance_init(fixed_design_run):
    result, out = fixed_design_run
    anova, summary = result.tables.anova, result.summary
    assert set(anova.term) == {
        "label_noise", "init", "label_noise:init", "variance", "bias2", "noise",
        "expected_error",
    }  # fmt: skip
    for _, row in summary.iterrows():
        a = anova[anova.weight_decay == row.weight_decay].set_index("term")
        init = a.value["init"] + a.value["label_noise:init"]
        assert init == pytest.approx(row.variance_init, rel=1e-9)
        terms = a.value[["label_noise", "init", "label_noise:init"]].sum()
        assert terms == pytest.approx(a.value["variance"], rel=1e-12)
        total = a.value["bias2"] + a.value["variance"] + a.value["noise"]
        assert total == pytest.approx(a.value["expected_error"], rel=1e-12)
        assert total == pytest.approx(row.expected_error, rel=1e-9)  # the same mse
        assert abs(a.value["variance"] - row.variance) <= 3 * a.se["variance"]
        shares = a.share[["label_noise", "init", "label_noise:init"]]
        assert shares.sum() == pytest.approx(1.0)
        # an ensemble of the 3 initializations: the init variance shrinks by 3
        gain = (1 - 1 / 3) * row.variance_init
        assert row.ensemble_gain == pytest.approx(gain)
        assert row.ensemble_error == pytest.approx(row.expected_error - gain)
        assert 0 < row.ensemble_error_se < row.expected_error
    for name in ("anova.csv", "anova_pointwise.csv", "figures/anova.png"):
        assert (out / name).exists(), name
    assert "## Where the variance comes from" in (out / "report.md").read_text()


def test_anova_does_not_depend_on_chunking(fixed_design_run):
    """Sets of one chunk of 3 (a noise level's sets split across chunks): the same."""
    other = run_sweep(_cfg("smoke", *FIXED_DESIGN, "sweep.chunk_size=3"), None, n_jobs=1)
    pd.testing.assert_frame_equal(other.tables.anova, fixed_design_run[0].tables.anova)


def test_nested_run_has_no_anova_and_no_ensemble_columns_with_one_seed(tmp_path):
    cfg = load_config(
        preset="smoke", overrides=["sweep.n_seeds=1", "train.steps=20", "sweep.n_reps=4"]
    )
    result = run_sweep(cfg, tmp_path, n_jobs=1, figures=False)
    assert result.tables.anova is None
    assert "ensemble_error" not in result.summary
    assert not (tmp_path / "anova.csv").exists()


def test_ridge_random_design_label_noise_main_effect_is_zero():
    """Closed-form ridge on a Gaussian random design: no init factor; the label-noise
    main effect vanishes (E_X (X'X + a I)^-1 X' e = 0 by X -> -X), within 3 SE, while
    the inputs x label-noise interaction (the conditional variance) does not."""
    cfg = _cfg(
        "linear",
        "data.train_design=random",
        "train.solver=closed_form",
        "data.dim=5",
        "data.n_train=10",
        "data.n_test=50",
        "sweep.n_inputs=30",
        "sweep.n_noise=30",
        "sweep.weight_decay=[0.0, 0.1, 1.0]",
    )
    result = run_sweep(cfg, None, n_jobs=1)
    a = result.tables.anova
    assert set(a.term) >= {"inputs", "label_noise", "inputs:label_noise"}
    assert "init" not in set(a.term)
    # the conditional variance E_X Var_eps(y | X), exact for each drawn X (Stream INPUTS)
    test = make_test_set(cfg)
    xs = draw_training_sets(cfg, test, np.arange(0, 900, 30)).x  # b = 0: one set per x
    coef = np.full(cfg.data.dim, np.sqrt(cfg.data.coef_norm2 / cfg.data.dim))
    for wd in cfg.sweep.weight_decay:
        t = a[a.weight_decay == wd].set_index("term")
        assert abs(t.value["label_noise"]) <= 3 * t.se["label_noise"], wd
        assert t.value["inputs:label_noise"] > 3 * t.se["inputs:label_noise"], wd
        exact = np.mean(
            [ridge_fixed_design(x, test.x, coef, cfg.data.noise_std**2, wd)[1] for x in xs]
        )
        within = t.value["label_noise"] + t.value["inputs:label_noise"]
        se = t.se["label_noise"] + t.se["inputs:label_noise"]
        assert abs(within - exact) <= 3 * se, (wd, within, exact, se)


def test_the_summary_of_a_crossed_run_is_its_anova(fixed_design_run):
    """summary.csv's bias² and variance are anova.csv's rows, every SE the multiway
    jackknife (the same as anova.csv's), bias² + variance + noise the expected error;
    bias2_se0 (its estimate assumes independent sets) is empty; the report quotes the
    multiway jackknife and no longer says the summary's SEs treat the sets as
    independent."""
    result, out = fixed_design_run
    summary, anova = result.summary, result.tables.anova
    for _, row in summary.iterrows():
        a = anova[anova.weight_decay == row.weight_decay].set_index("term")
        for name in ("bias2", "variance", "expected_error"):
            assert row[name] == pytest.approx(a.value[name], rel=1e-12, abs=1e-15), name
            assert row[f"{name}_se"] == pytest.approx(a.se[name], rel=1e-12), name
        identity = row.bias2 + row.variance + row.noise
        assert identity == pytest.approx(row.expected_error, rel=1e-12)
        assert np.isnan(row.bias2_se0) and np.isfinite(row.variance_init_se)
    best = summary[summary.is_best].iloc[0]
    assert best.diff_from_best_se == 0 and (summary.diff_from_best_se.notna()).all()
    # Satterthwaite's degrees of freedom over 4 noise draws x 3 seeds: from 2 to 3 + 2
    assert summary[~summary.is_best].diff_from_best_df.between(2, 5).all()
    assert summary.variance_diff_prev_df.iloc[1:].between(2, 5).all()
    assert np.isnan(best.diff_from_best_df)
    # anova.csv's SEs and shares carry their Satterthwaite df too, in the same range
    terms = anova[anova.share.notna()]
    assert terms.df.between(2, 5).all() and terms.share_df.between(2, 5).all()
    assert anova[anova.term == "noise"].df.isna().all()
    assert summary.prob_best.sum() == pytest.approx(1.0)
    points = pd.read_csv(out / "pointwise.csv")
    assert points.bias2_se0.isna().all() and (points.variance_se > 0).all()
    report = (out / "report.md").read_text()
    assert "multiway jackknife over the crossed factors (ε × init)" in report
    assert "pigeonhole" in report and "as independent" not in report
    assert "Student's t with" in report and "Satterthwaite's" in report
    crossed, nested = (
        "\n".join(figure_lines(["pointwise"], crossed=c)) for c in (True, False)
    )  # the pointwise figure's caption (this run draws only the ANOVA's)
    assert "(multiway jackknife," in crossed and "`bias2_se0` is empty" in crossed
    assert "never narrower than `bias2_se0` in `pointwise.csv`" in nested
    assert "multiway" not in nested and "never narrower" not in crossed


def test_a_nested_run_keeps_its_estimators(tmp_path):
    """A nested run's summary is still the nested decomposition over i.i.d. training
    sets (bias2_se0 finite, pseudo-value paired SEs) and run.json names no factors."""
    from bvsim.estimate.compare import paired_vs_best, pseudo_values
    from bvsim.estimate.squared import decompose

    cfg = load_config(preset="smoke", overrides=["train.steps=20", "sweep.n_reps=5"])
    result = run_sweep(cfg, tmp_path, n_jobs=1, figures=False)
    s, r = result.summary, result.raw
    expected = []
    for i in range(len(s)):
        overall, _, loo = decompose(np.asarray(r.pred[i]), r.test.f, return_loo=True)
        assert s.variance[i] == pytest.approx(overall["variance"], rel=1e-12)
        assert s.bias2_se[i] == pytest.approx(overall["bias2_se"], rel=1e-12)
        expected.append(pseudo_values(overall["mse_truth"], loo["mse_truth"] / len(r.test.f)))
    vs = paired_vs_best(np.array(expected) + r.test.noise_var, best=int(s.is_best.argmax()))
    np.testing.assert_allclose(s.diff_from_best_se, vs["diff_se"], rtol=1e-9)
    assert s.bias2_se0.notna().all() and "crossed_factors" not in result.tables.meta
    assert (s.diff_from_best_df[~s.is_best] == 4).all()  # 5 sets: Student's t with 4 df
    assert (s.sort_values("weight_decay").variance_diff_prev_df.iloc[1:] == 4).all()


def test_a_broken_crossing_has_no_estimates(fixed_design_run):
    """A λ with an unusable set (a diverged member) cannot drop it without breaking the
    crossing: no estimates there, status crossing_broken; the other λ keep theirs."""
    from bvsim.io.summary import summary_rows

    raw = fixed_design_run[0].raw
    usable = np.ones(raw.diverged.shape[:2], dtype=bool)
    usable[0, 1] = False
    summary, _ = summary_rows(raw, usable)
    assert summary.status.tolist() == ["crossing_broken", "ok"]
    assert summary.loc[0, ["bias2", "variance", "expected_error"]].isna().all()
    assert summary.prob_best.tolist() == [0.0, 1.0] and summary.is_best.tolist() == [False, True]
    assert summary.loc[1, "variance"] == fixed_design_run[0].summary.loc[1, "variance"]


def test_steps_of_a_crossed_run_end_at_its_summary():
    """With train.decompose_steps the last step is the crossed summary (multiway SEs),
    and early stopping against weight decay is the multiway jackknife of the
    difference."""
    cfg = _cfg("smoke", *FIXED_DESIGN[:-1], "sweep.weight_decay=[0.0, 0.1]",
               "train.decompose_steps=true", "train.log_every=50")  # fmt: skip
    result = run_sweep(cfg, None, n_jobs=1, figures=False)
    steps, s = result.tables.steps, result.summary
    last = steps[steps.step == steps.step.max()].reset_index(drop=True)
    for col in ("bias2", "variance", "variance_se", "expected_error_se"):
        np.testing.assert_allclose(last[col], s[col], rtol=1e-12)
    es = result.tables.meta["early_stopping"]
    assert es["diff"] == pytest.approx(es["early_stopping_error"] - es["weight_decay_error"])
    same = (es["best_step"], 0.0) == (es["last_step"], es["best_weight_decay"])
    assert es["diff_se"] == 0 if same else es["diff_se"] > 0
    # two different cells: the multiway jackknife of their replicates' difference
    from bvsim.estimate.crossed import split_se
    from bvsim.io.steps import early_stopping

    rng = np.random.default_rng(0)
    reps = [{"expected": rng.normal(size=(2, 7)), "levels": (4, 3)} for _ in range(2)]
    table = pd.DataFrame({"weight_decay": [0.0, 0.0, 0.1, 0.1], "step": [1, 2, 1, 2],
                          "expected_error": [0.5, 0.9, 0.8, 0.7],
                          "expected_error_se": 0.1, "n_reps_used": 12})  # fmt: skip
    es = early_stopping(table, reps, [1, 2], [0.0, 0.1])
    assert (es["best_step"], es["best_weight_decay"]) == (1, 0.1)
    assert es["diff"] == pytest.approx(0.5 - 0.7)
    se = split_se(reps[0]["expected"][0] - reps[1]["expected"][1], (4, 3))
    assert es["diff_se"] == pytest.approx(se) and se > 0


def test_a_factor_with_two_levels_gives_estimates_with_nan_ses(tmp_path, capsys):
    """smoke has n_seeds = 2: the init factor has 2 levels, so the multiway jackknife
    has no SE (leaving one level out leaves no variance); the sweep used to crash after
    training. The estimates are written with NaN SEs, and the figures and report say so."""
    from bvsim.cli import main

    out = tmp_path / "run"
    over = [*CROSSED, "sweep.n_inputs=3", "sweep.n_noise=3", "sweep.n_reps=9",
            "train.steps=60", "train.log_every=20"]  # fmt: skip
    argv = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--out", str(out)]
    rc = main([*argv, *(a for o in over for a in ("--set", o))])
    err = capsys.readouterr().err
    assert rc == 0, err
    s = pd.read_csv(out / "summary.csv")
    assert (s["status"] == "ok").all()
    for col in ("bias2", "variance", "variance_init", "expected_error", "test_error"):
        assert np.isfinite(s[col]).all(), col
    for col in ("bias2_se", "variance_se", "expected_error_se", "test_error_se",
                "identity_gap_se", "variance_share_se"):  # fmt: skip
        assert s[col].isna().all(), col
    assert s.loc[~s.is_best, "diff_from_best_se"].isna().all()  # 0 at the best itself
    assert s["prob_best"].sum() == pytest.approx(1.0)  # the pigeonhole bootstrap still runs
    anova = pd.read_csv(out / "anova.csv")
    assert np.isfinite(anova["value"]).all() and anova.loc[anova.term != "noise", "se"].isna().all()
    assert pd.read_csv(out / "pointwise.csv")["variance_se"].isna().all()
    report = (out / "report.md").read_text()
    assert "every SE is empty" in report and "no SE to judge it by" in report
    assert "no paired SE in this run" in report
    for name in ("decomposition", "anova", "pointwise", "variance_split"):
        assert (out / "figures" / f"{name}.png").exists(), name


def test_the_curves_of_a_crossed_run_have_its_multiway_jackknife_ses(fixed_design_run):
    """curves.csv's bands were the SE over sets as if independent (about half the
    multiway jackknife in sine-crossed); at the last step they are the summary's (the
    test curve is logged in float32)."""
    result, _ = fixed_design_run
    c, s = result.tables.curves, result.summary.set_index("weight_decay")
    last = c[c.step == c.step.max()]
    for split, col in (("train", "train_error"), ("test", "test_error")):
        part = last[last.split == split].set_index("weight_decay")
        np.testing.assert_allclose(part.loss, s.loc[part.index, col], rtol=1e-6)
        np.testing.assert_allclose(part.loss_se, s.loc[part.index, f"{col}_se"], rtol=1e-5)
