"""Run the Monte Carlo design: chunks of training sets, each trained as one batch.

A chunk holds training sets ``ks``; it trains every member (weight decay, k, seed)
of those sets as one batched program. Chunks run through joblib (the backend is left
to the caller's ``joblib.parallel_config``) and, when a run directory is given, each
finished chunk is written there atomically so that re-running resumes.
"""

from __future__ import annotations

import collections
import json
import platform
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import Config, config_key
from ..data.generator import TestSet, draw_training_sets, make_test_set
from ..train.devices import STOP, resolve_device, setup_process
from ..train.engine import TrainSpec
from ..train.mlp import train_batched
from .chunks import auto_chunk_size, chunk_list, engine_members, members_of
from .fingerprint import input_fingerprints, inputs_key
from .precision import PrecisionStop
from .preflight import worker_count
from .store import ChunkStack, load_arrays, read_part, save_atomic

__all__ = ["SweepResult", "TestLabels", "train_sweep"]

#: Per-member arrays a chunk returns, with their trailing shapes.
_MEMBER_FIELDS = (
    "pred",
    "train_error",
    "weight_norm",
    "curve_train",
    "curve_test",
    "diverged",
    "diverged_step",
)

#: The per-member fields that grow with the test set; with a run directory they stay in
#: the chunk files and are read one weight decay at a time (:class:`bvsim.run.store.ChunkStack`).
_STORED_FIELDS = ("pred", "curve_train", "curve_test")

#: The test predictions at every logged step, (n_wd, n_sets, S, n_log, n_test[, C]):
#: a per-member field of a chunk only with ``train.decompose_steps`` (stored like ``pred``).
_STEP_FIELD = "pred_steps"


def _member_fields(cfg: Config) -> tuple[str, ...]:
    """The per-member fields of this configuration's chunks."""
    return _MEMBER_FIELDS + ((_STEP_FIELD,) if cfg.train.decompose_steps else ())


def _fields_in(res: dict) -> tuple[str, ...]:
    """The per-member fields a chunk result holds."""
    return _MEMBER_FIELDS + ((_STEP_FIELD,) if _STEP_FIELD in res else ())


