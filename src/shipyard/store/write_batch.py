"""The rows queued behind (``store.writer``), taken by the checkpointer to send in the
transaction of a step's own checkpoint write (``store.saver.ShipyardSaver``)."""

from __future__ import annotations

import asyncio

import psycopg

from shipyard.store.writer import Flight, Rows, RowWriter, live_writers


class Batch:
    """The rows queued behind by the writers of one database, taken to be sent in the
    caller's own transaction (see ``take_behind``)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._flights: list[tuple[RowWriter, Flight, list[Flight]]] = []
        self._others: list[RowWriter] = []
        for writer in live_writers():
            if writer.conninfo != conninfo:
                if writer.pending:
                    self._others.append(writer)
            elif writer.pending:
                self._flights.append((writer, *writer.take()))

    @property
    def rows(self) -> Rows:
        return [row for _, flight, _ in self._flights for row in flight.rows]

    async def ready(self) -> None:
        """Wait for rows other senders have in flight (taking back any that failed), and
        write the queues of other databases' writers on their own connections."""
        for writer, flight, earlier in self._flights:
            for other in earlier:
                if not await asyncio.wrap_future(other.landed):
                    flight.rows.extend(writer.take_more())
        for writer in self._others:
            await asyncio.to_thread(writer.send)

    def land(self) -> None:
        """The caller's transaction committed."""
        for writer, flight, _ in self._flights:
            writer.land(flight, None)

    async def fail(self, error: BaseException) -> None:
        """The caller's transaction failed. If Postgres refused something in it, the rows
        are written row by row now (the ones it refuses again dropped, so they cannot fail
        every later checkpoint); otherwise (unreachable, cancelled) they go back to the
        head of the queue."""
        refused = isinstance(error, psycopg.Error) and not isinstance(
            error, psycopg.OperationalError
        )
        for writer, flight, _ in self._flights:
            if refused:
                await asyncio.to_thread(writer.resend_each, flight)
            else:
                writer.land(flight, error)


def take_behind(conninfo: str) -> Batch | None:
    """Every row queued so far by any writer of this process, or ``None`` when there is
    none (the common case, checked without locks). The caller awaits ``ready``, sends
    ``rows`` in its own transaction, then calls ``land`` or ``fail``."""
    if not any(writer.pending for writer in live_writers()):
        return None
    return Batch(conninfo)
