"""Writing a configuration back: TOML text (the run directory's ``config.toml``), the
hash that keys a run, and the key reference the README's table is made from."""

from __future__ import annotations

import dataclasses
import hashlib
import math

from .schema import SECTIONS, Config

__all__ = [
    "OMITTED_AT_DEFAULT",
    "chunk_key",
    "config_key",
    "describe_keys",
    "dumps_toml",
    "plain_value",
    "text_key",
]


_TOML_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_char(ch: str) -> str:
    """``ch`` inside a TOML basic string: control characters as \\uXXXX escapes."""
    return f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch


def _toml_key(k: str) -> str:
    """A TOML key: bare when it can be, else quoted."""
    bare = k and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in k)
    return k if bare else _toml_value(k)


def plain_value(v):
    """A value as Python's: numpy's scalars and arrays (from the Python API) through
    ``tolist`` (np.int64 -> int, an array -> a list; ``repr(np.float64(0.1))`` is not
    TOML), anything else as it is."""
    return v.tolist() if type(v).__module__ == "numpy" and hasattr(v, "tolist") else v


def _toml_value(v):
    v = plain_value(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return '"' + "".join(_TOML_ESCAPES.get(ch) or _toml_char(ch) for ch in v) + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


#: Keys added after run directories were first written, left out of ``config.toml``
#: (and so of the resume key) while they hold their default: an older run directory
#: keeps its configuration text, so rerunning it resumes instead of being refused.
OMITTED_AT_DEFAULT = {
    "model": {"module_trainer": "auto"},
    "train": {"decompose_steps": False},
    "sweep": {
        "target_se": 0.0,
        "design": "nested",
        "n_inputs": 1,
        "n_noise": 1,
        "axis_labels": [],
    },
}


def dumps_toml(cfg: Config) -> str:
    """The resolved configuration as TOML text that :func:`load_config` reads back
    (keys of :data:`OMITTED_AT_DEFAULT` only where they differ from the default)."""
    d = cfg.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in SECTIONS]
    for section in SECTIONS:
        omit = OMITTED_AT_DEFAULT.get(section, {})
        lines += ["", f"[{section}]"]
        lines += [
            f"{k} = {_toml_value(v)}"
            for k, v in d[section].items()
            if not (k in omit and v == omit[k])
        ]
    return "\n".join(lines) + "\n"


def _doc(f) -> str:
    allowed = getattr(f.metadata["check"], "allowed", None)
    doc = f.metadata["doc"]
    return f"{doc} (one of: {', '.join(allowed)})" if allowed else doc


def describe_keys() -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every key; used for the README's reference."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name in SECTIONS:
            continue
        out.append((f.name, f.metadata["kind"], repr(f.default), _doc(f)))
    for section, cls in SECTIONS.items():
        inst = cls()
        for f in dataclasses.fields(cls):
            out.append(
                (
                    f"{section}.{f.name}",
                    f.metadata["kind"],
                    repr(getattr(inst, f.name)),
                    _doc(f),
                )
            )
    return out


#: Keys a configuration's hash leaves out: ``sweep.target_se`` only decides how many of
#: the same chunks are used.
_NOT_IN_CONFIG_KEY = ("target_se",)
#: ... and what a chunk's hash also leaves out: training set k is drawn and trained the
#: same whatever ``sweep.n_reps`` is (the seed tree is per set; chunk boundaries do not
#: depend on it), so a run's chunks serve a run with more or fewer sets.
_NOT_IN_CHUNK_KEY = (*_NOT_IN_CONFIG_KEY, "n_reps")


def config_key(cfg: Config) -> str:
    """Hash of everything that affects the numbers (the name does not; nor does
    ``sweep.target_se``, which only decides how many of the same chunks are used)."""
    return text_key(dumps_toml(cfg))


def chunk_key(cfg: Config) -> str:
    """Hash of everything a chunk's numbers depend on: :func:`config_key` but for
    ``sweep.n_reps`` (how many training sets are drawn, not what set k is)."""
    return text_key(dumps_toml(cfg), chunks=True)


def text_key(toml_text: str, chunks: bool = False) -> str:
    """:func:`config_key` (``chunks``: :func:`chunk_key`) of the configuration whose
    :func:`dumps_toml` text is given."""
    left_out = _NOT_IN_CHUNK_KEY if chunks else _NOT_IN_CONFIG_KEY
    lines = toml_text.split("\n")[1:]  # drop `name = ...`
    text = "\n".join(line for line in lines if line.partition(" = ")[0] not in left_out)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
