"""Preflight's device memory check: the device asked for, and under several devices
each GPU for the batch it will take (torch.cuda.mem_get_info faked: no GPU needed)."""

from __future__ import annotations

import pytest
import torch

from bvsim import ConfigError, load_config
from bvsim.run.chunks import auto_chunk_size
from bvsim.run.preflight import _gib, gpu_batch_config, memory_estimate, preflight


@pytest.fixture
def free_gpu(monkeypatch):
    """Fake free device memory: set ``free["bytes"]``; ``free["asked"]`` lists the
    devices read."""
    free = {"bytes": 1 << 40, "asked": []}

    def mem_get_info(device=None):
        free["asked"].append(device)
        return free["bytes"], 1 << 40

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    return free


def test_gpu_memory_of_the_device_asked_for(free_gpu):
    cfg = load_config(preset="smoke")
    preflight(cfg, device="cuda:1")
    assert free_gpu["asked"] == [torch.device("cuda:1")]  # not the current device
    free_gpu["bytes"] = 1 << 10
    with pytest.raises(ConfigError, match="of GPU memory on cuda:1"):
        preflight(cfg, device="cuda:1")
    preflight(cfg, device="cpu")  # the CPU reads no device memory
    assert len(free_gpu["asked"]) == 2


def test_several_devices_check_each_gpu_for_its_batch(free_gpu):
    cfg = load_config(preset="smoke", overrides=["sweep.n_reps=200", "sweep.chunk_size=2"])
    gpu = gpu_batch_config(cfg)
    assert auto_chunk_size(gpu, "cuda") > auto_chunk_size(cfg, "cpu") == 2
    assert auto_chunk_size(gpu, "cuda") % 2 == 0  # whole units
    preflight(cfg, devices=["cpu", "cuda:0", "cuda:1", "cuda:1"])
    assert free_gpu["asked"] == [torch.device("cuda:0"), torch.device("cuda:1")]
    need = memory_estimate(gpu, "cuda")["tensors"]
    free_gpu["bytes"] = int(need) - 1
    with pytest.raises(ConfigError, match=f"needs about {_gib(need)} of GPU memory on cuda:0"):
        preflight(cfg, devices=["cpu", "cuda:0"])
    free_gpu["bytes"] = int(need) + 1
    preflight(cfg, devices=["cpu", "cuda:0"])
