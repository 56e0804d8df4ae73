"""What a chunk of a sweep depends on, as one key: the resume key.

A chunk file is reused only when it was written for the same *inputs*: the resolved
configuration (its TOML text but ``sweep.n_reps``, :func:`bvsim.config.chunk_key`:
training set k is the same in a run with more sets), the bytes of a CSV data
file, the source of every user plugin (truth, module factory, sklearn estimator) as
executed, the versions of bvsim, torch and numpy, and the device types that train.
:func:`input_fingerprints` lists them (for ``run.json`` and for saying what changed);
:func:`inputs_key` hashes them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json

import numpy as np
import torch

from .._version import __version__
from ..config import Config, chunk_key
from ..config.plugins import executed_source, is_file_spec, load_object
from ..data.csv import data_digest
from ..train.trainers import user_code

__all__ = ["input_fingerprints", "inputs_key", "plugin_source"]


def plugin_source(spec: str, key: str) -> str:
    """What identifies the code ``spec`` ('file.py:name' or 'pkg.mod:name') names: the
    digest of the plugin file's bytes as this process executed them (loading it again
    first if it changed: :func:`bvsim.config.plugins.load_object`); for a module, also
    its distribution's name and version."""
    where, _, _name = spec.rpartition(":")
    load_object(spec, key)
    digest = executed_source(spec)
    if is_file_spec(where):
        return digest
    top = where.split(".")[0]
    dists = sorted(set(importlib.metadata.packages_distributions().get(top, [])))
    parts = [f"{d}=={importlib.metadata.version(d)}" for d in dists]
    if digest:
        parts.append(digest)
    return " ".join(parts) or "unversioned"


def input_fingerprints(
    cfg: Config, devices: str | None = None, data: str | None = None
) -> dict[str, str]:
    """Everything a chunk's numbers depend on, by name: ``config`` (the hash of the
    resolved configuration but ``sweep.n_reps``), the versions of ``bvsim``, ``torch``
    and ``numpy`` (a new torch or numpy may round differently), ``devices`` (the device types that
    train, e.g. ``cpu`` or ``cpu+cuda``: a GPU rounds differently from a CPU) and,
    where used, ``data.path``, ``data.truth``, ``model.module`` and
    ``model.estimator``. ``data``: the digest of the CSV bytes the sweep trains on (its
    test set's, :attr:`bvsim.data.generator.TestSet.data_digest`); default: the file's
    as read now."""
    out = {
        "config": chunk_key(cfg),
        "bvsim": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    if devices:
        out["devices"] = devices
    d = cfg.data
    if d.source == "csv" and d.path:
        out["data.path"] = data or data_digest(cfg)
    if d.source != "csv" and ":" in d.truth:
        out["data.truth"] = plugin_source(d.truth, "data.truth")
    code = user_code(cfg)
    if code is not None:  # model.module or model.estimator
        key, spec = code
        out[key] = plugin_source(spec, key)
    return out


def inputs_key(fingerprints: dict[str, str]) -> str:
    """The resume key: a hash of :func:`input_fingerprints`."""
    text = json.dumps(fingerprints, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
