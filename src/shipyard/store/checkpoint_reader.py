"""A thread's checkpoints read with plain psycopg: what LangGraph's ``aget_state_history``
and ``aget_state`` give, without compiling the graph (for ``shipyard show``, whose start-up
time is what a person waits for: the graph brings every node, the sandbox and the models).

The rows are those of LangGraph's Postgres saver (``checkpoints``, ``checkpoint_blobs``,
``checkpoint_writes``: ``store/saver.py`` writes exactly the stock saver's), read from the
root namespace as the saver reads them, and decoded by the checkpointer's own serializer
(``store/checkpoint_serde.py``). What LangGraph works out from the compiled graph is worked
out here from the checkpoint alone, by the rules of a ``StateGraph`` whose channels all keep
their last value (``state.RunState``):

* **values**: the checkpoint's channels (a value kept inline in the checkpoint, or the blob
  of the channel's version; an ``empty`` blob is no value) that are keys of the state, with
  the writes of the null task applied (the input of the step, e.g. a ``Command(update=…)``);
  the newest checkpoint (``latest``, as ``aget_state`` reads it) also with the writes the
  step's tasks already made (a node that finished before the process stopped);
* **next**: the nodes whose trigger channel (``branch:to:<node>``, or ``__start__`` for the
  input) holds a value at a newer version than the node last saw (``versions_seen``).

``tests/integration/test_cli_show.py`` compares both with LangGraph's own on real runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from shipyard.state import RunState

STATE_KEYS: tuple[str, ...] = tuple(RunState.__annotations__)
"""The state's channels, in the order LangGraph reads them into a snapshot's values."""

NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
"""LangGraph's task id for writes that are the input of a step, not a node's output."""

START = "__start__"
BRANCH_TO = "branch:to:"

_CHECKPOINTS = """SELECT checkpoint_id, checkpoint, metadata FROM checkpoints
    WHERE thread_id = %(thread)s AND checkpoint_ns = ''"""
_BLOBS = """SELECT channel, version, type, CASE WHEN channel = ANY(%(decode)s) THEN blob END
    FROM checkpoint_blobs WHERE thread_id = %(thread)s AND checkpoint_ns = ''"""
_WRITES = """SELECT checkpoint_id, task_id, task_path, idx, channel, type, blob
    FROM checkpoint_writes WHERE thread_id = %(thread)s AND checkpoint_ns = ''
    AND channel = ANY(%(decode)s) AND (task_id = %(null_task)s OR checkpoint_id = %(live)s)"""


class Decoder(Protocol):
    """What reads a stored value: the checkpointer's serializer (``make_serializer``)."""

    def loads_typed(self, data: tuple[str, bytes]) -> Any: ...


@dataclass(frozen=True)
class Saved:
    """One checkpoint of a thread, as a ``StateSnapshot`` shows it."""

    checkpoint_id: str
    metadata: dict[str, Any]
    created_at: str
    """The checkpoint's ``ts`` (ISO 8601)."""
    next: tuple[str, ...]
    """The nodes that run from this checkpoint, as its history shows them (for the newest,
    also a node that already finished but whose step wrote no checkpoint yet)."""
    values: dict[str, Any]


def history(
    conn: psycopg.Connection[Any], thread_id: str, serde: Decoder, channels: Collection[str]
) -> list[Saved]:
    """The thread's checkpoints, oldest first, each with the values of ``channels`` only
    (the rest are never decoded); ``[]`` when it has none."""
    rows = _rows(conn, _CHECKPOINTS + " ORDER BY checkpoint_id", thread_id)
    return _read(conn, thread_id, rows, serde, [k for k in STATE_KEYS if k in channels], None)


def latest(
    conn: psycopg.Connection[Any],
    thread_id: str,
    serde: Decoder,
    channels: Collection[str] = STATE_KEYS,
) -> Saved | None:
    """The thread's newest checkpoint as ``aget_state`` reads it (the writes its step already
    made applied), with the values of ``channels`` (default: all); ``None`` when it has
    none."""
    rows = _rows(conn, _CHECKPOINTS + " ORDER BY checkpoint_id DESC LIMIT 1", thread_id)
    live = rows[0][0] if rows else None
    found = _read(conn, thread_id, rows, serde, [k for k in STATE_KEYS if k in channels], live)
    return found[0] if found else None


