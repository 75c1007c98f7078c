"""The layout is the architecture: layers import downward only, no cycles, small modules.

docs/design.md draws the layers; this test keeps the code true to the drawing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mpreg"
MAX_MODULE_LINES = 400

# Top to bottom. A module may import from its own layer and any layer below it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("mpreg", "mpreg.cli", "mpreg.demo", "mpreg.testing"),
    ("mpreg.driver", "mpreg.dashboard"),
    ("mpreg.host",),
    ("mpreg.node",),
    ("mpreg.membership",),
    ("mpreg.actors",),
    ("mpreg.transport",),
    # The status snapshot is made of wire records (NodeStats), read by driver and dashboard.
    ("mpreg.protocol", "mpreg.status"),
    ("mpreg.errors", "mpreg.config", "mpreg.commands", "mpreg.tasks", "mpreg.processes"),
)

# Pure cores: events or values in, values out. They import no I/O layer at all.
PURE = (
    "mpreg.node.routing",
    "mpreg.driver.planner",
    "mpreg.driver.references",
    "mpreg.protocol",
    "mpreg.membership",
)
IO_LAYERS = (
    "mpreg.transport",
    "mpreg.node",
    "mpreg.driver",
    "mpreg.host",
    "mpreg.cli",
    "mpreg.actors",
)


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(name: str, path: Path) -> set[str]:
    """The mpreg modules ``name`` imports, at any depth of its code (lazy imports count)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    best = -1
    best_len = -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best >= 0, f"{module} is in no layer: add it to LAYERS and to docs/design.md"
    return best


def test_every_module_belongs_to_a_layer() -> None:
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_only(module: str) -> None:
    mine = _layer(module)
    upward = sorted(m for m in IMPORTS[module] if _layer(m) < mine)
    assert not upward, f"{module} (layer {mine}) imports from a layer above it: {upward}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(PURE)))
def test_pure_cores_import_no_io_layer(module: str) -> None:
    io = sorted(m for m in IMPORTS[module] if m.startswith(IO_LAYERS) and not m.startswith(PURE))
    assert not io, f"{module} is a pure core but imports {io}"


def test_there_is_no_import_cycle() -> None:
    # Package __init__ re-exports are edges too; a cycle through them still
    # makes import order matter.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(IMPORTS[module]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines: split it by job"
