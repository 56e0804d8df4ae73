"""Checks before compute that need more than the configuration's own keys.

* :func:`check_user_code`: what the configuration names outside itself (its CSV file,
  the user's truth function, module or estimator), each checked by the part that owns
  it; :func:`bvsim.load_config` runs it while loading.
* :func:`preflight`: the machine's share of a sweep (workers, memory, disk space:
  :mod:`bvsim.run.disk`) and the truth function on the real points;
  :func:`bvsim.run_sweep` runs it before anything is created or trained.

Each problem is a :class:`ConfigError` naming what to change.
Memory is an estimate (the largest arrays of a worker's chunk and of the main
process, plus a fixed overhead per process), checked against the memory the machine
has available now. One member's size comes from its ``model.kind``
(:func:`bvsim.train.trainers.model_sizes`, which sizes chunks too): a user's module by
its own parameters and activations. A scikit-learn estimator's own memory while it
fits (a forest, a kernel matrix) is not known and not estimated: only its chunk's data
and outputs are.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import joblib
import torch
from joblib._parallel_backends import SequentialBackend
from joblib.parallel import BACKENDS, get_active_backend

from ..config import Config, ConfigError, axis_configs, is_classification
from ..data.csv import check_csv
from ..data.generator import check_truth, check_truth_function
from ..train.devices import device_type_of
from ..train.trainers import ModelSizes, check_kind, model_sizes
from .chunks import auto_chunk_size, gpu_batch_units, run_sizes
from .disk import check_disk

__all__ = [
    "available_memory",
    "check_joblib_backend",
    "check_n_jobs",
    "check_user_code",
    "memory_estimate",
    "preflight",
    "streaming_backends",
    "streams_results",
    "worker_count",
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


def check_user_code(cfg: Config, prefix: str = "") -> Config:
    """Check the files and code a configuration names, in the parts that own them:
    the CSV source (which fills in its columns and size), the truth function (tried
    on a probe batch), the module factory and the estimator class. Returns the
    configuration with the CSV source's defaults filled in."""
    if cfg.data.source == "csv":
        cfg = dataclasses.replace(cfg, data=check_csv(cfg, prefix))
    else:
        check_truth_function(cfg, prefix)
    check_kind(cfg, prefix)
    return cfg


