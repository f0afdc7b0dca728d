"""Checkpoints for the API: LangGraph ``StateSnapshot`` → the reference's ``ThreadState``
JSON, checkpoint references ↔ run configs, and copying a thread's checkpoints.

``ThreadState``: ``{values, next, tasks, metadata, created_at, checkpoint, parent_checkpoint,
interrupts, checkpoint_id, parent_checkpoint_id}`` (the last two are legacy duplicates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.types import StateSnapshot
from psycopg_pool import AsyncConnectionPool

from shipyard.server.http.encoding import to_jsonable
from shipyard.server.http.shapes import Json, JsonObject

_TABLES = {
    "checkpoints": "checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata",
    "checkpoint_blobs": "checkpoint_ns, channel, version, type, blob",
    "checkpoint_writes": (
        "checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path"
    ),
}


def thread_config(
    thread_id: str, checkpoint: Mapping[str, Any] | str | None = None
) -> RunnableConfig:
    """The config addressing ``thread_id`` (at ``checkpoint``: an id or a ``Checkpoint``)."""
    configurable: JsonObject = {"thread_id": thread_id, "checkpoint_ns": ""}
    if isinstance(checkpoint, str):
        configurable["checkpoint_id"] = checkpoint
    elif checkpoint:
        for key in ("checkpoint_id", "checkpoint_ns", "checkpoint_map"):
            if checkpoint.get(key) is not None:
                configurable[key] = checkpoint[key]
    return {"configurable": configurable}


def checkpoint_ref(config: RunnableConfig | None) -> JsonObject | None:
    """``{thread_id, checkpoint_ns, checkpoint_id}`` of a config (``None`` without an id)."""
    if not config:
        return None
    conf = config.get("configurable", {})
    if conf.get("checkpoint_id") is None:
        return None
    return {
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
        "checkpoint_id": conf["checkpoint_id"],
    }


def task_dict(task: Any) -> JsonObject:
    """A ``PregelTask`` as the API shows it."""
    state = task.state
    nested = snapshot_dict(state) if isinstance(state, StateSnapshot) else None
    ref = checkpoint_ref(cast(RunnableConfig, state)) if isinstance(state, dict) else None
    return {
        "id": task.id,
        "name": task.name,
        "path": to_jsonable(list(task.path)),
        "error": repr(task.error) if task.error is not None else None,
        "interrupts": state_interrupts(task.interrupts),
        "checkpoint": ref,
        "state": nested,
        "result": to_jsonable(task.result),
    }


def snapshot_dict(snapshot: StateSnapshot) -> JsonObject:
    """A ``StateSnapshot`` as the API's ``ThreadState``."""
    checkpoint = checkpoint_ref(snapshot.config)
    parent = checkpoint_ref(snapshot.parent_config)
    return {
        "values": to_jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [task_dict(t) for t in snapshot.tasks],
        "metadata": to_jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": state_interrupts(snapshot.interrupts),
        "checkpoint_id": checkpoint and checkpoint["checkpoint_id"],
        "parent_checkpoint_id": parent and parent["checkpoint_id"],
    }


def empty_state() -> JsonObject:
    """The state of a thread that has no checkpoint yet (no checkpoint, so no metadata:
    ``null``, as the official server)."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": None,
        "created_at": None,
        "checkpoint": None,
        "parent_checkpoint": None,
        "interrupts": [],
        "checkpoint_id": None,
        "parent_checkpoint_id": None,
    }


def interrupts_by_task(snapshot: StateSnapshot) -> JsonObject:
    """``{task_id: [Interrupt]}`` of the pending interrupts (the ``Thread.interrupts`` field)."""
    return {t.id: state_interrupts(t.interrupts) for t in snapshot.tasks if t.interrupts}


def thread_interrupts(by_task: Mapping[str, Any] | None) -> JsonObject:
    """A thread's stored ``{task_id: [interrupt]}`` as the API shows it: each item as in
    thread state (however the row was written)."""
    return {task: state_interrupts(items) for task, items in (by_task or {}).items()}


async def copy_checkpoints(saver: AsyncPostgresSaver, source: str, target: str) -> None:
    """Copy every checkpoint, blob and write of thread ``source`` to thread ``target`` in
    one transaction (the Postgres saver has no ``acopy_thread``)."""
    pool = saver.conn
    if not isinstance(pool, AsyncConnectionPool):
        raise TypeError("copy_checkpoints needs a saver on a connection pool (open_checkpointer)")
    async with pool.connection() as conn, conn.transaction():
        for table, columns in _TABLES.items():
            await conn.execute(
                f"INSERT INTO {table} (thread_id, {columns}) "  # noqa: S608 - fixed names
                f"SELECT %s, {columns} FROM {table} WHERE thread_id = %s",
                (target, source),
            )


def state_interrupts(interrupts: Sequence[Any]) -> list[Json]:
    """Interrupts as thread state shows them: like the official server, without a null
    ``response_schema`` (stream ``__interrupt__`` items keep the key)."""
    items: list[Json] = to_jsonable(list(interrupts))
    for item in items:
        if isinstance(item, dict) and item.get("response_schema") is None:
            item.pop("response_schema", None)
    return items
