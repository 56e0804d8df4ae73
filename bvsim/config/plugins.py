"""Load a user's callable or class named as ``"package.module:name"`` or ``"file.py:name"``.

Used for a user's truth function (``data.truth``) and a user's scikit-learn style
estimator (``model.estimator``). Every problem is a :class:`ConfigError` naming the
key and what is wrong, raised when the configuration is loaded, before any compute.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from pathlib import Path

from .schema import ConfigError

__all__ = ["absolute", "load_object"]


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _load(spec: str):
    """The object ``spec`` names; a file is loaded again once it changes (mtime, size)."""
    where = spec.rpartition(":")[0]
    stamp = None
    if _is_file(where):
        try:
            st = Path(where).expanduser().resolve().stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            pass
    return _load_cached(spec, stamp)


@functools.cache
def _load_cached(spec: str, stamp):
    where, _, name = spec.rpartition(":")
    if _is_file(where):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"file {path} not found")
        mod_name = f"_bvsim_user_{abs(hash(str(path)))}"
        module_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def absolute(spec: str) -> str:
    """``spec`` with a relative file path made absolute ('f.py:g' -> '/cwd/f.py:g'), so a
    saved configuration names the same file from any directory; a module name as is."""
    where, sep, name = spec.rpartition(":")
    if not sep or not _is_file(where) or Path(where).expanduser().is_absolute():
        return spec
    return f"{Path(where).expanduser().resolve()}:{name}"


def load_object(spec: str, key: str):
    """The object ``spec`` names, or a ConfigError for key ``key`` saying why not."""
    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name:
        raise ConfigError(f"{key} = {spec!r}: expected 'package.module:name' or 'file.py:name'")
    try:
        return _load(spec)
    except ConfigError:
        raise
    except (ImportError, FileNotFoundError) as err:
        raise ConfigError(f"{key} = {spec!r}: cannot import {where!r} ({err})") from None
    except AttributeError:
        raise ConfigError(f"{key} = {spec!r}: {where!r} has no attribute {name!r}") from None
    except Exception as err:  # the user's module raised while importing
        raise ConfigError(
            f"{key} = {spec!r}: importing {where!r} failed: {type(err).__name__}: {err}"
        ) from None
