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

from .config import ConfigError

__all__ = ["is_reference", "load_object"]


def is_reference(text: str) -> bool:
    """True for ``"module:name"`` / ``"file.py:name"`` (not a built-in name)."""
    return ":" in text


@functools.cache
def _load(spec: str):
    where, _, name = spec.rpartition(":")
    if where.endswith(".py") or "/" in where or "\\" in where:
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