class OnFirstUse:
    """A ``Decoder`` made on the first value it decodes: LangGraph's serializer brings
    ``langchain_core`` (a third of a second to import), which a checkpoint whose values are
    all kept inline (strings, numbers, ``None``) never needs."""

    def __init__(self, make: Callable[[], Decoder]) -> None:
        self._make = make
        self._made: Decoder | None = None

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """``data`` decoded by the serializer, made now if it was not yet."""
        if self._made is None:
            self._made = self._make()
        return self._made.loads_typed(data)


def _rows(conn: psycopg.Connection[Any], query: str, thread_id: str) -> list[Any]:
    try:
        return conn.execute(query, {"thread": thread_id}).fetchall()
    except psycopg.errors.UndefinedTable:  # no checkpointer ever set up on this database
        return []


def _read(
    conn: psycopg.Connection[Any],
    thread_id: str,
    rows: list[Any],
    serde: Decoder,
    keys: list[str],
    live: str | None,
) -> list[Saved]:
    if not rows:
        return []
    params = {"thread": thread_id, "decode": keys, "null_task": NULL_TASK_ID, "live": live}
    blobs = {(c, v): (t, b) for c, v, t, b in conn.execute(_BLOBS, params).fetchall()}
    writes: dict[str, list[Any]] = {}
    for row in sorted(conn.execute(_WRITES, params).fetchall(), key=_write_order):
        writes.setdefault(row[0], []).append(row)
    return [_saved(row, blobs, writes.get(row[0], []), serde, keys) for row in rows]


def _write_order(row: Any) -> tuple[bool, str, str, int]:
    """The null task's writes first (LangGraph applies them before the tasks'), then in the
    order a step applies its tasks' writes (``writes_sort_key``: path, task id, index)."""
    _, task_id, task_path, idx = row[:4]
    return (task_id != NULL_TASK_ID, task_path, task_id, idx)


def _saved(
    row: tuple[str, dict[str, Any], dict[str, Any]],
    blobs: dict[tuple[str, str], tuple[str, bytes | None]],
    writes: Iterable[Any],
    serde: Decoder,
    keys: list[str],
) -> Saved:
    checkpoint_id, checkpoint, metadata = row
    inline: dict[str, Any] = checkpoint.get("channel_values") or {}
    stored: dict[str, tuple[str, bytes | None]] = {}
    for channel, version in (checkpoint.get("channel_versions") or {}).items():
        type_, blob = blobs.get((channel, version), ("empty", None))
        if type_ != "empty":
            stored[channel] = (type_, blob)
    values: dict[str, Any] = {}
    for key in keys:  # a stored blob wins over an inline value, as the saver merges them
        if key in stored:
            values[key] = _decode(serde, *stored[key])
        elif key in inline:
            values[key] = inline[key]
    for *_, channel, type_, blob in writes:
        values[channel] = _decode(serde, type_, blob)
    return Saved(
        checkpoint_id=checkpoint_id,
        metadata=metadata,
        created_at=checkpoint["ts"],
        next=_next(checkpoint, inline.keys() | stored.keys()),
        values={k: values[k] for k in keys if k in values},
    )


def _decode(serde: Decoder, type_: str, blob: bytes | None) -> Any:
    return serde.loads_typed((type_, bytes(blob or b"")))


def _next(checkpoint: dict[str, Any], available: Collection[str]) -> tuple[str, ...]:
    """The nodes a step from ``checkpoint`` runs (LangGraph's ``prepare_next_tasks`` for a
    graph whose nodes each have one trigger channel): a node that never ran is triggered by
    any value in its channel, one that ran by a newer version than it saw."""
    versions: dict[str, Any] = checkpoint.get("channel_versions") or {}
    if not versions:
        return ()
    null_version = type(next(iter(versions.values())))()
    seen_by_node: dict[str, dict[str, Any]] = checkpoint.get("versions_seen") or {}
    nodes = []
    for channel in available:
        node = START if channel == START else channel.removeprefix(BRANCH_TO)
        if node == channel and channel != START:  # not a trigger
            continue
        seen = seen_by_node.get(node)
        if seen is None or versions.get(channel, null_version) > seen.get(channel, null_version):
            nodes.append(node)
    return tuple(sorted(nodes, key=lambda n: (n != START, n)))
