"""Sweep orchestration: same numbers whatever the split, resume, run-dir safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bvsim import BvsimWarning, ConfigError, load_config, run_sweep
from bvsim.run.chunks import auto_chunk_size, member_grid
from bvsim.run.sweep import train_sweep

FAST = ["train.steps=60", "train.log_every=20", "sweep.n_reps=6"]


def _summary(cfg, **kw):
    return run_sweep(cfg, progress=False, figures=False, **kw).summary


def test_member_grid_layout():
    w, a, s = member_grid(2, 3, 2)
    assert len(w) == 12
    flat = np.arange(12).reshape(2, 3, 2)
    assert (flat[w, a, s] == np.arange(12)).all()


def test_same_numbers_for_any_n_jobs():
    cfg = load_config(preset="smoke", overrides=[*FAST, "sweep.chunk_size=2"])
    one = _summary(cfg, n_jobs=1)
    two = _summary(cfg, n_jobs=2)
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_same_numbers_for_any_chunk_size():
    base = load_config(preset="smoke", overrides=[*FAST, "train.dtype=float64"])
    ref = train_sweep(base, progress=False)
    for size in (1, 4):
        cfg = load_config(
            preset="smoke", overrides=[*FAST, "train.dtype=float64", f"sweep.chunk_size={size}"]
        )
        other = train_sweep(cfg, progress=False)
        np.testing.assert_allclose(other.pred, ref.pred, rtol=0, atol=1e-12)


def test_seed_changes_numbers_and_sets_are_common_across_lambda():
    cfg = load_config(preset="smoke", overrides=FAST)
    a = train_sweep(cfg, progress=False)
    b = train_sweep(load_config(preset="smoke", overrides=[*FAST, "seed=1"]), progress=False)
    assert not np.allclose(a.pred, b.pred)
    # more training sets: the first ones are unchanged (keyed by k, not by chunk)
    more = train_sweep(
        load_config(preset="smoke", overrides=[*FAST, "sweep.n_reps=9"]), progress=False
    )
    np.testing.assert_array_equal(more.pred[:, :6], a.pred)


def test_auto_chunk_size_independent_of_jobs():
    cfg = load_config(preset="seed-demo")
    assert 1 <= auto_chunk_size(cfg) <= cfg.sweep.n_reps
    small = load_config(preset="smoke")
    assert auto_chunk_size(small) == small.sweep.n_reps  # a small model: one chunk


def test_chunks_of_a_linear_model_are_bounded_by_its_inputs():
    """2,000 features x 4,000 points: 32 MiB of inputs a member. Sized by parameters
    alone a chunk held 71 sets (7 lambdas each: 16 GiB of inputs); the inputs count
    like a layer's activations (at most 2**24 values), so one set a chunk."""
    over = ["data.dim=2000", "data.n_train=4000", "sweep.n_reps=200"]
    assert auto_chunk_size(load_config(preset="linear", overrides=over)) == 1
    assert auto_chunk_size(load_config(preset="linear")) == 200  # the preset: unchanged


def test_run_json_notes_an_unchanged_preset(tmp_path):
    """run.json names the shipped preset a run is, unchanged (the report's Reproduce
    command); a changed one has no ``preset``."""
    import json

    run_sweep(load_config(preset="smoke"), tmp_path / "a", figures=False)
    assert json.loads((tmp_path / "a" / "run.json").read_text())["preset"] == "smoke"
    run_sweep(load_config(preset="smoke", overrides=["sweep.n_reps=4"]), tmp_path / "b",
              figures=False)  # fmt: skip
    assert "preset" not in json.loads((tmp_path / "b" / "run.json").read_text())


