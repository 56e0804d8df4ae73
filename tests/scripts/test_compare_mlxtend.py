"""bvsim's plug-in numbers agree with mlxtend's bias_variance_decomp on the same work."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scripts import load_script

pytest.importorskip("mlxtend")
pytest.importorskip("sklearn")


def test_agrees_with_mlxtend_within_monte_carlo_error():
    module = load_script("compare_mlxtend.py")
    rows = module.compare(rounds=100)
    for quantity, (ours, se, theirs) in rows.items():
        assert abs(ours - theirs) < 4 * se * np.sqrt(2), (quantity, ours, se, theirs)
