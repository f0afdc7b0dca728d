"""Stream events in Postgres and their SSE encoding (the LangGraph server API).

A worker appends each chunk a run streams to ``run_stream_events`` (``run_id``, ``seq``,
``event``, ``data``) and sends ``NOTIFY shipyard_events`` (``listener.stored``), so a client of
any server process can follow a run executed anywhere. ``EventBatch`` does that in the
background as a group commit: everything streamed while one write is in flight goes in the
next one (one statement: a multi-row ``INSERT`` and the ``NOTIFY``). ``follow`` turns the
stored events into the SSE body: first ``metadata`` (``{"run_id", "attempt"}``), then the
events, with ``id: <seq>`` lines when the run is resumable, a ``: heartbeat`` comment while
nothing happens, and the end of the body when the run has ended and every event was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from shipyard.server.http.encoding import db_dumps, dumps, to_jsonable
from shipyard.server.http.shapes import Json
from shipyard.server.runs.queue import TERMINAL, Pool
from shipyard.server.stores.listener import EVENTS_CHANNEL, STORED, Listener, stored

HEARTBEAT = b": heartbeat\r\n\r\n"


@dataclass(frozen=True)
class StreamEvent:
    """One stored event: ``seq`` counts from 1 within its run."""

    seq: int
    event: str
    data: Json


def sse_frame(event: str, data: Json, event_id: str | None = None) -> bytes:
    """One SSE frame exactly as the reference server writes it (CRLF line ends)."""
    frame = b"event: " + event.encode() + b"\r\ndata: " + dumps(data) + b"\r\n"
    if event_id is not None:
        frame += b"id: " + event_id.encode() + b"\r\n"
    return frame + b"\r\n"


class EventLog:
    """Append and read a run's stream events."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def append(self, run_id: str, first_seq: int, events: Sequence[tuple[str, Json]]) -> int:
        """Store ``events`` with consecutive seqs from ``first_seq``; returns the next seq.

        A duplicate seq (a worker whose lease was taken over still writing) raises
        ``psycopg.errors.UniqueViolation`` and stores nothing.
        """
        return await self.store(run_id, first_seq, [(n, to_jsonable(d)) for n, d in events])

    async def store(self, run_id: str, first_seq: int, events: Sequence[tuple[str, Json]]) -> int:
        """``append`` for data already made JSON-able: ONE statement (atomic on its own)
        inserting every row and notifying followers."""
        if not events:
            return first_seq
        query, params = store_statement(run_id, first_seq, events)
        async with self.pool.connection() as conn:
            await conn.execute(query, params)
        return first_seq + len(events)

    async def next_seq(self, run_id: str) -> int:
        """The seq the next appended event gets."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT coalesce(max(seq), 0) + 1 AS n FROM run_stream_events WHERE run_id = %s",
                [run_id],
            )
            row = await cur.fetchone()
        return int(row["n"]) if row else 1

    async def after(self, run_id: str, seq: int, limit: int = 500) -> list[StreamEvent]:
        """Events with ``seq`` greater than ``seq``, in order."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """SELECT seq, event, data FROM run_stream_events WHERE run_id = %s AND seq > %s
                   ORDER BY seq LIMIT %s""",
                [run_id, seq, limit],
            )
            return [StreamEvent(r["seq"], r["event"], r["data"]) for r in await cur.fetchall()]

    async def last_error(self, run_id: str) -> Json:
        """The data of the run's last ``error`` event, or ``None``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                """SELECT data FROM run_stream_events WHERE run_id = %s AND event = 'error'
                   ORDER BY seq DESC LIMIT 1""",
                [run_id],
            )
            row = await cur.fetchone()
        return row["data"] if row else None

    async def run_status(self, run_id: str) -> tuple[str | None, int]:
        """``(status, attempts)`` of the run; status ``None`` once the run is deleted."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT status, attempts FROM api_runs WHERE run_id = %s", [run_id]
            )
            row = await cur.fetchone()
        return (row["status"], row["attempts"]) if row else (None, 0)


STORE_EVENTS = (
    "WITH stored AS (INSERT INTO run_stream_events (run_id, seq, event, data)"
    " SELECT %s, (e->>0)::integer, e->>1, e->2 FROM jsonb_array_elements(%s::jsonb) AS e"
    " RETURNING 1)"
    " SELECT pg_notify(%s, %s) FROM (SELECT count(*) FROM stored) AS n"
)


def store_statement(
    run_id: str, first_seq: int, events: Sequence[tuple[str, Json]]
) -> tuple[str, list[Json]]:
    """The statement storing ``events`` (JSON-able) from ``first_seq`` and notifying
    followers (``EventLog.store``; or sent with a checkpoint, ``EventBatch``): one text for
    any number of events, which travel as one JSON array of ``[seq, event, data]``."""
    rows = [[seq, name, data] for seq, (name, data) in enumerate(events, first_seq)]
    return STORE_EVENTS, [run_id, db_dumps(rows), EVENTS_CHANNEL, stored(run_id)]


