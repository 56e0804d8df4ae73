"""A CSV data file edited while a sweep runs: every chunk is trained on the bytes its
resume key names. The sweep's own process keeps the bytes it started from; a process
that has not read them (a worker) refuses the changed file, the chunks already written
stay valid, and restoring the file resumes them. The change happens between two
chunks, through the chunk writer, not by racing a real sweep."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.data import csv as csv_source
from bvsim.run import sweep as sweep_module

TINY = [
    "data.source=csv",
    "data.n_train=12",
    "model.hidden=[4]",
    "sweep.n_reps=3",
    "sweep.chunk_size=1",
    "sweep.n_seeds=1",
    "sweep.weight_decay=[0.0, 0.1]",
    "train.steps=20",
    "train.log_every=10",
]


def _write(path: Path, seed: int) -> None:
    gen = np.random.default_rng(seed)
    x = gen.uniform(-1, 1, size=(40, 2))
    y = np.sin(3 * x[:, 0]) + 0.3 * gen.standard_normal(40)
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": y}).to_csv(path, index=False)


def _edit(path: Path, text: bytes) -> None:
    """Rewrite ``path`` with a later mtime (a file system's clock may be coarse)."""
    st = path.stat()
    path.write_bytes(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def _forget_reads() -> None:
    """This process forgets the CSV bytes it read, as a fresh worker process has none."""
    csv_source._READS.clear()
    csv_source._read_file.cache_clear()
    csv_source._split.cache_clear()


def _edit_after_first_chunk(monkeypatch, path: Path, text: bytes, forget: bool) -> None:
    """Once the first chunk file is written, ``path`` holds ``text`` (and, ``forget``,
    this process reads the file again as a worker would)."""
    save = sweep_module.save_atomic
    calls = []

    def save_then_edit(*args, **kwargs):
        save(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            _edit(path, text)
            if forget:
                _forget_reads()

    monkeypatch.setattr(sweep_module, "save_atomic", save_then_edit)


def _csvs(out: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}


@pytest.fixture
def data(tmp_path):
    """(the config, its data file, the file's bytes, another valid file's bytes, the
    CSVs of a run on the unchanged file)."""
    path, other = tmp_path / "d.csv", tmp_path / "other.csv"
    _write(path, 1)
    _write(other, 2)
    cfg = load_config(preset="smoke", overrides=[*TINY, f"data.path={path}"])
    ref = tmp_path / "ref"
    run_sweep(cfg, ref, n_jobs=1, figures=False)
    return cfg, path, path.read_bytes(), other.read_bytes(), _csvs(ref)


def test_a_worker_refuses_a_file_changed_during_the_sweep(tmp_path, monkeypatch, data):
    cfg, path, original, other, ref = data
    out = tmp_path / "run"
    _edit_after_first_chunk(monkeypatch, path, other, forget=True)
    with pytest.raises(csv_source.DataChangedError, match="changed during the sweep") as err:
        run_sweep(cfg, out, n_jobs=1, figures=False)
    assert str(path) in str(err.value) and "chunks trained before the change are kept" in str(
        err.value
    )
    assert len(list((out / "chunks").rglob("*.npz"))) == 1  # none from the changed file
    monkeypatch.undo()
    _edit(path, original)  # restored: the chunk written from it is reused
    run_sweep(cfg, out, n_jobs=1, figures=False)
    assert json.loads((out / "run.json").read_text())["n_chunks_resumed"] == 1
    assert _csvs(out) == ref


def test_the_sweep_process_keeps_the_bytes_it_started_from(tmp_path, monkeypatch, data):
    cfg, path, original, other, ref = data
    out = tmp_path / "run"
    _edit_after_first_chunk(monkeypatch, path, other, forget=False)
    run_sweep(cfg, out, n_jobs=1, figures=False)
    assert _csvs(out) == ref  # every chunk (and the summary) from the original bytes
    meta = json.loads((out / "run.json").read_text())
    assert meta["inputs"]["data.path"] == f"sha256:{hashlib.sha256(original).hexdigest()}"
    monkeypatch.undo()
    _edit(path, original)
    run_sweep(cfg, out, n_jobs=1, figures=False)
    assert json.loads((out / "run.json").read_text())["n_chunks_resumed"] == 3
    assert _csvs(out) == ref


def test_a_worker_holds_the_test_sets_digest(tmp_path, data):
    """train_chunk as a worker runs it: a test set read from other bytes is refused."""
    from bvsim.data.generator import make_test_set
    from bvsim.run.executor import train_chunk

    cfg, path, original, other, _ = data
    test = make_test_set(cfg)
    _edit(path, other)
    _forget_reads()
    with pytest.raises(csv_source.DataChangedError, match="data.path"):
        train_chunk(cfg, test, np.arange(1), "cpu")
    _edit(path, original)
    assert train_chunk(cfg, test, np.arange(1), "cpu")["pred"].shape[:2] == (2, 1)


def test_values_of_a_second_axis_from_different_versions_of_the_data_are_not_stacked():
    """Each value's run reads the CSV when it starts: a file edited between two values'
    runs gives runs right for their own bytes, but their stack is not one study."""
    from types import SimpleNamespace

    from bvsim import ConfigError, load_config
    from bvsim.api import _same_inputs

    cfg = load_config(preset="smoke", overrides=["sweep.axis=n_train", "sweep.axis_values=[8, 16]"])

    def part(value, digest, keyed=True):
        info = {"inputs": {"data.path": digest}} if keyed else {}
        test = SimpleNamespace(data_digest=digest)
        return value, SimpleNamespace(raw=SimpleNamespace(info=info, test=test))

    _same_inputs(cfg, [part(8, "sha256:a"), part(16, "sha256:a")])
    for keyed in (True, False):  # from the resume key, or (no directory) the test set
        with pytest.raises(ConfigError, match=r"data.path changed during the sweep: the runs"):
            _same_inputs(cfg, [part(8, "sha256:a", keyed), part(16, "sha256:b", keyed)])
