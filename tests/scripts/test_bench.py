"""The benchmark's byte count of a step (its memory roofline), on known answers."""

from __future__ import annotations

import sys

import pytest
import torch

from bvsim import load_config
from bvsim.train.engine import TrainSpec
from tests.scripts import load_script

bench = load_script("bench.py")
bench_scaling = sys.modules["bench_scaling"]


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


def test_gram_cost_of_the_dual_and_primal_forms():
    """W3 (p = 100 > n + 1 = 51, 500 steps): dual, d = 51: 2 d^2 FLOPs and d^2 + 12 d
    floats a step, plus X X^T and X w0 once (2 n^2 p + 2 n p FLOPs; n p + d^2 floats)
    over the steps. With p = 20 < 51 primal, d = p (X^T X, X^T y: 2 n p^2 + 2 n p); a
    bias is one more coordinate."""
    w3 = _train_spec("linear", "data.dim=100", "data.n_train=50", "train.steps=500")
    n, p, d = 50, 100, 51
    flops, nbytes = bench.gram_cost(w3, n)
    assert flops == pytest.approx(2 * d**2 + (2 * n * n * p + 2 * n * p) / 500)
    assert nbytes == pytest.approx(4 * (d**2 + 12 * d + (n * p + d**2) / 500))
    primal = _train_spec("linear", "data.dim=20", "data.n_train=50", "train.steps=500")
    flops, _ = bench.gram_cost(primal, n)
    assert flops == pytest.approx(2 * 20**2 + (2 * n * 20**2 + 2 * n * 20) / 500)
    biased = _train_spec("linear", "data.dim=20", "data.n_train=50", "model.bias=true",
                         "train.steps=500")  # fmt: skip
    assert bench.gram_cost(biased, n)[0] == pytest.approx(
        2 * 21**2 + (2 * n * 21**2 + 2 * n * 21) / 500
    )


def test_adam_moves_its_moment_buffers_too():
    cfg = load_config(preset="smoke", overrides=["train.optimizer=adam"])
    spec = TrainSpec.from_config(cfg)
    sgd = TrainSpec.from_config(load_config(preset="smoke"))
    extra = bench.bytes_per_step(spec, 10) - bench.bytes_per_step(sgd, 10)
    assert extra == pytest.approx(4 * 19 * spec.n_params)


def _train_spec(preset, *overrides):
    return TrainSpec.from_config(load_config(preset=preset, overrides=list(overrides)))


def test_a_crossed_member_moves_what_a_nested_one_does():
    """sine-crossed's MLP 1-64-64-1 with biases, 40 points, SGD. Per layer (forward,
    activation, weight gradient, bias gradient, input gradient):
    1->64: 2728 + 5120 + 2728 + 2688; 64->64: 9280 + 5120 + 13312 + 2688 + 16896;
    64->1: 2665 + 2728 + 42 + 10344; update 6 x 4353 parameters = 26118; in all
    102457 floats. The design changes which data a member sees, not its step."""
    crossed = _train_spec("sine-crossed")
    nested = _train_spec("sine", "sweep.n_seeds=3")
    assert crossed.shapes == nested.shapes == ((1, 64), (64, 64), (64, 1))
    assert crossed.n_params == 4353
    assert bench.bytes_per_step(crossed, 40) == 4 * 102457
    assert bench.bytes_per_step(nested, 40) == bench.bytes_per_step(crossed, 40)


def test_working_set_of_a_member():
    """Parameters and momentum (2 x 4353) and each layer's input and output on 40
    points (40 + 2560, 2560 + 2560, 2560 + 40): 19026 floats; Adam keeps two more
    copies of the parameters."""
    assert bench_scaling.working_set_bytes(_train_spec("sine-crossed"), 40) == 4 * 19026
    adam = _train_spec("sine-crossed", "train.optimizer=adam")
    assert bench_scaling.working_set_bytes(adam, 40) == 4 * (19026 + 2 * 4353)


def test_cache_sizes_from_sysfs(tmp_path):
    """Data and unified levels in bytes; the instruction cache is left out."""
    for i, (level, kind, size) in enumerate(
        [
            (1, "Data", "32K"),
            (1, "Instruction", "32K"),
            (2, "Unified", "1024K"),
            (3, "Unified", "32M"),
        ]
    ):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    assert bench_scaling.cache_sizes(tmp_path) == {"L1": 2**15, "L2": 2**20, "L3": 2**25}
    assert bench_scaling.cache_sizes(tmp_path / "missing") == {}
    assert bench_scaling._fits(2**20, bench_scaling.cache_sizes(tmp_path)) == "L2"
    assert bench_scaling._fits(2**26, bench_scaling.cache_sizes(tmp_path)) == "memory"
