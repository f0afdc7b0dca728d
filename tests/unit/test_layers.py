"""The package layout is the design's map: lower layers never import higher ones (the
packages of ``src/shipyard``, and the server's own), and no two modules import each other,
directly or around a circle.

Only imports that run count: those under ``if TYPE_CHECKING:`` are annotations. Imports
inside functions count for the layers (they run, later) but not for cycles (Python
resolves them after both modules loaded).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

SERVER_LAYERS = [
    ("shipyard.server.deps", "shipyard.server.http"),
    ("shipyard.server.stores",),
    ("shipyard.server.runs",),
    ("shipyard.server.observe", "shipyard.server.processes.gc_tuning"),
    ("shipyard.server.routes",),
    ("shipyard.server.console",),
    ("shipyard.server.app",),
    ("shipyard.server.processes", "shipyard.server"),
]
"""The server's layers, lowest first: a module may import its own layer and those above it
in this list, never one below. The most specific prefix names a module's layer."""


PACKAGE_LAYERS = [
    (
        "shipyard",
        "shipyard.errors",
        "shipyard.settings",
        "shipyard.secret_values",
        "shipyard.redact",
        "shipyard.lazy_exports",
        "shipyard.tracing",
        "shipyard.contracts",
        "shipyard.state",
        "shipyard.hitl",
        "shipyard.report",
    ),
    ("shipyard.store", "shipyard.llm", "shipyard.effects", "shipyard.notify"),
    ("shipyard.policy",),
    ("shipyard.sandbox",),
    ("shipyard.tools",),
    ("shipyard.context",),
    ("shipyard.agent",),
    ("shipyard.delivery",),
    ("shipyard.nodes", "shipyard.graph", "shipyard.probe_graphs"),
    ("shipyard.lifecycle",),
    ("shipyard.cli", "shipyard.server", "shipyard.evals"),
]
"""The packages of ``src/shipyard``, lowest first, by the same rule: the contracts and
plumbing; storage, models and notifications; the policy; the sandbox it configures; the
tools and checks run in it; run dependencies; the agent's aids; delivery; the graph's nodes;
driving runs; the entry points. Inside ``shipyard.server`` its own layers apply."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(p): p
    for p in SRC.joinpath("shipyard").rglob("*.py")
    if "examples" not in p.parts and "migrations" not in p.parts
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, name: str) -> str:
    """``from module import name``: the module ``name`` if it is one, else ``module``."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


def imports(module: str, *, top_level_only: bool, source: str | None = None) -> set[str]:
    """The shipyard modules ``module`` imports at run time (read from its file, or
    ``source``)."""
    tree = ast.parse(MODULES[module].read_text() if source is None else source)
    found: set[str] = set()

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other, nested)
                continue
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            counted = not (nested and top_level_only)
            if isinstance(child, ast.Import) and counted:
                found.update(a.name for a in child.names if a.name.startswith("shipyard"))
            elif isinstance(child, ast.ImportFrom) and counted and child.level == 0:
                source = child.module or ""
                if source.startswith("shipyard"):
                    found.update(_resolve(source, a.name) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return {m for m in found if m in MODULES and m != module}


def layer(module: str, layers: list[tuple[str, ...]] = SERVER_LAYERS) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


SERVER = sorted(m for m in MODULES if m.startswith("shipyard.server"))


@pytest.mark.parametrize("module", SERVER)
def test_server_module_imports_no_higher_layer(module: str) -> None:
    assert layer(module) >= 0, f"{module} is in no layer: add its package to SERVER_LAYERS"
    upward = sorted(m for m in imports(module, top_level_only=False) if layer(m) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_package_imports_no_higher_package(module: str) -> None:
    rank = layer(module, PACKAGE_LAYERS)
    assert rank >= 0, f"{module} is in no layer: add its package to PACKAGE_LAYERS"
    upward = sorted(
        m for m in imports(module, top_level_only=False) if layer(m, PACKAGE_LAYERS) > rank
    )
    assert not upward, f"{module} imports higher packages: {upward}"


def test_an_upward_import_is_caught() -> None:
    # The check itself: a store importing a route is seen, one under TYPE_CHECKING is not.
    planted = (
        "from typing import TYPE_CHECKING\n"
        "from shipyard.server.routes import threads\n"
        "if TYPE_CHECKING:\n    from shipyard.server.app import create_app\n"
        "def late():\n    from shipyard.server.runs.worker import WorkerPool\n"
    )
    seen = imports("shipyard.server.stores.threads", top_level_only=False, source=planted)
    assert seen == {"shipyard.server.routes.threads", "shipyard.server.runs.worker"}
    top = imports("shipyard.server.stores.threads", top_level_only=True, source=planted)
    assert top == {"shipyard.server.routes.threads"}
    assert layer("shipyard.server.stores.threads") < layer("shipyard.server.routes.threads")
    assert layer("shipyard.server.processes.gc_tuning") < layer("shipyard.server.app")
    assert layer("shipyard.server.processes.commands") > layer("shipyard.server.app")
    planted_tool = "from shipyard.nodes.inputs import policy_of\n"
    seen = imports("shipyard.tools.git", top_level_only=False, source=planted_tool)
    assert seen == {"shipyard.nodes.inputs"}
    assert layer("shipyard.tools.git", PACKAGE_LAYERS) < layer("shipyard.nodes", PACKAGE_LAYERS)


def _cycles() -> list[list[str]]:
    graph = {m: imports(m, top_level_only=True) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []
