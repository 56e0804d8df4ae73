"""A second sweep axis crossed with lambda: sub-runs, combined tables, figures, report."""

from __future__ import annotations

import pandas as pd
import pytest

from bvsim import ConfigError, load_config, run_sweep
from bvsim.config import axis_configs

FAST = ["train.steps=60", "train.log_every=20", "sweep.n_reps=4", "sweep.weight_decay=[0, 0.1]"]


@pytest.mark.parametrize(
    "axis, values, key",
    [
        ("n_train", "[8, 16]", lambda c: c.data.n_train),
        ("hidden_width", "[4, 8]", lambda c: c.model.hidden),
        ("noise_std", "[0.1, 0.5]", lambda c: c.data.noise_std),
        ("dropout", "[0.0, 0.2]", lambda c: c.model.dropout),
    ],
)
def test_axis_configs_set_the_key(axis, values, key):
    cfg = load_config(
        preset="smoke", overrides=[f"sweep.axis={axis}", f"sweep.axis_values={values}"]
    )
    subs = axis_configs(cfg)
    assert len(subs) == 2
    assert [key(sub) for _, sub in subs] != [key(cfg)] * 2 or axis == "dropout"
    assert all(sub.sweep.axis == "none" for _, sub in subs)
    if axis == "hidden_width":
        assert subs[1][1].model.hidden == [8, 8]


@pytest.mark.parametrize(
    "over, needle",
    [
        (["sweep.axis=n_train"], "non-empty"),
        (["sweep.axis=n_train", "sweep.axis_values=[2.5]"], "positive integers"),
        (["sweep.axis=dropout", "sweep.axis_values=[1.0]"], "[0, 1)"),
        (["sweep.axis_values=[1, 2]"], "set sweep.axis"),
        (["sweep.axis=width"], "must be one of"),
    ],
)
def test_bad_axis(over, needle):
    with pytest.raises(ConfigError, match=r".*") as info:
        load_config(preset="smoke", overrides=over)
    assert needle in str(info.value)


