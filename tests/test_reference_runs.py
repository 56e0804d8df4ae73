"""The committed reference runs name themselves: each report's reproduce command points
at its own directory under results/, never at the scratch directory it was made in."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).parents[1] / "results"


def test_reports_reproduce_into_their_own_directory():
    reports = sorted(RESULTS.glob("*/report.md"))
    assert len(reports) >= 8
    for report in reports:
        commands = re.findall(r"^bvsim sweep (\S+) --out (\S+)$", report.read_text(), re.M)
        run = f"results/{report.parent.name}"
        assert commands == [(f"{run}/config.toml", run)], report
