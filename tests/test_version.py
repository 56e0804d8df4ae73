"""The version is written once, in bvsim/_version.py; pyproject.toml reads it."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import bvsim

ROOT = Path(bvsim.__file__).parent.parent


def test_pyproject_reads_the_version_from_the_package():
    """No second number in pyproject.toml: setuptools takes the attribute it names."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module, _, name = attr.rpartition(".")
    assert getattr(importlib.import_module(module), name) == bvsim.__version__
