"""Resuming a run: the stamp every chunk file carries (the resume key of
:mod:`bvsim.run.fingerprint`), the checks a chunk file must pass to be reused, and
what the main process keeps of a finished chunk."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..config import BvsimWarning, Config, config_key
from .chunks import STEP_FIELD, STORED_FIELDS, fields_in, member_fields
from .fingerprint import input_fingerprints, inputs_key
from .precision import PrecisionStop
from .store import load_arrays, save_atomic

__all__ = [
    "ChunkCheck",
    "adopt_legacy_chunks",
    "kept",
    "load_chunks",
    "resume",
    "resume_key",
    "warn_unused_chunk_files",
]


def resume_key(
    cfg: Config, devices: str | None = None, data: str | None = None
) -> tuple[dict, dict]:
    """What the chunks depend on (:mod:`bvsim.run.fingerprint`; ``devices`` the device
    types that train, ``data`` the digest of the CSV bytes they train on), and the stamp
    each chunk file carries: its hash and the parts as JSON."""
    inputs = input_fingerprints(cfg, devices, data)
    return inputs, {"key": inputs_key(inputs), "inputs": json.dumps(inputs, sort_keys=True)}


def kept(res: dict, stored: bool) -> dict:
    """What the main process keeps of a finished chunk: everything, or (``stored``:
    the chunk is in its file) all but the large per-member fields, whose trailing
    shapes and dtypes it notes instead."""
    if not stored:
        return res
    stored_fields = fields_in(res, STORED_FIELDS)
    kept = {k: v for k, v in res.items() if k not in (*stored_fields, "y_test")}
    kept["stored"] = {k: (res[k].shape[2:], res[k].dtype) for k in stored_fields}
    return kept


class ChunkCheck:
    """What a chunk file must hold to be reused: the resume key it was written under,
    its training sets ``ks``, the root seed, and arrays of the right shapes and dtypes
    (the same trailing shapes and dtypes in every chunk)."""

    def __init__(self, cfg: Config, n_test: int, stamp: dict):
        self.stamp, self.seed, self.n_test = stamp, cfg.seed, n_test
        self.n_wd, self.n_seeds = len(cfg.sweep.weight_decay), cfg.sweep.n_seeds
        self.fields = member_fields(cfg)
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
            if STEP_FIELD in self.fields:  # (n_log, n_test, ...) like pred at each step
                steps_shape = res[STEP_FIELD].shape[3:]
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


def load_chunks(results: list, paths: list[Path], chunks: list, expect: ChunkCheck,
                 stopper: PrecisionStop | None = None) -> dict:  # fmt: skip
    """Fill ``results[i]`` from chunk file ``paths[i]`` where it holds what ``expect``
    says chunk ``i`` should (and show it to ``stopper``); the others stay None (to be
    trained). Returns the number of chunk files ignored by reason, and says so (a
    :class:`~bvsim.config.BvsimWarning`)."""
    ignored: dict[str, int] = {}
    for i, path in enumerate(paths):
        if (res := load_arrays(path)) is None:
            problem = "unreadable or corrupt" if path.exists() else None
        else:
            problem = expect.problem(res, chunks[i])
            if problem is None:
                results[i] = kept(res, stored=True)
                if stopper is not None:
                    stopper.add(i, res)
        if problem is not None:
            ignored[problem] = ignored.get(problem, 0) + 1
    if ignored:
        why = "; ".join(f"{n} {problem}" for problem, n in ignored.items())
        warnings.warn(
            f"{sum(ignored.values())} chunk file(s) in {paths[0].parent} "
            f"ignored and recomputed: {why}",
            BvsimWarning,
            stacklevel=2,
        )
    return ignored


def resume(
    cfg: Config,
    device_types: str,
    test,
    chunks: list,
    paths: list[Path],
    results: list,
    stopper: PrecisionStop | None = None,
) -> tuple[dict, dict, dict]:
    """Fill ``results`` from the chunk files at ``paths`` that hold what chunk ``i``
    should (:func:`load_chunks`), after adopting those an older bvsim wrote
    (:func:`adopt_legacy_chunks`); say which files there are not used
    (:func:`warn_unused_chunk_files`). ``device_types``: those that train
    (``cpu``, ``cpu+cuda``); ``test``: the run's test set (its data digest keys the
    chunks). Returns the chunk files ignored by reason, the resume key's parts and the
    stamp each chunk file carries."""
    inputs, stamp = resume_key(cfg, device_types, test.data_digest)
    adopt_legacy_chunks(cfg, chunks, paths, inputs, stamp, len(test.f))
    check = ChunkCheck(cfg, len(test.f), stamp)
    ignored = load_chunks(results, paths, chunks, check, stopper)
    warn_unused_chunk_files(chunks, paths, results)
    return ignored, inputs, stamp


def adopt_legacy_chunks(cfg: Config, chunks: list, paths: list[Path], inputs: dict, stamp: dict,
                        n_test: int) -> int:  # fmt: skip
    """Move the chunk files of this very configuration that a bvsim before the chunk key
    wrote (under ``chunks/<config key>/``, stamped with the configuration's key, which
    holds ``sweep.n_reps``) to where this one keeps them (``chunks/<chunk key>/``),
    stamped anew: exactly those the older bvsim would have resumed (same inputs, same
    training sets, same shapes), so an interrupted run resumes across the upgrade.
    Others stay where they are. Returns how many were adopted."""
    new_dir = paths[0].parent
    old_dir = new_dir.parent / config_key(cfg)
    if old_dir == new_dir or not old_dir.is_dir():
        return 0
    legacy = inputs | {"config": config_key(cfg)}
    check = ChunkCheck(
        cfg, n_test, {"key": inputs_key(legacy), "inputs": json.dumps(legacy, sort_keys=True)}
    )
    adopted = 0
    for ks, path in zip(chunks, paths, strict=True):
        old = old_dir / path.name
        if path.exists() or (res := load_arrays(old)) is None or check.problem(res, ks):
            continue
        save_atomic(path, {**res, **stamp})
        old.unlink()
        adopted += 1
    if not any(old_dir.iterdir()):
        old_dir.rmdir()
    return adopted


def warn_unused_chunk_files(chunks: list, paths: list[Path], results: list) -> None:
    """Warn about chunk files in the run directory that this run does not use: in its
    chunk folder, files of other training-set ranges (from a run with another
    ``sweep.n_reps``, or chunks sized for another device type: a chunk is reused only
    whole); beside it, other chunk folders (an older bvsim's, whose chunks this
    configuration could not adopt: :func:`adopt_legacy_chunks`). Says how many of the
    run's training sets come from chunk files."""
    here = paths[0].parent
    used = {path.name for path in paths}
    other = sorted(p.name for p in here.glob("sets_*.npz") if p.name not in used)
    folders = sorted(d.name for d in here.parent.iterdir() if d.is_dir() and d != here)
    folders = [d for d in folders if any((here.parent / d).glob("sets_*.npz"))]
    if not (other or folders):
        return
    parts = []
    if other:
        parts.append(
            f"{here} holds {len(other)} chunk file(s) of other training-set ranges "
            f"({other[0]}{', ...' if len(other) > 1 else ''}: from a run with another "
            "sweep.n_reps, or sized for another device type), not used: a chunk is reused "
            "only whole"
        )
    if folders:
        parts.append(
            f"{here.parent} holds chunk folder(s) of an older bvsim or another "
            f"configuration ({', '.join(folders)}), not used"
        )
    k = sum(len(ks) for ks, r in zip(chunks, results, strict=True) if r is not None)
    n = sum(len(ks) for ks in chunks)
    warnings.warn(
        "; ".join(parts) + f". {k} of this run's {n} training sets come from chunk "
        f"files, {n - k} to train (deleting the unused files is safe; --overwrite "
        "removes every chunk file)",
        BvsimWarning,
        stacklevel=3,
    )
