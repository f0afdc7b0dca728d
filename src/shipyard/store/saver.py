"""``ShipyardSaver``: LangGraph's ``AsyncPostgresSaver`` with three changes on the write path.

* **Group commit.** Every write (a checkpoint, a task's writes, a statement sent along with
  ``carry``) goes through ``store.group_commit``: one transaction at a time for the whole
  process, carrying whatever was handed over meanwhile by any run, as one statement
  for all tables. A step's writes and its checkpoint (with ``sync`` durability it
  comes at once) go in one round trip and transaction; concurrent runs share theirs. The
  journal and audit rows queued behind so far ride in the same transaction: a checkpoint
  never lands without the rows of the step before it.
* **No lock around the pool.** The stock saver takes one lock around every cursor, which a
  single shared connection needs and a pool does not: reads never queue behind writes or
  each other.
* **A head known to be empty is not read.** Inside ``thread_known_empty(thread_id)`` (the
  server's worker, whose claim read the thread's newest checkpoint in the same statement and
  found none) the first read of that thread's latest checkpoint answers "none" without a
  round trip — the read LangGraph makes as a run starts on a new thread.
* **Values are serialized on the event loop.** The stock saver hands every ``aput_writes``
  and every ``aput`` with a non-primitive channel to ``asyncio.to_thread`` to serialize
  (and every checkpoint read to load its pending writes).
  Shipyard's state is small by design (artifacts by reference: a few KB per step), so the
  thread hop costs far more than the work it moves: measured here, ~0.2 ms per hop against
  ~10 µs of serializing, twice per step. The rows written are exactly the stock saver's
  (``tests/integration/test_store_saver.py`` compares them table by table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncCursor, sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from shipyard.store import jsonb
from shipyard.store.group_commit import GroupCommit, Rows

_INLINE = (str, int, float, bool)
"""Channel values the saver keeps inside the checkpoint row (with ``None``); every other
value is a row of ``checkpoint_blobs``."""


class _EmptyHead:
    """A thread known to have no checkpoint, until its head is first read."""

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id
        self.read = False

    def answers(self, config: RunnableConfig) -> bool:
        """Whether this read of ``config`` is the first read of the thread's head."""
        configurable = config.get("configurable") or {}
        if self.read or configurable.get("thread_id") != self.thread_id:
            return False
        if configurable.get("checkpoint_ns") or configurable.get("checkpoint_id"):
            return False
        self.read = True
        return True


_EMPTY_HEAD: ContextVar[_EmptyHead | None] = ContextVar("shipyard_empty_head", default=None)


@contextmanager
def thread_known_empty(thread_id: str) -> Iterator[None]:
    """Within this block (and the tasks it starts), the first ``aget_tuple`` of the latest
    root checkpoint of ``thread_id`` returns ``None`` without reading. Only for a caller that
    knows the thread has no checkpoint and that nothing writes one before that read (the
    server's worker: its claim read the head under the thread's lock, and a thread's
    checkpoints are written only by the one run that holds it)."""
    token = _EMPTY_HEAD.set(_EmptyHead(thread_id))
    try:
        yield
    finally:
        _EMPTY_HEAD.reset(token)


class ShipyardSaver(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` on a pool, with the write path of the module docstring."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, serde: JsonPlusSerializer, conninfo: str
    ) -> None:
        super().__init__(pool, serde=serde)
        self.conninfo = conninfo
        self.group = GroupCommit(pool, conninfo)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint: primitive channel values inline, the others as blobs of the
        versions this checkpoint created; with it the rows queued behind and the writes of
        the step's tasks still waiting."""
        configurable = config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable["checkpoint_ns"]
        inline: dict[str, Any] = {}
        blobs: dict[str, Any] = {}
        for channel, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blobs[channel], inline[channel] = value, True  # marker: the blob holds it
            elif value is None or isinstance(value, _INLINE):
                inline[channel] = value
            else:
                blobs[channel] = value
        versions = {channel: v for channel, v in new_versions.items() if channel in blobs}
        row = (
            thread_id,
            ns,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            # JSON text now (the objects may change once this returns), by the one jsonb
            # encoder: text Postgres cannot store (a check's output in ``feedback``) is
            # replaced instead of failing the write.
            jsonb.dumps({**checkpoint, "channel_values": inline}),
            jsonb.dumps(get_serializable_checkpoint_metadata(config, metadata)),
        )
        versioned = self._dump_blobs(thread_id, ns, blobs, versions) if versions else []
        await self.group.send(Rows(blobs=versioned, checkpoints=[row]))
        return _config(thread_id, ns, checkpoint["id"])

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against the checkpoint it ran from (with the step's
        checkpoint when it comes within ``group_commit.FLUSH_TURNS`` turns of the loop)."""
        configurable = config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable["checkpoint_ns"]
        # Special channels (errors, interrupts, ...) have fixed slots and are overwritten.
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        rows = self._dump_writes(
            thread_id, ns, configurable["checkpoint_id"], task_id, task_path, writes
        )
        await self.group.send(Rows(special=rows) if special else Rows(writes=rows))

    async def carry(self, query: str | sql.Composed, params: Sequence[Any]) -> None:
        """Run ``query`` in the next transaction of the process's checkpoint writes (it
        commits with whatever steps are being written meanwhile)."""
        await self.group.send(Rows(statements=[(query, params)]))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The stock read, unless ``thread_known_empty`` already answers it."""
        head = _EMPTY_HEAD.get()
        if head is not None and head.answers(config):
            return None
        return await super().aget_tuple(config)

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        """A row read back as a ``CheckpointTuple``, as the stock saver builds it — but on the
        event loop (the stock one loads the pending writes in a thread: see ``aput``)."""
        thread_id, ns = value["thread_id"], value["checkpoint_ns"]
        parent = value["parent_checkpoint_id"]
        stored = value["checkpoint"]
        return CheckpointTuple(
            _config(thread_id, ns, value["checkpoint_id"]),
            cast(
                Checkpoint,
                {
                    **stored,
                    "channel_values": {
                        **(stored.get("channel_values") or {}),
                        **self._load_blobs(value["channel_values"]),
                    },
                },
            ),
            value["metadata"],
            _config(thread_id, ns, parent) if parent else None,
            self._load_writes(value["pending_writes"]),
        )

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        """A cursor on a pooled connection of its own (no saver-wide lock)."""
        pool = self.conn
        assert isinstance(pool, AsyncConnectionPool)
        async with pool.connection() as conn:
            if pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }
