"""What a chunk of a sweep depends on, as one key: the resume key.

A chunk file is reused only when it was written for the same *inputs*: the resolved
configuration (its TOML text but ``sweep.n_reps``, :func:`bvsim.config.chunk_key`:
training set k is the same in a run with more sets), the bytes of a CSV data
file, the source of every user plugin (truth, module factory, sklearn estimator) as
executed, the versions of bvsim, torch and numpy, and the device types that train.
:func:`input_fingerprints` lists them (for ``run.json`` and for saying what changed);
:func:`inputs_key` hashes them. :func:`user_digests` is their part that the user's files
make (the digests :func:`bvsim.run.preflight.check_user_code` marks a configuration
checked with).
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

__all__ = ["input_fingerprints", "inputs_key", "plugin_digest", "plugin_source", "user_digests"]


def plugin_source(spec: str, key: str) -> str:
    """What identifies the code ``spec`` ('file.py:name' or 'pkg.mod:name') names: the
    digest of the plugin file's bytes as this process executed them (loading it again
    first if it changed: :func:`bvsim.config.plugins.load_object`); for a module, also
    its distribution's name and version."""
    where, _, _name = spec.rpartition(":")
    digest = plugin_digest(spec, key)
    if is_file_spec(where):
        return digest
    top = where.split(".")[0]
    dists = sorted(set(importlib.metadata.packages_distributions().get(top, [])))
    parts = [f"{d}=={importlib.metadata.version(d)}" for d in dists]
    if digest:
        parts.append(digest)
    return " ".join(parts) or "unversioned"


def plugin_digest(spec: str, key: str) -> str | None:
    """The digest of the plugin file of ``spec`` as this process executed it, loading
    it again first if it changed (:func:`bvsim.config.plugins.executed_source`; None
    for a module without a file)."""
    load_object(spec, key)
    return executed_source(spec)


def _plugins(cfg: Config) -> list[tuple[str, str]]:
    """(key, spec) of each user plugin ``cfg`` runs: data.truth, model.module or
    model.estimator."""
    found = []
    if cfg.data.source != "csv" and ":" in cfg.data.truth:
        found.append(("data.truth", cfg.data.truth))
    code = user_code(cfg)
    if code is not None:  # model.module or model.estimator
        found.append(code)
    return found


def user_digests(cfg: Config) -> dict[str, str | None]:
    """The digests of the user's files ``cfg`` names, by key: ``data.path`` (the CSV
    bytes as read now) and each plugin's file as executed (:func:`plugin_digest`); what
    a check of the configuration's files and code read, and (with a module plugin's
    distribution) what the resume key records of them."""
    out: dict[str, str | None] = {}
    if cfg.data.source == "csv" and cfg.data.path:
        out["data.path"] = data_digest(cfg)
    for key, spec in _plugins(cfg):
        out[key] = plugin_digest(spec, key)
    return out


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
    if cfg.data.source == "csv" and cfg.data.path:
        out["data.path"] = data or data_digest(cfg)
    for key, spec in _plugins(cfg):
        out[key] = plugin_source(spec, key)
    return out


def inputs_key(fingerprints: dict[str, str]) -> str:
    """The resume key: a hash of :func:`input_fingerprints`."""
    text = json.dumps(fingerprints, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
