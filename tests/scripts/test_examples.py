"""The runnable examples in scripts/examples/ run (small settings)."""

from __future__ import annotations

import pytest

from tests.scripts import load_script


def _load(name):
    return load_script(f"examples/{name}.py", f"example_{name}")


def test_own_truth(tmp_path):
    result = _load("own_truth").main(["--reps", "3", "--steps", "30", "--out", str(tmp_path)])
    assert (tmp_path / "summary.csv").exists()
    assert result.summary["bias2"].notna().all()


def test_own_module():
    result = _load("own_module").main(["--reps", "3", "--steps", "20"])
    assert len(result.summary) == 4


def test_sklearn_estimator():
    pytest.importorskip("sklearn")
    results = _load("sklearn_estimator").main(["--reps", "4"])
    assert set(results) == {"tree", "knn"}
    knn = results["knn"].summary
    # more neighbours: less variance
    assert knn["variance"].iloc[-1] < knn["variance"].iloc[0]
