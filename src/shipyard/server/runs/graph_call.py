"""How a queued run becomes a graph call, and what the call's results become: the config,
input or command and durability ``astream`` gets, the event name of each streamed part, and
the thread's outcome from the final snapshot (``server.execution`` drives the call)."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, StateSnapshot

from shipyard.server.http.encoding import to_jsonable
from shipyard.server.http.shapes import JsonObject, ThreadStatus
from shipyard.server.runs.queue import QueuedRun, ThreadOutcome
from shipyard.server.stores.checkpoints import checkpoint_ref
from shipyard.server.stores.graphs import RegisteredGraph

MODE_OF = {"messages-tuple": "messages"}
"""API stream mode → LangGraph stream mode where they differ."""


def thread_outcome(status: ThreadStatus, snapshot: StateSnapshot) -> ThreadOutcome:
    """The thread's status and cached state after a run stopped at ``snapshot``."""
    interrupts = {t.id: list(t.interrupts) for t in snapshot.tasks if t.interrupts}
    return ThreadOutcome(status, to_jsonable(snapshot.values), to_jsonable(interrupts))


def event_of(part: Any) -> tuple[str, Any]:
    """``(event name, data)`` of one ``astream`` item (``(mode, chunk)`` or, with
    subgraphs, ``(namespace, mode, chunk)``)."""
    if len(part) == 3:  # the subgraphs shape
        namespace, mode, chunk = part
        name = "|".join([mode, *namespace]) if namespace else mode
    else:
        mode, chunk = part
        name = mode
    if mode == "debug":
        chunk = _with_checkpoint_refs(chunk)
    return name, chunk


def _with_checkpoint_refs(chunk: Any) -> Any:
    """A ``debug`` event of type ``checkpoint`` as the official server sends it: its payload
    also names the checkpoint and its parent (``{thread_id, checkpoint_ns, checkpoint_id}``),
    which Studio reads."""
    if not isinstance(chunk, dict) or chunk.get("type") != "checkpoint":
        return chunk
    payload = chunk.get("payload")
    if not isinstance(payload, dict):
        return chunk
    refs = {
        "checkpoint": checkpoint_ref(payload.get("config")),
        "parent_checkpoint": checkpoint_ref(payload.get("parent_config")),
    }
    return {**chunk, "payload": {**payload, **refs}}


def default_durability(registered: RegisteredGraph) -> Literal["sync", "async"]:
    """The durability when the run asks for none."""
    # Shipyard's own graph has side effects in nodes: a crash after a node returns must
    # never repeat it (docs/architecture.md §4). Other graphs get the reference default.
    return "sync" if registered.pins_workspace else "async"


def run_config(run: QueuedRun, *, with_checkpoint: bool = True) -> RunnableConfig:
    """The config of the graph call: the request's config, the thread, the checkpoint asked
    for (``with_checkpoint``), and the run's metadata."""
    kwargs = run.kwargs
    given: JsonObject = dict(kwargs.get("config") or {})
    configurable = dict(given.get("configurable") or {})
    configurable["thread_id"] = run.thread_id
    configurable["run_id"] = run.run_id
    if with_checkpoint and kwargs.get("checkpoint_id"):
        configurable["checkpoint_id"] = kwargs["checkpoint_id"]
        configurable["checkpoint_ns"] = kwargs.get("checkpoint_ns") or ""
    metadata = {
        **(given.get("metadata") or {}),
        **run.metadata,
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "graph_id": kwargs.get("graph_id"),
        "assistant_id": run.assistant_id,
        "run_attempt": run.attempts,
    }
    config: RunnableConfig = {"configurable": configurable, "metadata": metadata}
    config["recursion_limit"] = int(given.get("recursion_limit") or 500)
    if given.get("tags"):
        config["tags"] = list(given["tags"])
    return config


def command_of(command: JsonObject) -> Command[Any]:
    """The request's ``command`` as LangGraph's ``Command``."""
    goto = command.get("goto")
    return Command(
        resume=command.get("resume"),
        update=command.get("update"),
        goto=goto if goto is not None else (),
    )


def has_checkpointer(registered: RegisteredGraph) -> bool:
    """Whether the served graph was compiled with a checkpointer."""
    saver = registered.graph.checkpointer
    return saver is not None and not isinstance(saver, bool)


__all__ = [
    "MODE_OF",
    "ThreadStatus",
    "command_of",
    "default_durability",
    "event_of",
    "has_checkpointer",
    "run_config",
    "thread_outcome",
]