def test_axis_sweep_writes_combined_tables_and_sub_runs(tmp_path):
    over = [*FAST, "sweep.axis=n_train", "sweep.axis_values=[10, 20]"]
    cfg = load_config(preset="smoke", overrides=over)
    result = run_sweep(cfg, tmp_path, progress=False)
    s = pd.read_csv(tmp_path / "summary.csv")
    assert list(s.columns[:2]) == ["n_train", "weight_decay"]
    assert sorted(s["n_train"].unique()) == [10, 20]
    assert len(s) == 4 and result.summary.shape == s.shape
    for name in ("pointwise", "curves", "members"):
        assert "n_train" in pd.read_csv(tmp_path / f"{name}.csv").columns
    for sub in ("n_train=10", "n_train=20"):
        assert (tmp_path / "axis" / sub / "summary.csv").exists()
        assert (tmp_path / "axis" / sub / "figures" / "decomposition.png").exists()
        # the figures of all values are drawn together, then each value's report and
        # its run.json, still the last file of the sub-run
        sub_dir = tmp_path / "axis" / sub
        written = [*(sub_dir / "figures").iterdir(), sub_dir / "report.md"]
        last = max(p.stat().st_mtime_ns for p in written)
        assert (sub_dir / "run.json").stat().st_mtime_ns >= last
    for fig in ("axis_decomposition", "axis_heatmap", "axis_best", "axis_curves"):
        assert (tmp_path / "figures" / f"{fig}.png").stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "n_train × λ" in report and "axis/n_train=20/report.md" in report
    assert "do not train on the same training sets" in report  # n_train draws other sets
    # each value equals the plain sweep of that value
    plain = run_sweep(
        load_config(preset="smoke", overrides=[*FAST, "data.n_train=20"]), progress=False
    ).summary
    got = s[s["n_train"] == 20].drop(columns="n_train").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, plain, check_dtype=False)
    # rerun resumes every sub-run
    again = run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert all(r.info["n_chunks_resumed"] == r.info["n_chunks"] for r in again.raw)
    # `bvsim plot` and `bvsim report` on the run redraw its axis figures and report: the
    # same report but for its training line, which now says the chunks were resumed
    from bvsim.cli import main

    assert main(["report", str(tmp_path)]) == 0
    redrawn = (tmp_path / "report.md").read_text()
    assert "every chunk was resumed from an earlier run's chunk files" in redrawn
    changed = [a for a, b in zip(report.splitlines(), redrawn.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and "training took" in changed[0]
    assert main(["plot", str(tmp_path)]) == 0
    assert not (tmp_path / "figures" / "decomposition.png").exists()


@pytest.mark.parametrize(
    "over, needle",
    [
        (["sweep.axis=penalty"], "sweep.axis_labels = []: sweep.axis = 'penalty' needs"),
        (["sweep.axis=penalty", "sweep.axis_labels=['l3']"], "'l3' is not a penalty"),
        (["sweep.axis=optimizer", "sweep.axis_labels=['sgd', 'sgd']"], "must not repeat"),
        (["sweep.axis=penalty", "sweep.axis_values=[1]"], "takes names in sweep.axis_labels"),
        (["sweep.axis=n_train", "sweep.axis_values=[5]", "sweep.axis_labels=['l1']"],
         "labels are for a categorical sweep.axis"),
        (["sweep.axis_labels=['adam']"], "labels are for a categorical sweep.axis"),
    ],
)  # fmt: skip
def test_bad_categorical_axis(over, needle):
    with pytest.raises(ConfigError) as info:
        load_config(preset="smoke", overrides=over)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_categorical_axis_configs():
    over = ["sweep.axis=optimizer", "sweep.axis_labels=['sgd', 'adam']"]
    subs = axis_configs(load_config(preset="smoke", overrides=over))
    assert [v for v, _ in subs] == ["sgd", "adam"]
    assert [sub.train.optimizer for _, sub in subs] == ["sgd", "adam"]
    assert all(sub.sweep.axis == "none" and not sub.sweep.axis_labels for _, sub in subs)


def test_penalty_axis_at_l2_equals_a_plain_run(tmp_path):
    over = [*FAST, "sweep.axis=penalty", "sweep.axis_labels=['l2', 'l1']"]
    run_sweep(load_config(preset="smoke", overrides=over), tmp_path / "axis_run", progress=False)
    run_sweep(load_config(preset="smoke", overrides=FAST), tmp_path / "plain", progress=False,
              figures=False)  # fmt: skip
    sub = tmp_path / "axis_run" / "axis" / "penalty=l2"
    for name in ("summary", "pointwise", "members"):
        assert (sub / f"{name}.csv").read_bytes() == (
            tmp_path / "plain" / f"{name}.csv"
        ).read_bytes()
    s = pd.read_csv(tmp_path / "axis_run" / "summary.csv")
    assert list(s.columns[:2]) == ["penalty", "weight_decay"]
    assert set(s["penalty"]) == {"l2", "l1"}
    for fig in ("axis_decomposition", "axis_heatmap", "axis_best"):
        assert (tmp_path / "axis_run" / "figures" / f"{fig}.png").stat().st_size > 0
    assert not (tmp_path / "axis_run" / "figures" / "axis_curves.png").exists()  # names
    report = (tmp_path / "axis_run" / "report.md").read_text()
    assert "| l1 |" in report and "axis/penalty=l1/report.md" in report
    from bvsim.cli import main

    assert main(["plot", str(tmp_path / "axis_run")]) == 0


def test_an_axis_run_reproduces_as_a_run_does(tmp_path, monkeypatch):
    """The second-axis report's "Reproduce" is a run's (present.common.reproduce_lines):
    the saved config.toml, the device, and the preset by name where run.json records
    one, which run_sweep now does for the combined run too. No shipped axis preset runs
    in test time (double-descent takes ~10 s), so _unchanged_preset answers for smoke."""
    import json

    import bvsim.api

    over = [*FAST, "sweep.axis=n_train", "sweep.axis_values=[8, 16]"]
    cfg = load_config(preset="smoke", overrides=over)
    monkeypatch.setattr(bvsim.api, "_unchanged_preset", lambda c: "smoke" if c is cfg else None)
    run_sweep(cfg, tmp_path / "run", progress=False, figures=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["preset"] == "smoke"
    sub = json.loads((tmp_path / "run" / "axis" / "n_train=8" / "run.json").read_text())
    assert "preset" not in sub  # a value's run is not the preset
    from bvsim.cli import main

    assert main(["report", str(tmp_path / "run")]) == 0
    report = (tmp_path / "run" / "report.md").read_text()
    reproduce = report[report.index("## Reproduce") :]
    assert "bvsim sweep --preset smoke" in reproduce and "make sweep PRESET=smoke" in reproduce
    assert f"bvsim sweep {tmp_path / 'run'}/config.toml --out {tmp_path / 'run'}" in reproduce
    assert "This run trained on `cpu`" in reproduce