Carrier = Callable[[str, Sequence[Json]], Awaitable[None]]
"""Sends a statement in the transaction of the next checkpoint write
(``store.saver.ShipyardSaver.carry``)."""


class EventBatch:
    """A run's stream, written behind the graph: ``add`` never waits for the database.

    The first event starts a write; events added while it is in flight go together in the
    next one, so a fast graph makes few round trips and a slow one loses no latency. With a
    ``carrier``, a write goes in the transaction of the next checkpoint write (the process's
    group commit), else alone. Seqs are given in ``add`` order from ``first_seq``. ``flush``
    waits until everything added is stored and raises what a write raised (also raised by
    the next ``add``); ``settle`` waits and swallows it (the run is ending another way).
    """

    def __init__(
        self, log: EventLog, run_id: str, first_seq: int, carrier: Carrier | None = None
    ) -> None:
        self.log = log
        self.run_id = run_id
        self.next_seq = first_seq
        self.carrier = carrier
        self._buffer: list[tuple[str, Json]] = []
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def add(self, name: str, data: Json) -> None:
        """Queue one event (made JSON-able now: the graph may reuse the objects)."""
        if self._error is not None:
            raise self._error
        self._buffer.append((name, to_jsonable(data)))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write(), name=f"events-{self.run_id}")

    async def _write(self) -> None:
        try:
            while self._buffer:
                batch, self._buffer = self._buffer, []
                query, params = store_statement(self.run_id, self.next_seq, batch)
                if self.carrier is not None:
                    await self.carrier(query, params)
                else:
                    async with self.log.pool.connection() as conn:
                        await conn.execute(query, params)
                self.next_seq += len(batch)
        except Exception as err:
            self._error = err
            self._buffer = []

    async def flush(self) -> int:
        """Wait until every added event is stored; the next seq."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._error is not None:
            raise self._error
        return self.next_seq

    async def settle(self) -> None:
        """Wait for the write in flight, ignoring its failure."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._task)


@dataclass
class Follow:
    """How to follow one run's events."""

    run_id: str
    after_seq: int = 0
    """Send events after this seq (``Last-Event-ID``, or the current end for a late join)."""
    resumable: bool = False
    """Emit ``id:`` lines so the client can reconnect with ``Last-Event-ID``."""
    modes: Collection[str] | None = None
    """Send only these event names (before ``|``); ``None`` sends everything."""
    metadata: bool = True
    """Begin with the ``metadata`` event (id ``0`` when resumable: a client reconnecting
    with it gets every event). The run's own stream does; a join does not."""
    heartbeat_s: float = 5.0
    poll_s: float = 1.0


async def follow(log: EventLog, listener: Listener, spec: Follow) -> AsyncIterator[bytes]:
    """The SSE body of a run: ``metadata`` first (``spec.metadata``), then its events
    after ``spec.after_seq`` until it has ended."""
    wake = asyncio.Event()

    def on_event(payload: str) -> None:
        if payload.removesuffix(STORED) in (spec.run_id, ""):
            wake.set()

    unsubscribe = listener.on(EVENTS_CHANNEL, on_event)
    try:
        if spec.metadata:
            _, attempts = await log.run_status(spec.run_id)
            meta = {"run_id": spec.run_id, "attempt": max(attempts, 1)}
            yield sse_frame("metadata", meta, "0" if spec.resumable else None)
        async for chunk in _events(log, spec, wake):
            yield chunk
    finally:
        unsubscribe()


async def _events(log: EventLog, spec: Follow, wake: asyncio.Event) -> AsyncIterator[bytes]:
    seq, idle = spec.after_seq, 0.0
    accept = _filter(spec.modes)
    while True:
        wake.clear()
        # Status before events: if the run had ended, every event it wrote is visible now.
        status, _ = await log.run_status(spec.run_id)
        events = await log.after(spec.run_id, seq)
        for event in events:
            seq = event.seq
            if accept(event.event):
                yield sse_frame(event.event, event.data, str(seq) if spec.resumable else None)
        if events:
            idle = 0.0
            continue
        if status is None or status in TERMINAL:
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout=spec.poll_s)
        except TimeoutError:
            idle += spec.poll_s
            if idle >= spec.heartbeat_s:
                idle = 0.0
                yield HEARTBEAT


def _filter(modes: Collection[str] | None) -> Callable[[str], bool]:
    if modes is None:
        return lambda _name: True
    wanted = {"messages" if m == "messages-tuple" else m for m in modes} | {"error", "metadata"}
    if "messages" in wanted:  # either messages mode joins every ``messages…`` event
        return lambda name: name.startswith("messages") or name.split("|", 1)[0] in wanted
    return lambda name: name.split("|", 1)[0] in wanted


__all__ = ["HEARTBEAT", "EventBatch", "EventLog", "Follow", "StreamEvent", "follow", "sse_frame"]
