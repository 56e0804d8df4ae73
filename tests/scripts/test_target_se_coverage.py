"""scripts/target_se_coverage.py: the stopped run's coverage, on few simulated runs."""

from __future__ import annotations

from tests.scripts import load_script

target_se_coverage = load_script("target_se_coverage.py")


def test_stops_no_earlier_than_min_sets_and_writes_the_table(tmp_path):
    r = target_se_coverage.coverage(reps=200, min_sets=30, target_k=60)
    assert 30 <= r["median_stop"] <= 800
    assert 0.5 < r["coverage_stop"] <= 1 and 0.5 < r["coverage_fixed"] <= 1
    assert target_se_coverage.main(["--reps", "20", "--out", str(tmp_path)]) == 0
    rows = (tmp_path / "target_se_coverage.txt").read_text().splitlines()[5:]
    assert len(rows) == 8 and {r.split("|")[1].strip() for r in rows} == {"10", "30"}
