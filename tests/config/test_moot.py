"""Keys without effect in the chosen mode: refused where the user set them to another
value than the default, naming the key that makes them moot; put back to the default
where a preset set them; never where a second axis's run uses them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import bvsim
from bvsim.cli import main
from bvsim.config import (
    ConfigError,
    axis_configs,
    dumps_toml,
    from_dict,
    list_presets,
    load_config,
)
from bvsim.config.moot import describe_moot, moot_keys

#: (preset, --set assignments, the key refused, what makes it moot)
REFUSED = [
    ("smoke", ["data.path=d.csv"], "data.path = 'd.csv'", "data.source = 'csv'"),
    ("smoke", ["data.target=y"], "data.target = 'y'", "data.source = 'csv'"),
    ("smoke", ["data.features=['a']"], "data.features = ['a']", "data.source = 'csv'"),
    ("smoke", ["data.standardize=false"], "data.standardize = False", "data.source = 'csv'"),
    (
        "smoke",
        ["model.estimator=sklearn.linear_model:Ridge"],
        "model.estimator = 'sklearn.linear_model:Ridge'",
        "model.kind = 'sklearn'",
    ),
    (
        "smoke",
        ["model.estimator_args={fit_intercept = false}"],
        "model.estimator_args = {'fit_intercept': False}",
        "model.kind = 'sklearn'",
    ),
    (
        "smoke",
        ["model.module=net.py:make"],
        "model.module = 'net.py:make'",
        "model.kind = 'module'",
    ),
    (
        "smoke",
        ["model.kind=linear", "model.hidden=[8]"],
        "model.hidden = [8]",
        "model.kind = 'mlp'",
    ),
    ("diabetes", ["data.truth=sine"], "data.truth = 'sine'", "data.source = 'generator'"),
    ("diabetes", ["data.noise_std=0.1"], "data.noise_std = 0.1", "data.source = 'generator'"),
    ("diabetes", ["data.x_dist=gaussian"], "data.x_dist = 'gaussian'", "data.source = 'generator'"),
    (
        "smoke",
        ["train.optimizer=adam", "train.momentum=0.5"],
        "train.momentum = 0.5",
        "train.optimizer = 'sgd'",
    ),
    ("smoke", ["train.betas=[0.8, 0.9]"], "train.betas = [0.8, 0.9]", "train.optimizer = 'adam'"),
    *[
        (
            "smoke",
            ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge", assignment],
            key,
            "model.kind = 'mlp', 'linear' or 'module'",
        )
        for assignment, key in [
            ("train.penalty=l1", "train.penalty = 'l1'"),
            ("train.optimizer=adam", "train.optimizer = 'adam'"),
            ("train.steps=5000", "train.steps = 5000"),
            ("train.dtype=float64", "train.dtype = 'float64'"),
            ("train.lr=0.5", "train.lr = 0.5"),
            ("train.batch_size=5", "train.batch_size = 5"),
            ("train.decay_bias=false", "train.decay_bias = False"),
            ("train.log_every=10", "train.log_every = 10"),
            ("train.diverge_threshold=1e6", "train.diverge_threshold = 1000000.0"),
            # moot by train.optimizer = 'sgd' too: the first rule, model.kind, is named
            ("train.momentum=0.5", "train.momentum = 0.5"),
        ]
    ],
    (
        "smoke",
        ["data.truth=linear", "data.frequency=2"],
        "data.frequency = 2.0",
        "data.truth = 'sine'",
    ),
    ("smoke", ["data.coef_norm2=4"], "data.coef_norm2 = 4.0", "data.truth = 'linear'"),
    ("smoke", ["data.class_sep=2"], "data.class_sep = 2.0", "data.truth = 'gaussians'"),
    ("gaussians", ["data.noise_std=0.1"], "data.noise_std = 0.1", "a regression truth"),
    (
        "linear",
        ["data.x_low=-2"],
        "data.x_low = -2.0",
        "data.x_dist = 'uniform' or 'grid' with a regression truth",
    ),
    (
        "smoke",
        ["train.momentum=0.5", "sweep.axis=optimizer", "sweep.axis_labels=['adam']"],
        "train.momentum = 0.5",
        "in every run of sweep.axis = 'optimizer'",
    ),
    (
        "smoke",
        ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge", "model.bias=false"],
        "model.bias = False",
        "model.kind = 'mlp' or 'linear'",
    ),
    (
        "smoke",
        ["model.kind=linear", "model.bias=false", "train.decay_bias=false"],
        "train.decay_bias = False",
        "the model has biases",
    ),
    ("gaussians", ["data.x_dist=gaussian"], "data.x_dist = 'gaussian'", "a regression truth"),
    ("diabetes", ["data.n_test=50"], "data.n_test = 50", "data.source = 'generator'"),
    (
        "smoke",
        ["model.kind=linear", "model.bias=false", "train.solver=closed_form", "sweep.n_seeds=3"],
        "sweep.n_seeds = 3",
        "closed_form's fits of a training set would be identical",
    ),
    (
        "double-descent",
        ["train.diverge_threshold=1e6"],
        "train.diverge_threshold = 1000000.0",
        "train.solver = 'gd'",
    ),
    ("smoke", ["sweep.n_inputs=3"], "sweep.n_inputs = 3", "sweep.design = 'crossed'"),
    ("smoke", ["sweep.n_noise=2"], "sweep.n_noise = 2", "sweep.design = 'crossed'"),
    (
        "sine-crossed",
        ["sweep.design=nested", "sweep.n_inputs=8"],
        "sweep.n_inputs = 8",
        "(here sweep.design = 'nested')",
    ),
]


@pytest.mark.parametrize("preset, over, key, why", REFUSED)
def test_a_key_without_effect_is_refused_naming_what_makes_it_moot(preset, over, key, why):
    with pytest.raises(ConfigError, match="has no effect unless") as err:
        load_config(preset=preset, overrides=over)
    assert key in str(err.value) and why in str(err.value)


def test_torch_training_keys_with_an_sklearn_estimator_exit_2_before_compute(
    tmp_path, capsys, monkeypatch
):
    """The reviewer's command: train.penalty, optimizer, steps and dtype with
    model.kind = 'sklearn' were accepted and saved in config.toml though the
    estimator's fit reads none of them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "est.py").write_text(
        "import numpy as np\n\n\nclass Est:\n"
        "    def __init__(self, alpha=1.0):\n        self.alpha = alpha\n\n"
        "    def fit(self, x, y):\n        self.mean_ = float(np.mean(y))\n"
        "        return self\n\n"
        "    def predict(self, x):\n        return np.full(len(x), self.mean_)\n"
    )
    over = ["model.kind=sklearn", "model.estimator=est.py:Est", "train.penalty=l1"]
    over += ["train.optimizer=adam", "train.steps=5000", "train.dtype=float64"]
    out = tmp_path / "run"
    args = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--out", str(out)]
    assert main([*args, *(a for o in over for a in ("--set", o))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bvsim: error: preset 'smoke' with --set (overrides): ")
    assert "train.optimizer = 'adam' has no effect unless model.kind = 'mlp'" in err
    assert "(here model.kind = 'sklearn')" in err and err.count("\n") == 1
    assert not out.exists()


def test_an_sklearn_run_keeps_the_keys_it_reads_and_resets_the_presets_torch_keys():
    """smoke's steps, lr and log_every are put back to their defaults with
    model.kind = 'sklearn' (config.toml records only what the run uses);
    train.decompose_steps (the final step) and sweep.n_seeds (a random_state per
    seed where the estimator takes one) are kept."""
    over = ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge"]
    cfg = load_config(preset="smoke", overrides=[*over, "train.decompose_steps=true"])
    t = cfg.train
    assert (t.steps, t.lr, t.log_every) == (2000, 0.01, 100)
    assert t.decompose_steps and cfg.sweep.n_seeds == 2
    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


def test_an_sklearn_estimator_is_not_held_to_the_float32_range():
    """It fits float64 arrays: train.dtype (moot there) neither limits its inputs nor
    is asked for."""
    over = ["data.x_high=1e39"]
    with pytest.raises(ConfigError, match="not representable in train.dtype"):
        load_config(preset="smoke", overrides=over)
    sk = ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge"]
    assert load_config(preset="smoke", overrides=[*sk, *over]).data.x_high == 1e39


def test_a_csv_key_in_a_file_without_the_csv_source_exits_2_before_compute(
    tmp_path, capsys, monkeypatch
):
    """The reviewer's file: data.path and data.target without data.source = 'csv'
    trained the default generator and recorded the path in config.toml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,y\n1,2\n3,4\n")
    (tmp_path / "my.toml").write_text('[data]\npath = "d.csv"\ntarget = "y"\n')
    out = tmp_path / "run"
    assert main(["sweep", "my.toml", "--n-jobs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    # the path is read from the file's directory (config.load), so it is named whole
    path = tmp_path / "d.csv"
    assert err.startswith(f"bvsim: error: my.toml: data.path = '{path}' has no effect unless ")
    assert "data.source = 'csv'" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "over",
    [
        ["train.optimizer=adam", "train.momentum=0.9"],  # the default: a config.toml has it
        ["train.momentum=0.5", "sweep.axis=optimizer", "sweep.axis_labels=['sgd', 'adam']"],
        ["model.kind=linear", "model.hidden=[32, 32]"],
        ["data.truth=gaussians", "data.x_low=-2", "data.test_design=grid"],
    ],
)
def test_a_default_value_or_a_key_some_axis_run_uses_is_accepted(over):
    load_config(preset="smoke", overrides=over)


def test_presets_have_no_key_without_effect():
    """Every preset loads unchanged: none of its keys is put back."""
    for name in list_presets():
        cfg = load_config(preset=name)
        subs = [sub for _, sub in axis_configs(cfg)]
        assert moot_keys(cfg, subs) == [], name
        assert all(moot_keys(sub, [sub]) == [] for sub in subs), name


def test_a_presets_key_without_effect_goes_back_to_its_default_and_reloads():
    """--preset smoke --set model.kind=linear: smoke's hidden widths and sine truth
    are not what a linear model on a CSV file uses, so config.toml does not record
    them, and it loads back as it is."""
    cfg = load_config(
        preset="smoke",
        overrides=[
            "model.kind=linear",
            "data.source=csv",
            "data.path=d.csv",
            "train.optimizer=adam",
        ],
    )
    assert cfg.model.hidden == [32, 32] and cfg.data.truth == "linear"
    assert cfg.data.noise_std == 0.5 and cfg.data.test_design == "sample"
    assert cfg.train.momentum == 0.9
    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


def test_readme_lists_the_keys_without_effect():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for keys, unless in describe_moot():
        assert f"| {keys} | {unless} |" in readme


def test_each_run_of_a_second_axis_loads_from_its_own_config_toml():
    """sweep.axis = 'optimizer' over sgd and adam with train.momentum = 0.5: the sgd
    run uses it; the adam run's configuration (its config.toml, its "Reproduce")
    holds the default, so it loads as it is."""
    over = ["train.momentum=0.5", "sweep.axis=optimizer", "sweep.axis_labels=['sgd', 'adam']"]
    cfg = load_config(preset="smoke", overrides=over)
    (_, sgd), (_, adam) = axis_configs(cfg)
    assert cfg.train.momentum == sgd.train.momentum == 0.5 and adam.train.momentum == 0.9
    for sub in (sgd, adam):
        assert from_dict(tomllib.loads(dumps_toml(sub))) == sub


def test_optimizer_keys_have_no_effect_under_the_closed_form_solver():
    """train.solver = 'closed_form' solves ridge exactly: the optimizer, its steps and
    logging are not read (set by the user: refused; the preset sets none of them)."""
    with pytest.raises(ConfigError, match="train.lr.*train.solver"):
        load_config(preset="double-descent", overrides=["train.lr=0.1"])
    cfg = load_config(preset="double-descent")
    assert cfg.train.steps == type(cfg.train)().steps  # the preset's values: defaults


@pytest.mark.parametrize("preset", ["sine-crossed", "double-descent-crossed"])
def test_a_crossed_presets_factors_go_back_to_their_defaults_in_the_nested_design(preset):
    """--preset sine-crossed --set sweep.design=nested: the preset set sweep.n_inputs and
    sweep.n_noise, not the user, so they go back to 1 (were refused as the user's)."""
    cfg = load_config(preset=preset, overrides=["sweep.design=nested"])
    assert cfg.sweep.design == "nested" and (cfg.sweep.n_inputs, cfg.sweep.n_noise) == (1, 1)
    assert cfg.sweep.n_reps == load_config().sweep.n_reps  # neither preset sets n_reps
    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


@pytest.mark.parametrize(
    "over, words",
    [
        (
            ["model.kind=sklearn", "model.estimator=sklearn.tree:DecisionTreeRegressor",
             "model.param=max_depth", "sweep.weight_decay=[1, 2]",
             "model.estimator_args={random_state = 0}", "sweep.n_seeds=2"],
            "model.estimator_args fixes random_state",
        ),
        (
            ["model.kind=sklearn", "model.estimator=sklearn.neighbors:KNeighborsRegressor",
             "model.param=n_neighbors", "sweep.weight_decay=[1, 2]", "sweep.n_seeds=2"],
            "takes no random_state, so the fits of a training set are identical",
        ),
    ],
)  # fmt: skip
def test_seeds_that_fit_identical_copies_are_said_nested_and_refused_crossed(over, words):
    """sweep.n_seeds > 1 fits of a training set that nothing random tells apart (an
    estimator without, or with a fixed, random_state) are copies: in the nested design
    right at n_seeds times the cost (a warning), in the crossed one no initialization
    factor (refused, as before)."""
    pytest.importorskip("sklearn")
    with pytest.warns(bvsim.BvsimWarning, match=words):
        bvsim.load_config(preset="smoke", overrides=over)  # the user's code checked too
    crossed = ["sweep.design=crossed", "sweep.n_inputs=2", "sweep.n_noise=2"]
    with pytest.raises(ConfigError, match="no initialization factor") as err:
        bvsim.load_config(preset="smoke", overrides=[*over, *crossed])
    assert words in str(err.value)


def test_estimator_args_holding_the_swept_parameter_is_refused():
    """model.estimator_args = {alpha = 2} beside model.param = 'alpha' was overwritten
    by each λ's value without a word."""
    over = ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge"]
    over += ["model.param=alpha", "model.estimator_args={alpha = 2.0}"]
    with pytest.raises(ConfigError, match="model.estimator_args sets 'alpha', the parameter"):
        load_config(preset="smoke", overrides=over)
