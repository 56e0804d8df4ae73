"""Configuration: presets load, bad input fails before compute with a clear message."""

from __future__ import annotations

import tomllib

import pytest

from bvsim import load_config
from bvsim.cli import main
from bvsim.config import ConfigError, describe_keys, dumps_toml, from_dict, list_presets


def test_presets_ship_and_load():
    names = list_presets()
    assert {"seed-demo", "sine", "linear", "smoke"} <= set(names)
    for name in names:
        cfg = load_config(preset=name)
        assert cfg.name == name


def test_seed_demo_is_the_course_demo():
    cfg = load_config(preset="seed-demo")
    assert cfg.model.hidden == [200, 200, 200] and cfg.model.activation == "relu"
    assert cfg.data.n_train == 10 and cfg.data.x_dist == "grid"
    assert cfg.data.train_design == "fixed"
    assert (cfg.data.noise_std, cfg.data.test_noise_std) == (0.5, 0.3)
    assert cfg.data.coef_norm2 == pytest.approx(1.5**2)
    t = cfg.train
    assert (t.optimizer, t.lr, t.momentum, t.steps, t.batch_size) == ("sgd", 0.01, 0.9, 2000, 0)
    wd = cfg.sweep.weight_decay
    assert wd[0] == 0 and max(wd) >= 1 and len(wd) >= 8
    assert cfg.sweep.n_reps >= 50


def test_round_trip_through_toml():
    cfg = load_config(preset="seed-demo", overrides=["train.optimizer=adam", "seed=5"])
    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


def test_set_overrides_parse_values():
    cfg = load_config(
        preset="smoke",
        overrides=["sweep.weight_decay=[0, 0.5]", "model.activation=tanh", "train.lr=1e-3"],
    )
    assert cfg.sweep.weight_decay == [0.0, 0.5]
    assert cfg.model.activation == "tanh"
    assert cfg.train.lr == 1e-3


def test_file_overrides_preset(tmp_path):
    path = tmp_path / "my.toml"
    path.write_text("[sweep]\nn_reps = 3\n")
    cfg = load_config(path, preset="smoke")
    assert cfg.sweep.n_reps == 3 and cfg.name == "smoke"


BAD_SETS = {
    "sweep.n_rep=3": "did you mean 'n_reps'",
    "sweep.n_reps=1": "must be >= 2",
    "sweep.n_seeds=0": "must be >= 1",
    "sweep.weight_decay=[]": "non-empty",
    "sweep.weight_decay=[0.1, 0.1]": "must not repeat",
    "sweep.weight_decay=[-1.0]": ">= 0",
    "sweep.weight_decay=[nan]": "not nan",
    "sweep.weight_decay=[inf]": "finite",
    "sweep.n_reps=2.5": "expected an integer",
    "train.lr=0": "must be > 0",
    "train.lr=fast": "expected a number",
    "train.momentum=1.0": "[0, 1)",
    "train.steps=0": "must be >= 1",
    "train.optimizer=lbfgs": "must be one of 'sgd', 'adam'",
    "model.kind=cnn": "must be one of",
    "model.activation=gelu": "must be one of",
    "model.hidden=[32, 0]": "positive integer",
    "data.noise_std=-0.1": "must be >= 0",
    "data.n_train=0": "must be >= 1",
    "data.n_test=0": "must be >= 1",
    "train.batch_size=500": "exceeds data.n_train",
    "trian.lr=0.1": "did you mean 'train'",
    "nope=1": "unknown key",
    "model.bias=yes": "true or false",
}


@pytest.mark.parametrize("assignment", list(BAD_SETS))
def test_bad_values_fail_with_a_message_naming_the_key(assignment):
    with pytest.raises(ConfigError, match=r".*") as info:
        load_config(preset="smoke", overrides=[assignment])
    message = str(info.value)
    assert BAD_SETS[assignment] in message
    key = assignment.split("=")[0].split(".")[-1]
    assert key in message


def test_set_without_equals():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(preset="smoke", overrides=["train.lr"])


def test_unknown_section_in_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[trian]\nlr = 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.toml.*'trian'.*did you mean 'train'"):
        load_config(path)


def test_malformed_and_missing_files(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[train\nlr = ")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml")


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'seed-demo'"):
        load_config(preset="seed_demo")


def test_every_key_documented():
    for key, kind, _, doc in describe_keys():
        assert doc, key
        assert kind in {
            "int",
            "float",
            "str",
            "bool",
            "float_list",
            "int_list",
            "str_list",
            "table",
        }


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["sweep", "--preset", "smoke", "--set", "train.lr=-1"], "train.lr"),
        (["sweep", "--preset", "nope"], "unknown preset"),
        (["sweep", "missing.toml"], "file not found"),
        (["sweep", "--preset", "smoke", "--device", "tpu"], "--device"),
        (["plot", "/nonexistent/run"], "/nonexistent/run does not exist: give a run directory"),
    ],
)
def test_cli_errors_exit_2_with_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.startswith("bvsim: error:") and err.count("\n") == 1
    assert not (tmp_path / "results").exists()  # nothing computed or written


