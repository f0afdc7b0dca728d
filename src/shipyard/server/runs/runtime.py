"""What every run on this process shares: the queue, the event log and the notification
listener, opened and closed by the app's lifespan (``opened_runtime``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shipyard.server.runs.events import EventLog
from shipyard.server.runs.queue import Pool, RunQueue
from shipyard.server.stores.listener import Listener
from shipyard.store import psycopg_conninfo

DEFAULT_LEASE_S = 10.0
"""Seconds a claim lasts without a heartbeat: a dead worker's run continues elsewhere after
at most this long (plus one poll)."""


@dataclass
class RunsRuntime:
    """The per-process objects runs need: queue, event log and notification listener."""

    queue: RunQueue
    events: EventLog
    listener: Listener


@asynccontextmanager
async def opened_runtime(
    url: str, pool: Pool, queue: RunQueue | None = None
) -> AsyncIterator[RunsRuntime]:
    """The process's ``RunsRuntime`` on ``pool`` (``queue`` defaults to a plain ``RunQueue``
    with ``DEFAULT_LEASE_S``), its listener started for the duration and stopped after."""
    listener = Listener(psycopg_conninfo(url))
    await listener.start()
    try:
        yield RunsRuntime(
            queue or RunQueue(pool, lease_s=DEFAULT_LEASE_S), EventLog(pool), listener
        )
    finally:
        await listener.stop()


__all__ = ["DEFAULT_LEASE_S", "RunsRuntime", "opened_runtime"]
