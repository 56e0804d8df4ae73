"""The disk check before compute: a sweep whose chunk files and outputs would not fit
in the free space of its run directory's file system is refused in one line."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from bvsim import ConfigError, load_config, run_sweep
from bvsim.run import disk
from bvsim.run.disk import check_disk, disk_estimate, free_space
from bvsim.run.preflight import preflight

Usage = namedtuple("Usage", "total used free")
FAST = ["train.steps=60", "train.log_every=20", "sweep.n_reps=6", "sweep.chunk_size=2"]


def _free(monkeypatch, free: float, seen: list | None = None):
    def usage(path):
        if seen is not None:
            seen.append(path)
        return Usage(10 * free, 9 * free, int(free))

    monkeypatch.setattr(disk.shutil, "disk_usage", usage)


def test_the_reviewers_sweep_is_refused_with_both_sizes_and_what_drives_them(tmp_path, monkeypatch):
    """Predictions at every one of 2,001 logged steps of 40,000 members on 2,000 test
    points: 1.28 TB of float64 chunk files, against 62 GB free."""
    over = ["train.decompose_steps=true", "train.log_every=1", "train.steps=2000",
            "data.n_test=2000", "sweep.n_reps=5000"]  # fmt: skip
    cfg = load_config(preset="smoke", overrides=over)
    est = disk_estimate(cfg)
    assert est["steps"] == 8 * 40_000 * 2001 * 2000
    assert 1.28e12 < est["total"] < 1.29e12
    _free(monkeypatch, 62e9)
    with pytest.raises(ConfigError) as err:
        check_disk(cfg, tmp_path / "run")
    msg = str(err.value)
    assert msg.startswith(f"out = {tmp_path / 'run'}: this sweep writes about 1,285 GB")
    assert f"but {tmp_path} has 62 GB free" in msg
    assert "40000 members x 2000 test points x 2001 logged steps" in msg
    assert "train.decompose_steps" in msg and "sweep.n_reps" in msg
    _free(monkeypatch, 2e12)
    check_disk(cfg, tmp_path / "run")  # it fits on a larger disk


def test_run_sweep_refuses_before_anything_is_created(tmp_path, monkeypatch):
    cfg = load_config(preset="smoke", overrides=[*FAST, "train.decompose_steps=true"])
    _free(monkeypatch, 1e6)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="this sweep writes about .* GB there"):
        run_sweep(cfg, out, progress=False, figures=False)
    assert not out.exists()
    axis = load_config(preset="smoke", overrides=[*FAST, "sweep.axis=n_train",
                                                   "sweep.axis_values=[10, 20]"])  # fmt: skip
    with pytest.raises(ConfigError, match="x 2 values of n_train"):
        run_sweep(axis, out, progress=False, figures=False)
    assert not out.exists()


def test_a_resumed_run_counts_only_the_missing_chunks(tmp_path, monkeypatch):
    cfg = load_config(preset="smoke", overrides=[*FAST, "train.decompose_steps=true"])
    fresh = disk_estimate(cfg)
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    files = sorted(tmp_path.glob("chunks/*/sets_*.npz"))
    assert len(files) == 3
    assert sum(f.stat().st_size for f in files) <= fresh["chunks"]  # never too small
    assert (tmp_path / "predictions.npz").stat().st_size <= fresh["predictions"]
    done = disk_estimate(cfg, run_dir=tmp_path)
    assert (done["chunks"], done["chunks_kept"]) == (0, 3)
    files[1].unlink()
    one = disk_estimate(cfg, run_dir=tmp_path)
    assert one["chunks_kept"] == 2 and 0 < one["chunks"] < fresh["chunks"] / 2
    # what is left to write fits (the old predictions.npz is replaced: its space counts)
    old = (tmp_path / "predictions.npz").stat().st_size
    _free(monkeypatch, one["total"] * 1.05 + 16 * 2**20 + 1 - old)
    check_disk(cfg, tmp_path)
    with pytest.raises(ConfigError, match="2 chunk file\\(s\\) already there not counted"):
        _free(monkeypatch, one["total"] * 0.9)
        check_disk(cfg, tmp_path)
    # the whole run would not fit there
    _free(monkeypatch, one["total"] * 1.05 + 16 * 2**20 + 1 - old)
    with pytest.raises(ConfigError, match="this sweep writes"):
        check_disk(cfg, tmp_path / "elsewhere")


def test_no_run_directory_no_disk_check(monkeypatch):
    cfg = load_config(preset="smoke", overrides=FAST)

    def unused(path):
        raise AssertionError("a run without a run directory writes nothing")

    monkeypatch.setattr(disk.shutil, "disk_usage", unused)
    preflight(cfg)


def test_the_free_space_is_that_of_the_nearest_existing_directory(tmp_path, monkeypatch):
    seen = []
    _free(monkeypatch, 5e9, seen)
    assert free_space(tmp_path / "a" / "b" / "c") == (tmp_path, 5_000_000_000)
    assert seen == [tmp_path]
    monkeypatch.setattr(disk.shutil, "disk_usage", shutil.disk_usage)
    assert free_space(tmp_path)[1] > 0
