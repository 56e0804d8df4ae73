"""Memory before compute: the peak bytes of a sweep's main process and of one worker
training one chunk (:func:`memory_estimate`), checked against the memory the machine
has available now (:func:`available_memory`: ``/proc/meminfo`` and the cgroup's limit)
and, on a GPU, against that device's free memory (:func:`check_memory`).

It is an estimate: the largest arrays of a worker's chunk and of the main process, plus
a fixed overhead per process, counted from the run's sizes
(:func:`bvsim.run.chunks.run_sizes`). One member's size comes from its ``model.kind``
(:func:`bvsim.train.trainers.model_sizes`, which sizes chunks too): a user's module by
its own parameters and activations. A scikit-learn estimator's own memory while it
fits (a forest, a kernel matrix) is not known and not estimated: only its chunk's data
and outputs are.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from ..config import Config, ConfigError, is_classification
from ..train.devices import device_type_of
from ..train.trainers import ModelSizes, model_sizes
from .chunks import auto_chunk_size, gpu_batch_units, run_sizes

__all__ = [
    "PROCESS_OVERHEAD",
    "available_memory",
    "check_memory",
    "gpu_batch_config",
    "memory_estimate",
]

#: Resident memory of a process that has imported torch and bvsim, before any chunk.
PROCESS_OVERHEAD = 200 * 2**20
#: Keys that size a sweep, with their smallest values: each is tried at that value to
#: find the one to change when a sweep does not fit.
_SIZE_KEYS = {
    "data.n_test": 1,
    "data.n_train": 1,
    "data.dim": 1,
    "data.n_classes": 2,
    "model.hidden": 1,
    "sweep.n_reps": 2,
    "sweep.n_seeds": 1,
    "sweep.weight_decay": 1,  # its length: one value
    "train.steps": 1,
}

#: Keys outside ``model.*`` that a member's size (:func:`model_sizes`) depends on: the
#: inputs' dimension and the outputs (classes).
_MEMBER_KEYS = ("data.dim", "data.n_classes")


def _size_keys(cfg: Config, sizes: ModelSizes) -> list[str]:
    """The keys this configuration lets the user lower: those of :data:`_SIZE_KEYS`,
    of the model only the one that sizes it (``sizes.key``: ``model.hidden``, or
    ``model.module`` for a user's module), not the dimension of a CSV file (its
    columns) or of a module (its input), not the classes of a regression or of a CSV
    file."""
    keys = []
    for key in _SIZE_KEYS:
        if key.startswith("model.") and key != sizes.key:
            continue
        if key == "data.dim" and (cfg.data.source == "csv" or sizes.fixes_dim):
            continue
        if key == "data.n_classes" and (cfg.data.source == "csv" or not is_classification(cfg)):
            continue
        keys.append(key)
    if sizes.key is not None and sizes.key not in keys and sizes.key not in _SIZE_KEYS:
        keys.append(sizes.key)  # model.module: compared with a module of one parameter
    return keys


def _compact(value) -> str:
    """A key's value for a message: a huge integer as 1.23e+300, not 300 digits."""
    if isinstance(value, int) and abs(value) >= 10**15:
        digits = str(abs(value))
        sign = "-" if value < 0 else ""
        return f"{sign}{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(map(repr, value[:3]))}, ... ({len(value)} values)]"
    return repr(value)


