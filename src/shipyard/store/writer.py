"""The hot-path writes of a running graph: the journal and audit rows of every node.

A node writes a journal intent before each effect on the world and its outcome after, a
record of each call it makes (``effects.EffectLog.record``), and audit events.
Through SQLAlchemy's pool each such statement cost ~0.35 ms (checkout, reset on return,
compilation); here it is one round trip on a plain psycopg connection with its statements
prepared. Two ways to write:

* ``now``: the row is in Postgres when the call returns — for a journal intent, which must
  be recorded before its effect starts.
* ``behind``: the row is queued — for a journal outcome or record, or an audit event, which
  only has to be in Postgres before the step that wrote it is checkpointed. Queued rows
  travel with the next write that goes anyway, in its round trip and transaction: the next
  ``now`` (so the outcome of a node's effect is recorded with the intent of its next one)
  or the step's own checkpoint (``store.write_batch``, taken by ``store.saver``), so a
  step's rows commit no later than its checkpoint and cost no round trip of their own.
  Reads of these rows in this process send the queue first (``send``: a process reads its
  own writes); a background thread sends rows left queued longer than ``LINGER_S`` (a graph
  under another checkpointer, a long effect after a short one), and ``close`` and
  interpreter exit send the rest.

A crash before a step is checkpointed re-runs the step, which replays or reconciles its
effects (``effects.py``) and writes its events again, so rows lost with a crash are safe to
lose. Rows a send could not write go back to the head of the queue and the sender raises
(``WriteBehindError``, or the checkpointer's own error): a step whose rows were not written
is not checkpointed. When Postgres refuses a transaction holding queued rows, they are
written again one by one and the ones it refuses are logged and dropped (they would
otherwise fail every later checkpoint); NUL characters, which ``jsonb`` refuses and command
output can hold, are replaced before rows are queued (``jsonb``).

Outside a checkpoint, commits do not wait for the WAL flush (``synchronous_commit = off``):
the rows survive any crash of a Shipyard process as they are (the server has them) and reach
disk at the latest with the next checkpoint, which commits synchronously and so flushes all
WAL written before it. Only a crash of the Postgres server itself within ``wal_writer_delay``
(200 ms by default) can lose the newest intents; every effect they describe is confined to
the run's pinned workspace, which resume rolls back to the last recorded tree, so such a
loss can repeat work but never leak it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any, LiteralString

import psycopg
from psycopg.rows import DictRow, dict_row
from sqlalchemy import Engine, event

from shipyard.store.database import psycopg_conninfo

log = logging.getLogger(__name__)

LINGER_S = 0.1
"""Rows queued this long without a checkpoint or read to carry them are sent anyway."""

Query = LiteralString
Params = Mapping[str, Any]
Row = dict[str, Any]
Rows = list[tuple[Query, Params]]


class WriteBehindError(RuntimeError):
    """Queued rows could not be written now (they stay queued); the step that wrote them
    must not be checkpointed (it re-runs from its last checkpoint instead)."""


class Flight:
    """Rows taken from the queue by one sender; ``landed`` says whether they were written."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows
        self.landed: Future[bool] = Future()


