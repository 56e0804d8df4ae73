"""Load a user's callable or class named as ``"package.module:name"`` or ``"file.py:name"``.

Used for a user's truth function (``data.truth``), module factory (``model.module``)
and scikit-learn style estimator (``model.estimator``). Every problem is a
:class:`ConfigError` naming the key and what is wrong, raised when the configuration is
loaded, before any compute. A user's file or module is executed again when it changed,
and the digest of the bytes executed (:func:`executed_source`) is what the resume key
records, so the code that trains is the code the key names.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import site
import sys
import sysconfig
from pathlib import Path

from .schema import ConfigError

__all__ = ["absolute", "executed_source", "file_digest", "is_file_spec", "load_object"]


def is_file_spec(where: str) -> bool:
    """Whether the part before ':' of a plugin spec names a file (else a module)."""
    return where.endswith(".py") or "/" in where or "\\" in where


def _stamp(path) -> tuple[int, int] | None:
    """(mtime in ns, size) of ``path``; None where it cannot be read."""
    try:
        st = Path(path).stat()
    except (OSError, TypeError):
        return None
    return st.st_mtime_ns, st.st_size


#: The pip name of a module whose distribution is named otherwise (for the hint when
#: it is not installed).
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}

#: Per plugin (a 'file.py' spec's path, or a module's name), the stamp and the
#: ``sha256:`` digest of the file this process executed last.
_EXECUTED: dict[str, tuple[tuple[int, int] | None, str]] = {}


def file_digest(path) -> str:
    """``sha256:<hex>`` of the bytes of ``path`` (a path or an importlib resource): the
    digest the resume key records for data files and plugin files."""
    h = hashlib.sha256()
    with path.open("rb") if hasattr(path, "open") else open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def _module(where: str):
    """Module ``where`` as its file is now: imported, and executed again (``reload``)
    when it was imported before bvsim first loaded it (a user's session may have
    imported it, then edited it) or its file changed since (mtime, size); a module of
    an installed library (standard library, site-packages) is imported only."""
    imported_before = where in sys.modules
    module = importlib.import_module(where)
    file = getattr(module, "__file__", None)
    if not file or not Path(file).is_file():
        return module  # a namespace package or a built-in module: no file to follow
    stamp = _stamp(file)
    seen = _EXECUTED.get(where)
    if seen is None or seen[0] != stamp or stamp is None:
        digest = file_digest(Path(file))
        # executed again unless this call just imported it (it ran as it is now) or it
        # belongs to an installed library (not edited)
        if (seen is not None or imported_before) and not _installed(file):
            module = importlib.reload(module)
        _EXECUTED[where] = (stamp, digest)
    return module


def _installed(file: str) -> bool:
    """Whether ``file`` belongs to the standard library or an installed distribution
    (under site-packages), rather than to a user's own code."""
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    path = Path(file).resolve()
    return any(path.is_relative_to(Path(r).resolve()) for r in roots if r)


def executed_source(spec: str) -> str | None:
    """``sha256:`` digest of the plugin file of ``spec`` as this process executed it
    (after :func:`load_object` brought it up to date); None for a module without a
    file."""
    where = spec.rpartition(":")[0]
    key = str(Path(where).expanduser().resolve()) if is_file_spec(where) else where
    entry = _EXECUTED.get(key)
    return entry[1] if entry else None


def _load(spec: str):
    """The object ``spec`` names, from its file as it is now: a file or module is
    executed again once it changes (mtime, size), so the code that runs is the code
    whose digest the resume key records (:func:`executed_source`)."""
    where, _, name = spec.rpartition(":")
    if is_file_spec(where):
        path = Path(where).expanduser().resolve()
        module = _load_file(path, _stamp(path))
    else:
        module = _module(where)
    obj = module
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@functools.cache
def _load_file(path: Path, stamp):
    """A plugin file executed as a module of its own (again for every new stamp)."""
    if not path.is_file():
        raise FileNotFoundError(f"file {path} not found")
    digest = file_digest(path)
    mod_name = f"_bvsim_user_{abs(hash(str(path)))}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[mod_name] = module
    module_spec.loader.exec_module(module)
    _EXECUTED[str(path)] = (stamp, digest)
    return module


def absolute(spec: str, base: Path | None = None) -> str:
    """``spec`` with a relative file path made absolute against ``base`` (default: the
    current directory; 'f.py:g' -> '/cwd/f.py:g'), so a saved configuration names the
    same file from any directory; a module name as is."""
    where, sep, name = spec.rpartition(":")
    if not sep or not is_file_spec(where) or Path(where).expanduser().is_absolute():
        return spec
    return f"{((base or Path()) / Path(where).expanduser()).resolve()}:{name}"


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
        hint = ""
        missing = getattr(err, "name", None)
        if isinstance(err, ModuleNotFoundError) and missing and missing == where.split(".")[0]:
            _, _, name = spec.rpartition(":")
            local = Path(f"{where.replace('.', '/')}.py")
            if local.is_file():  # a file of the user's, named as if it were installed
                bare = key.rpartition(": ")[2]  # the key without the message's prefix
                hint = f"; for the file {str(local)!r} here, write {bare} = '{local}:{name}'"
            elif missing in _DISTRIBUTIONS:
                hint = (
                    f"; {missing!r} is not installed in this Python ({sys.executable}): "
                    f"`{sys.executable} -m pip install {_DISTRIBUTIONS[missing]}`"
                )
            else:
                hint = (
                    f"; no module {missing!r} in this Python ({sys.executable}): install the "
                    "package that provides it, or name a file of yours as 'file.py:name'"
                )
        raise ConfigError(f"{key} = {spec!r}: cannot import {where!r} ({err}){hint}") from None
    except AttributeError:
        raise ConfigError(f"{key} = {spec!r}: {where!r} has no attribute {name!r}") from None
    except Exception as err:  # the user's module raised while importing
        raise ConfigError(
            f"{key} = {spec!r}: importing {where!r} failed: {type(err).__name__}: {err}"
        ) from None
