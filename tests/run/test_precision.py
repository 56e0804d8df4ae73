"""sweep.target_se: training sets added chunk by chunk until the paired SEs are small."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bvsim import load_config
from bvsim.cli import main
from bvsim.data.generator import make_test_set
from bvsim.estimate.compare import paired_vs_best
from bvsim.estimate.squared import per_set_squared_error
from bvsim.io.tables import summarize
from bvsim.run.chunks import chunk_list
from bvsim.run.precision import MIN_SETS_FOR_TARGET, PrecisionStop
from bvsim.run.sweep import train_sweep

FAST = ["train.steps=200", "train.log_every=50", "sweep.chunk_size=2"]
TARGET = 0.017  # crossed between 30 (MIN_SETS_FOR_TARGET) and 40 sets
UP_TO_40 = [*FAST, "sweep.n_reps=40", f"sweep.target_se={TARGET}"]


def _worst(loss):
    paired = paired_vs_best(loss)
    return max(np.nanmax(paired["diff_se"]), paired["best_se"])


def test_stops_at_the_first_chunk_where_the_se_crosses_the_target():
    full = train_sweep(load_config(preset="smoke", overrides=[*FAST, "sweep.n_reps=40"]),
                       progress=False)  # fmt: skip
    stopped = train_sweep(
        load_config(preset="smoke", overrides=UP_TO_40),
        progress=False,
    )
    k = stopped.info["n_reps_done"]
    assert MIN_SETS_FOR_TARGET <= k < 40 and k % 2 == 0
    assert stopped.info["stop_reason"].startswith("target_se reached")
    loss = per_set_squared_error(np.asarray(full.pred), full.test.f)  # (n_wd, 40)
    crossings = [m for m in range(MIN_SETS_FOR_TARGET, 41, 2) if _worst(loss[:, :m]) <= TARGET]
    assert crossings[0] == k
    assert stopped.info["worst_se"] == pytest.approx(_worst(loss[:, :k]), rel=1e-12)
    np.testing.assert_array_equal(np.asarray(stopped.pred), np.asarray(full.pred)[:, :k])


def test_stopped_run_equals_a_fixed_run_of_that_size():
    over = [*FAST, "sweep.n_reps=40"]
    stopped = train_sweep(
        load_config(preset="smoke", overrides=[*over, f"sweep.target_se={TARGET}"]),
        progress=False,
    )
    k = stopped.info["n_reps_done"]
    fixed = train_sweep(load_config(preset="smoke", overrides=[*FAST, f"sweep.n_reps={k}"]),
                        progress=False)  # fmt: skip
    a, b = summarize(stopped), summarize(fixed)
    for name in ("summary", "pointwise", "members", "curves"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


def test_target_out_of_reach_uses_every_set():
    r = train_sweep(
        load_config(preset="smoke", overrides=[*FAST, "sweep.n_reps=32", "sweep.target_se=1e-9"]),
        progress=False,
    )
    assert r.info["n_reps_done"] == 32
    assert r.info["stop_reason"].startswith("sweep.n_reps reached")
    assert summarize(r).summary["n_reps"].eq(32).all()
    # the report says about how many sets the target needs, and how to add them
    from bvsim.present.report import _precision_lines

    text = " ".join(_precision_lines(r.info))
    need = 32 * (r.info["worst_se"] / 1e-9) ** 2
    assert "optimistic" not in text  # every set allowed was used: no stop selected
    assert (
        f"it would take about {np.ceil(need):.0f} sets" in text
        and "which reuses its chunks" in text
    )
    # a run of one chunk could not stop early and would train that chunk again
    one = " ".join(_precision_lines(r.info | {"n_chunks": 1}))
    assert "with sweep.chunk_size set (this run was one chunk" in one
    assert "reuses its chunks" not in one
    # no SE at all (every member diverged): no estimate of the sets needed, no crash
    text = " ".join(_precision_lines(r.info | {"worst_se": float("nan")}))
    assert "would take" not in text and "worst SE —" in text


def _files(run):
    return {n: (run / n).read_bytes() for n in ("summary.csv", "pointwise.csv", "members.csv")}


def test_cli_target_run_resumes_and_matches_fixed_run(tmp_path, capsys):
    base = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--no-figures"]
    over = [x for kv in [*FAST, "sweep.n_reps=40"] for x in ("--set", kv)]
    run = tmp_path / "run"
    assert main([*base, *over, "--target-se", str(TARGET), "--out", str(run)]) == 0
    meta = json.loads((run / "run.json").read_text())
    k = meta["n_reps_done"]
    assert k < 40 and meta["target_se"] == TARGET
    assert f"bvsim: {k} of 40 training sets; target_se reached" in capsys.readouterr().out
    first = _files(run)
    # the same command again resumes every chunk it used and trains nothing
    assert main([*base, *over, "--target-se", str(TARGET), "--out", str(run)]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["n_chunks_resumed"] == meta["n_chunks"] == k // 2
    assert _files(run) == first
    fixed = tmp_path / "fixed"
    fixed_over = [x for kv in [*FAST, f"sweep.n_reps={k}"] for x in ("--set", kv)]
    assert main([*base, *fixed_over, "--out", str(fixed)]) == 0
    assert _files(fixed) == first
    capsys.readouterr()


def test_report_says_how_many_sets_and_why(tmp_path):
    from bvsim.present.report import write_report

    r = train_sweep(
        load_config(preset="smoke", overrides=UP_TO_40),
        progress=False,
    )
    text = write_report(summarize(r), tmp_path).read_text()
    k = r.info["n_reps_done"]
    assert f"stopped at {k} training sets" in text
    assert f"({r.info['chunk_size']} sets a chunk; checked from 30 sets on)" in text
    assert f"sweep.n_reps = {k}" in text
    assert "somewhat optimistic" in text  # a stop selected where the SEs look small


def test_a_tighter_target_resumes_the_chunks_already_trained(tmp_path, capsys):
    base = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--no-figures", "--out", str(tmp_path)]
    over = [x for kv in [*FAST, "sweep.n_reps=40"] for x in ("--set", kv)]
    assert main([*base, *over, "--target-se", "0.03"]) == 0
    first = json.loads((tmp_path / "run.json").read_text())["n_chunks"]
    assert main([*base, *over, "--target-se", str(TARGET)]) == 0
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["n_chunks_resumed"] == first < meta["n_chunks"]
    capsys.readouterr()


# --- chunks that finish out of order: every boundary the prefix passes is checked -----


def _synthetic_stop(order, target):
    """A PrecisionStop over 16 chunks of 4 sets fed synthetic predictions in ``order``
    (no training); the chunk count it keeps and its worst SE."""
    cfg = load_config(preset="smoke", overrides=["sweep.n_reps=64", "sweep.chunk_size=4",
                                                 f"sweep.target_se={target}"])  # fmt: skip
    test = make_test_set(cfg)
    chunks = chunk_list(cfg)
    rng = np.random.default_rng(5)
    scale = np.array([0.3, 0.2, 0.25, 0.5])[:, None, None, None]  # one per λ
    pred = test.f + scale * rng.standard_normal((4, 64, 2, len(test.f)))
    stop = PrecisionStop(cfg, test, chunks)
    for i in order:
        if stop.add(i, {"pred": pred[:, chunks[i]]}):
            break
    loss = per_set_squared_error(pred, test.f)
    return stop, loss


def test_out_of_order_chunks_stop_where_in_order_ones_do():
    _, loss = _synthetic_stop([], 1.0)
    worst = {m: _worst(loss[:, :m]) for m in range(32, 65, 4)}
    # a target first met inside the jump below: at 40 or 44 sets, not at 32 nor 36
    target = (worst[36] + min(worst[40], worst[44])) / 2
    assert worst[32] > target and worst[36] > target and worst[64] <= target
    first = next(m for m in range(32, 65, 4) if worst[m] <= target)
    in_order, _ = _synthetic_stop(range(16), target)
    assert in_order.stopped and in_order.n_chunks * 4 == first
    # chunk 8 (sets 32-35) comes last, as a chunk file recomputed on resume: the
    # finished prefix jumps from 8 chunks to 16 at once
    gap, _ = _synthetic_stop([*range(8), *range(9, 16), 8], target)
    assert gap.stopped and gap.n_chunks == in_order.n_chunks
    assert gap.worst_se == in_order.worst_se == worst[first]
    assert gap.info() == in_order.info()
    # workers finishing in reverse: the same stop again
    rev, _ = _synthetic_stop(range(15, -1, -1), target)
    assert rev.info() == in_order.info()


def test_min_sets_holds_inside_a_jump():
    """Boundaries below MIN_SETS_FOR_TARGET are passed, not stopped at, even when the
    target is met there."""
    stop, loss = _synthetic_stop([*range(1, 16), 0], 10.0)  # met everywhere
    assert stop.n_chunks * 4 == 32 >= MIN_SETS_FOR_TARGET > 28
    assert stop.worst_se == _worst(loss[:, :32])


def test_resume_over_a_chunk_gap_equals_a_fresh_run(tmp_path, capsys):
    """A loose target after a tighter one, with one chunk file in the middle corrupt:
    the resumed run stops where a fresh run with that target does (the old rule looked
    only at the end of the jump and kept every set)."""
    base = ["sweep", "--preset", "smoke", "--n-jobs", "1", "--no-figures"]
    over = [x for kv in [*FAST[:2], "sweep.chunk_size=4", "sweep.n_reps=64"]
            for x in ("--set", kv)]  # fmt: skip
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    assert main([*base, *over, "--target-se", "0.01", "--out", str(run)]) == 0
    assert json.loads((run / "run.json").read_text())["n_reps_done"] == 64
    (gap,) = (run / "chunks").glob("*/sets_000032_000035.npz")
    with open(gap, "r+b") as fh:
        fh.truncate(1000)
    assert main([*base, *over, "--target-se", "0.0172", "--out", str(run)]) == 0
    assert main([*base, *over, "--target-se", "0.0172", "--out", str(fresh)]) == 0
    a, b = (json.loads((d / "run.json").read_text()) for d in (run, fresh))
    assert a["n_reps_done"] == b["n_reps_done"] < 64
    assert a["worst_se"] == b["worst_se"] and a["stop_reason"] == b["stop_reason"]
    names = ("summary.csv", "pointwise.csv", "members.csv", "curves.csv")
    assert {n: (run / n).read_bytes() for n in names} == {n: (fresh / n).read_bytes()
                                                         for n in names}  # fmt: skip
    capsys.readouterr()


def test_a_target_with_no_more_sets_than_the_minimum_is_refused():
    from bvsim.config import ConfigError

    with pytest.raises(ConfigError, match=r"sweep.target_se = 0.05 stops no earlier than 30"):
        load_config(preset="smoke", overrides=["sweep.target_se=0.05"])  # smoke: 8 sets
