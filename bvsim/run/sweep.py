"""Run the Monte Carlo design: chunks of training sets, each trained as one batch.

A chunk holds training sets ``ks``; it trains every member (weight decay, k, seed)
of those sets as one batched program (:mod:`bvsim.run.executor`). When a run directory
is given, each finished chunk is written there atomically so that re-running resumes
(:mod:`bvsim.run.resume`); this module ties the pieces together.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import Config
from ..config.schema import user_code_checked
from ..data.generator import TestSet, draw_training_sets, make_test_set
from ..train.devices import device_type_of, resolve_sweep_devices, settings_restored
from .chunks import chunk_device_type, chunk_file, chunk_list, member_fields
from .executor import run_jobs, run_on_devices, worker_count
from .precision import PrecisionStop
from .preflight import checked_user_code
from .result import SweepResult, TestLabels
from .resume import kept, resume
from .store import ChunkStack, save_atomic

__all__ = ["train_sweep"]


def _gather(cfg: Config, results: list[dict], paths: list, n_reps: int, stamp) -> dict:
    """The per-member arrays of all chunks: small ones concatenated, large ones left in
    the chunk files behind a :class:`ChunkStack` (reading only files stamped
    ``stamp``, the resume key they were written or resumed under)."""
    gathered = {}
    for name in member_fields(cfg):
        if name in results[0]:
            gathered[name] = np.concatenate([r[name] for r in results], axis=1)
        else:  # stays in the chunk files
            tail, dtype = results[0]["stored"][name]
            shape = (*results[0]["diverged"].shape[:1], n_reps, *tail)
            gathered[name] = ChunkStack(paths, name, shape, dtype, stamp)
    return gathered


def _chunk_times(results: list[dict]) -> dict:
    devices = sorted({str(r["device"]) for r in results})
    return {
        "chunk_seconds_total": float(sum(float(r["seconds"]) for r in results)),
        "chunks_per_device": {d: int(sum(str(r["device"]) == d for r in results)) for d in devices},
    }


def _versions() -> dict:
    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _chunk_paths(cfg: Config, chunks: list, chunk_dir) -> list[Path | None]:
    """Each chunk's file under ``chunk_dir/<config key>/`` (None without a run directory)."""
    if chunk_dir is None:
        return [None] * len(chunks)
    paths = [chunk_file(chunk_dir, cfg, ks) for ks in chunks]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    return paths


def _members_per_set(cfg: Config) -> int:
    return len(cfg.sweep.weight_decay) * cfg.sweep.n_seeds


def _progress_bar(cfg: Config, chunks: list, results: list, progress: bool | None):
    """The tqdm bar over members, started at the members of the resumed chunks."""
    per_set = _members_per_set(cfg)
    return tqdm(
        total=per_set * cfg.sweep.n_reps,
        initial=sum(len(chunks[i]) for i, r in enumerate(results) if r is not None) * per_set,
        unit="model",
        desc=f"bvsim {cfg.name}",
        disable=(not progress) if progress is not None else None,
        dynamic_ncols=True,
    )


def _keeper(cfg: Config, chunks, paths, results, stamp, stopper, bar):
    """``done(i, res)``: keep finished chunk ``i`` (in its file, stamped with the resume
    key and the root seed, when there is one); True when the precision target is met."""
    per_set = _members_per_set(cfg)

    def done(i, res) -> bool:
        if paths[i] is not None:
            save_atomic(paths[i], {**res, **stamp, "seed": np.int64(cfg.seed)})
        results[i] = kept(res, stored=paths[i] is not None)
        bar.update(len(chunks[i]) * per_set)
        if stopper is None:
            return False
        stop = stopper.add(i, res)
        bar.set_postfix_str(f"worst SE {stopper.worst_se:.3g} (target {stopper.target:g})")
        return stop

    return done


