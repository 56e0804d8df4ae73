"""Property-based checks (hypothesis) of the estimators and the config loader."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bvsim.config import ConfigError, from_dict
from bvsim.estimate.squared import decompose

# the test process flushes denormals (bvsim.train.devices.setup_process): no subnormals
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)
shapes = st.tuples(st.integers(2, 7), st.integers(1, 4), st.integers(1, 5))


@st.composite
def predictions(draw):
    k, s, j = draw(shapes)
    pred = draw(arrays(np.float64, (k, s, j), elements=finite))
    f = draw(arrays(np.float64, (j,), elements=finite))
    return pred, f


@settings(max_examples=200, deadline=None)
@given(predictions())
def test_identity_holds_for_any_predictions(data):
    pred, f = data
    overall, point = decompose(pred, f)
    mse = np.square(pred - f).mean(axis=(0, 1))
    scale = 1 + np.abs(mse).max()
    np.testing.assert_allclose(point["bias2"] + point["variance"], mse, atol=1e-9 * scale)
    assert point["variance"].min() >= -1e-9 * scale


@settings(max_examples=100, deadline=None)
@given(predictions(), finite)
def test_shift_invariance(data, shift):
    pred, f = data
    a, _ = decompose(pred, f)
    b, _ = decompose(pred + shift, f + shift)
    scale = 1 + abs(shift) ** 2 + np.abs(pred).max() ** 2
    for name in ("bias2", "variance"):
        assert a[name] == pytest.approx(b[name], abs=1e-8 * scale)


@settings(max_examples=100, deadline=None)
@given(shapes, finite)
def test_variance_zero_when_members_agree(shape, value):
    k, s, j = shape
    pred = np.full((k, s, j), value)
    overall, _ = decompose(pred, np.zeros(j))
    assert overall["variance"] == pytest.approx(0, abs=1e-9 * (1 + value**2))


toml_scalars = st.one_of(
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_subnormal=False),
    st.text(max_size=8),
    st.booleans(),
    st.lists(st.one_of(st.integers(-3, 300), st.floats(-1, 10, allow_subnormal=False)), max_size=4),
)
keys = st.sampled_from(
    ["seed", "name", "n_reps", "lr", "steps", "weight_decay", "hidden", "truth", "bogus"]
)
sections = st.sampled_from(["data", "model", "train", "sweep", "extra"])
raw_configs = st.dictionaries(
    st.one_of(keys, sections),
    st.one_of(toml_scalars, st.dictionaries(keys, toml_scalars, max_size=4)),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(raw_configs)
def test_config_loader_never_crashes_uncleanly(raw):
    try:
        from_dict(raw, "fuzz")
    except ConfigError as err:
        assert str(err).startswith("fuzz")
        assert "\n" not in str(err)
