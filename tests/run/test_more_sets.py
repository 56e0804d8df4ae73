"""Raising (or lowering) sweep.n_reps reuses a run's chunks: training set k is drawn
and trained the same whatever n_reps is, so the chunk key leaves n_reps out and chunk
boundaries do not depend on it; the result equals a fresh run with the new n_reps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bvsim import load_config, run_sweep
from bvsim.config import BvsimWarning, ConfigError, chunk_key, config_key
from bvsim.run.chunks import chunk_list

FAST = ["train.steps=60", "train.log_every=20", "sweep.chunk_size=2"]


def _cfg(n_reps: int, *more: str):
    return load_config(preset="smoke", overrides=[*FAST, f"sweep.n_reps={n_reps}", *more])


def _meta(out):
    return json.loads((out / "run.json").read_text())


def test_more_sets_reuse_the_chunks_and_equal_a_fresh_run(tmp_path, recwarn):
    run = tmp_path / "run"
    run_sweep(_cfg(4), run, progress=False, figures=False)
    first = (run / "summary.csv").read_bytes()

    run_sweep(_cfg(7), run, progress=False, figures=False)  # no --overwrite needed
    assert not [w for w in recwarn if issubclass(w.category, BvsimWarning)]  # all used
    meta = _meta(run)
    assert meta["n_chunks"] == 4 and meta["n_chunks_resumed"] == 2  # sets 0-3 reused
    assert meta["n_sets_resumed"] == 4
    fresh = tmp_path / "fresh"
    run_sweep(_cfg(7), fresh, progress=False, figures=False)
    assert (run / "summary.csv").read_bytes() == (fresh / "summary.csv").read_bytes()
    assert (run / "members.csv").read_bytes() == (fresh / "members.csv").read_bytes()
    assert "n_reps = 7" in (run / "config.toml").read_text()

    # fewer: every chunk reused; the files of sets 4-6 stay, unused, and are named
    with pytest.warns(BvsimWarning, match=r"holds 2 chunk file\(s\) of other training-set ") as w:
        run_sweep(_cfg(4), run, progress=False, figures=False)
    assert "4 of this run's 4 training sets come from chunk files, 0 to train" in str(w[0].message)
    assert _meta(run)["n_chunks_resumed"] == 2
    assert (run / "summary.csv").read_bytes() == first


def test_a_chunk_cut_short_is_trained_again_and_the_warning_says_so(tmp_path):
    """Automatic chunks: smoke's whole sweep is one chunk, so raising n_reps reuses
    nothing, and the run says that (it does not claim the sets were reused)."""
    auto = ["train.steps=60", "train.log_every=20"]
    cfg = load_config(preset="smoke", overrides=[*auto, "sweep.n_reps=4"])
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    more = load_config(preset="smoke", overrides=[*auto, "sweep.n_reps=6"])
    with pytest.warns(BvsimWarning, match="0 of this run's 6 training sets come from chunk"):
        run_sweep(more, tmp_path, progress=False, figures=False)
    assert _meta(tmp_path)["n_sets_resumed"] == 0


def test_chunks_of_a_bvsim_before_the_chunk_key_are_adopted(tmp_path):
    """A run directory written before the chunk key (chunks/<config key>/, stamped with
    it) resumes: its chunk files move to chunks/<chunk key>/ with the new stamp."""
    from bvsim.run.fingerprint import inputs_key
    from bvsim.run.store import load_arrays, save_atomic

    cfg = _cfg(4)
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    first = (tmp_path / "summary.csv").read_bytes()
    new_dir = tmp_path / "chunks" / chunk_key(cfg)
    old_dir = tmp_path / "chunks" / config_key(cfg)
    old_dir.mkdir()
    for path in sorted(new_dir.glob("sets_*.npz")):  # as the older bvsim wrote them
        res = load_arrays(path)
        inputs = json.loads(str(res["inputs"])) | {"config": config_key(cfg)}
        stamp = {"key": inputs_key(inputs), "inputs": json.dumps(inputs, sort_keys=True)}
        save_atomic(old_dir / path.name, {**res, **stamp})
        path.unlink()
    new_dir.rmdir()
    snapshot = {p.name: p.read_bytes() for p in old_dir.iterdir()}
    # the older chunks with another n_reps: not adopted (keyed by that n_reps), named
    with pytest.warns(BvsimWarning, match="chunk folder.* of an older bvsim or another config"):
        run_sweep(_cfg(6), tmp_path / "more", progress=False, figures=False)  # warm-up dir
        (tmp_path / "more" / "chunks" / old_dir.name).mkdir()
        for name, data in snapshot.items():
            (tmp_path / "more" / "chunks" / old_dir.name / name).write_bytes(data)
        run_sweep(_cfg(6), tmp_path / "more", progress=False, figures=False)
    run_sweep(cfg, tmp_path, progress=False, figures=False)
    assert _meta(tmp_path)["n_chunks_resumed"] == 2  # none retrained
    assert not old_dir.exists() and len(list(new_dir.glob("sets_*.npz"))) == 2
    assert (tmp_path / "summary.csv").read_bytes() == first


def test_another_key_than_n_reps_is_still_refused(tmp_path):
    run_sweep(_cfg(4), tmp_path, progress=False, figures=False)
    with pytest.raises(ConfigError, match="different configuration"):
        run_sweep(_cfg(6, "train.lr=0.02"), tmp_path, progress=False, figures=False)


def test_chunk_key_leaves_out_n_reps_only():
    assert config_key(_cfg(4)) != config_key(_cfg(6))
    assert chunk_key(_cfg(4)) == chunk_key(_cfg(6))
    assert chunk_key(_cfg(4)) != chunk_key(_cfg(4, "train.lr=0.02"))
    assert chunk_key(_cfg(4)) == chunk_key(_cfg(4, "sweep.target_se=0.1", "sweep.n_reps=40"))


@pytest.mark.parametrize(
    "over",
    [
        ["model.hidden=[16,16]"],
        ["model.hidden=[512,512]"],  # a few sets a chunk
        ["model.kind=sklearn", "model.estimator=sklearn.linear_model:Ridge"],
    ],
)
def test_automatic_chunks_of_fewer_sets_are_the_first_of_more(over):
    """Automatic chunk sizes (no sweep.chunk_size) do not depend on n_reps: the full
    chunks of a run are the first chunks of a run with more sets."""
    small, large = (load_config(preset="smoke", overrides=[*over, f"sweep.n_reps={n}"])
                    for n in (37, 500))  # fmt: skip
    few, many = chunk_list(small), chunk_list(large)
    assert len(many) > 1
    for ks, kl in zip(few[:-1], many, strict=False):  # the full chunks: the same
        np.testing.assert_array_equal(ks, kl)
    last = few[-1]  # the last: cut at n_reps, the start of the same chunk of the larger
    assert last[-1] == 36
    np.testing.assert_array_equal(last, many[len(few) - 1][: len(last)])
