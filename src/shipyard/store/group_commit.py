"""Group commit: every checkpointer write of this process, sent together.

``ShipyardSaver`` turns each call (a checkpoint, a task's writes, a statement sent along)
into rows and hands them to ``GroupCommit.send``, which returns once they are committed.
One writer sends at a time: whatever is handed over while a transaction is in flight (from
any run of the process) goes in the next one, as one statement for every table — so N
concurrent runs cost one round trip and one commit per step instead of N, and a lone run
waits no longer than before (a step's writes and its checkpoint, handed over a few turns of
the event loop apart, still go together). Transactions commit in the order their rows were
handed over, and each carries the rows queued behind so far (``store.writer``): a
checkpoint never lands without the journal and audit rows of the step before it.

If Postgres refuses a transaction, each caller's rows are sent again alone, so a refused
row fails only its own caller (a refused row carried from behind is dropped and logged by
``store.write_batch``, and fails nobody). The rows written are exactly the
stock saver's (``tests/integration/test_store_saver.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
import psycopg
from psycopg import AsyncCursor, sql
from psycopg_pool import AsyncConnectionPool

from shipyard.store.write_batch import take_behind

FLUSH_TURNS = 4
"""Event-loop turns a transaction waits for more rows before it is sent (a step's writes
for its checkpoint, concurrent runs for each other)."""

Row = Sequence[Any]
Statement = tuple[str | sql.Composed, Sequence[Any]]

# Each table's rows travel as ONE jsonb array of row arrays (orjson, bytes as base64): one
# C call instead of psycopg dumping every array element in Python, which was most of a
# commit's CPU. Checkpoint and metadata columns come as JSON text made by
# ``shipyard.store.jsonb.dumps``, which leaves out text Postgres cannot store.
_ROWS = "FROM jsonb_array_elements(%s::jsonb) AS r"
_WRITES_FROM = (
    "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id,"
    " task_path, idx, channel, type, blob) SELECT r->>0, r->>1, r->>2, r->>3, r->>4,"
    " (r->>5)::integer, r->>6, r->>7, decode(r->>8, 'base64') " + _ROWS + " ON CONFLICT"
    " (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
)
INSERT_WRITES = _WRITES_FROM + " DO NOTHING"
UPSERT_WRITES = (
    _WRITES_FROM
    + " DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
)
INSERT_BLOBS = (
    "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)"
    " SELECT r->>0, r->>1, r->>2, r->>3, r->>4, decode(r->>5, 'base64') "
    + _ROWS
    + " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
)
UPSERT_CHECKPOINTS = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
    " checkpoint, metadata) SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::jsonb,"
    " (r->>5)::jsonb " + _ROWS + " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)"
    " DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"
)
_TABLES = (INSERT_WRITES, UPSERT_WRITES, INSERT_BLOBS, UPSERT_CHECKPOINTS)


@cache
def _statement(present: tuple[bool, ...]) -> str:
    """ONE statement writing the tables marked present (in ``_TABLES`` order): the
    data-modifying ``WITH`` clauses all run, in one snapshot — the tables do not read each
    other, and a key appears once per upsert (``_last_per_key``)."""
    parts = [query for query, used in zip(_TABLES, present, strict=True) if used]
    if len(parts) == 1:
        return parts[0]
    return "WITH " + ", ".join(f"t{i} AS ({q})" for i, q in enumerate(parts)) + " SELECT 1"


def rows_json(rows: Sequence[Row]) -> str:
    """Rows as the jsonb array the statements read (``bytes`` as base64)."""
    return orjson.dumps([[_cell(v) for v in row] for row in rows]).decode()


def _cell(value: Any) -> Any:
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


@dataclass
class Rows:
    """What one saver call writes: the stock saver's rows, by statement."""

    statements: Sequence[Statement] = ()
    """Sent first, as they are (stream events)."""
    writes: Sequence[Row] = ()
    """``checkpoint_writes`` rows inserted (an existing row wins)."""
    special: Sequence[Row] = ()
    """``checkpoint_writes`` rows upserted (interrupts, errors: fixed slots, overwritten)."""
    blobs: Sequence[Row] = ()
    checkpoints: Sequence[Row] = ()


@dataclass
class _Handed:
    rows: Rows
    done: asyncio.Future[None]


