"""One ``LISTEN`` connection per process, fanning Postgres notifications out to waiters.

Workers wait on ``RUNS_CHANNEL`` (a run was queued or freed a thread), executing workers on
``CANCEL_CHANNEL`` (payload: run id), stream followers and ``runs.wait`` on
``EVENTS_CHANNEL`` (payload: the run id when the run's state changed — it ended, was
cancelled, queued again; ``stored(run_id)`` when only events were stored, which wakes
followers but not those waiting for the end), the API-key cache on ``KEYS_CHANNEL``.
``local`` delivers a notification to this process's waiters at once (a run that ended
here need not wait for Postgres' round trip). Notifications are a latency optimisation
only: every waiter also polls with a timeout, so a notification lost while the connection
reconnects costs at most one poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

import psycopg
from psycopg import sql

RUNS_CHANNEL = "shipyard_runs"
CANCEL_CHANNEL = "shipyard_cancel"
EVENTS_CHANNEL = "shipyard_events"
KEYS_CHANNEL = "shipyard_keys"
CHANNELS = (RUNS_CHANNEL, CANCEL_CHANNEL, EVENTS_CHANNEL, KEYS_CHANNEL)

STORED = ":stored"


def stored(run_id: str) -> str:
    """The ``EVENTS_CHANNEL`` payload for "events of ``run_id`` were stored"."""
    return run_id + STORED


Callback = Callable[[str], None]
"""Receives a notification's payload; runs on the event loop and must not block."""

log = logging.getLogger(__name__)


class Listener:
    """Dispatches notifications of ``CHANNELS`` to callbacks registered with ``on``."""

    def __init__(self, conninfo: str, *, reconnect_s: float = 1.0) -> None:
        self._conninfo = conninfo
        self._reconnect_s = reconnect_s
        self._callbacks: dict[str, set[Callback]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def on(self, channel: str, callback: Callback) -> Callable[[], None]:
        """Register ``callback`` for ``channel``; returns a function that unregisters it."""
        self._callbacks[channel].add(callback)
        return lambda: self._callbacks[channel].discard(callback)

    async def start(self) -> None:
        """Connect and start listening; returns once the first ``LISTEN`` is in place."""
        self._task = asyncio.create_task(self._run(), name="shipyard-listener")
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()  # re-raise why the listener could not start

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    for channel in CHANNELS:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._ready.set()
                    if not first:
                        self._wake_all()  # we may have missed notifications meanwhile
                    first = False
                    async for note in conn.notifies():
                        self._dispatch(note.channel, note.payload)
            except psycopg.OperationalError as err:
                if first:
                    raise
                log.warning("listener connection lost (%s); reconnecting", err)
                await asyncio.sleep(self._reconnect_s)

    def local(self, channel: str, payload: str) -> None:
        """Deliver a notification to this process's callbacks now (they also get the one
        Postgres sends at commit; waiters treat a repeat as a spurious wake-up)."""
        self._dispatch(channel, payload)

    def _dispatch(self, channel: str, payload: str) -> None:
        for callback in list(self._callbacks.get(channel, ())):
            callback(payload)

    def _wake_all(self) -> None:
        for channel in CHANNELS:
            self._dispatch(channel, "")


__all__ = [
    "CANCEL_CHANNEL",
    "CHANNELS",
    "EVENTS_CHANNEL",
    "KEYS_CHANNEL",
    "RUNS_CHANNEL",
    "STORED",
    "Callback",
    "Listener",
    "stored",
]
