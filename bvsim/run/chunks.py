"""Chunks: a run's sizes, how the members of a sweep are cut into batched programs, and
the one place the flat member index of a chunk is laid out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..config import Config, chunk_key
from ..data.csv import n_test_rows
from ..data.generator import TestSet, draw_training_sets
from ..task import task_for
from ..train.devices import device_type_of
from ..train.engine import n_logged_steps
from ..train.trainers import ModelSizes, model_sizes

__all__ = [
    "MEMBER_FIELDS",
    "STEP_FIELD",
    "STORED_FIELDS",
    "RunSizes",
    "auto_chunk_size",
    "chunk_device_type",
    "chunk_file",
    "chunk_list",
    "fields_in",
    "gpu_batch_units",
    "member_fields",
    "member_grid",
    "members_of",
    "run_sizes",
]

#: Target number of parameters (all members together) in one chunk. On a CPU this keeps
#: a chunk's parameters and optimizer state within a few MiB of cache; a GPU needs
#: thousands of members in flight to fill its cores.
_CHUNK_PARAMS = {"cpu": 1_000_000, "cuda": 256_000_000}
_CHUNK_MEMBERS = {"cpu": (8, 2048), "cuda": (256, 65536)}
#: Members per chunk of a kind trained outside torch (one fit each): chunks then only
#: spread the fits over the workers.
_FIT_MEMBERS = 64
#: Most activations (members x points x layer width) one chunk's forward pass holds:
#: a large training or test set makes chunks smaller, so a worker's memory stays
#: bounded (2**24 float32 values = 64 MiB a layer on a CPU).
_CHUNK_ACTIVATIONS = {"cpu": 2**24, "cuda": 2**30}


@dataclasses.dataclass(frozen=True)
class RunSizes:
    """The numbers a one-axis run's arrays grow with, decided here once: what the disk
    (:mod:`bvsim.run.disk`) and memory (:mod:`bvsim.run.memory`) estimates count.

    ``n_test`` is the test split of a CSV file (its rows, :func:`n_test_rows`), else
    ``data.n_test``; ``n_out`` the models' output width (:meth:`bvsim.task.Task.n_out`);
    ``n_log`` the entries of a chunk's ``log_steps`` (one for closed-form ridge and an
    estimator, which have no steps); ``model`` one member's :class:`ModelSizes`.
    """

    n_wd: int
    n_reps: int
    n_seeds: int
    n_train: int
    n_test: int
    dim: int
    n_out: int
    n_log: int
    model: ModelSizes

    @property
    def n_members(self) -> int:
        return self.n_wd * self.n_reps * self.n_seeds


def run_sizes(cfg: Config, model: ModelSizes | None = None) -> RunSizes:
    """The :class:`RunSizes` of ``cfg``; one member's from ``model`` (by default
    :func:`model_sizes` of the configured kind)."""
    d, sw, t = cfg.data, cfg.sweep, cfg.train
    model = model_sizes(cfg) if model is None else model
    no_steps = t.solver == "closed_form" or not model.in_torch
    return RunSizes(
        n_wd=len(sw.weight_decay),
        n_reps=sw.n_reps,
        n_seeds=sw.n_seeds,
        n_train=d.n_train,
        n_test=n_test_rows(cfg) if d.source == "csv" else d.n_test,
        dim=d.dim,
        n_out=task_for(cfg).n_out(cfg),
        n_log=1 if no_steps else n_logged_steps(t.steps, t.log_every),
        model=model,
    )


def chunk_device_type(device: str, devices: list[str] | None = None) -> str:
    """The device type a sweep's chunks are sized for (:func:`auto_chunk_size`): that
    of the resolved ``device``, or ``cpu`` with several ``devices`` at once (CPU-sized
    units; a GPU thread merges several, :func:`gpu_batch_units`)."""
    return "cpu" if devices else device_type_of(device)


def member_grid(n_wd: int, n_sets: int, n_seeds: int) -> tuple[np.ndarray, ...]:
    """The one place the flat member index is laid out.

    Member ``i`` of a chunk is (weight decay ``w``, training set ``a``, seed ``s``)
    in row-major order over (n_wd, n_sets, n_seeds): a per-member array of shape
    (members, ...) reshapes to (n_wd, n_sets, n_seeds, ...).

    Returns
    -------
    w, a, s : ndarray of int, each of shape (members,)
    """
    w, a, s = np.meshgrid(np.arange(n_wd), np.arange(n_sets), np.arange(n_seeds), indexing="ij")
    return w.ravel(), a.ravel(), s.ravel()


def auto_chunk_size(cfg: Config, device_type: str = "cpu", sizes: ModelSizes | None = None) -> int:
    """Training sets per chunk: the configured value, or sized by one member's
    parameters and activations (``sizes``, by default :func:`model_sizes` of the
    configured kind) for the device type (``"cpu"`` or ``"cuda"``); never by the number
    of workers, and never by ``sweep.n_reps`` but to cut it at n_reps: the chunks of a
    run are the first chunks of a run with more sets, which reuses them
    (:func:`bvsim.config.chunk_key`)."""
    if cfg.sweep.chunk_size:
        return min(cfg.sweep.chunk_size, cfg.sweep.n_reps)
    sizes = model_sizes(cfg) if sizes is None else sizes
    per_set = len(cfg.sweep.weight_decay) * cfg.sweep.n_seeds
    if not sizes.in_torch:  # one fit per member: chunks only spread the work
        return int(np.clip(_FIT_MEMBERS // per_set, 1, cfg.sweep.n_reps))
    n_params, width = max(sizes.n_params, 1), sizes.width
    low, high = _CHUNK_MEMBERS[device_type]
    members = int(np.clip(_CHUNK_PARAMS[device_type] // n_params, low, high))
    points = max(cfg.data.n_train, cfg.data.n_test)  # n_test: an estimate for a CSV
    # the inputs (points x dim a member) count like a layer's activations: a linear
    # model with many features holds little else
    width = max(width, cfg.data.dim)
    members = min(members, max(1, _CHUNK_ACTIVATIONS[device_type] // (points * width)))
    return int(np.clip(members // per_set, 1, cfg.sweep.n_reps))


def gpu_batch_units(cfg: Config, unit: int) -> int:
    """Units of ``unit`` training sets that a GPU thread of a several-device sweep
    trains as one batch: as many as fill a GPU-sized chunk, sized for ``cuda`` as if
    ``sweep.chunk_size`` were 0 (there ``sweep.chunk_size`` sizes the units, the
    pieces handed out and saved, not a GPU's batch); at least 1."""
    auto = dataclasses.replace(cfg, sweep=dataclasses.replace(cfg.sweep, chunk_size=0))
    return max(1, auto_chunk_size(auto, "cuda") // max(unit, 1))


def chunk_list(cfg: Config, device_type: str = "cpu") -> list[np.ndarray]:
    """The training sets of each chunk, in seed-tree order."""
    size = auto_chunk_size(cfg, device_type)
    return [np.arange(a, min(a + size, cfg.sweep.n_reps)) for a in range(0, cfg.sweep.n_reps, size)]


def chunk_file(chunk_dir: str | Path, cfg: Config, ks) -> Path:
    """Where the chunk of training sets ``ks`` is kept: ``chunk_dir/<chunk key>/``
    (:func:`bvsim.config.chunk_key`: shared by runs that differ only in
    ``sweep.n_reps``)."""
    return Path(chunk_dir) / chunk_key(cfg) / f"sets_{ks[0]:06d}_{ks[-1]:06d}.npz"


def members_of(cfg: Config, test: TestSet, ks) -> tuple[dict, tuple[np.ndarray, ...]]:
    """What every trainer takes for the members of training sets ``ks``, one row per
    member in :func:`member_grid` order: ``x``, ``y``, ``x_test``, ``y_test`` and
    ``weight_decay``; and the grid ``(w, a, s)`` itself."""
    wd = np.asarray(cfg.sweep.weight_decay, dtype=np.float64)
    sets = draw_training_sets(cfg, test, ks)
    w, a, s = member_grid(len(wd), len(ks), cfg.sweep.n_seeds)
    members = {
        "x": sets.x[a],
        "y": sets.y[a],
        "x_test": test.x,
        "y_test": sets.y_test[a],
        "weight_decay": wd[w],
    }
    return members, (w, a, s)


#: Per-member arrays a chunk returns, with their trailing shapes.
MEMBER_FIELDS = (
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
STORED_FIELDS = ("pred", "curve_train", "curve_test")

#: The test predictions at every logged step, (n_wd, n_sets, S, n_log, n_test[, C]):
#: a per-member field of a chunk only with ``train.decompose_steps`` (stored like ``pred``).
STEP_FIELD = "pred_steps"


def member_fields(cfg: Config) -> tuple[str, ...]:
    """The per-member fields of this configuration's chunks."""
    return MEMBER_FIELDS + ((STEP_FIELD,) if cfg.train.decompose_steps else ())


def fields_in(res: dict, among: tuple[str, ...] = MEMBER_FIELDS) -> tuple[str, ...]:
    """The per-member fields a chunk result holds: ``among`` (every one, or
    :data:`STORED_FIELDS`: those its chunk file stores), then :data:`STEP_FIELD` when
    the result has it."""
    return among + ((STEP_FIELD,) if STEP_FIELD in res else ())
