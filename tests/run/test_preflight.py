"""Preflight's device memory check: the device asked for, and under several devices
each GPU for the batch it will take (torch.cuda.mem_get_info faked: no GPU needed)."""

from __future__ import annotations

import pytest
import torch

from bvsim import ConfigError, load_config
from bvsim.run.chunks import auto_chunk_size
from bvsim.run.memory import _gib, gpu_batch_config, memory_estimate
from bvsim.run.preflight import preflight


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
    from bvsim.run.memory import check_memory

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


FIX = "tests/fixtures/user_code.py"


def _wide_net(path, width: int) -> str:
    """A file defining ``make`` (x (n, 1) -> (n, 1), two hidden Tanh layers of
    ``width``); its ``model.module`` value."""
    path.write_text(
        "from torch import nn\n\n\ndef make():\n"
        f"    return nn.Sequential(nn.Linear(1, {width}), nn.Tanh(), nn.Linear({width}, "
        f"{width}), nn.Tanh(), nn.Linear({width}, 1))\n"
    )
    return f"{path}:make"


def test_a_module_is_sized_by_its_own_parameters_and_activations(tmp_path):
    """The memory estimate of a user's module counts its real parameters and
    activations (before, every module was sized as 2 parameters and 1 activation a
    point), the same sizes chunks are cut by."""
    from bvsim.train.trainers import model_sizes

    over = ["model.kind=module", "sweep.n_reps=200", "data.n_train=50", "sweep.chunk_size=16"]
    cfg = load_config(preset="sine", overrides=[*over, f"model.module={FIX}:make_net"])
    # make_net: Linear(1, 8), Tanh, Linear(8, 6), ReLU, Linear(6, 1), counted by hand
    n_params, per_point = (1 * 8 + 8) + (8 * 6 + 6) + (6 * 1 + 1), 8 + 8 + 6 + 6 + 1
    sizes = model_sizes(cfg)
    assert (sizes.n_params, sizes.widths) == (n_params, per_point) == (77, 29)

    members = auto_chunk_size(cfg) * len(cfg.sweep.weight_decay) * cfg.sweep.n_seeds
    held = members * 4 * (2 * n_params + cfg.data.n_train * per_point)  # float32, SGD
    assert memory_estimate(cfg)["tensors"] >= held

    # a wider module, same chunks: the estimate grows at least by what it holds more
    small, wide = (
        load_config(preset="sine", overrides=[*over, f"model.module={_wide_net(path, width)}"])
        for path, width in ((tmp_path / "small.py", 8), (tmp_path / "wide.py", 400))
    )
    d_params = (2 * 400 + 400 * 400 + 400 + 400 + 1) - (2 * 8 + 8 * 8 + 8 + 8 + 1)
    d_acts = 4 * (400 - 8)  # two Linear and two Tanh outputs
    assert (model_sizes(wide).n_params - model_sizes(small).n_params) == d_params
    assert (model_sizes(wide).widths - model_sizes(small).widths) == d_acts
    grown = memory_estimate(wide)["tensors"] - memory_estimate(small)["tensors"]
    assert grown >= members * 4 * (2 * d_params + cfg.data.n_train * d_acts)


def test_a_module_too_big_is_refused_before_compute(tmp_path, monkeypatch):
    """A module whose chunk does not fit is refused by run_sweep before anything is
    created, naming model.module (lowering the sweep's keys would not make it fit)."""
    from bvsim import run_sweep
    from bvsim.run import memory as pf

    spec = _wide_net(tmp_path / "big.py", 2048)  # 4.2 M parameters a member
    cfg = load_config(preset="smoke", overrides=["model.kind=module", f"model.module={spec}"])
    monkeypatch.setattr(pf, "available_memory", lambda: 2**29)
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        run_sweep(cfg, out, figures=False)
    msg = str(info.value)
    assert msg.startswith(f"model.module = {spec!r}: this sweep needs about ")
    assert "use a smaller module in model.module (the largest share)" in msg
    assert not out.exists()
    small = ["model.kind=module", f"model.module={FIX}:make_net"]
    pf.check_memory(load_config(preset="smoke", overrides=small), "cpu", avail=2**29)  # fits


def test_an_estimator_holds_no_tensors_and_its_own_memory_is_not_estimated():
    """A scikit-learn estimator: no torch tensors (nothing on a GPU), only its chunk's
    data and outputs, which grow with the training sets."""
    over = [
        "model.kind=sklearn",
        f"model.estimator={FIX}:FailsSometimes",
        "model.param=alpha",
        "sweep.weight_decay=[0.0, 0.5]",
    ]
    cfg = load_config(preset="smoke", overrides=over)
    est = memory_estimate(cfg, "cuda")
    assert est["tensors"] == 0
    more = load_config(preset="smoke", overrides=[*over, "data.n_train=20000"])
    assert memory_estimate(more)["worker"] > est["worker"]