def available_memory() -> int | None:
    """Bytes of memory available to this process now: the kernel's MemAvailable (or
    free pages), lowered to the cgroup's limit left; None when unknown."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            avail = min(avail, max(int(limit) - int(used), 0))
    except (OSError, ValueError):
        pass
    return avail


def memory_estimate(
    cfg: Config, device_type: str = "cpu", sizes: ModelSizes | None = None
) -> dict[str, float]:
    """Estimated peak bytes of one worker training one chunk and of the main process,
    one member sized by ``sizes`` (by default :func:`model_sizes` of the configured
    kind, as the chunks are).

    Returns
    -------
    dict with ``worker`` (all of a worker, with :data:`PROCESS_OVERHEAD`), ``tensors``
    (its part in torch tensors: on the device for a GPU) and ``main`` (the main
    process, with :data:`PROCESS_OVERHEAD`), in bytes. A scikit-learn estimator holds no
    tensors, and its own memory while it fits is not counted.
    """
    sizes = model_sizes(cfg) if sizes is None else sizes
    r = run_sizes(cfg, sizes)
    b = 8 if cfg.train.dtype == "float64" else 4
    n_state = 4 if cfg.train.optimizer == "adam" else 2  # parameters and their state
    per_set = r.n_wd * r.n_seeds
    members = auto_chunk_size(cfg, device_type, sizes) * per_set
    batch = cfg.train.batch_size or r.n_train
    data = r.n_train * (r.dim + 1) + r.n_test * (1 + r.n_out)
    # numpy: training data, test labels, predictions, initial and final parameters, curves
    host = 8 * data + 16 * sizes.n_params + 16 * r.n_log
    if cfg.train.decompose_steps:  # the test predictions at every logged step
        host += 8 * r.n_log * r.n_test * r.n_out
    tensors = b * (
        data
        + 2 * r.n_train * r.dim  # the inputs' transposed copy, a Gram matrix
        + n_state * sizes.n_params  # parameters and optimizer state
        + 3 * batch * sizes.widths  # activations and their gradients
        + 2 * r.n_test * sizes.width  # the test forward pass, one layer at a time
    )
    if not sizes.in_torch:  # an estimator: numpy only, its data counted in host
        tensors = 0
    shared = 16 * r.n_test * r.dim
    n_members = r.n_members
    # the main process: a few hundred bytes per member in the tables, and one weight
    # decay's predictions, test labels and curves at a time while estimating
    block = r.n_reps * r.n_seeds * (r.n_test * r.n_out + r.n_log)
    main = (
        PROCESS_OVERHEAD
        + 400 * n_members
        + 8 * 4 * block
        + 8 * 2 * r.n_reps * r.n_test
        + 8 * r.n_wd * r.n_test * 20
    )
    return {
        "worker": float(PROCESS_OVERHEAD + shared + members * (host + tensors)),
        "tensors": float(members * tensors),
        "main": float(main),
    }


def _smallest(cfg: Config, key: str) -> Config:
    """``cfg`` with ``key`` at its smallest value (every hidden width, for a list)."""
    section, name = key.split(".")
    sub = getattr(cfg, section)
    value = getattr(sub, name)
    low = _SIZE_KEYS[key]
    if key == "sweep.weight_decay":
        value = value[:low]
    else:
        value = [low] * len(value) if isinstance(value, list) else min(value, low)
    return dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **{name: value})})


def _at_smallest(cfg: Config, key: str, device_type: str, sizes: ModelSizes) -> dict:
    """:func:`memory_estimate` with ``key`` at its smallest value; ``model.module`` (no
    smallest value to set) as a module of one parameter and one activation. A member's
    ``sizes`` are reused where ``key`` cannot change them (:data:`_MEMBER_KEYS`): a
    user's module is not built again for each key."""
    if key not in _SIZE_KEYS:
        smallest = dataclasses.replace(sizes, n_params=1, widths=1, width=1)
        return memory_estimate(cfg, device_type, smallest)
    same = not (key.startswith("model.") or key in _MEMBER_KEYS)
    return memory_estimate(_smallest(cfg, key), device_type, sizes if same else None)


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def _need(est: dict, device_type: str) -> float:
    """Bytes of host memory: the main process and one worker (on a GPU the chunk runs
    in the main process, its tensors on the device)."""
    if device_type == "cpu":
        return est["main"] + est["worker"]
    return est["main"] + est["worker"] - PROCESS_OVERHEAD - est["tensors"]


def _device_memory(device: str) -> int | None:
    """Free bytes on CUDA ``device`` (``cuda`` or ``cuda:N``); None for the CPU or
    when unknown."""
    if device_type_of(device) != "cuda":
        return None
    try:
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    except Exception:  # no driver, no device: the device check is skipped
        return None


def check_memory(
    cfg: Config, device: str = "cpu", avail: int | None = None, *, host: bool = True
) -> None:
    """Refuse a sweep whose main process and one worker do not fit in the memory the
    machine has available (and, on a GPU ``device``, ``cuda`` or ``cuda:N``, whose
    chunk does not fit in that device's free memory; ``host=False`` checks the device
    only), naming the key that sizes it most (the one whose smallest value saves the
    most)."""
    device_type = device_type_of(device)
    sizes = model_sizes(cfg)
    est = memory_estimate(cfg, device_type, sizes)
    checks = []
    if host:
        avail = available_memory() if avail is None else avail
        checks.append(("memory", _need(est, device_type), avail, lambda e: _need(e, device_type)))
    gpu = _device_memory(device)
    checks.append((f"GPU memory on {device}", est["tensors"], gpu, lambda e: e["tensors"]))
    for what, need, have, measure in checks:
        if have is None or need <= have:
            continue
        saved = {}
        for key in _size_keys(cfg, sizes):
            saved[key] = need - measure(_at_smallest(cfg, key, device_type, sizes))
        key = max(saved, key=saved.get)
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        fix = {
            "sweep.weight_decay": f"use fewer values in {key}",
            "model.module": f"use a smaller module in {key}",
        }.get(key, f"lower {key}")
        raise ConfigError(
            f"{key} = {_compact(value)}: this sweep needs about {_gib(need)} of {what} (main "
            f"process {_gib(est['main'])}, one chunk {_gib(est['worker'])}) but "
            f"{_gib(have)} is available; {fix} (the largest share)"
        )


def gpu_batch_config(cfg: Config) -> Config:
    """``cfg`` with ``sweep.chunk_size`` at the training sets a GPU thread of a
    several-device sweep trains at once (:func:`bvsim.run.chunks.gpu_batch_units` of
    the CPU-sized units): what its device memory is checked for."""
    unit = auto_chunk_size(cfg, "cpu")
    sets = gpu_batch_units(cfg, unit) * unit
    return dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, chunk_size=sets))
