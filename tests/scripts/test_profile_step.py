"""scripts/profile_step.py prints the profiler's table for a workload (W3, 4 members)."""

from __future__ import annotations

from tests.scripts import load_script

profile_step = load_script("profile_step.py")


def test_prints_the_operators(capsys):
    assert profile_step.main(["W3", "4", "--rows", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("W3, 4 members, 500 steps, one thread")
    assert "aten::baddbmm_" in out  # the Gram form's one product a step
