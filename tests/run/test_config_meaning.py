"""A run directory's config.toml is judged by what it means, not by its text: the
same configuration written otherwise resumes the run, a changed one is refused, and
`bvsim report` refuses a run whose config.toml no longer made its results."""

from __future__ import annotations

import json
import shutil

import pytest

from bvsim.cli import main

TINY = ["--set", "train.steps=40", "--set", "train.log_every=20", "--set", "sweep.n_reps=4"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("meaning") / "run"
    argv = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--no-figures", "--out", str(out)]
    assert main([*argv, *TINY]) == 0
    return out


@pytest.fixture
def run(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _edit(run, old: str, new: str) -> None:
    path = run / "config.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _rerun(run) -> int:
    return main(
        ["sweep", str(run / "config.toml"), "--n-jobs", "1", "--no-figures", "--out", str(run)]
    )


def test_the_same_configuration_written_otherwise_resumes_every_chunk(run, capsys):
    """README: `bvsim sweep RUN/config.toml --out RUN` resumes; lr = 0.05 written as
    5e-2, a comment and a list spread out are the same configuration."""
    _edit(run, "lr = 0.05\n", "lr = 5e-2  # the same rate\n")
    _edit(run, "weight_decay = [0.0, 0.01, 0.1, 1.0]", "weight_decay = [\n  0, 1e-2, 0.1, 1,\n]")
    key = json.loads((run / "run.json").read_text())["config_key"]
    assert _rerun(run) == 0, capsys.readouterr().err
    meta = json.loads((run / "run.json").read_text())
    assert meta["config_key"] == key
    assert meta["n_chunks_resumed"] == meta["n_chunks"] >= 1
    assert "lr = 0.05\n" in (run / "config.toml").read_text()  # written back as bvsim writes it


def _from_preset(run, *extra: str) -> int:
    argv = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--no-figures", "--out", str(run)]
    return main([*argv, *TINY, *extra])


def test_a_reformatted_config_toml_does_not_refuse_its_own_configuration(run, capsys):
    _edit(run, "lr = 0.05\n", "lr = 5e-2\n")
    assert _from_preset(run) == 0, capsys.readouterr().err
    meta = json.loads((run / "run.json").read_text())
    assert meta["n_chunks_resumed"] == meta["n_chunks"]


def test_a_changed_configuration_is_still_refused(run, capsys):
    _edit(run, "lr = 0.05\n", "lr = 5e-2\n")
    assert _from_preset(run, "--set", "train.lr=0.07") == 2
    assert "holds results of a different configuration" in capsys.readouterr().err


def test_report_refuses_a_run_whose_config_toml_was_changed(run, capsys):
    """After train.lr and train.steps are changed in RUN/config.toml, a report would
    name that file as the way to reproduce CSVs it did not make."""
    assert main(["report", str(run)]) == 0
    before = (run / "report.md").read_text()
    _edit(run, "lr = 0.05\n", "lr = 0.07\n")
    _edit(run, "steps = 40\n", "steps = 80\n")
    capsys.readouterr()
    assert main(["report", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bvsim: error: ") and err.count("\n") == 1
    assert f"{run / 'config.toml'} was changed after this run" in err
    assert (run / "report.md").read_text() == before


def test_report_accepts_the_same_configuration_written_otherwise(run):
    _edit(run, "lr = 0.05\n", "lr = 5e-2\n")
    assert main(["report", str(run)]) == 0


def test_report_of_a_run_without_config_key_goes_on(run):
    """A run.json written before config_key was recorded: nothing to compare with."""
    meta = json.loads((run / "run.json").read_text())
    del meta["config_key"]
    (run / "run.json").write_text(json.dumps(meta))
    _edit(run, "lr = 0.05\n", "lr = 0.07\n")
    assert main(["report", str(run)]) == 0


def test_an_older_runs_config_with_a_key_without_effect_still_reruns(tmp_path):
    """A bvsim before config.moot wrote the preset's keys a --set made moot
    (`--preset smoke --set model.kind=linear` kept smoke's hidden = [16, 16]): its run
    directory's config.toml is bvsim's, not the user's, so that key is put back to its
    default (the run's Reproduce command and a rerun into it work; the chunks retrain
    under the new key), while the same text in a user's own file is refused."""
    from bvsim.config import ConfigError, config_key, dumps_toml, load_config
    from bvsim.io.rundir import stored_keys

    new = load_config(preset="smoke", overrides=["model.kind=linear"])
    old_text = dumps_toml(load_config(preset="smoke")).replace('kind = "mlp"', 'kind = "linear"')
    assert "hidden = [16, 16]" in old_text and 'kind = "linear"' in old_text
    mine = tmp_path / "mine" / "config.toml"
    saved = tmp_path / "run" / "config.toml"
    for path in (mine, saved):
        path.parent.mkdir()
        path.write_text(old_text)
    (saved.parent / "run.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"model.hidden = \[16, 16\] has no effect"):
        load_config(mine)
    assert config_key(load_config(saved)) == config_key(new)  # reset, not refused
    assert config_key(new) in stored_keys(saved)  # so a rerun into the run is accepted


def test_a_key_edited_into_a_runs_config_toml_is_the_users(tmp_path):
    """A run's own config.toml is read as bvsim's (a key without effect put back to its
    default) only while its text is the one run.json records (config_key): a key the
    user edited in is refused where it has no effect, as in any file of theirs."""
    from bvsim import ConfigError, load_config, run_sweep

    cfg = load_config(preset="smoke", overrides=["sweep.n_reps=3", "train.steps=20"])
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    saved = tmp_path / "config.toml"
    assert load_config(saved) == cfg  # as written: bvsim's
    text = saved.read_text().replace('optimizer = "sgd"', 'optimizer = "adam"')
    saved.write_text(text.replace("momentum = 0.9", "momentum = 0.5"))
    with pytest.raises(ConfigError, match="train.momentum = 0.5 has no effect"):
        load_config(saved)
