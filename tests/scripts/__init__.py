"""Tests of the scripts under scripts/, each loaded as a module by :func:`load_script`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).parents[2] / "scripts"


def load_script(relative: str, name: str | None = None) -> ModuleType:
    """Import ``scripts/<relative>`` (run its top level) as module ``name`` (default:
    the file's stem)."""
    path = SCRIPTS / relative
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