def test_resume_loads_finished_chunks(tmp_path):
    cfg = load_config(preset="smoke", overrides=[*FAST, "sweep.chunk_size=2"])
    first = run_sweep(cfg, tmp_path, progress=False, figures=False)
    chunk_files = sorted((tmp_path / "chunks").rglob("*.npz"))
    assert len(chunk_files) == 3
    chunk_files[1].unlink()
    chunk_files[2].write_bytes(b"torn write")  # a corrupt chunk is recomputed
    with pytest.warns(BvsimWarning, match="1 chunk file.* ignored and recomputed: 1 unreadable"):
        again = run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert again.raw.info["n_chunks_resumed"] == 1
    pd.testing.assert_frame_equal(first.summary, again.summary, check_exact=True)


def test_different_config_refused_without_overwrite(tmp_path):
    cfg = load_config(preset="smoke", overrides=FAST)
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    other = load_config(preset="smoke", overrides=[*FAST, "train.lr=0.01"])
    with pytest.raises(ConfigError, match="different configuration"):
        run_sweep(other, tmp_path, progress=False, figures=False)
    run_sweep(other, tmp_path, progress=False, figures=False, overwrite=True)
    assert "lr = 0.01" in (tmp_path / "config.toml").read_text()


def _csv_bytes(run_dir: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(run_dir.glob("*.csv"))}


def test_same_command_gives_identical_bytes(tmp_path):
    cfg = load_config(preset="smoke", overrides=FAST)
    run_sweep(cfg, tmp_path / "a", progress=False, figures=False)
    run_sweep(cfg, tmp_path / "b", n_jobs=2, progress=False, figures=False)
    a, b = _csv_bytes(tmp_path / "a"), _csv_bytes(tmp_path / "b")
    assert set(a) == {"summary.csv", "pointwise.csv", "curves.csv", "members.csv",
                      "weight_hist.csv"}  # fmt: skip
    assert a == b
    assert (tmp_path / "a" / "config.toml").read_text() == (
        tmp_path / "b" / "config.toml"
    ).read_text()


def test_sigkill_then_resume_gives_identical_bytes(tmp_path):
    over = ["--set", "train.steps=400", "--set", "sweep.n_reps=12", "--set", "sweep.chunk_size=1"]
    cmd = [sys.executable, "-m", "bvsim", "sweep", "--preset", "smoke", "--n-jobs", "1",
           "--no-figures", *over]  # fmt: skip
    ref = tmp_path / "ref"
    subprocess.run([*cmd, "--out", str(ref)], check=True, capture_output=True)
    run = tmp_path / "run"
    proc = subprocess.Popen([*cmd, "--out", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        if len(list((run / "chunks").rglob("sets_*.npz"))) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list((run / "chunks").rglob("sets_*.npz")))
    assert 3 <= n_done < 12, "the kill should land part-way"
    assert not (run / "summary.csv").exists()
    subprocess.run([*cmd, "--out", str(run)], check=True, capture_output=True)
    assert _csv_bytes(run) == _csv_bytes(ref)


def test_interrupted_axis_run_names_where_its_chunks_are(tmp_path, capsys, monkeypatch):
    """A second-axis run keeps its chunks in each value's sub-run, not in <out>/chunks:
    the interrupt message names that place, and the chunks are there."""
    from bvsim import api
    from bvsim.cli import main

    calls = []

    def second_value_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train_sweep(*args, **kwargs)

    monkeypatch.setattr(api, "train_sweep", second_value_interrupted)
    out = tmp_path / "run"
    over = [*FAST, "sweep.axis=n_train", "sweep.axis_values=[10, 20]"]
    argv = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--no-figures", "--out", str(out)]
    assert main([*argv, *(a for o in over for a in ("--set", o))]) == 130
    err = capsys.readouterr().err
    kept = f"{out}/axis/n_train=*/chunks"
    assert f"finished chunks are kept in {kept}." in err and f"{out}/chunks." not in err
    assert list(out.glob("axis/n_train=*/chunks/*/sets_*.npz"))
    assert not (out / "chunks").exists()


def test_run_dir_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    cfg = load_config(preset="smoke", overrides=FAST)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".lock").write_text(f"{holder.pid}\n")
        with pytest.raises(ConfigError, match=f"in use by another sweep \\(pid {holder.pid}\\)"):
            run_sweep(cfg, tmp_path, progress=False, figures=False)
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now: its lock is stale and is taken over
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert not (tmp_path / ".lock").exists()
    assert (tmp_path / "summary.csv").exists()


