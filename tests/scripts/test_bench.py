"""The benchmark's byte count of a step (its memory roofline), on known answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from bvsim import load_config
from bvsim.train.engine import TrainSpec

_spec = importlib.util.spec_from_file_location(
    "bench", Path(__file__).parents[2] / "scripts" / "bench.py"
)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_bytes_per_step_of_a_linear_model():
    """One layer p -> 1 without bias: forward p + n p + n, gradient into the momentum
    buffer n p + n + 2 p, update 6 p: 9 p + 2 n p + 2 n floats."""
    p, n = 20, 50
    cfg = load_config(preset="linear", overrides=[f"data.dim={p}", f"data.n_train={n}"])
    spec = TrainSpec.from_config(cfg)
    assert spec.shapes == ((p, 1),) and not spec.bias
    assert bench.bytes_per_step(spec, n) == 4 * (9 * p + 2 * n * p + 2 * n)
    double = TrainSpec.from_config(
        load_config(
            preset="linear", overrides=[f"data.dim={p}", f"data.n_train={n}", "train.dtype=float64"]
        )  # fmt: skip
    )
    assert double.dtype == torch.float64
    assert bench.bytes_per_step(double, n) == 2 * bench.bytes_per_step(spec, n)


def test_adam_moves_its_moment_buffers_too():
    cfg = load_config(preset="smoke", overrides=["train.optimizer=adam"])
    spec = TrainSpec.from_config(cfg)
    sgd = TrainSpec.from_config(load_config(preset="smoke"))
    extra = bench.bytes_per_step(spec, 10) - bench.bytes_per_step(sgd, 10)
    assert extra == pytest.approx(4 * 19 * spec.n_params)
