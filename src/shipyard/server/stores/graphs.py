"""The graphs a server serves: graph ids from ``langgraph.json`` compiled on the saver.

A ``langgraph.json`` maps graph ids to ``"./path/to/file.py:attr"`` or ``"package.module:attr"``;
the attribute is a ``StateGraph`` builder or a compiled graph (compiled without a checkpointer,
as ``langgraph dev`` wants). Without a file the packaged default is used: the ``shipyard``
graph and the probe graphs. Every graph gets a default assistant with a deterministic
UUIDv5 id, the same one the official server derives, so clients can hard-code it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

import shipyard
from shipyard.errors import UserInputError

NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
"""Namespace of default assistant ids: ``uuid5(NAMESPACE_GRAPH, graph_id)``."""

DEFAULT_GRAPHS: Mapping[str, str] = {
    "shipyard": "shipyard.graph:graph",
    "probe_chain": "shipyard.probe_graphs:chain",
    "probe_interrupt": "shipyard.probe_graphs:interrupt_graph",
    "probe_chat": "shipyard.probe_graphs:chat_graph",
}
"""Graph ids served when no ``langgraph.json`` is given."""


def default_assistant_id(graph_id: str) -> str:
    """The id of the default assistant of ``graph_id`` (UUIDv5, stable across servers)."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@dataclass
class RegisteredGraph:
    """One served graph.

    ``graph`` is compiled with the server's checkpointer. ``context_factory`` returns the
    ``Runtime`` context a run of this graph needs (``None`` for graphs that need none);
    ``pins_workspace`` says that time travel must rewind the run's git worktree first.
    """

    graph_id: str
    graph: Pregel[Any, Any, Any, Any]
    context_factory: Callable[[], Any] | None = None
    pins_workspace: bool = False

    @property
    def assistant_id(self) -> str:
        """The default assistant's id."""
        return default_assistant_id(self.graph_id)

    def context(self) -> Any:
        """The context for a run (``None`` when the graph declares none)."""
        return self.context_factory() if self.context_factory else None


@dataclass
class GraphRegistry:
    """Graph id → ``RegisteredGraph``; lookups by graph id or default assistant id."""

    graphs: dict[str, RegisteredGraph] = field(default_factory=dict)

    def __contains__(self, graph_id: object) -> bool:
        return graph_id in self.graphs

    def __iter__(self) -> Iterator[RegisteredGraph]:
        return iter(self.graphs.values())

    def ids(self) -> list[str]:
        """Registered graph ids, sorted."""
        return sorted(self.graphs)

    def get(self, graph_id: str) -> RegisteredGraph:
        """The graph ``graph_id``; ``KeyError`` when it is not registered."""
        return self.graphs[graph_id]

    def by_default_assistant(self, assistant_id: str) -> RegisteredGraph | None:
        """The graph whose default assistant has ``assistant_id``, if any."""
        return next((g for g in self if g.assistant_id == assistant_id), None)

    @classmethod
    def load(
        cls,
        saver: BaseCheckpointSaver[Any],
        specs: Mapping[str, str] | None = None,
        context_for: Callable[[Pregel[Any, Any, Any, Any]], Callable[[], Any] | None] = (
            lambda _g: None
        ),
        base: Path | None = None,
    ) -> GraphRegistry:
        """Import and compile every graph in ``specs`` (default ``DEFAULT_GRAPHS``).

        ``context_for(graph)`` chooses the context factory of each graph; relative file
        paths are resolved against ``base`` (the directory of ``langgraph.json``).
        """
        registry = cls()
        for graph_id, spec in (specs or DEFAULT_GRAPHS).items():
            compiled = compile_graph(import_graph(spec, base or Path.cwd()), saver)
            factory = context_for(compiled)
            registry.graphs[graph_id] = RegisteredGraph(
                graph_id, compiled, factory, pins_workspace=_has_workspace(compiled)
            )
        return registry


def read_langgraph_json(path: Path) -> dict[str, str]:
    """The ``graphs`` section of a ``langgraph.json``; a broken file names what is wrong."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserInputError(f"{path} does not exist") from None
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path} is not valid JSON: {err}") from None
    graphs = data.get("graphs") if isinstance(data, dict) else None
    if not isinstance(graphs, dict) or not graphs:
        raise UserInputError(f'{path}: expected a "graphs" object mapping graph ids to paths')
    bad = [k for k, v in graphs.items() if not isinstance(v, str) or ":" not in v]
    if bad:
        raise UserInputError(f'{path}: graph {bad[0]!r} must be "path/to/file.py:attribute"')
    return {str(k): str(v) for k, v in graphs.items()}


def import_graph(spec: str, base: Path) -> Any:
    """The object named by ``spec`` (``file.py:attr`` or ``module:attr``)."""
    target, _, attr = spec.rpartition(":")
    module = _import_file(base / target) if target.endswith(".py") else _import_module(target)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UserInputError(f"graph {spec!r}: {module.__name__} has no {attr!r}") from None


def compile_graph(obj: Any, saver: BaseCheckpointSaver[Any]) -> Pregel[Any, Any, Any, Any]:
    """``obj`` compiled (or re-bound) with ``saver`` as its checkpointer."""
    if isinstance(obj, StateGraph):
        return obj.compile(checkpointer=saver)
    if isinstance(obj, Pregel):
        return obj.copy({"checkpointer": saver})
    raise UserInputError(f"{obj!r} is neither a StateGraph nor a compiled graph")


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise UserInputError(f"cannot import graph module {name!r}: {err}") from None


def _import_file(path: Path) -> ModuleType:
    path = path.resolve()
    package = Path(shipyard.__file__).resolve().parent
    # A file of the installed package is imported by its module name, so its classes are the
    # same objects the rest of Shipyard (and the checkpoint allowlist) knows.
    if path.is_relative_to(package):
        parts = path.relative_to(package.parent).with_suffix("").parts
        return _import_module(".".join(parts))
    if not path.is_file():
        raise UserInputError(f"graph file {path} does not exist")
    name = f"shipyard_graph_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserInputError(f"cannot load graph file {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as a normal import would be: dataclasses and postponed
    # annotations (`from __future__ import annotations`) look the module up by name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _has_workspace(graph: Pregel[Any, Any, Any, Any]) -> bool:
    return "workspace" in graph.channels
