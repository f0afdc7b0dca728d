"""Sending what is queued, now and once, for a process without a sender of its own (the CLI).

``flush(url, config, wait_s=…)`` drains the rows of ``config``'s endpoints with the
sender's own claim, lease and retry (``notify.sender.Sender``: ``FOR UPDATE SKIP LOCKED``,
so a server's sender may run at the same time and nothing is sent by both) for at most
``wait_s`` seconds, then counts what is left (``tally``). With ``patient=True`` it also
waits for rows backing off after a failed attempt, when they fall due before the deadline,
and tries them again. A row not sent in time stays pending — claimed rows until their lease
runs out — and the next command, ``shipyard notify drain`` or any server process sends it:
at-least-once, the receiver drops repeats by the event id.

Only ``notify`` rows of the endpoints configured here are claimed: run webhooks and other
endpoints' events are left to the processes configured for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from shipyard.notify.config import NotifyConfig, NotifyConfigError
from shipyard.notify.outgoing import render_notification
from shipyard.notify.sender import Pool, Sender

CLI_WAIT_ENV = "SHIPYARD_NOTIFY_CLI_WAIT_S"
CLI_WAIT_S = 3.0
"""How long a CLI command that drove a run spends sending its events before it exits."""

TALLY = """
SELECT kind, target, (array_agg(url ORDER BY id DESC))[1] AS url,
    count(*) FILTER (WHERE status = 'pending') AS pending,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'sent') AS sent,
    min(created_at) FILTER (WHERE status = 'pending') AS oldest_pending,
    (array_agg(last_error ORDER BY id DESC)
        FILTER (WHERE status <> 'sent' AND last_error IS NOT NULL))[1] AS last_error
FROM outbox
WHERE %(targets)s::text[] IS NULL OR (kind = 'notify' AND target = ANY(%(targets)s))
GROUP BY kind, target ORDER BY kind, target
"""

NEXT_DUE = """
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 AS due_in
FROM outbox WHERE status = 'pending' AND kind = 'notify' AND target = ANY(%(targets)s)
"""


@dataclass(frozen=True)
class Tally:
    """The outbox rows of one destination: ``kind`` ``notify`` (``target`` names the
    endpoint) or ``webhook``. ``last_error``: of the newest unsent row that has one."""

    kind: str
    target: str
    url: str
    pending: int
    failed: int
    sent: int
    oldest_pending: datetime | None
    last_error: str | None


def cli_wait_s(env: Mapping[str, str]) -> float:
    """``SHIPYARD_NOTIFY_CLI_WAIT_S`` (seconds, 0 or more; 0 sends nothing from the CLI)."""
    text = env.get(CLI_WAIT_ENV)
    if not text:
        return CLI_WAIT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise NotifyConfigError(f"{CLI_WAIT_ENV}={text!r}: expected a number of seconds, 0 or more")
    return value


async def flush(
    url: str, config: NotifyConfig, *, wait_s: float, patient: bool = False
) -> list[Tally]:
    """Send the due rows of ``config``'s endpoints for at most ``wait_s`` seconds, then the
    tally of those endpoints' rows. No endpoint configured: ``[]``, and no database work.
    ``url``: the database (any form ``store.psycopg_conninfo`` takes)."""
    targets = [endpoint.name for endpoint in config.endpoints]
    if not targets:
        return []
    # Each request fits in the deadline, so a slow receiver's attempt is recorded as one.
    quick = replace(config, timeout_s=max(0.1, min(config.timeout_s, wait_s)))
    async with pool_for(url, wait_s) as pool:
        sender = Sender(pool, quick, {"notify": render_notification}, targets=targets)
        deadline = time.monotonic() + wait_s
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await _send(sender, targets, deadline, patient=patient)
        finally:
            await sender.aclose()
        return await tally(pool, targets)


async def _send(sender: Sender, targets: list[str], deadline: float, *, patient: bool) -> None:
    while True:
        await sender.drain()
        if not patient:
            return
        async with sender.pool.connection() as conn:
            row = await (await conn.execute(NEXT_DUE, {"targets": targets})).fetchone()
        due_in = None if row is None else row["due_in"]
        if due_in is None or time.monotonic() + due_in > deadline:
            return  # nothing left, or nothing that falls due in time
        await asyncio.sleep(max(due_in, 0.0) + 0.05)


async def tally(pool: Pool, targets: Sequence[str] | None = None) -> list[Tally]:
    """The outbox by destination — only the ``notify`` rows of ``targets`` when given."""
    params = {"targets": None if targets is None else list(targets)}
    async with pool.connection() as conn:
        cur = await conn.execute(TALLY, params)
        return [Tally(**row) for row in await cur.fetchall()]


@contextlib.asynccontextmanager
async def pool_for(url: str, wait_s: float = 5.0) -> AsyncIterator[Pool]:
    """A small pool of autocommit, dict-row connections to ``url`` (what ``Sender`` takes)."""
    from shipyard.store.database import psycopg_conninfo  # noqa: PLC0415  (SQLAlchemy's URL)

    kwargs = {"autocommit": True, "row_factory": dict_row}
    pool: Pool = AsyncConnectionPool(
        psycopg_conninfo(url),
        kwargs=kwargs,
        min_size=1,
        max_size=4,
        timeout=max(wait_s, 5.0),
        open=False,
    )
    async with pool:
        yield pool


__all__ = ["CLI_WAIT_ENV", "CLI_WAIT_S", "Tally", "cli_wait_s", "flush", "pool_for", "tally"]
