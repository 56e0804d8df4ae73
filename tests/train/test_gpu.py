"""GPU path: the same numbers as the CPU. Skipped cleanly where no CUDA device exists."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bvsim import load_config
from bvsim.run.sweep import train_sweep

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

OVER = ["train.steps=150", "train.log_every=50", "sweep.n_reps=6", "train.dtype=float64"]


def _cuda_equals_cpu(cfg):
    """Train ``cfg`` on the CPU and on the GPU; the predictions agree to 1e-9."""
    cpu = train_sweep(cfg, device="cpu", progress=False)
    gpu = train_sweep(cfg, device="cuda", progress=False)
    np.testing.assert_allclose(gpu.pred, cpu.pred, rtol=0, atol=1e-9)
    return cpu, gpu


def test_cuda_sweep_equals_cpu_sweep_float64():
    cpu, gpu = _cuda_equals_cpu(load_config(preset="smoke", overrides=OVER))
    np.testing.assert_array_equal(gpu.diverged, cpu.diverged)


def test_cuda_float32_close_to_cpu_float64():
    cpu = train_sweep(load_config(preset="smoke", overrides=OVER), progress=False)
    cfg32 = load_config(preset="smoke", overrides=[*OVER, "train.dtype=float32"])
    gpu = train_sweep(cfg32, device="cuda", progress=False)
    np.testing.assert_allclose(gpu.pred, cpu.pred, atol=1e-3)


def test_cuda_closed_form_equals_cpu():
    over = ["sweep.n_reps=5", "train.solver=closed_form", "train.dtype=float64"]
    cfg = load_config(preset="linear", overrides=over)
    _cuda_equals_cpu(cfg)


def test_cpu_and_gpu_together_equal_cpu_alone():
    cfg = load_config(preset="smoke", overrides=[*OVER, "sweep.chunk_size=1"])
    cpu = train_sweep(cfg, device="cpu", progress=False)
    mixed = train_sweep(cfg, devices=["cuda", "cpu"], progress=False)
    np.testing.assert_allclose(mixed.pred, cpu.pred, rtol=0, atol=1e-9)
    assert sum(mixed.info["chunks_per_device"].values()) == 6


def test_cuda_dropout_masks_and_penalties_equal_cpu():
    for extra in (["model.dropout=0.3"], ["train.penalty=l1"], ["train.penalty=decoupled"]):
        cfg = load_config(preset="smoke", overrides=[*OVER, *extra])
        _cuda_equals_cpu(cfg)


def test_cuda_cross_entropy_and_module_paths_equal_cpu():
    over = ["sweep.n_reps=4", "train.steps=100", "train.dtype=float64"]
    cfg = load_config(preset="gaussians", overrides=over)
    _cuda_equals_cpu(cfg)
    mod = [
        *OVER,
        "model.kind=module",
        "model.module=tests/fixtures/user_code.py:make_net",
    ]
    cfg = load_config(preset="smoke", overrides=mod)
    _cuda_equals_cpu(cfg)


def test_cuda_gram_form_equals_cpu():
    """The linear preset trained by SGD runs in the Gram form (primal, p = 20 <= n);
    with p = 60 > n + 1 = 41 in its dual coordinates."""
    for extra in ([], ["data.dim=60"]):
        over = ["sweep.n_reps=5", "train.dtype=float64", "train.steps=300", *extra]
        cfg = load_config(preset="linear", overrides=over)
        _cuda_equals_cpu(cfg)


def test_cuda_adam_and_minibatches_equal_cpu():
    for extra in (["train.optimizer=adam", "train.lr=0.01"], ["train.batch_size=5"]):
        cpu, gpu = _cuda_equals_cpu(load_config(preset="smoke", overrides=[*OVER, *extra]))
        np.testing.assert_array_equal(gpu.diverged, cpu.diverged)


def test_cuda_decompose_steps_equals_cpu():
    cfg = load_config(preset="smoke", overrides=[*OVER, "train.decompose_steps=true"])
    cpu, gpu = _cuda_equals_cpu(cfg)
    steps_cpu, steps_gpu = np.asarray(cpu.pred_steps), np.asarray(gpu.pred_steps)
    assert steps_cpu.shape == steps_gpu.shape and steps_cpu.shape[3] > 1
    np.testing.assert_allclose(steps_gpu, steps_cpu, rtol=0, atol=1e-9)


def test_cuda_divergence_equals_cpu():
    """lr * lambda = 5 > 2 (1 + momentum): the members of lambda = 100 blow up within
    a few steps (x2.8 a step, so rounding cannot move them across the threshold); the
    others stay finite, on both devices."""
    over = [*OVER, "sweep.weight_decay=[0.0, 0.01, 0.1, 100.0]"]
    cpu, gpu = _cuda_equals_cpu(load_config(preset="smoke", overrides=over))
    np.testing.assert_array_equal(gpu.diverged, cpu.diverged)
    assert cpu.diverged[-1].all() and not cpu.diverged[:-1].any()
    assert np.isfinite(gpu.pred[~gpu.diverged]).all()
