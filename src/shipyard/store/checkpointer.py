"""LangGraph checkpoints in Postgres (docs/architecture.md §4).

``open_checkpointer(url)`` yields an ``AsyncPostgresSaver`` on a connection pool with health
checks: idle connections are checked in the background every ``HEALTH_CHECK_S`` seconds and
broken ones replaced, and a connection returned in a broken state is discarded — so a
restarted Postgres costs a reconnect, not a failed run. (Checking on every checkout instead
would add a round trip to every checkpoint write: about 0.7 ms per node here.)

The saver is ``store.saver.ShipyardSaver``: every write of a step carries the journal
outcomes and audit events queued behind so far (``store.writer``) in the same transaction, so
a step's rows commit with its checkpoint.

Its serializer (``store/checkpoint_serde.py``) deserializes only Shipyard's own contract
types (plus LangGraph's built-in safe types such as messages and datetimes): any other type
stored in a checkpoint comes back as plain data, never as an instance of that type — a
tampered or foreign checkpoint cannot make us import and construct arbitrary classes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from shipyard.store.checkpoint_serde import make_serializer
from shipyard.store.database import psycopg_conninfo
from shipyard.store.saver import ShipyardSaver

# Serialises LangGraph's own schema setup between processes (it has no lock of its own).
_SETUP_LOCK_KEY = 0x5348_4950_5943  # "SHIPYC"


@asynccontextmanager
async def open_checkpointer(url: str, max_size: int = 10) -> AsyncIterator[AsyncPostgresSaver]:
    """A ready checkpointer (tables created) on a pool of at most ``max_size`` connections.

    The pool is closed when the context exits. Safe to enter from several processes at once.
    """
    conninfo = psycopg_conninfo(url)
    pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        open=False,
        connection_class=psycopg.AsyncConnection[DictRow],
        # autocommit: the saver manages its own transactions; prepare_threshold=0: every
        # statement is prepared on first use (the saver runs the same few again and again);
        # dict_row: the saver reads columns by name.
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    async with pool:
        saver = ShipyardSaver(pool, serde=make_serializer(), conninfo=conninfo)
        await _setup(saver, conninfo)
        checker = asyncio.create_task(_check_periodically(pool))
        try:
            yield saver
        finally:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker


HEALTH_CHECK_S = 10.0


async def _check_periodically(pool: AsyncConnectionPool[Any]) -> None:
    while True:
        await asyncio.sleep(HEALTH_CHECK_S)
        await pool.check()


async def _setup(saver: AsyncPostgresSaver, conninfo: str) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as lock_conn:
        # Poll instead of blocking in pg_advisory_lock: LangGraph's setup runs CREATE INDEX
        # CONCURRENTLY, which waits for every open transaction — including a waiter's.
        while not await _try_lock(lock_conn):
            await asyncio.sleep(0.1)
        try:
            await saver.setup()
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock(%s)", [_SETUP_LOCK_KEY])


async def _try_lock(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> bool:
    row = await (
        await conn.execute("SELECT pg_try_advisory_lock(%s)", [_SETUP_LOCK_KEY])
    ).fetchone()
    return bool(row and row[0])
