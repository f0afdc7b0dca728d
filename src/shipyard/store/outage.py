"""A lost database, told apart from other failures, and waited out for a bounded time.

A run whose database goes away is not broken: its last checkpoint is safe in Postgres.
``outlast_outage`` tells the person, waits up to ``SHIPYARD_DB_WAIT_S`` seconds (default
60) for the database to answer again and returns when it does; otherwise it raises
``DatabaseUnavailableError`` (exit code 3) with one line saying how to continue.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from sqlalchemy import exc as sa_exc

from shipyard.errors import DatabaseUnavailableError
from shipyard.store.database import check_reachable

WAIT_ENV = "SHIPYARD_DB_WAIT_S"
"""Seconds a CLI run waits for a lost database before it exits with code 3."""

Notify = Callable[[str, Any], None]


_OUTAGE_STATES = ("57P01", "57P02", "57P03", "53300")
"""Server states that mean "no database right now" (shut down by an administrator, after a
crash, starting up, too many connections); besides them only SQLSTATE class 08 (connection
exceptions) and errors with no state at all (the connection itself failed) are outages."""


def _lost_connection(err: psycopg.OperationalError) -> bool:
    state = err.sqlstate
    return state is None or state.startswith("08") or state in _OUTAGE_STATES


def database_outage(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is a lost or refused database connection — not a
    statement the server refused (a lock or statement timeout, a conflict), which waiting
    for the database would only repeat."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, psycopg.OperationalError):
            return _lost_connection(current)
        if isinstance(current, sa_exc.OperationalError) and isinstance(
            current.orig, psycopg.OperationalError
        ):
            return _lost_connection(current.orig)
        if isinstance(current, PoolTimeout | sa_exc.OperationalError):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, DatabaseUnavailableError):
            return True
        current = current.__cause__ or current.__context__
    return False


def wait_seconds() -> float:
    """The bound from ``SHIPYARD_DB_WAIT_S`` (default 60, at least 0)."""
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, "60")))
    except ValueError:
        return 60.0


async def outlast_outage(
    url: str, run_id: str, notify: Notify | None, lost_at: float | None = None
) -> float:
    """Wait for the database at ``url`` to answer again; ``notify("notice", text)`` says so.
    ``lost_at``: when this outage began (``time.monotonic()``), for a connection that failed
    again right after the database came back — the bound counts from then and nothing is
    announced twice. Returns when the outage began. Raises ``DatabaseUnavailableError``
    (one line) when the database stays away past the bound."""
    bound = wait_seconds()
    if lost_at is None and notify is not None:
        notify(
            "notice",
            f"lost the database; waiting up to {bound:.0f} s for it to come back "
            f"({WAIT_ENV} sets how long) …",
        )
    lost_at = time.monotonic() if lost_at is None else lost_at
    deadline = lost_at + bound
    while time.monotonic() < deadline:
        try:
            await asyncio.to_thread(check_reachable, url, 2.0)
        except DatabaseUnavailableError:
            await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
            continue
        return lost_at
    raise DatabaseUnavailableError(
        f"the database did not come back within {bound:.0f} s; run {run_id} is kept at its "
        f"last checkpoint: when Postgres is back, continue with `shipyard resume {run_id}`"
    )