def train_sweep(
    cfg: Config,
    *,
    device: str = "cpu",
    n_jobs: int = 1,
    chunk_dir: str | Path | None = None,
    progress: bool | None = None,
    devices: list[str] | None = None,
) -> SweepResult:
    """Train every member of the design and gather the raw outputs.

    Parameters
    ----------
    cfg : Config
    device : str
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
    n_jobs : int
        joblib workers over chunks (each with one torch thread); -1 for all cores.
        On a CUDA device chunks run one after another in this process.
    chunk_dir : path, optional
        Where finished chunks are kept; chunks already there are loaded, not trained.
    progress : bool, optional
        Show a tqdm bar; None shows it only on a terminal.
    devices : list of str, optional
        Share the chunks dynamically among several devices at once, e.g.
        ``["cuda:0", "cuda:1", "cpu"]`` (one worker thread per entry; name ``cpu``
        twice for two CPU workers). A GPU takes many chunks per batch. Overrides
        ``device`` and ``n_jobs``.
    """
    cfg = checked_user_code(cfg)  # its files and code, unless checked as they are now
    dev, devices = resolve_sweep_devices(device, devices)  # dev: run.json's text
    device_type = chunk_device_type(dev, devices)
    test = make_test_set(cfg, user_code_checked(cfg).get("data.path"))  # the checked bytes
    chunks = chunk_list(cfg, device_type)
    if device_type == "cuda":
        n_jobs = 1  # one process drives the GPU; its chunks are large instead
    paths = _chunk_paths(cfg, chunks, chunk_dir)

    # With a run directory only the small per-member fields of a chunk stay in memory;
    # the large ones are read back from its file one weight decay at a time.
    stopper = PrecisionStop(cfg, test, chunks) if cfg.sweep.target_se > 0 else None
    results: list[dict | None] = [None] * len(chunks)
    ignored, inputs, stamp = {}, None, {}
    if chunk_dir is not None:
        types = "+".join(sorted({device_type_of(d) for d in dev.split(",")}))
        ignored, inputs, stamp = resume(cfg, types, test, chunks, paths, results, stopper)
    resumed = [r is not None for r in results]
    todo = [i for i, r in enumerate(resumed) if not r]
    if stopper is not None and stopper.stopped:
        todo = []
    if devices:
        n_jobs = len(devices)
    elif device_type != "cuda":  # capped by the chunks to train, the cores and memory
        n_jobs = worker_count(cfg, n_jobs, len(todo), device_type)
    t0 = time.perf_counter()
    with settings_restored(), _progress_bar(cfg, chunks, results, progress) as bar:
        done = _keeper(cfg, chunks, paths, results, stamp, stopper, bar)
        if todo and devices:
            run_on_devices(cfg, test, chunks, todo, devices, done)
        elif todo:
            run_jobs(cfg, test, chunks, todo, n_jobs, dev, done)
    wall = time.perf_counter() - t0
    if stopper is not None:  # keep the first K sets only, as a run with n_reps = K
        chunks, paths, results, resumed = (
            x[: stopper.n_chunks] for x in (chunks, paths, results, resumed)
        )
    info = {
        "device": dev,
        "n_jobs": n_jobs,
        "n_chunks": len(chunks),
        "chunk_size": int(len(chunks[0])),
        "n_chunks_resumed": int(sum(resumed)),
        "n_sets": (n_sets := int(sum(len(ks) for ks in chunks))),
        "n_sets_resumed": int(sum(len(ks) for ks, r in zip(chunks, resumed, strict=True) if r)),
        "chunks_ignored": ignored,
        "train_seconds": wall,
        **_chunk_times(results),
        **_versions(),
        "n_members": _members_per_set(cfg) * n_sets,
    }
    if chunk_dir is not None:  # what the chunks were computed from (the resume key)
        info["inputs_key"], info["inputs"] = stamp["key"], inputs
    if stopper is not None:
        info |= stopper.info()
    return _sweep_result(cfg, test, chunks, paths, results, info)


def _sweep_result(cfg: Config, test: TestSet, chunks, paths, results, info) -> SweepResult:
    """The sweep's result; with chunk files, its large arrays read back from them, from
    files that still carry the resume key (``info["inputs_key"]``) only."""
    n_reps = int(sum(len(ks) for ks in chunks))
    stamp = info.get("inputs_key")
    gathered = _gather(cfg, results, paths, n_reps, stamp)
    if paths[0] is None:
        y_test = draw_training_sets(cfg, test, np.arange(n_reps)).y_test
    else:  # read back chunk by chunk
        y_test = TestLabels(cfg, test, chunks, paths, stamp)
    return SweepResult(
        cfg=cfg,
        test=test,
        weight_decay=np.asarray(cfg.sweep.weight_decay, dtype=np.float64),
        log_steps=results[0]["log_steps"],
        params0=results[0]["params0"],
        y_test=y_test,
        info=info,
        **gathered,
    )
