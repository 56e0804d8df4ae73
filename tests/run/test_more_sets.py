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


def test_more_sets_reuse_the_chunks_and_equal_a_fresh_run(tmp_path):
    run = tmp_path / "run"
    run_sweep(_cfg(4), run, progress=False, figures=False)
    first = (run / "summary.csv").read_bytes()

    with pytest.warns(BvsimWarning) as said:  # no --overwrite needed
        run_sweep(_cfg(7), run, progress=False, figures=False)
    said = " ".join(str(w.message) for w in said)
    assert "with sweep.n_reps = 4: its training sets are reused" in said
    assert "sweep.n_reps = 7" in said
    meta = _meta(run)
    assert meta["n_chunks"] == 4 and meta["n_chunks_resumed"] == 2  # sets 0-3 reused
    fresh = tmp_path / "fresh"
    run_sweep(_cfg(7), fresh, progress=False, figures=False)
    assert (run / "summary.csv").read_bytes() == (fresh / "summary.csv").read_bytes()
    assert (run / "members.csv").read_bytes() == (fresh / "members.csv").read_bytes()
    assert "n_reps = 7" in (run / "config.toml").read_text()

    with pytest.warns(BvsimWarning, match="sweep.n_reps = 7: its training sets are reused"):
        run_sweep(_cfg(4), run, progress=False, figures=False)  # fewer: every chunk reused
    assert _meta(run)["n_chunks_resumed"] == 2
    assert (run / "summary.csv").read_bytes() == first


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