def check_n_jobs(n_jobs: int, label: str = "n_jobs") -> None:
    """``n_jobs`` as joblib takes it: >= 1 workers, or negative (-1: all cores).
    ``label`` names it in the error: a keyword (``n_jobs = 0``) or a command-line flag
    (``--n-jobs 0``)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        given = f"{label} {n_jobs!r}" if label.startswith("--") else f"{label} = {n_jobs!r}"
        raise ConfigError(
            f"{given}: expected a number of workers >= 1, or a negative "
            "number as in joblib (-1: all cores, -2: all but one)"
        )


def _local_backend() -> bool:
    """True when the active joblib backend runs on this machine (not a cluster)."""
    backend, _ = get_active_backend()
    return type(backend).__name__ in (
        "LokyBackend",
        "MultiprocessingBackend",
        "ThreadingBackend",
        "SequentialBackend",
    )


def worker_count(cfg: Config, n_jobs: int, n_chunks: int, device_type: str = "cpu") -> int:
    """The workers a sweep really uses: ``n_jobs`` as joblib reads it, capped by the
    chunks to train and, with a local backend, by the cores and by the memory
    available for one chunk per worker (at least 1)."""
    check_n_jobs(n_jobs)
    local = _local_backend()
    cores = joblib.cpu_count()
    n = n_jobs if n_jobs > 0 else (max(cores + 1 + n_jobs, 1) if local else n_chunks)
    n = min(n, max(n_chunks, 1))
    if local:
        n = min(n, cores)
        avail = available_memory()
        if avail is not None and device_type == "cpu":
            est = memory_estimate(cfg, device_type)
            n = min(n, max(1, int((avail - est["main"]) // est["worker"])))
    return max(n, 1)


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


def _sizes(cfg: Config, sizes: ModelSizes) -> dict:
    """The numbers a sweep's memory grows with (:func:`bvsim.run.chunks.run_sizes`);
    one member's from ``sizes``."""
    r, t = run_sizes(cfg, sizes), cfg.train
    return {
        "n_wd": r.n_wd,
        "n_reps": r.n_reps,
        "n_seeds": r.n_seeds,
        "n_train": r.n_train,
        "n_test": r.n_test,
        "dim": r.dim,
        "n_out": r.n_out,
        "n_params": sizes.n_params,
        "widths": sizes.widths,
        "width": sizes.width,
        "n_log": r.n_log,
        "itemsize": 8 if t.dtype == "float64" else 4,
        "n_state": 4 if t.optimizer == "adam" else 2,
    }


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
    z = _sizes(cfg, sizes)
    b = z["itemsize"]
    per_set = z["n_wd"] * z["n_seeds"]
    members = auto_chunk_size(cfg, device_type, sizes) * per_set
    batch = cfg.train.batch_size or z["n_train"]
    data = z["n_train"] * (z["dim"] + 1) + z["n_test"] * (1 + z["n_out"])
    # numpy: training data, test labels, predictions, initial and final parameters, curves
    host = 8 * data + 16 * z["n_params"] + 16 * z["n_log"]
    if cfg.train.decompose_steps:  # the test predictions at every logged step
        host += 8 * z["n_log"] * z["n_test"] * z["n_out"]
    tensors = b * (
        data
        + 2 * z["n_train"] * z["dim"]  # the inputs' transposed copy, a Gram matrix
        + z["n_state"] * z["n_params"]  # parameters and optimizer state
        + 3 * batch * z["widths"]  # activations and their gradients
        + 2 * z["n_test"] * z["width"]  # the test forward pass, one layer at a time
    )
    if not sizes.in_torch:  # an estimator: numpy only, its data counted in host
        tensors = 0
    shared = 16 * z["n_test"] * z["dim"]
    n_members = z["n_wd"] * z["n_reps"] * z["n_seeds"]
    # the main process: a few hundred bytes per member in the tables, and one weight
    # decay's predictions, test labels and curves at a time while estimating
    block = z["n_reps"] * z["n_seeds"] * (z["n_test"] * z["n_out"] + z["n_log"])
    main = (
        PROCESS_OVERHEAD
        + 400 * n_members
        + 8 * 4 * block
        + 8 * 2 * z["n_reps"] * z["n_test"]
        + 8 * z["n_wd"] * z["n_test"] * 20
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


def streams_results(backend) -> bool:
    """Whether a joblib backend (an instance) can hand back results as they finish
    (``Parallel(return_as="generator")``, which the sweep uses): the sequential one,
    and those whose ``supports_return_generator`` is true (not ``multiprocessing``)."""
    return isinstance(backend, SequentialBackend) or bool(
        getattr(backend, "supports_return_generator", False)
    )


def streaming_backends() -> list[str]:
    """The names of the registered joblib backends that stream results
    (:func:`streams_results`): what ``--backend`` accepts."""
    usable = []
    for name, cls in BACKENDS.items():
        try:
            ok = streams_results(cls())
        except Exception:  # a backend that cannot even be constructed here
            ok = False
        if ok:
            usable.append(name)
    return usable


def check_joblib_backend() -> None:
    """The joblib backend in effect (``joblib.parallel_config``, ``--backend``) can
    stream the chunks' results (:func:`streams_results`)."""
    backend, _ = joblib.parallel.get_active_backend()
    if not streams_results(backend):
        raise ConfigError(
            f"joblib backend {type(backend).__name__}: it cannot hand back results as they "
            "finish (Parallel(return_as='generator')), which a sweep needs; use one of "
            f"{', '.join(sorted(streaming_backends()))}"
        )


def preflight(
    cfg: Config,
    *,
    n_jobs: int = 1,
    device: str = "cpu",
    devices: list[str] | None = None,
    out: str | Path | None = None,
    run_dirs: list | None = None,
) -> None:
    """Every check that needs more than the configuration file, once, before compute:
    ``n_jobs``, the joblib backend in effect, memory, the disk space of the run
    directory ``out`` (:func:`bvsim.run.disk.check_disk`; none without ``out``,
    ``run_dirs`` its sub-runs of a second axis), and the user's truth function on the
    real points, for each value of a second sweep axis.

    ``device`` is a resolved device (``cpu``, ``cuda`` or ``cuda:N``). With
    ``devices`` (several at once, resolved) the machine's memory is checked for the
    CPU-sized units and each GPU in the list for the batch it takes.
    """
    check_n_jobs(n_jobs)
    if not devices:  # several devices run in threads of their own, not through joblib
        check_joblib_backend()
    subs = [sub for _, sub in axis_configs(cfg)]
    gpus = list(dict.fromkeys(d for d in devices or [] if device_type_of(d) == "cuda"))
    for sub in subs:
        if devices:
            check_memory(sub, "cpu")
            for gpu in gpus:
                check_memory(gpu_batch_config(sub), gpu, host=False)
        else:
            check_memory(sub, device)
    if out is not None:  # chunks CPU-sized under --devices, as the sweep cuts them
        check_disk(cfg, out, run_dirs, "cpu" if devices else device_type_of(device))
    for sub in subs:
        check_truth(sub)
