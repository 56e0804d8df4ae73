"""Training chunks: one chunk of training sets trained as one batched program
(:func:`train_chunk`), and the two ways chunks are handed out: joblib workers
(:func:`run_jobs`, the caller's backend) or one thread per device sharing a queue
(:func:`run_on_devices`). The joblib side is decided here too: ``n_jobs`` and the
backend in effect, checked before compute (:func:`check_n_jobs`,
:func:`check_joblib_backend`), and the workers a sweep really uses
(:func:`worker_count`)."""

from __future__ import annotations

import collections
import os
import threading
import time
import warnings

import joblib
import numpy as np
from joblib._parallel_backends import SequentialBackend
from joblib.parallel import BACKENDS, get_active_backend

from ..config import BvsimWarning, Config, ConfigError
from ..data.generator import TestSet
from ..train.devices import STOP, device_type_of, setup_process
from ..train.trainers import train_members
from .chunks import fields_in, gpu_batch_units, member_fields, members_of
from .memory import available_memory, memory_estimate

__all__ = [
    "check_joblib_backend",
    "check_n_jobs",
    "run_jobs",
    "run_on_devices",
    "split_chunk",
    "streaming_backends",
    "streams_results",
    "train_chunk",
    "worker_count",
]


def train_chunk(
    cfg: Config, test: TestSet, ks: np.ndarray, device: str, owner: int | None = None
) -> dict:
    """Train all members of training sets ``ks``; arrays shaped (n_wd, n_sets, S, ...).
    In a worker process, ``owner`` is the pid of the sweep's process: the worker exits
    when that one dies (:func:`~bvsim.train.devices.exit_with_owner`)."""
    setup_process(1, device, owner)
    t0 = time.perf_counter()
    n_wd, n_sets, n_seeds = len(cfg.sweep.weight_decay), len(ks), cfg.sweep.n_seeds
    members, (_, a, s) = members_of(cfg, test, ks)
    res = train_members(cfg, members, ks, a, s, device)
    if cfg.train.decompose_steps and res.pred_steps is None:  # no steps: the final one
        res.pred_steps = res.pred[:, None]
    shape = (n_wd, n_sets, n_seeds)
    out = {
        name: getattr(res, name).reshape(*shape, *getattr(res, name).shape[1:])
        for name in member_fields(cfg)
    }
    out["ks"] = np.asarray(ks)
    # each set's test labels, (n_sets, n_test): read back by TestLabels
    out["y_test"] = members["y_test"].reshape(n_wd, n_sets, n_seeds, -1)[0, :, 0]
    out["log_steps"] = res.log_steps
    if ks[0] == 0:  # keep the weights of training set 0 for the histograms
        out["params0"] = res.params.reshape(*shape, res.params.shape[-1])[:, 0]
    out["seconds"] = np.float64(time.perf_counter() - t0)
    out["device"] = np.str_(str(device))
    return out


def split_chunk(res: dict, sizes: list[int]) -> list[dict]:
    """Split a merged chunk result back into its units (along the training-set axis)."""
    parts, start = [], 0
    total = sum(sizes)
    for size in sizes:
        stop = start + size
        part = {name: res[name][:, start:stop] for name in fields_in(res)}
        part["ks"] = res["ks"][start:stop]
        part["y_test"] = res["y_test"][start:stop]
        part["log_steps"] = res["log_steps"]
        part["seconds"] = np.float64(float(res["seconds"]) * size / total)
        part["device"] = res["device"]
        if "params0" in res and part["ks"][0] == 0:
            part["params0"] = res["params0"]
        parts.append(part)
        start = stop
    return parts


