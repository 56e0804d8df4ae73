"""scripts/profile_step.py prints the profiler's table for a workload (W3, 4 members)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "profile_step", Path(__file__).parents[2] / "scripts" / "profile_step.py"
)
profile_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_step)


def test_prints_the_operators(capsys):
    assert profile_step.main(["W3", "4", "--rows", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("W3, 4 members, 500 steps, one thread")
    assert "aten::baddbmm_" in out  # the Gram form's one product a step
