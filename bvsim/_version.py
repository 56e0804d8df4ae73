"""The package version, written only here: pyproject.toml reads it
(``dynamic = ["version"]``, ``[tool.setuptools.dynamic]``)."""

__version__ = "0.2.0"
