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


@pytest.mark.parametrize(
    "over, key",
    [
        (["sweep.n_seeds=1000000000000"], "sweep.n_seeds = 1000000000000"),
        (
            ["sweep.weight_decay=" + str([i / 1e6 for i in range(200_000)])],
            "sweep.weight_decay = [0.0, 1e-06, 2e-06, ... (200000 values)]",
        ),  # fmt: skip
        (["data.dim=1000000000", "data.test_design=sample"], "data.dim = 1000000000"),
        (
            [
                "data.truth=gaussians",
                "data.dim=2",
                "data.x_dist=gaussian",
                "data.test_design=sample",
                "data.n_classes=1e10",
            ],
            "data.n_classes = ",
        ),  # fmt: skip
        (["sweep.n_reps=1e300"], "sweep.n_reps = 1.00e+300: "),
    ],
)
def test_memory_message_names_the_dominant_key(over, key):
    """The key that saves the most at its smallest value is named, compactly."""
    from bvsim import ConfigError, load_config
    from bvsim.run.preflight import check_memory

    cfg = load_config(preset="smoke", overrides=["data.truth=linear", *over])
    with pytest.raises(ConfigError) as info:
        check_memory(cfg, "cpu", avail=2**30)
    msg = str(info.value)
    assert msg.startswith(key) and "\n" not in msg and len(msg) < 400
    name = key.split(" = ")[0]
    assert f"fewer values in {name}" in msg if "weight_decay" in name else f"lower {name}" in msg


def test_a_joblib_backend_that_cannot_stream_is_refused_before_any_file(tmp_path):
    """--backend refuses multiprocessing at the CLI; the Python API under
    joblib.parallel_config(backend="multiprocessing") is refused too, before compute."""
    import joblib

    from bvsim import load_config, run_sweep
    from bvsim.config import ConfigError

    cfg = load_config(preset="smoke", overrides=["sweep.n_reps=4", "train.steps=20"])
    out = tmp_path / "run"
    with joblib.parallel_config(backend="multiprocessing"):
        with pytest.raises(ConfigError, match="MultiprocessingBackend: it cannot hand back"):
            run_sweep(cfg, out, n_jobs=2, figures=False)
    assert not out.exists()