def test_cli_unwritable_out(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    assert main(["sweep", "--preset", "smoke", "--out", str(target / "sub")]) == 2
    assert "not a writable directory" in capsys.readouterr().err


def test_cli_presets(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list_presets()
    # every column starts where it does on the other lines (double-descent-crossed too)
    starts = {len(line) - len(line.split(maxsplit=1)[1]) for line in lines}
    assert len(starts) == 1


def test_readme_config_reference_is_complete():
    """README's reference table lists every key with its current default."""
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for key, kind, default, doc in describe_keys():
        assert f"| `{key}` | {kind} | `{default}` | {doc} |" in readme, key


def test_cli_cuda_without_gpu(capsys, tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--preset", "smoke", "--device", "cuda"]) == 2
    assert "no CUDA device is available" in capsys.readouterr().err


def test_cli_plot_and_report_redraw_without_training(tmp_path, capsys):
    over = ["--set", "train.steps=40", "--set", "train.log_every=20", "--set", "sweep.n_reps=4"]
    out = tmp_path / "run"
    assert main(["sweep", "--preset", "smoke", "--n-jobs", "1", "--out", str(out), *over]) == 0
    (out / "report.md").unlink()
    for png in (out / "figures").glob("*.png"):
        png.unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "figures" / "decomposition.png").stat().st_size > 0
    assert main(["report", str(out)]) == 0
    assert "best" in (out / "report.md").read_text().lower()


@pytest.mark.parametrize(
    "preset, named, not_named",
    [
        ("wine", "data.task = 'classification' (data.source = 'csv')", "data.truth"),
        ("gaussians", "data.truth = 'gaussians'", "data.task"),
    ],
)
def test_classification_with_another_model_names_the_key_that_makes_the_task(
    preset, named, not_named
):
    """A CSV's task comes from data.task (data.truth is unused there): the message
    names it, with the model.kind that classification cannot train."""
    over = ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge"]
    with pytest.raises(ConfigError, match="is a classification task") as err:
        load_config(preset=preset, overrides=over)
    msg = str(err.value)
    assert f": {named} is a classification task" in msg and "model.kind = 'sklearn'" in msg
    assert not_named not in msg


def test_numpy_values_and_tuples_from_the_python_api_are_read_as_pythons():
    """np.int64(6) was 'not an integer', and a configuration holding np.float64(0.3)
    (repr 'np.float64(0.3)') could not be written to config.toml; an array or a tuple
    stands for a list."""
    import dataclasses

    import numpy as np

    from bvsim.run.preflight import checked_user_code

    raw = {
        "sweep": {"n_reps": np.int64(6), "weight_decay": np.array([0.0, 0.1])},
        "model": {"hidden": (8, np.int32(8))},
        "data": {"noise_std": np.float32(0.25)},
    }
    cfg = from_dict(raw)
    assert (cfg.sweep.n_reps, cfg.sweep.weight_decay) == (6, [0.0, 0.1])
    assert (cfg.model.hidden, cfg.data.noise_std) == ([8, 8], 0.25)
    assert type(cfg.sweep.n_reps) is int and type(cfg.model.hidden[1]) is int
    smoke = load_config(preset="smoke")
    sweep = dataclasses.replace(smoke.sweep, n_reps=np.int64(4), weight_decay=np.array([0.0, 1.0]))
    data = dataclasses.replace(smoke.data, noise_std=np.float64(0.3))
    cfg = checked_user_code(dataclasses.replace(smoke, sweep=sweep, data=data))
    assert (cfg.sweep.n_reps, cfg.sweep.weight_decay, cfg.data.noise_std) == (4, [0.0, 1.0], 0.3)
    assert from_dict(tomllib.loads(dumps_toml(cfg))) == cfg


def test_a_checked_configuration_pickles_and_deep_copies():
    """The diff review: the checked mark (the digests of the files checked) was a
    mappingproxy, so a Config from load_config could not go through pickle or
    copy.deepcopy (multiprocessing, a user's own executor)."""
    import copy
    import pickle

    from bvsim.config.schema import user_code_checked

    cfg = load_config(preset="smoke")
    for other in (pickle.loads(pickle.dumps(cfg)), copy.deepcopy(cfg)):
        assert other == cfg and user_code_checked(other) == user_code_checked(cfg)
