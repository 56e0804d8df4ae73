"""The package's imports point one way: each sub-package imports only from the layers
below it (or itself), and no modules import each other in a cycle.

Every import counts, including those inside functions, since a deferred import still
ties the two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bvsim

PACKAGE = Path(bvsim.__file__).parent

#: Layers from the bottom up: a module may import from its own layer and those below.
LAYERS = [
    {"_version"},
    {"config"},
    {"estimate"},
    {"task"},
    {"data"},
    {"train"},
    {"run"},
    {"io"},
    {"present"},
    {"api"},
    {"cli", "__main__", "__init__"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts)


def _layer(module: str) -> int:
    top = module.split(".")[0] or "__init__"
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"bvsim.{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> set[str]:
    """The bvsim modules ``path`` imports (names relative to the package)."""
    module = _module_name(path)
    package = module.split(".")[:-1]  # a module's package; for __init__, the package
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "bvsim":
                target = node.module.split(".")[1:]
            else:
                continue
            name = ".".join(target)
            for alias in node.names:  # `from . import compare` names a module
                sub = f"{name}.{alias.name}" if name else alias.name
                found.add(sub if _exists(sub) else name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "bvsim":
                    found.add(".".join(alias.name.split(".")[1:]))
    return {m for m in found if m} - {module}


def _exists(module: str) -> bool:
    base = PACKAGE.joinpath(*module.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        graph[name.removesuffix(".__init__") if name.endswith("__init__") else name] = {
            m.removesuffix(".__init__") for m in _imports(path)
        }
    return graph


def test_every_module_is_in_a_layer():
    for module in _graph():
        _layer(module)


def test_imports_point_down_the_layers():
    wrong = [
        f"bvsim.{a} ({_layer(a)}) imports bvsim.{b} ({_layer(b)})"
        for a, targets in _graph().items()
        for b in targets
        if _layer(b) > _layer(a)
    ]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    cycles = []

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif state.get(nxt) is None:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in graph:
        if state.get(node) is None:
            visit(node, [node])
    # no cycle is excused: a package's __init__ re-exports its modules, so a module
    # importing from its own package (`from . import x` where x is not a module, or
    # `from ..config import y` inside config/) runs while that __init__ is half done
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The walker resolves relative imports: a module importing upward is caught, and
    so is a cycle."""
    fake = tmp_path / "bvsim"
    (fake / "estimate").mkdir(parents=True)
    (fake / "present").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "estimate" / "__init__.py").write_text("")
    (fake / "present" / "__init__.py").write_text("")
    (fake / "estimate" / "bad.py").write_text("from ..present import figures\n")
    (fake / "present" / "figures.py").write_text("from ..estimate.bad import x\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    graph = _graph()
    assert "present.figures" in graph["estimate.bad"]
    assert _layer("present.figures") > _layer("estimate.bad")
    with pytest.raises(AssertionError, match="imports against the layer order"):
        test_imports_point_down_the_layers()
    with pytest.raises(AssertionError, match="estimate.bad -> present.figures"):
        test_no_import_cycles()


def test_the_checker_sees_a_module_importing_its_own_package(tmp_path, monkeypatch):
    """``config/__init__`` re-exports ``config.axis``, and ``config.axis`` imports a name
    from ``config``'s __init__: a cycle, not excused as a re-export."""
    fake = tmp_path / "bvsim"
    (fake / "config").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "config" / "__init__.py").write_text("from .axis import a\nb = 1\n")
    (fake / "config" / "axis.py").write_text("from . import b\na = 2\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", fake)
    with pytest.raises(AssertionError, match="config -> config.axis -> config"):
        test_no_import_cycles()
