"""On-disk store: slices read back exactly, and a run directory's sweep keeps its
predictions in the chunk files yet gives the same numbers as an in-memory one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.run.store import ChunkStack, read_slice, save_atomic, write_npz

FAST = ["train.steps=60", "train.log_every=20", "sweep.n_reps=7", "sweep.chunk_size=3"]


@pytest.mark.parametrize("compressed", [False, True])
def test_read_slice_equals_numpy_slicing(tmp_path, compressed):
    rng = np.random.default_rng(0)
    arrays = {"a": rng.normal(size=(5, 4, 3)), "b": rng.integers(0, 9, size=(6,)).astype(np.int32)}
    path = tmp_path / "x.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    for i in range(5):
        np.testing.assert_array_equal(read_slice(path, "a", i), arrays["a"][i])
    np.testing.assert_array_equal(read_slice(path, "a", 1, 4), arrays["a"][1:4])
    np.testing.assert_array_equal(read_slice(path, "a", 3, 99), arrays["a"][3:])
    np.testing.assert_array_equal(read_slice(path, "b", 2, 5), arrays["b"][2:5])
    assert read_slice(path, "b", 2, 5).dtype == np.int32
    # Python's index rules
    np.testing.assert_array_equal(read_slice(path, "a", -1), arrays["a"][-1])
    np.testing.assert_array_equal(read_slice(path, "a", -2, 5), arrays["a"][-2:5])
    assert read_slice(path, "a", 4, 2).shape == (0, 4, 3)
    with pytest.raises(IndexError):
        read_slice(path, "a", 5)


def _stack(tmp_path, rng, sizes=(3, 3, 1), tail=(2, 4)):
    """A ChunkStack over chunk files of ``sizes`` training sets, and the full array."""
    parts = [rng.normal(size=(5, n, *tail)) for n in sizes]
    paths = []
    for c, part in enumerate(parts):
        paths.append(tmp_path / f"chunk{c}.npz")
        save_atomic(paths[-1], {"pred": part, "other": np.zeros(3)})
    full = np.concatenate(parts, axis=1)
    return ChunkStack(paths, "pred", full.shape, full.dtype), full


def test_chunk_stack_reads_like_the_concatenated_array(tmp_path):
    stack, full = _stack(tmp_path, np.random.default_rng(1))
    assert stack.shape == full.shape and stack.ndim == 4 and len(stack) == 5
    for i in (0, 3, -1):
        np.testing.assert_array_equal(stack[i], full[i])
    np.testing.assert_array_equal(stack[2, 4:, 1], full[2, 4:, 1])
    np.testing.assert_array_equal(np.asarray(stack), full)
    np.testing.assert_array_equal(stack[1:3], full[1:3])
    with pytest.raises(IndexError):
        stack[5]
    with pytest.raises(ValueError):  # read-only: the kept slice cannot be changed
        stack[0][0, 0, 0] = 1.0
    np.testing.assert_array_equal(stack.read(2, slice(1, 3)), full[2][:, :, 1:3])


def test_write_npz_streams_a_stack_into_a_normal_npz(tmp_path):
    stack, full = _stack(tmp_path, np.random.default_rng(2))
    small = np.arange(4.0)
    write_npz(tmp_path / "out.npz", {"pred": stack, "small": small})
    with np.load(tmp_path / "out.npz") as z:
        np.testing.assert_array_equal(z["pred"], full)
        np.testing.assert_array_equal(z["small"], small)
    np.testing.assert_array_equal(read_slice(tmp_path / "out.npz", "pred", 3), full[3])


def test_run_dir_sweep_keeps_predictions_on_disk_with_the_same_numbers(tmp_path):
    cfg = load_config(preset="smoke", overrides=FAST)
    memory = run_sweep(cfg, progress=False, figures=False)
    disk = run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert isinstance(disk.raw.pred, ChunkStack)  # not gathered in the main process
    assert isinstance(memory.raw.pred, np.ndarray)
    np.testing.assert_array_equal(np.asarray(disk.raw.pred), memory.raw.pred)
    np.testing.assert_array_equal(np.asarray(disk.raw.curve_test), memory.raw.curve_test)
    for name in ("summary", "pointwise", "curves", "members"):
        pd.testing.assert_frame_equal(
            getattr(disk.tables, name), getattr(memory.tables, name), check_exact=True
        )
    with np.load(tmp_path / "predictions.npz") as z:
        np.testing.assert_array_equal(z["pred"], memory.raw.pred)
        np.testing.assert_array_equal(z["curve_train"], memory.raw.curve_train)


@pytest.mark.parametrize(
    ("preset", "extra", "points"),
    [
        ("smoke", [], 7),
        ("smoke", [], 1),
        *[
            ("gaussians", ["sweep.weight_decay=[0.0, 0.03]", "train.steps=100"], p)
            for p in (1, 3, 7, 16, 29)
        ],
    ],
)
def test_test_points_decomposed_in_blocks_give_the_same_tables(
    tmp_path, monkeypatch, preset, extra, points
):
    """A test set too large for one read is decomposed a block of points at a time;
    the combined estimates and SEs equal the all-at-once ones (float rounding)."""
    from bvsim.io import blocks, tables

    cfg = load_config(preset=preset, overrides=[*FAST, *extra])
    whole = run_sweep(cfg, tmp_path / "whole", progress=False, figures=False)
    per_point = int(np.prod(whole.raw.pred.shape[1:])) // len(whole.raw.test.x) * 8
    monkeypatch.setattr(blocks, "BLOCK_BYTES", points * per_point)
    assert len(blocks.point_blocks(whole.raw)) > 3
    blocked = tables.summarize(whole.raw)
    for name in ("summary", "pointwise", "members", "curves"):
        pd.testing.assert_frame_equal(
            getattr(blocked, name), getattr(whole.tables, name), rtol=1e-12, atol=1e-15
        )


def test_test_labels_are_drawn_again_chunk_by_chunk(tmp_path):
    """With a run directory the labels are not held: reading them draws them again from
    the seed tree, equal to drawing all sets at once."""
    from bvsim.run.result import TestLabels

    cfg = load_config(preset="smoke", overrides=FAST)
    disk = run_sweep(cfg, tmp_path, progress=False, figures=False)
    memory = run_sweep(cfg, progress=False, figures=False)
    assert isinstance(disk.raw.y_test, TestLabels)
    np.testing.assert_array_equal(np.asarray(disk.raw.y_test), memory.raw.y_test)
    np.testing.assert_array_equal(disk.raw.y_test.read(slice(3, 9)), memory.raw.y_test[:, 3:9])
    with np.load(tmp_path / "predictions.npz") as z:
        np.testing.assert_array_equal(z["y_test"], memory.raw.y_test)


def test_chunk_files_without_labels_still_resume(tmp_path):
    """Chunk files written before the labels were kept in them: the labels are drawn
    again from the seed tree, and the tables are the same."""
    from bvsim.run.store import load_arrays

    cfg = load_config(preset="smoke", overrides=FAST)
    first = run_sweep(cfg, tmp_path, progress=False, figures=False)
    for path in (tmp_path / "chunks").rglob("*.npz"):
        arrays = load_arrays(path)
        del arrays["y_test"]
        save_atomic(path, arrays)
    again = run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert again.raw.info["n_chunks_resumed"] == again.raw.info["n_chunks"]
    for name in ("summary", "pointwise", "members"):
        pd.testing.assert_frame_equal(
            getattr(again.tables, name), getattr(first.tables, name), check_exact=True
        )
