"""``ShipyardSaver``: LangGraph's ``AsyncPostgresSaver`` with four changes on the write path.

* **Rows queued behind ride along.** A step's checkpoint (and an interrupt's or an error's
  writes, after which no checkpoint may come) carries the journal and audit rows queued
  behind so far (``store.writer``) in the same pipeline and transaction: a checkpoint never
  lands without the rows of the step before it.
* **No lock around the pool.** The stock saver takes one lock around every cursor, which a
  single shared connection needs and a pool does not. Without it a step's writes and its
  checkpoint are sent side by side, and concurrent runs (the server) do not queue behind
  each other's checkpoints.
* **A step's writes ride with its checkpoint.** A task's writes wait a few turns of the
  event loop: when the step's checkpoint comes meanwhile (with ``sync`` durability it comes
  at once), both go in one round trip and transaction; otherwise the writes go alone, as
  soon as before — so a finished task of a step still running is never held back.
  Interrupts and errors (after which no checkpoint may come) never wait. ``ride`` offers
  the same to other statements of the thread (the server's stream events).
* **Values are serialized on the event loop.** The stock saver hands every ``aput_writes``
  and every ``aput`` with a non-primitive channel to ``asyncio.to_thread`` to serialize.
  Shipyard's state is small by design (artifacts by reference: a few KB per step), so the
  thread hop costs far more than the work it moves: measured here, ~0.2 ms per hop against
  ~10 µs of serializing, twice per step. The rows written are exactly the stock saver's
  (``tests/integration/test_store_saver.py`` compares them table by table).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncCursor, sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from shipyard.store.write_batch import take_behind

_INLINE = (str, int, float, bool)
"""Channel values the saver keeps inside the checkpoint row (with ``None``); every other
value is a row of ``checkpoint_blobs``."""

ADOPT_TURNS = 4
"""Event-loop turns a task's writes wait for the step's checkpoint to take them along."""

RIDE_LINGER_S = 0.01
"""How long a statement offered to ``ride`` waits for the thread's next checkpoint."""


@dataclass
class _Writes:
    """Rows waiting for the step's checkpoint: a task's writes (``aput_writes``) or another
    statement sent along (``ride``)."""

    query: str | sql.Composed
    rows: Sequence[Sequence[Any]]
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """``True`` once a checkpoint wrote them; ``False``: it failed, write them alone."""


async def _first_of(
    done: asyncio.Future[bool], seconds: float, hurry: asyncio.Event | None
) -> None:
    """Return when ``done`` completes, ``hurry`` is set, or after ``seconds``."""
    waits: list[asyncio.Future[Any]] = [done]
    if hurry is not None:
        waits.append(asyncio.ensure_future(hurry.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for extra in waits[1:]:
            extra.cancel()


class ShipyardSaver(AsyncPostgresSaver):
    """``AsyncPostgresSaver`` on a pool, with the write path of the module docstring."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, serde: JsonPlusSerializer, conninfo: str
    ) -> None:
        super().__init__(pool, serde=serde)
        self.conninfo = conninfo
        self._waiting: dict[tuple[str, str], list[_Writes]] = {}

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
            Jsonb({**checkpoint, "channel_values": inline}),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        adopted = self._waiting.pop((thread_id, ns), [])
        written = False
        try:
            async with self._write_cursor(carry=True) as cur:
                for writes in adopted:
                    await cur.executemany(writes.query, writes.rows)
                if versions:
                    blob_rows = self._dump_blobs(thread_id, ns, blobs, versions)
                    await cur.executemany(self.UPSERT_CHECKPOINT_BLOBS_SQL, blob_rows)
                await cur.execute(self.UPSERT_CHECKPOINTS_SQL, row)
            written = True
        finally:
            for writes in adopted:
                if not writes.done.done():  # (its task may have been cancelled meanwhile)
                    writes.done.set_result(written)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes against the checkpoint it ran from (with the step's
        checkpoint when it comes within ``ADOPT_TURNS`` turns of the loop)."""
        configurable = config["configurable"]
        thread_id, ns = configurable["thread_id"], configurable["checkpoint_ns"]
        # Special channels (errors, interrupts, ...) have fixed slots and are overwritten.
        special = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        query = self.UPSERT_CHECKPOINT_WRITES_SQL if special else self.INSERT_CHECKPOINT_WRITES_SQL
        rows = self._dump_writes(
            thread_id, ns, configurable["checkpoint_id"], task_id, task_path, writes
        )
        if not special and await self._adopted(_Writes(query, rows), (thread_id, ns)):
            return
        # Alone. Rows queued behind ride with the step's checkpoint, which follows — unless
        # these writes are an interrupt or an error, after which no checkpoint may come.
        async with self._write_cursor(carry=special) as cur:
            await cur.executemany(query, rows)

    async def ride(
        self,
        thread_id: str,
        query: sql.Composed,
        params: Sequence[Any],
        hurry: asyncio.Event | None = None,
    ) -> bool:
        """Run ``query`` in the transaction of the thread's next (root) checkpoint if it
        comes within ``RIDE_LINGER_S`` (and before ``hurry`` is set); ``True`` once committed
        with it, ``False`` if it did not come (or failed): run it yourself."""
        writes = _Writes(query, [params])
        return await self._adopted(writes, (thread_id, ""), (RIDE_LINGER_S, hurry))

    async def _adopted(
        self,
        writes: _Writes,
        key: tuple[str, str],
        linger: tuple[float, asyncio.Event | None] | None = None,
    ) -> bool:
        """Wait ``ADOPT_TURNS`` turns of the loop (or ``linger``: seconds, or until the event
        is set) for the step's checkpoint to write ``writes``; ``False``: write them alone."""
        waiting = self._waiting.setdefault(key, [])
        waiting.append(writes)
        try:
            if linger is not None:
                await _first_of(writes.done, *linger)
            for _ in range(0 if linger is not None else ADOPT_TURNS):
                await asyncio.sleep(0)
                if waiting is not self._waiting.get(key):
                    break
            if waiting is not self._waiting.get(key):
                return await writes.done  # taken by a checkpoint: its outcome
        finally:
            if waiting is self._waiting.get(key):  # not taken (or cancelled): withdraw
                waiting.remove(writes)
                if not waiting:
                    del self._waiting[key]
        return False

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        async with self._pooled_cursor(pipeline) as cur:
            yield cur

    @asynccontextmanager
    async def _write_cursor(self, *, carry: bool) -> AsyncIterator[AsyncCursor[DictRow]]:
        """A pipeline for a write; with ``carry``, the rows queued behind so far go first,
        in the same transaction."""
        batch = take_behind(self.conninfo) if carry else None
        if batch is None:
            async with self._pooled_cursor(True) as cur:
                yield cur
            return
        try:
            await batch.ready()
            async with self._pooled_cursor(True) as cur:
                for query, params in batch.rows:
                    await cur.execute(query, params)
                yield cur
        except BaseException as exc:
            await batch.fail(exc)
            raise
        batch.land()

    @asynccontextmanager
    async def _pooled_cursor(self, pipeline: bool) -> AsyncIterator[AsyncCursor[DictRow]]:
        """A cursor on a pooled connection of its own (no saver-wide lock)."""
        pool = self.conn
        assert isinstance(pool, AsyncConnectionPool)
        async with pool.connection() as conn:
            if pipeline:  # one round trip; one implicit transaction up to the pipeline's sync
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