class RowWriter:
    """Writes to one database: ``now`` (one round trip) and ``behind`` (queued)."""

    def __init__(self, url: str) -> None:
        self.conninfo = psycopg_conninfo(url)
        self._lock = threading.Lock()  # the queue, the flights, the idle connections
        self._queue: Rows = []
        self._queued_at = 0.0
        self._flights: list[Flight] = []
        self._idle: list[psycopg.Connection[DictRow]] = []
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        _LIVE.add(self)

    @property
    def pending(self) -> bool:
        """Whether rows are queued or being sent."""
        return bool(self._queue or self._flights)

    def now(self, query: Query, params: Params) -> Row | None:
        """Run one statement; its first row, if it returns any. Rows queued behind go first,
        in the same round trip and transaction: the outcome of a node's previous effect is
        recorded by the intent of its next one at no extra cost.

        A connection found broken (Postgres restarted since it was last used) is replaced
        and everything sent once more (the statements are idempotent upserts)."""
        flight, _ = self.take()
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    row = _send_rows(conn, flight.rows, (query, params))
            except psycopg.OperationalError as exc:
                if attempt == 1 and _broken(exc):
                    continue
                self.land(flight, exc)
                raise
            except psycopg.Error:
                # Postgres refused a queued row or this statement: ours alone, then it.
                self.resend_each(flight)
                with self._connection() as conn:
                    return _send_rows(conn, [], (query, params))
            self.land(flight, None)
            return row
        raise AssertionError("unreachable")

    def behind(self, query: Query, params: Params) -> None:
        """Queue one statement; it is written before the next checkpoint in this process."""
        with self._lock:
            if not self._queue:
                self._queued_at = time.monotonic()
            self._queue.append((query, params))
            if self._poller is None:
                self._poller = threading.Thread(
                    target=self._poll, name="shipyard-write-behind", daemon=True
                )
                self._poller.start()

    def send(self) -> None:
        """Write every row queued so far, including rows other senders have in flight
        (raises ``WriteBehindError`` if they cannot be written)."""
        for _ in range(3):
            flight, earlier = self.take()
            try:
                if flight.rows:
                    with self._connection() as conn:
                        _send_rows(conn, flight.rows)
            except psycopg.OperationalError as exc:
                self.land(flight, exc)
                raise WriteBehindError(f"journal/event rows not written yet: {exc}") from exc
            except psycopg.Error:  # some row refused: the others alone, row by row
                self.resend_each(flight)
            else:
                self.land(flight, None)
            if _on_event_loop() or all(f.landed.result() for f in earlier):
                return  # (on a loop's thread, waiting for its own coroutines would deadlock)
            # An earlier sender failed and put its rows back: take them too.
        raise WriteBehindError("journal/event rows not written: every attempt failed")

    def resend_each(self, flight: Flight) -> None:
        """``_send_each`` for a flight, which lands once its rows are settled."""
        try:
            self._send_each(flight.rows)
        finally:
            self.land(flight, None)  # written, dropped, or (unreachable) queued again

    def _send_each(self, rows: Rows) -> None:
        """Rows one transaction each, after Postgres refused a transaction holding them: the
        ones it refuses again are logged and dropped. If the database becomes unreachable,
        the rest go back to the head of the queue (``WriteBehindError``)."""
        for index, row in enumerate(rows):
            try:
                with self._connection() as conn:
                    _send_rows(conn, [row])
            except psycopg.OperationalError as exc:
                self._requeue(rows[index:])
                raise WriteBehindError(f"journal/event rows not written yet: {exc}") from exc
            except psycopg.Error as exc:
                log.error("Postgres refused a journal/event row, dropped: %s", exc)

    # -- queue and flights ------------------------------------------------------------------

    def take(self) -> tuple[Flight, list[Flight]]:
        """Everything queued, as a new flight; and the flights still in the air before it."""
        with self._lock:
            flight = Flight(self._queue)
            self._queue = []
            earlier = list(self._flights)
            self._flights.append(flight)
        return flight, earlier

    def take_more(self) -> Rows:
        with self._lock:
            rows, self._queue = self._queue, []
        return rows

    def land(self, flight: Flight, error: BaseException | None) -> None:
        """End ``flight``: written, or (``error``) its rows back at the head of the queue."""
        if error is not None:
            self._requeue(flight.rows)
        with self._lock:
            self._flights.remove(flight)
        flight.landed.set_result(error is None)

    def _requeue(self, rows: Rows) -> None:
        with self._lock:
            if rows and not self._queue:
                self._queued_at = time.monotonic()
            self._queue[:0] = rows

    def _poll(self) -> None:
        pause = LINGER_S
        while not self._stopping.wait(pause):
            if self._queue and time.monotonic() - self._queued_at >= LINGER_S:
                try:
                    self.send()
                except WriteBehindError as exc:
                    pause = min(pause * 2, 5.0)  # the database is away: back off
                    log.warning("%s; retrying in %.1f s", exc, pause)
                    continue
            pause = LINGER_S

    # -- connections ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = psycopg.connect(
                self.conninfo, autocommit=True, prepare_threshold=0, row_factory=dict_row
            )
            conn.execute("SET synchronous_commit = off")
        try:
            yield conn
        finally:
            if conn.closed or conn.broken:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)

    def close(self) -> None:
        """Write what is queued and close every connection. The writer stays usable: later
        calls reconnect (like ``Engine.dispose``)."""
        self._stopping.set()
        poller, self._poller = self._poller, None
        if poller is not None and poller is not threading.current_thread():
            poller.join()
        self._stopping.clear()
        try:
            self.send()
        except WriteBehindError as exc:
            log.error("closing with unwritten journal/event rows: %s", exc)
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _send_rows(
    conn: psycopg.Connection[DictRow], rows: Rows, last: tuple[Query, Params] | None = None
) -> Row | None:
    """Send ``rows`` (then ``last``) in one round trip: one implicit transaction, all or
    nothing. ``last``'s first row, if it returns one."""
    if not rows:
        return None if last is None else conn.execute(*last).fetchone()
    if len(rows) == 1 and last is None:
        conn.execute(*rows[0])
        return None
    cur: psycopg.Cursor[DictRow] | None = None
    with conn.pipeline():
        for query, params in rows:
            conn.execute(query, params)
        if last is not None:
            cur = conn.execute(*last)
    return None if cur is None else cur.fetchone()


def _broken(exc: psycopg.OperationalError) -> bool:
    """The connection was lost (worth one retry on a new one), not a server-side failure."""
    return exc.sqlstate is None or exc.sqlstate.startswith("08") or exc.sqlstate == "57P01"


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_LIVE: weakref.WeakSet[RowWriter] = weakref.WeakSet()
_BY_ENGINE: weakref.WeakKeyDictionary[Engine, RowWriter] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def writer_for(engine: Engine) -> RowWriter:
    """The process's writer for ``engine``'s database: one per engine, released (queue
    written, connections closed) when the engine is disposed or collected."""
    with _REGISTRY_LOCK:
        writer = _BY_ENGINE.get(engine)
        if writer is None:
            url = engine.url.render_as_string(hide_password=False)
            writer = _BY_ENGINE[engine] = RowWriter(url)
            event.listen(engine, "engine_disposed", lambda _engine: writer.close())
            weakref.finalize(engine, writer.close)
        return writer


def live_writers() -> list[RowWriter]:
    """Every writer of this process (for ``store.write_batch``)."""
    return list(_LIVE)


@atexit.register
def _close_all() -> None:
    for writer in list(_LIVE):
        writer.close()
