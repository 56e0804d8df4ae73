"""A dask.distributed cluster (LocalCluster on loopback) gives the local numbers."""

from __future__ import annotations

import joblib
import pandas as pd
import pytest

from bvsim import load_config, run_sweep
from bvsim.cli import main

distributed = pytest.importorskip("distributed")

OVER = ["train.steps=60", "train.log_every=20", "sweep.n_reps=6", "sweep.chunk_size=2"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


def test_dask_cluster_equals_local_run(cluster):
    cfg = load_config(preset="smoke", overrides=OVER)
    local = run_sweep(cfg, n_jobs=1, progress=False).summary
    with distributed.Client(cluster), joblib.parallel_config(backend="dask"):
        remote = run_sweep(cfg, n_jobs=-1, progress=False)
    pd.testing.assert_frame_equal(local, remote.summary, check_exact=True)


def test_cli_scheduler_address(cluster, tmp_path):
    out = tmp_path / "run"
    argv = ["sweep", "--preset", "smoke", "--scheduler", cluster.scheduler_address,
            "--out", str(out), "--no-figures"]  # fmt: skip
    for over in OVER:
        argv += ["--set", over]
    assert main(argv) == 0
    local = run_sweep(load_config(preset="smoke", overrides=OVER), progress=False).summary
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), local, check_dtype=False)


def test_unknown_backend_is_a_clean_error(capsys):
    assert main(["sweep", "--preset", "smoke", "--backend", "nope"]) == 2
    assert "--backend nope: unknown" in capsys.readouterr().err