class GroupCommit:
    """The writer of one saver's pool (see the module docstring)."""

    def __init__(self, pool: AsyncConnectionPool[Any], conninfo: str) -> None:
        self.pool = pool
        self.conninfo = conninfo
        self._pending: list[_Handed] = []
        self._sender: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, rows: Rows) -> None:
        """Return once ``rows`` are committed; raise what Postgres said about them."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # (a saver used from another event loop starts afresh)
            self._loop, self._pending, self._sender = loop, [], None
        handed = _Handed(rows, loop.create_future())
        self._pending.append(handed)
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_pending(), name="shipyard-group-commit")
        try:
            await asyncio.shield(handed.done)
        except asyncio.CancelledError:
            handed.done.add_done_callback(_consume)  # still written; nobody reads the outcome
            raise

    async def _send_pending(self) -> None:
        while self._pending:
            for _ in range(FLUSH_TURNS):
                await asyncio.sleep(0)
            handed, self._pending = self._pending, []
            try:
                await self._commit_all(handed)
            except BaseException as exc:  # cancelled (shutdown): nobody will send the rest
                for waiting in [*handed, *self._pending]:
                    _settle(waiting.done, exc)
                self._pending = []
                raise

    async def _commit_all(self, handed: list[_Handed]) -> None:
        try:
            await self._commit([h.rows for h in handed], carry=True)
        except psycopg.OperationalError as exc:  # unreachable or lost: every caller is told
            for h in handed:
                _settle(h.done, exc)
            return
        except psycopg.Error:
            # Refused: the rows carried from behind were sent again one by one (a refused
            # one dropped); one caller's refused row must not fail the others: each alone.
            for h in handed:
                try:
                    await self._commit([h.rows], carry=False)
                except psycopg.Error as alone:
                    _settle(h.done, alone)
                else:
                    _settle(h.done, None)
            return
        except Exception as exc:  # handed to every caller, who raises it
            for h in handed:
                _settle(h.done, exc)
            return
        for h in handed:
            _settle(h.done, None)

    async def _commit(self, batch: Sequence[Rows], *, carry: bool) -> None:
        """One transaction: the rows queued behind (with ``carry``), then ``batch``."""
        async with self._pipeline(carry=carry) as cur:
            for rows in batch:
                for query, params in rows.statements:
                    await cur.execute(query, params)
            tables = (
                [row for rows in batch for row in rows.writes],
                _last_per_key([r for rows in batch for r in rows.special], (0, 1, 2, 3, 5)),
                [row for rows in batch for row in rows.blobs],
                _last_per_key([r for rows in batch for r in rows.checkpoints], (0, 1, 2)),
            )
            present = tuple(bool(table) for table in tables)
            if any(present):
                params = [rows_json(table) for table in tables if table]
                await cur.execute(_statement(present), params)

    @asynccontextmanager
    async def _pipeline(self, *, carry: bool) -> AsyncIterator[AsyncCursor[Any]]:
        """A pipeline on a pooled connection (one round trip, one implicit transaction up to
        its sync); with ``carry``, the rows queued behind go first."""
        batch = take_behind(self.conninfo) if carry else None
        try:
            if batch is not None:
                await batch.ready()
            async with (
                self.pool.connection() as conn,
                conn.pipeline(),
                conn.cursor(binary=True) as cur,
            ):
                for query, params in batch.rows if batch is not None else ():
                    await cur.execute(query, params)
                yield cur
        except BaseException as exc:
            if batch is not None:
                await batch.fail(exc)
            raise
        if batch is not None:
            batch.land()


def _last_per_key(rows: list[Row], key: tuple[int, ...]) -> list[Row]:
    """One row per key (the columns at ``key``: the upsert's conflict target), the last one
    handed over: an upsert may not touch a row twice in one statement, and sent one by one
    the last would win."""
    if len(rows) < 2:
        return rows
    return list({tuple(row[i] for i in key): row for row in rows}.values())


def _settle(done: asyncio.Future[None], outcome: BaseException | None) -> None:
    if done.done():
        return
    if outcome is None:
        done.set_result(None)
    elif isinstance(outcome, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(outcome)


def _consume(done: asyncio.Future[None]) -> None:
    with contextlib.suppress(BaseException):
        done.exception()
