"""What a chunk of a sweep depends on, as one key: the resume key.

A chunk file is reused only when it was written for the same *inputs*: the resolved
configuration (its TOML text, :func:`bvsim.config.config_key`), the bytes of a CSV data
file, the source of every user plugin (truth, module factory, sklearn estimator) and
bvsim's own version. :func:`input_fingerprints` lists them (for ``run.json`` and for
saying what changed); :func:`inputs_key` hashes them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
from pathlib import Path

from ..config import Config

__all__ = ["file_digest", "input_fingerprints", "inputs_key", "plugin_source"]


def file_digest(path) -> str:
    """``sha256:<hex>`` of the bytes of ``path`` (a path or an importlib resource)."""
    h = hashlib.sha256()
    with path.open("rb") if hasattr(path, "open") else open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def _is_file_spec(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def plugin_source(spec: str) -> str:
    """What identifies the code ``spec`` ('file.py:name' or 'pkg.mod:name') names: a
    file's bytes; for a module, its distribution's name and version and the bytes of the
    module file (the module is already imported: the configuration checked it)."""
    where, _, _name = spec.rpartition(":")
    if _is_file_spec(where):
        return file_digest(Path(where).expanduser().resolve())
    module = importlib.import_module(where)
    top = where.split(".")[0]
    dists = sorted(set(importlib.metadata.packages_distributions().get(top, [])))
    parts = [f"{d}=={importlib.metadata.version(d)}" for d in dists]
    file = getattr(module, "__file__", None)
    if file and Path(file).is_file():
        parts.append(file_digest(Path(file)))
    return " ".join(parts) or "unversioned"


def input_fingerprints(cfg: Config) -> dict[str, str]:
    """Everything a chunk's numbers depend on, by name: ``config`` (the hash of the
    resolved configuration), ``bvsim`` (its version) and, where used, ``data.path``,
    ``data.truth``, ``model.module`` and ``model.estimator``."""
    from .._version import __version__
    from ..config import config_key

    out = {"config": config_key(cfg), "bvsim": __version__}
    d, m = cfg.data, cfg.model
    if d.source == "csv" and d.path:
        from ..data.csv import _open

        out["data.path"] = file_digest(_open(d.path))
    if d.source != "csv" and ":" in d.truth:
        out["data.truth"] = plugin_source(d.truth)
    if m.kind == "module" and m.module:
        out["model.module"] = plugin_source(m.module)
    if m.kind == "sklearn" and m.estimator:
        out["model.estimator"] = plugin_source(m.estimator)
    return out


def inputs_key(fingerprints: dict[str, str]) -> str:
    """The resume key: a hash of :func:`input_fingerprints`."""
    text = json.dumps(fingerprints, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
