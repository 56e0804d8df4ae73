"""bvsim's plug-in numbers agree with mlxtend's bias_variance_decomp on the same work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlxtend")
pytest.importorskip("sklearn")

SCRIPT = Path(__file__).parents[2] / "scripts" / "compare_mlxtend.py"


def test_agrees_with_mlxtend_within_monte_carlo_error():
    spec = importlib.util.spec_from_file_location("compare_mlxtend", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.compare(rounds=100)
    for quantity, (ours, se, theirs) in rows.items():
        assert abs(ours - theirs) < 4 * se * np.sqrt(2), (quantity, ours, se, theirs)