def run_on_devices(cfg, test, chunks, todo, devices, done) -> None:
    """Train units ``todo`` on several devices at once, one thread per device.

    Each thread takes the next units from a shared queue as soon as it is free, so a
    fast device does more of the work: a CPU thread one unit at a time, a GPU thread
    as many as fill a GPU-sized chunk (:func:`~bvsim.run.chunks.gpu_batch_units`; trained
    as one batch, saved unit by unit).
    ``done(i, result)`` returns True to stop handing out units.
    Torch releases the GIL inside its kernels, so CPU threads run in parallel.
    """
    pending = collections.deque(todo)
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop: list[bool] = []
    per_gpu = gpu_batch_units(cfg, len(chunks[0]))

    def worker(dev, finished):
        take = per_gpu if device_type_of(dev) == "cuda" else 1
        try:
            while not errors and not STOP.is_set():
                with lock:
                    if stop:  # the precision target is met: take no more units
                        return
                    batch = [pending.popleft() for _ in range(min(take, len(pending)))]
                if not batch:
                    return
                ks = np.concatenate([chunks[i] for i in batch])
                res = train_chunk(cfg, test, ks, dev)
                parts = split_chunk(res, [len(chunks[i]) for i in batch])
                with lock:
                    for i, part in zip(batch, parts, strict=True):
                        if done(i, part):
                            stop.append(True)
        except BaseException as err:  # re-raised in the calling thread
            errors.append(err)
        finally:
            finished.set()

    def wait_all():
        # Waits on events, not Thread.join: a join interrupted by Ctrl-C marks a
        # running thread as stopped (Python 3.11), so it could not be waited for again.
        for f in finished:
            while not f.wait(timeout=0.2):  # stay responsive to Ctrl-C
                pass

    STOP.clear()
    finished = [threading.Event() for _ in devices]
    threads = [
        threading.Thread(target=worker, args=(d, f), daemon=True)
        for d, f in zip(devices, finished, strict=True)
    ]
    for t in threads:
        t.start()
    try:
        wait_all()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): the threads stop at their next training step
        # and are waited for before the exception leaves, so that the interpreter never
        # exits under a thread still inside torch (an abort, exit code 134).
        STOP.set()
        while True:
            try:
                wait_all()
                break
            except KeyboardInterrupt:
                continue
        STOP.clear()  # training in this process may start again (a notebook, the API)
        raise
    if errors:
        raise errors[0]


#: joblib backends whose workers are processes of this machine started for this
#: process: they exit when it dies. A dask cluster's workers are the user's, and live on.
_OWNED_WORKERS = ("LokyBackend", "MultiprocessingBackend")


def _train_chunk_job(cfg: Config, test: TestSet, ks, dev: str, owner: int | None):
    """:func:`train_chunk` as a joblib job: ``(result, warnings)``. In a worker process
    of this machine (``owner`` not this process) its :class:`BvsimWarning` are kept
    and handed back, to be shown by the sweep's process as its own (where the command
    line shows them); other warnings are shown by the worker as before."""
    if owner is None or os.getpid() == owner:
        return train_chunk(cfg, test, ks, dev, owner), []
    kept = []
    with warnings.catch_warnings():
        show = warnings.showwarning

        def keep(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, BvsimWarning):
                kept.append((str(message), category, filename, lineno))
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = keep
        return train_chunk(cfg, test, ks, dev, owner), kept


def run_jobs(cfg, test, chunks, todo, n_jobs, dev, done) -> None:
    """Train chunks ``todo`` through joblib (the caller's backend), in order; stop
    handing them out once ``done(i, result)`` says so (a met precision target).
    Local worker processes (loky, multiprocessing) exit soon after this process dies
    (``kill -9``), instead of training on as orphans; their bvsim warnings are shown
    by this process."""
    backend, _ = joblib.parallel.get_active_backend()
    owner = os.getpid() if type(backend).__name__ in _OWNED_WORKERS else None
    parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
    jobs = parallel(
        joblib.delayed(_train_chunk_job)(cfg, test, chunks[i], dev, owner) for i in todo
    )
    for i, (res, kept) in zip(todo, jobs, strict=False):
        for message, category, filename, lineno in kept:  # a worker's, shown here
            warnings.warn_explicit(message, category, filename, lineno)
        if done(i, res):
            break
    with warnings.catch_warnings():  # chunks past the target are cancelled
        warnings.simplefilter("ignore", UserWarning)
        jobs.close()


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