def _train_chunk(cfg: Config, test: TestSet, ks: np.ndarray, device: str) -> dict:
    """Train all members of training sets ``ks``; arrays shaped (n_wd, n_sets, S, ...)."""
    setup_process(1)
    t0 = time.perf_counter()
    spec = TrainSpec.from_config(cfg)
    n_wd, n_sets, n_seeds = len(cfg.sweep.weight_decay), len(ks), cfg.sweep.n_seeds
    members, (_, a, s) = members_of(cfg, test, ks)
    if cfg.model.kind == "sklearn":
        from ..train.sklearn import fit_estimators, random_states

        res = fit_estimators(cfg, **members, seeds=random_states(cfg, ks, n_seeds)[a, s])
    elif cfg.model.kind == "module":
        from ..train.module import batched_spec, make_members, pack_members, train_modules

        modules = make_members(cfg, ks, n_seeds, spec.dtype)
        plain = batched_spec(cfg)
        if plain is not None:  # a Linear stack: the batched engine, from its own weights
            init = pack_members(modules).reshape(n_sets, n_seeds, -1)[a, s]
            res = train_batched(plain, **members, init=init, device=device)
            res.params = np.zeros((len(a), 0), dtype=np.float32)  # no weight histograms
        else:
            chosen = [modules[i * n_seeds + j] for i, j in zip(a, s, strict=True)]
            res = train_modules(spec, chosen, **members, device=device)
    else:
        res = train_batched(spec, **members, **engine_members(cfg, spec, ks, a, s), device=device)
    if cfg.train.decompose_steps and res.pred_steps is None:  # no steps: the final one
        res.pred_steps = res.pred[:, None]
    shape = (n_wd, n_sets, n_seeds)
    out = {
        name: getattr(res, name).reshape(*shape, *getattr(res, name).shape[1:])
        for name in _member_fields(cfg)
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


class TestLabels:
    """The noisy test labels of every training set, shape (n_reps, n_test), read chunk
    by chunk from the chunk files (``y_test``), so the main process never holds them
    all. A chunk file written before bvsim kept them there has them drawn again from
    the seed tree (a set's labels do not depend on the chunk that draws them).

    ``read(points)`` gives the labels at test points ``points`` of every set (the last
    block read is kept, read-only); ``np.asarray`` reads them all.
    """

    def __init__(self, cfg: Config, test: TestSet, chunks: list[np.ndarray], paths: list):
        self.cfg, self.test, self.chunks, self.paths = cfg, test, chunks, paths
        self.shape = (int(sum(len(ks) for ks in chunks)), len(test.f))
        self.ndim = 2
        self._cached: tuple[tuple, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def blocks(self, points: slice = slice(None)):
        """The labels of each chunk's training sets at ``points``, in set order."""
        for ks, path in zip(self.chunks, self.paths, strict=True):
            try:
                yield read_part(path, "y_test", (slice(None), points))
            except KeyError:  # an older chunk file without the labels
                labels = draw_training_sets(self.cfg, self.test, ks).y_test
                yield np.ascontiguousarray(labels[:, points])

    def iter_blocks(self):
        """C-order pieces of the whole array (for streaming it to a file)."""
        return self.blocks()

    def read(self, points: slice = slice(None)) -> np.ndarray:
        key = (points.start, points.stop, points.step)
        if self._cached is None or self._cached[0] != key:
            full = np.concatenate(list(self.blocks(points)))
            full.setflags(write=False)
            self._cached = (key, full)
        return self._cached[1]

    @property
    def dtype(self) -> np.dtype:
        return self.read(slice(0, 1)).dtype

    def __getitem__(self, key):
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        full = np.concatenate(list(self.blocks()))
        return full if dtype is None else full.astype(dtype)


@dataclass
class SweepResult:
    """Raw outputs of a sweep (numpy), before estimation.

    Attributes
    ----------
    cfg : Config
    test : TestSet
    weight_decay : ndarray of shape (n_wd,)
    pred : ndarray or ChunkStack of shape (n_wd, n_reps, n_seeds, n_test[, n_classes])
        Test predictions; NaN for diverged members. With a run directory this is a
        :class:`bvsim.run.store.ChunkStack`: ``pred[i]`` reads weight decay ``i`` from the
        chunk files, ``np.asarray(pred)`` reads all.
    train_error, weight_norm : ndarray of shape (n_wd, n_reps, n_seeds)
    curve_train, curve_test : ndarray or ChunkStack of shape (n_wd, n_reps, n_seeds, n_log)
    log_steps : ndarray of shape (n_log,)
    diverged : ndarray of bool, shape (n_wd, n_reps, n_seeds)
    diverged_step : ndarray of int, shape (n_wd, n_reps, n_seeds)
    params0 : ndarray of float32, shape (n_wd, n_seeds, n_params)
        Final parameters of training set 0 (for weight histograms).
    pred_steps : ndarray or ChunkStack of shape (n_wd, n_reps, n_seeds, n_log, n_test[, C])
        The test predictions after each of ``log_steps`` (``train.decompose_steps``;
        else None), NaN from a member's divergence on; the last step is ``pred``.
    y_test : ndarray or TestLabels of shape (n_reps, n_test)
        The noisy test labels of each training set (with a run directory a
        :class:`TestLabels`, drawn again from the seed tree when read).
    info : dict
        Timings, device, versions: what ``run.json`` records.
    """

    cfg: Config
    test: TestSet
    weight_decay: np.ndarray
    pred: np.ndarray | ChunkStack
    train_error: np.ndarray
    weight_norm: np.ndarray
    curve_train: np.ndarray | ChunkStack
    curve_test: np.ndarray | ChunkStack
    log_steps: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    params0: np.ndarray
    y_test: np.ndarray | TestLabels
    info: dict = field(default_factory=dict)
    pred_steps: np.ndarray | ChunkStack | None = None


def _split_chunk(res: dict, sizes: list[int]) -> list[dict]:
    """Split a merged chunk result back into its units (along the training-set axis)."""
    parts, start = [], 0
    total = sum(sizes)
    for size in sizes:
        stop = start + size
        part = {name: res[name][:, start:stop] for name in _fields_in(res)}
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


def _run_on_devices(cfg, test, chunks, todo, devices, done) -> None:
    """Train units ``todo`` on several devices at once, one thread per device.

    Each thread takes the next units from a shared queue as soon as it is free, so a
    fast device does more of the work: a CPU thread one unit at a time, a GPU thread
    as many as fill a GPU-sized chunk (trained as one batch, saved unit by unit).
    ``done(i, result)`` returns True to stop handing out units.
    Torch releases the GIL inside its kernels, so CPU threads run in parallel.
    """
    pending = collections.deque(todo)
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop: list[bool] = []
    per_gpu = max(1, auto_chunk_size(cfg, "cuda") // max(len(chunks[0]), 1))

    def worker(dev, finished):
        take = per_gpu if dev.startswith("cuda") else 1
        try:
            while not errors and not STOP.is_set():
                with lock:
                    if stop:  # the precision target is met: take no more units
                        return
                    batch = [pending.popleft() for _ in range(min(take, len(pending)))]
                if not batch:
                    return
                ks = np.concatenate([chunks[i] for i in batch])
                res = _train_chunk(cfg, test, ks, dev)
                parts = _split_chunk(res, [len(chunks[i]) for i in batch])
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


def _kept(res: dict, stored: bool) -> dict:
    """What the main process keeps of a finished chunk: everything, or (``stored``:
    the chunk is in its file) all but the large per-member fields, whose trailing
    shapes and dtypes it notes instead."""
    if not stored:
        return res
    stored_fields = _STORED_FIELDS + ((_STEP_FIELD,) if _STEP_FIELD in res else ())
    kept = {k: v for k, v in res.items() if k not in (*stored_fields, "y_test")}
    kept["stored"] = {k: (res[k].shape[2:], res[k].dtype) for k in stored_fields}
    return kept


class _Expected:
    """What a chunk file must hold to be reused: the resume key it was written under,
    its training sets ``ks``, the root seed, and arrays of the right shapes and dtypes
    (the same trailing shapes and dtypes in every chunk)."""

    def __init__(self, cfg: Config, n_test: int, stamp: dict):
        self.stamp, self.seed, self.n_test = stamp, cfg.seed, n_test
        self.n_wd, self.n_seeds = len(cfg.sweep.weight_decay), cfg.sweep.n_seeds
        self.fields = _member_fields(cfg)
        self.signature = None  # of the first chunk accepted

    def _changed(self, res: dict) -> str:
        try:
            old = json.loads(str(res["inputs"]))
            new = json.loads(self.stamp["inputs"])
            names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        except (KeyError, ValueError, AttributeError):
            names = []
        return f" ({', '.join(names)} changed)" if names else ""

    def problem(self, res: dict, ks: np.ndarray) -> str | None:
        """Why chunk file contents ``res`` cannot stand for training sets ``ks`` (None:
        they can)."""
        if "key" not in res:
            return "written by an older bvsim (no resume key stored)"
        if str(res["key"]) != self.stamp["key"]:
            return "of an earlier configuration/data" + self._changed(res)
        if "ks" not in res or not np.array_equal(res["ks"], ks):
            return "holding other training sets than their names say (copied or renamed)"
        if "seed" not in res or int(res["seed"]) != self.seed:
            return "of another root seed"
        try:
            lead = (self.n_wd, len(ks), self.n_seeds)
            for name in self.fields:
                arr = res[name]
                kind = {"diverged": "b", "diverged_step": "iu"}.get(name, "f")
                if arr.shape[:3] != lead or arr.dtype.kind not in kind:
                    return f"with a wrong shape or dtype of {name}"
            n_log = len(res["log_steps"])
            bad_test = res["pred"].shape[3] != self.n_test
            bad_curve = any(res[c].shape[3:] != (n_log,) for c in ("curve_train", "curve_test"))
            if _STEP_FIELD in self.fields:  # (n_log, n_test, ...) like pred at each step
                steps_shape = res[_STEP_FIELD].shape[3:]
                bad_curve |= steps_shape != (n_log, *res["pred"].shape[3:])
            bad_y = "y_test" in res and res["y_test"].shape != (len(ks), self.n_test)
            bad_p0 = ks[0] == 0 and res["params0"].shape[:2] != (self.n_wd, self.n_seeds)
            float(res["seconds"]), str(res["device"])
        except (KeyError, IndexError, TypeError, ValueError):
            return "with missing or malformed arrays"
        if bad_test or bad_curve or bad_y or bad_p0:
            return "with wrong shapes"
        signature = [(n, res[n].shape[3:], res[n].dtype.str) for n in self.fields]
        signature.append(("log_steps", tuple(res["log_steps"].tolist())))
        if self.signature is None:
            self.signature = signature
        elif signature != self.signature:
            return "with shapes or dtypes unlike the other chunks"
        return None


def _load_chunks(results: list, paths: list[Path], chunks: list, expect: _Expected,
                 stopper: PrecisionStop | None = None) -> dict:  # fmt: skip
    """Fill ``results[i]`` from chunk file ``paths[i]`` where it holds what ``expect``
    says chunk ``i`` should (and show it to ``stopper``); the others stay None (to be
    trained). Returns the number of chunk files ignored by reason, and says so on
    stderr."""
    ignored: dict[str, int] = {}
    for i, path in enumerate(paths):
        if (res := load_arrays(path)) is None:
            problem = "unreadable or corrupt" if path.exists() else None
        else:
            problem = expect.problem(res, chunks[i])
            if problem is None:
                results[i] = _kept(res, stored=True)
                if stopper is not None:
                    stopper.add(i, res)
        if problem is not None:
            ignored[problem] = ignored.get(problem, 0) + 1
    if ignored:
        why = "; ".join(f"{n} {problem}" for problem, n in ignored.items())
        print(
            f"bvsim: warning: {sum(ignored.values())} chunk file(s) in {paths[0].parent} "
            f"ignored and recomputed: {why}",
            file=sys.stderr,
        )
    return ignored


def _resolve_devices(device: str, devices: list[str] | None):
    """(devices, the device text for run.json, the device type chunks are sized for)."""
    if devices:
        devices = [str(resolve_device(d)) for d in devices]
        return devices, ",".join(devices), "cpu"  # CPU-sized units; a GPU merges several
    dev = str(resolve_device(device))
    return None, dev, torch.device(dev).type


def _resume_key(cfg: Config) -> tuple[dict, dict]:
    """What the chunks depend on (:mod:`bvsim.run.fingerprint`), and the stamp each
    chunk file carries: its hash and the parts as JSON."""
    inputs = input_fingerprints(cfg)
    return inputs, {"key": inputs_key(inputs), "inputs": json.dumps(inputs, sort_keys=True)}


def _run_jobs(cfg, test, chunks, todo, n_jobs, dev, done) -> None:
    """Train chunks ``todo`` through joblib (the caller's backend), in order; stop
    handing them out once ``done(i, result)`` says so (a met precision target)."""
    parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator")
    jobs = parallel(joblib.delayed(_train_chunk)(cfg, test, chunks[i], dev) for i in todo)
    for i, res in zip(todo, jobs, strict=False):
        if done(i, res):
            break
    with warnings.catch_warnings():  # chunks past the target are cancelled
        warnings.simplefilter("ignore", UserWarning)
        jobs.close()


def _gather(cfg: Config, results: list[dict], paths: list, n_reps: int) -> dict:
    """The per-member arrays of all chunks: small ones concatenated, large ones left in
    the chunk files behind a :class:`ChunkStack`."""
    gathered = {}
    for name in _member_fields(cfg):
        if name in results[0]:
            gathered[name] = np.concatenate([r[name] for r in results], axis=1)
        else:  # stays in the chunk files
            tail, dtype = results[0]["stored"][name]
            shape = (*results[0]["diverged"].shape[:1], n_reps, *tail)
            gathered[name] = ChunkStack(paths, name, shape, dtype)
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
    devices, dev, device_type = _resolve_devices(device, devices)
    test = make_test_set(cfg)
    chunks = chunk_list(cfg, device_type)
    if device_type == "cuda":
        n_jobs = 1  # one process drives the GPU; its chunks are large instead
    n_members = len(cfg.sweep.weight_decay) * cfg.sweep.n_reps * cfg.sweep.n_seeds
    paths: list[Path | None] = [None] * len(chunks)
    if chunk_dir is not None:
        chunk_dir = Path(chunk_dir) / config_key(cfg)
        chunk_dir.mkdir(parents=True, exist_ok=True)
        paths = [chunk_dir / f"sets_{ks[0]:06d}_{ks[-1]:06d}.npz" for ks in chunks]

    # With a run directory only the small per-member fields of a chunk stay in memory;
    # the large ones are read back from its file one weight decay at a time.
    stopper = PrecisionStop(cfg, test, chunks) if cfg.sweep.target_se > 0 else None
    results: list[dict | None] = [None] * len(chunks)
    ignored: dict[str, int] = {}
    inputs, stamp = _resume_key(cfg) if chunk_dir is not None else (None, {})
    if chunk_dir is not None:
        expect = _Expected(cfg, len(test.f), stamp)
        ignored = _load_chunks(results, paths, chunks, expect, stopper)
    resumed = [r is not None for r in results]
    todo = [i for i, r in enumerate(resumed) if not r]
    if stopper is not None and stopper.stopped:
        todo = []
    if devices:
        n_jobs = len(devices)
    elif device_type != "cuda":  # capped by the chunks to train, the cores and memory
        n_jobs = worker_count(cfg, n_jobs, len(todo), device_type)
    t0 = time.perf_counter()
    per_set = n_members // cfg.sweep.n_reps
    bar = tqdm(
        total=n_members,
        initial=sum(len(chunks[i]) for i, r in enumerate(results) if r is not None) * per_set,
        unit="model",
        desc=f"bvsim {cfg.name}",
        disable=(not progress) if progress is not None else None,
        dynamic_ncols=True,
    )

    def done(i, res) -> bool:
        """Keep finished chunk ``i``; True when the precision target is met."""
        if paths[i] is not None:
            save_atomic(paths[i], {**res, **stamp, "seed": np.int64(cfg.seed)})
        results[i] = _kept(res, stored=paths[i] is not None)
        bar.update(len(chunks[i]) * per_set)
        if stopper is None:
            return False
        stop = stopper.add(i, res)
        bar.set_postfix_str(f"worst SE {stopper.worst_se:.3g} (target {stopper.target:g})")
        return stop

    with bar:
        if todo and devices:
            _run_on_devices(cfg, test, chunks, todo, devices, done)
        elif todo:
            _run_jobs(cfg, test, chunks, todo, n_jobs, dev, done)
    wall = time.perf_counter() - t0
    if stopper is not None:  # keep the first K sets only, as a run with n_reps = K
        chunks, paths, results, resumed = (
            x[: stopper.n_chunks] for x in (chunks, paths, results, resumed)
        )
    n_reps = int(sum(len(ks) for ks in chunks))
    n_members = n_members // cfg.sweep.n_reps * n_reps

    gathered = _gather(cfg, results, paths, n_reps)
    if chunk_dir is None:
        y_test = draw_training_sets(cfg, test, np.arange(n_reps)).y_test
    else:  # drawn again chunk by chunk when read
        y_test = TestLabels(cfg, test, chunks, paths)
    info = {
        "device": dev,
        "n_jobs": n_jobs,
        "n_chunks": len(chunks),
        "chunk_size": int(len(chunks[0])),
        "n_chunks_resumed": int(sum(resumed)),
        "chunks_ignored": ignored,
        "train_seconds": wall,
        **_chunk_times(results),
        **_versions(),
        "n_members": n_members,
    }
    if chunk_dir is not None:  # what the chunks were computed from (the resume key)
        info["inputs_key"], info["inputs"] = stamp["key"], inputs
    if stopper is not None:
        info |= stopper.info()
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
