"""scripts/crossed_t_coverage.py: the coverage of ± 2 SE and ± t SE, on few studies."""

from __future__ import annotations

from tests.scripts import load_script

crossed_t_coverage = load_script("crossed_t_coverage.py")


def test_t_covers_more_than_two_se_and_the_table_is_written(tmp_path):
    nested = crossed_t_coverage.nested(4, reps=4000)
    assert nested["2 SE"] < 0.89 and abs(nested["t"] - 0.95) < 0.015
    c = crossed_t_coverage.crossed((3, 3, 3), "one", reps=400)
    assert c["2 SE"] < c["t Satterthwaite"] <= c["t min levels"]
    assert 2 <= c["median df"] <= 6
    assert crossed_t_coverage.main(["--reps", "10", "--out", str(tmp_path)]) == 0
    lines = (tmp_path / "crossed_t_coverage.txt").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert len(rows) == 2 + 6 + 24  # two headers, 6 nested rows, 6 designs x 4 scenarios
