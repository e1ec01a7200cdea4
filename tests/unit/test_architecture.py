"""The package's shape: layers as subpackages whose imports point one way, and no module too
long to read at one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mlflowcheck.docs import LAYERS as PACKAGE_LAYERS

PACKAGE = Path(__file__).resolve().parents[2] / "mlflowcheck"
#: Lowest first: a module may import from its own layer and the layers before it, never after.
LAYERS = [*PACKAGE_LAYERS, "cli"]
MAX_LINES = 350


def layer_of(module: str) -> str:
    """mlflowcheck.net.http -> net; mlflowcheck.cli and the entry points -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in LAYERS else "cli"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        found[".".join(relative.parts).removesuffix(".__init__")] = path
    return found


def imported(path: Path) -> set[str]:
    """Every mlflowcheck module this file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlflowcheck"):
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules())
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("mlflowcheck"))
    return names


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_only_from_its_own_layer_and_the_layers_below(module):
    mine = LAYERS.index(layer_of(module))
    upward = sorted(m for m in imported(modules()[module]) if m != "mlflowcheck" and LAYERS.index(layer_of(m)) > mine)
    assert not upward, f"{module} ({layer_of(module)}) imports from a higher layer: {upward}"


def test_no_module_imports_itself_back_in_a_circle():
    graph = {m: {i for i in imported(p) if i in modules() and i != m} for m, p in modules().items()}
    seen: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        seen[node] = "active"
        for nxt in graph[node]:
            assert seen.get(nxt) != "active", " -> ".join([*path, node, nxt])
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = "done"

    for module in graph:
        if module not in seen:
            visit(module, [])


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_is_short_enough_to_read(module):
    lines = len(modules()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}: split it by what it does)"
