"""A result whose large arrays stay in the chunk files (``RunResult.raw``: pred, curves,
test labels) reads them back lazily, so a later run into the same directory could put
other numbers under it: a CSV or plugin edited between two runs keeps the chunk key
(the configuration), and the new chunk files replace the old ones at the same paths.
Every read checks the file's stamp (its resume key) against the one the result was
made with, and refuses another computation's numbers in one clear error."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from bvsim import load_config, run_sweep
from bvsim.io.blocks import pred_block
from bvsim.run.store import ChunkReplacedError, ChunkStack, save_atomic

OVER = [
    "sweep.n_reps=8",
    "train.steps=50",
    "data.source=csv",
    "data.n_train=20",
]


def _write_csv(path: Path, shift: float = 0.0) -> None:
    """A small CSV with columns x, y; ``shift`` moves one value of y (and the file's
    size and mtime, for a file system with a coarse clock)."""
    gen = np.random.default_rng(0)
    x = gen.uniform(-1, 1, 40)
    y = np.sin(3 * x) + 0.1 * gen.standard_normal(40)
    y[3] += shift
    old = path.stat() if path.exists() else None
    path.write_text("x,y\n" + "".join(f"{a:.6f},{b:.6f}\n" for a, b in zip(x, y, strict=True)))
    if old is not None:
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns + 2_000_000_000))


def _run(csv: Path, out: Path):
    cfg = load_config(preset="smoke", overrides=[*OVER, f"data.path={csv}"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "chunk file(s) ... ignored and recomputed"
        return run_sweep(cfg, out, figures=False, progress=False)


def test_a_result_refuses_chunk_files_a_later_run_replaced(tmp_path):
    """The reproduction: the data edited, rerun into the same directory; the first
    result read the second's predictions (a difference of 2.8)."""
    csv, out = tmp_path / "dr.csv", tmp_path / "run"
    _write_csv(csv)
    r1 = _run(csv, out)
    assert isinstance(r1.raw.pred, ChunkStack)
    before = np.asarray(r1.raw.pred).copy()
    _write_csv(csv, shift=3.0)
    r2 = _run(csv, out)
    assert r2.raw.info["inputs_key"] != r1.raw.info["inputs_key"]
    assert not np.allclose(np.asarray(r2.raw.pred), before)  # new numbers, same paths
    reads = {
        "pred[i]": lambda: r1.raw.pred[0],
        "asarray(pred)": lambda: np.asarray(r1.raw.pred),
        "pred block": lambda: pred_block(r1.raw, 1, slice(0, 3)),
        "curves": lambda: np.asarray(r1.raw.curve_test),
        "test labels": lambda: np.asarray(r1.raw.y_test),
    }
    for what, read in reads.items():
        with pytest.raises(ChunkReplacedError, match="replaced by a later run") as info:
            read()
        assert str(out) in str(info.value), what
        assert "\n" not in str(info.value)
    assert np.isfinite(np.asarray(r2.raw.pred)).any()  # the later result itself reads


def test_an_untouched_result_still_reads_after_a_run_that_resumed(tmp_path):
    csv, out = tmp_path / "dr.csv", tmp_path / "run"
    _write_csv(csv)
    r1 = _run(csv, out)
    before = np.asarray(r1.raw.pred).copy()
    labels = np.asarray(r1.raw.y_test).copy()
    r2 = _run(csv, out)  # the same inputs: every chunk resumed, no file rewritten
    assert r2.raw.info["n_chunks_resumed"] == r2.raw.info["n_chunks"]
    np.testing.assert_array_equal(np.asarray(r1.raw.pred), before)
    np.testing.assert_array_equal(r1.raw.pred[2], before[2])
    np.testing.assert_array_equal(np.asarray(r1.raw.y_test), labels)
    np.testing.assert_array_equal(np.asarray(r2.raw.pred), before)
    shutil.rmtree(out / "chunks")
    with pytest.raises(ChunkReplacedError, match="were removed"):
        r1.raw.pred[0]


def _stamped(tmp_path: Path, key: str, seed: int) -> tuple[Path, np.ndarray]:
    part = np.random.default_rng(seed).normal(size=(3, 2, 1, 4))
    path = tmp_path / "chunks" / "abc" / "sets_000000_000001.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(path, {"pred": part, "key": key, "inputs": "{}"})
    return path, part


def test_a_stack_reads_only_files_with_its_stamp(tmp_path):
    """The check reads the stamp from the open file whose numbers it then reads; a
    stack without a stamp reads unchecked (as before)."""
    path, part = _stamped(tmp_path, "0123456789abcdef", 0)
    stack = ChunkStack([path], "pred", part.shape, part.dtype, stamp="0123456789abcdef")
    np.testing.assert_array_equal(stack[1], part[1])
    np.testing.assert_array_equal(stack.read(2, slice(1, 3)), part[2][:, :, 1:3])
    _, other = _stamped(tmp_path, "fedcba9876543210", 1)  # same shape, same path
    with pytest.raises(ChunkReplacedError, match="replaced by a later run"):
        stack[0]
    unchecked = ChunkStack([path], "pred", part.shape, part.dtype)
    np.testing.assert_array_equal(unchecked[0], other[0])
    save_atomic(path, {"pred": other})  # no stamp at all
    with pytest.raises(ChunkReplacedError):
        stack[0]