def test_divergence_is_counted_excluded_and_reported(tmp_path):
    """lr 0.6 with momentum and lambda = 3: some members blow up (lr * lambda too big),
    the others must still give finite estimates."""
    over = ["train.lr=0.6", "train.steps=100", "train.log_every=10", "sweep.n_reps=6",
            "sweep.weight_decay=[0.0, 3.0]"]  # fmt: skip
    cfg = load_config(preset="smoke", overrides=over)
    result = run_sweep(cfg, tmp_path, progress=False)
    s = result.summary.set_index("weight_decay")
    assert s.loc[3.0, "n_diverged"] > 0
    assert s.loc[3.0, "status"] == "some_diverged"
    assert s.loc[0.0, "n_diverged"] == 0
    members = pd.read_csv(tmp_path / "members.csv")
    assert members["diverged"].sum() == s["n_diverged"].sum()
    assert members.loc[members.diverged, "test_error"].isna().all()
    for wd, row in s.iterrows():
        if row["n_reps_used"] >= 2:
            assert np.isfinite(row[["bias2", "variance", "expected_error"]].astype(float)).all()
            assert row["status"] in ("ok", "some_diverged")
        else:
            assert row["status"] in ("all_diverged", "too_few_converged")
            assert np.isnan(row["bias2"]), wd
    assert "diverged" in (tmp_path / "report.md").read_text()
    # paired comparisons over the sets usable at both λ: the diverged ones drop out
    assert s["prob_best"].sum() == pytest.approx(1.0)
    paired = s[s["n_reps_used"] >= 3]  # per-set values need 3 sets (leave-one-out)
    assert len(paired) >= 1
    assert np.isfinite(paired[["diff_from_best", "diff_from_best_se"]].to_numpy()).all()
    assert s["is_best"].sum() == 1
    # the one-SE rule needs a paired SE of some λ other than the best: none here
    others = s[(~s["is_best"]) & np.isfinite(s["diff_from_best_se"])]
    assert s["is_one_se"].sum() == (1 if len(others) else 0)


def test_all_diverged_lambda_gives_nan_with_reason():
    over = ["train.lr=5.0", "train.steps=50", "train.log_every=10", "sweep.n_reps=4",
            "sweep.weight_decay=[0.0]"]  # fmt: skip
    s = _summary(load_config(preset="smoke", overrides=over))
    assert s.loc[0, "n_diverged"] == 4 * 2
    assert s.loc[0, "status"] == "all_diverged"
    assert np.isnan(s.loc[0, "bias2"]) and np.isnan(s.loc[0, "variance"])


