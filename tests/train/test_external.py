"""Bring your own: a user's truth function and a scikit-learn style estimator."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bvsim import BvsimWarning, ConfigError, load_config, run_sweep
from bvsim.cli import main

pytest.importorskip("sklearn")

FIX = "tests/fixtures/user_code.py"
RIDGE = [
    "model.kind=sklearn",
    "model.estimator=sklearn.linear_model:Ridge",
    "model.param=alpha",
    "model.estimator_args={fit_intercept = false}",
]


def test_sklearn_ridge_equals_closed_form_ridge():
    """sklearn's alpha is ridge's alpha = n lambda / 2 (README, "Closed-form theory on
    the plots"), without intercept."""
    lambdas = [0.01, 0.1, 1.0]
    base = ["sweep.n_reps=20"]  # an estimator fits float64 arrays (no train.dtype)
    exact = run_sweep(
        load_config(preset="linear", overrides=[*base, "train.dtype=float64",
                                                "train.solver=closed_form",
                                                f"sweep.weight_decay={lambdas}"]),
        progress=False,
    )  # fmt: skip
    n = exact.raw.cfg.data.n_train
    alphas = [n * lam / 2 for lam in lambdas]
    sk = run_sweep(
        load_config(preset="linear", overrides=[*base, *RIDGE, f"sweep.weight_decay={alphas}"]),
        progress=False,
        n_jobs=2,
    )
    np.testing.assert_allclose(sk.raw.pred, exact.raw.pred, atol=1e-8)
    cols = ["bias2", "bias2_se", "variance", "variance_se", "test_error", "train_error"]
    pd.testing.assert_frame_equal(sk.summary[cols], exact.summary[cols], atol=1e-8)
    assert sk.summary["n_diverged"].sum() == 0


def test_random_state_comes_from_the_seed_tree():
    over = ["model.kind=sklearn", "model.estimator=sklearn.tree:DecisionTreeRegressor",
            "model.param=ccp_alpha", "model.estimator_args={max_features = 1}",
            "sweep.weight_decay=[0.0, 0.01]", "sweep.n_reps=4"]  # fmt: skip
    cfg = load_config(preset="sine", overrides=over)
    a = run_sweep(cfg, progress=False).raw.pred
    b = run_sweep(cfg, progress=False, n_jobs=2).raw.pred
    np.testing.assert_array_equal(a, b)
    other = run_sweep(load_config(preset="sine", overrides=[*over, "seed=1"]), progress=False)
    assert not np.allclose(a, other.raw.pred)


@pytest.mark.parametrize(
    "grid, passed",
    [([1, 2, 4], [1, 2, 4]), ([0.5, 1.0], [0.5, 1.0])],
)
def test_a_none_default_parameter_gets_ints_only_from_a_grid_of_whole_numbers(grid, passed):
    """max_depth (default None) was passed 1.0 and refused by the estimator, so the
    classic tree-depth sweep could not run; a grid with a fraction (max_samples =
    [0.5, 1.0], where 1 and 1.0 differ) stays float."""
    from sklearn.tree import DecisionTreeRegressor

    from bvsim.config import load_config as load_unchecked
    from bvsim.train.sklearn import _arguments

    over = ["model.kind=sklearn", "model.estimator=sklearn.tree:DecisionTreeRegressor",
            "model.param=max_depth", f"sweep.weight_decay={grid}"]  # fmt: skip
    cfg = load_unchecked(preset="smoke", overrides=over)  # the grid's 0.5: no probe
    arguments = _arguments(DecisionTreeRegressor, cfg)
    got = [arguments(float(v), 0)["max_depth"] for v in grid]
    assert got == passed and [type(v) for v in got] == [type(v) for v in passed]
    if grid[0] == 1:
        cfg = load_config(preset="smoke", overrides=[*over, "sweep.n_reps=3"])
        assert run_sweep(cfg, progress=False).summary["n_diverged"].sum() == 0


def test_user_truth_file_drives_a_sweep(tmp_path):
    argv = ["sweep", "--preset", "smoke", "--set", f"data.truth={FIX}:bump",
            "--set", "train.steps=50", "--set", "sweep.n_reps=3", "--out", str(tmp_path),
            "--n-jobs", "2"]  # fmt: skip
    assert main(argv) == 0
    p = pd.read_csv(tmp_path / "pointwise.csv")
    np.testing.assert_allclose(p["truth"], np.exp(-4 * p["x"] ** 2))
    assert f"{FIX}:bump" in (tmp_path / "config.toml").read_text()


@pytest.mark.parametrize(
    "over, needle",
    [
        ([f"data.truth={FIX}:wrong_shape"], "expected (7,) or (7, 1)"),
        ([f"data.truth={FIX}:raises"], "RuntimeError: boom"),
        ([f"data.truth={FIX}:not_finite"], "non-finite"),
        ([f"data.truth={FIX}:NOT_CALLABLE"], "not callable"),
        ([f"data.truth={FIX}:missing"], "has no attribute 'missing'"),
        (["data.truth=no_such_module:f"], "no module 'no_such_module' in this Python"),
        (["data.truth=bvsim.no_such_module:f"], "(No module named 'bvsim.no_such_module')"),
        (["model.kind=sklearn"], "needs model.estimator"),
        (["model.kind=sklearn", f"model.estimator={FIX}:NoPredict"], "no fit and predict"),
        ([*RIDGE[:2], "model.param=lambda_"], "not a parameter of"),
        ([*RIDGE[:2], "model.estimator_args={bogus = 1}"], "does not accept"),
    ],
)
def test_bad_user_code_fails_at_load(over, needle):
    with pytest.raises(ConfigError) as info:
        load_config(preset="smoke", overrides=over)
    assert needle in str(info.value)


def test_failing_fits_count_as_diverged():
    over = ["model.kind=sklearn", f"model.estimator={FIX}:FailsSometimes",
            "sweep.weight_decay=[0.5, 2.0]", "sweep.n_reps=4"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = run_sweep(load_config(preset="smoke", overrides=over), progress=False).summary
    assert any("singular on purpose" in str(w.message) for w in caught)
    assert list(s["n_diverged"]) == [0, 8]
    assert list(s["status"]) == ["ok", "all_diverged"]


def test_a_workers_warnings_reach_the_cli_as_one_line_each(tmp_path, capsys, monkeypatch):
    """The failed fits of each chunk, trained in two loky worker processes, are shown
    by the sweep's process: one ``bvsim: warning:`` line a chunk, not Python's format."""
    import joblib

    monkeypatch.setattr(joblib, "cpu_count", lambda *args, **kwargs: 2)  # two workers
    argv = ["sweep", "--preset", "smoke", "--set", "model.kind=sklearn",
            "--set", f"model.estimator={FIX}:FailsSometimes", "--set", "model.param=alpha",
            "--set", "sweep.weight_decay=[0.5, 2.0]", "--set", "sweep.n_reps=4",
            "--set", "sweep.chunk_size=2", "--n-jobs", "2", "--no-figures",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("bvsim: warning: 4 of 8 fits of") == 2
    assert "singular on purpose" in err and "RuntimeWarning" not in err


@pytest.mark.parametrize(
    "over, needle",
    [
        (
            [*RIDGE[:2], 'model.estimator_args={solver = "nope"}'],
            "model.estimator_args = {'solver': 'nope'}: fit/predict failed on a probe set",
        ),
        (["model.kind=sklearn", f"model.estimator={FIX}:PredictsStrings"], "could not convert"),
        (["model.kind=sklearn", f"model.estimator={FIX}:PredictsTwoColumns"], "cannot reshape"),
        (
            ["model.kind=sklearn", f"model.estimator={FIX}:Plain", "model.param=beta"],
            "its parameters: alpha, shift",
        ),  # fmt: skip
    ],
)
def test_estimator_that_can_never_work_fails_at_load(over, needle):
    """Refused at load with one line naming the key, not after every member failed."""
    with pytest.raises(ConfigError) as info:
        load_config(preset="smoke", overrides=over)
    msg = str(info.value)
    assert "\n" not in msg and needle in msg
    assert "model.estimator" in msg or "model.param" in msg


def test_plain_class_without_get_params_trains():
    """README: any class with fit/predict; model.param and estimator_args reach its
    constructor (read from __init__'s signature)."""
    over = ["model.kind=sklearn", f"model.estimator={FIX}:Plain", "sweep.n_reps=4",
            "model.estimator_args={shift = 100.0}", "sweep.weight_decay=[0.0, 1.0]"]  # fmt: skip
    res = run_sweep(load_config(preset="smoke", overrides=over), progress=False)
    assert res.summary["n_diverged"].sum() == 0
    pred = res.raw.pred  # (λ, k, s, j): shift added, alpha shrinks the mean
    assert (pred > 50).all()
    assert pred[0].mean() > pred[1].mean()


def test_cli_exits_1_when_every_member_failed(tmp_path, capsys):
    argv = ["sweep", "--preset", "smoke", "--set", "sweep.n_reps=4", "--set", "train.steps=20",
            "--set", "train.log_every=10", "--set", "train.lr=1e30", "--n-jobs", "1",
            "--no-figures", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "bvsim: error: every member at every weight decay diverged" in err
    assert (tmp_path / "run" / "summary.csv").exists()


def test_the_probe_fits_the_runs_own_data(tmp_path):
    """A Poisson regression needs y >= 0: the run's counts pass where a synthetic
    standard-normal probe set would have been refused."""
    import pandas as pd

    from bvsim import load_config

    gen = np.random.default_rng(0)
    x = gen.normal(size=(80, 2))
    counts = gen.poisson(np.exp(0.3 * x[:, 0]))
    path = tmp_path / "counts.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": counts}).to_csv(path, index=False)
    load_config(
        preset="smoke",
        overrides=[
            "data.source=csv",
            f"data.path={path}",
            "data.n_train=20",
            "data.standardize=false",
            "model.kind=sklearn",
            "model.estimator=sklearn.linear_model:PoissonRegressor",
            "model.param=alpha",
            "sweep.n_seeds=1",
        ],
    )


@pytest.mark.parametrize("axis", [[], ["sweep.axis=noise_std", "sweep.axis_values=[0.1, 0.5]"]])
def test_an_estimator_without_weights_writes_a_header_only_weight_hist(tmp_path, axis):
    """results/README: an estimator has no weights, so weight_hist.csv holds its
    documented columns and no rows (not an empty file pandas cannot read), at the top
    level of a second-axis run too, and the run reads back for plot and report."""
    over = [*RIDGE, "sweep.n_reps=4", "sweep.weight_decay=[0.1, 1.0]", *axis]
    out = tmp_path / "run"
    run_sweep(load_config(preset="linear", overrides=over), out, progress=False, figures=False)
    columns = ["weight_decay", "layer", "bin_left", "bin_right", "count"]
    wh = pd.read_csv(out / "weight_hist.csv")
    assert list(wh.columns) == (["noise_std", *columns] if axis else columns)
    assert wh.empty
    if axis:
        part = pd.read_csv(out / "axis" / "noise_std=0.1" / "weight_hist.csv")
        assert list(part.columns) == columns
    assert main(["plot", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    assert not (out / "figures" / "weight_hist.png").exists()


def test_each_kind_names_the_user_code_it_runs():
    """KINDS says which key holds a kind's user code (checked at load, in the resume
    key); bvsim's own models run none."""
    from bvsim.train.trainers import KINDS, kind_note, user_code

    est = "sklearn.linear_model:Ridge"
    sk = load_config(preset="smoke", overrides=["model.kind=sklearn", f"model.estimator={est}"])
    assert user_code(sk) == ("model.estimator", est)
    for kind in ("mlp", "linear"):
        cfg = load_config(preset="smoke", overrides=[f"model.kind={kind}"])
        assert user_code(cfg) is None and kind_note(cfg) is None
    assert {k for k, v in KINDS.items() if v.code_key} == {"module", "sklearn"}


def test_a_file_named_as_a_module_gets_the_file_spec_suggested(tmp_path, monkeypatch):
    """`bvsim` (the script) does not put the current directory on sys.path: 'mytruth:f'
    for ./mytruth.py fails, and the error says to write 'mytruth.py:f'."""
    import sys

    (tmp_path / "bvsim_local_truth.py").write_text("def f(x):\n    return x[:, 0]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    with pytest.raises(ConfigError) as info:
        load_config(preset="smoke", overrides=["data.truth=bvsim_local_truth:f"])
    assert "write data.truth = 'bvsim_local_truth.py:f'" in str(info.value)


@pytest.mark.parametrize("estimator", ["NanForLargeAlpha", "HugeForLargeAlpha"])
def test_non_finite_predictions_count_as_diverged_and_are_said(estimator):
    """NaN, and (the hostile review) finite predictions of 1e200, whose squares made
    the estimates inf and NaN under status 'ok' and 'No member diverged'."""
    over = ["model.kind=sklearn", f"model.estimator={FIX}:{estimator}",
            "sweep.weight_decay=[0.5, 2.0]", "sweep.n_reps=4"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = run_sweep(load_config(preset="smoke", overrides=over), progress=False).summary
    said = [str(w.message) for w in caught if "non-finite" in str(w.message)]
    assert said and "count as diverged (alpha = 2)" in said[0]
    assert list(s["n_diverged"]) == [0, 8]


def test_an_estimator_that_ignores_random_state_is_said_when_seeds_would_copy():
    """The second hostile check: Ridge takes random_state but its default solver
    ignores it, so n_seeds = 2 fitted identical copies (variance_init 3e-32) without a
    word; the probe now fits two random_state values and warns where they agree. A
    random forest, which uses it, is not warned about."""
    ridge = ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge"]
    with pytest.warns(BvsimWarning, match="gave identical predictions on a probe set"):
        load_config(preset="smoke", overrides=ridge)
    forest = ["model.kind=sklearn", "model.estimator=sklearn.ensemble:RandomForestRegressor",
              "model.param=ccp_alpha", "model.estimator_args={n_estimators = 5}"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_config(preset="smoke", overrides=forest)
    assert not [w for w in caught if "identical predictions" in str(w.message)]