def test_sigint_stops_cleanly_and_resumes(tmp_path):
    over = ["--set", "train.steps=400", "--set", "sweep.n_reps=12", "--set", "sweep.chunk_size=1"]
    cmd = [sys.executable, "-m", "bvsim", "sweep", "--preset", "smoke", "--n-jobs", "1",
           "--no-figures", "--out", str(tmp_path), *over]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "chunks").rglob("sets_*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Run the same command again to resume" in err
    assert "Traceback" not in err
    assert not (tmp_path / ".lock").exists()
    kept = len(list((tmp_path / "chunks").rglob("sets_*.npz")))
    assert 2 <= kept < 12
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "wrote" in done.stdout


def test_several_devices_share_the_work_and_give_the_same_numbers(tmp_path):
    cfg = load_config(preset="smoke", overrides=[*FAST, "sweep.chunk_size=1"])
    ref = run_sweep(cfg, progress=False, figures=False)
    both = run_sweep(cfg, tmp_path, progress=False, figures=False, devices=["cpu", "cpu"])
    pd.testing.assert_frame_equal(ref.summary, both.summary, check_exact=True)
    assert both.raw.info["chunks_per_device"] == {"cpu": 6}
    assert both.raw.info["device"] == "cpu,cpu"
    # resume works with the same units
    again = run_sweep(cfg, tmp_path, progress=False, figures=False, devices=["cpu", "cpu"])
    assert again.raw.info["n_chunks_resumed"] == 6


def test_a_gpu_thread_batches_units_of_the_set_chunk_size(monkeypatch):
    """Under several devices ``sweep.chunk_size`` sizes the units; a GPU thread still
    trains a GPU-sized batch of them at once (here all six), and each unit's numbers
    are those of the unit trained alone."""
    from bvsim.data.generator import make_test_set
    from bvsim.run import executor
    from bvsim.run.chunks import chunk_list, fields_in, gpu_batch_units

    cfg = load_config(preset="smoke", overrides=[*FAST, "sweep.chunk_size=1"])
    test = make_test_set(cfg)
    chunks = chunk_list(cfg, "cpu")
    assert len(chunks) == 6 and gpu_batch_units(cfg, 1) >= 6
    train, batches, got = executor.train_chunk, [], {}

    def on_the_cpu(cfg, test, ks, device):  # the "GPU" trains on the CPU here
        batches.append((device, list(ks)))
        return train(cfg, test, ks, "cpu")

    monkeypatch.setattr(executor, "train_chunk", on_the_cpu)
    executor.run_on_devices(cfg, test, chunks, list(range(6)), ["cuda:0"], got.__setitem__)
    assert batches == [("cuda:0", list(range(6)))]
    for i, ks in enumerate(chunks):
        alone = train(cfg, test, ks, "cpu")
        assert list(got[i]["ks"]) == list(ks)
        for name in fields_in(alone):
            np.testing.assert_array_equal(got[i][name], alone[name])


def test_split_chunk_round_trip():
    from bvsim.data.generator import make_test_set
    from bvsim.run.executor import split_chunk, train_chunk

    cfg = load_config(preset="smoke", overrides=FAST)
    test = make_test_set(cfg)
    merged = train_chunk(cfg, test, np.arange(0, 4), "cpu")
    parts = split_chunk(merged, [1, 3])
    assert [list(p["ks"]) for p in parts] == [[0], [1, 2, 3]]
    assert "params0" in parts[0] and "params0" not in parts[1]
    np.testing.assert_array_equal(
        np.concatenate([p["pred"] for p in parts], axis=1), merged["pred"]
    )


def test_dropout_and_penalties_independent_of_chunking():
    for extra in (["model.dropout=0.3"], ["train.penalty=l1"], ["train.penalty=decoupled"]):
        over = [*FAST, "train.dtype=float64", *extra]
        ref = train_sweep(load_config(preset="smoke", overrides=over), progress=False)
        one = train_sweep(
            load_config(preset="smoke", overrides=[*over, "sweep.chunk_size=1"]), progress=False
        )
        np.testing.assert_allclose(one.pred, ref.pred, rtol=0, atol=1e-12)
        assert np.isfinite(ref.pred).all()


def test_a_sweep_in_the_callers_process_leaves_its_torch_settings_as_they_were():
    """The hostile review: run_sweep with one job set the caller's torch to one thread
    and flushed its denormals for the rest of the session."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # not the 1 a sweep sets
    torch.set_flush_denormal(False)
    torch.set_default_dtype(torch.float64)  # the denormal probe must not depend on it
    try:
        cfg = load_config(preset="smoke", overrides=["sweep.n_reps=2", "train.steps=5"])
        run_sweep(cfg, progress=False, figures=False)
        assert torch.get_num_threads() == 3
        tiny = torch.tensor([1e-40], dtype=torch.float32)
        assert tiny.mul(1.0).item() != 0.0  # denormals kept
    finally:
        torch.set_default_dtype(torch.float32)
        torch.set_num_threads(threads)
        torch.set_flush_denormal(True)
