"""The cron scheduler: every server process runs one; together they fire each due cron once.

``scheduling(state, poll_s)`` (an async context manager the app's lifespan holds) runs a loop
that every ``poll_s`` seconds fires the crons that are due — enabled, ``next_run_date``
reached, ``end_time`` not passed. A firing happens inside one transaction that holds the
cron's row lock, taken with ``FOR UPDATE SKIP LOCKED`` so another process's scheduler skips
the cron instead of firing it too: the run is created through the run routes' own path
(``run_create.create_run``: the same checks, queue and multitask strategy as a client's run)
and ``next_run_date`` advances to the first firing after now (missed firings collapse into
one, as on the official server). A cron without a thread gets a new thread per firing.

The run and its thread have ids derived from the cron and the firing time, so if a process
dies after the run was created but before the advance committed, the next scheduler sees
that run exists and only advances: a firing never makes two runs. A firing that cannot make
a run (the assistant or graph is gone, the thread is busy under ``reject``, …) is logged and
its reason kept in the cron's ``last_error``; the schedule goes on. The database being
unreachable only delays firings to the next poll that reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import psycopg
from fastapi import HTTPException
from psycopg.rows import DictRow
from psycopg_pool import PoolTimeout
from pydantic import ValidationError

from shipyard.errors import InfrastructureError, UserInputError
from shipyard.server.deps import ServerState
from shipyard.server.http.errors import describe_validation
from shipyard.server.runs.create import create_run
from shipyard.server.runs.queue import Conn, Pool
from shipyard.server.runs.request import RunCreate
from shipyard.server.stores.crons import next_run

log = logging.getLogger("shipyard.server.stores.crons")

DEFAULT_POLL_S = 1.0
"""How often a scheduler looks for due crons (``ServerOptions.cron_poll_s``)."""

BATCH = 100
"""Firings per pass at most; a full pass is followed by another without sleeping."""

_FIRING_IDS = uuid.UUID("6f1d9e0c-3b8a-4c2e-9a57-1c0de5c4a9f1")

CLAIM = """
SELECT cron_id, owner, assistant_id, thread_id, schedule, timezone, payload, metadata,
    on_run_completed, next_run_date, now() AS now
FROM api_crons
WHERE enabled AND next_run_date <= now() AND (end_time IS NULL OR end_time > now())
ORDER BY next_run_date
LIMIT 1
FOR UPDATE SKIP LOCKED
"""
"""The most overdue cron no other scheduler is firing, locked until this firing commits."""

ADVANCE = """UPDATE api_crons SET next_run_date = %s, last_error = %s, enabled = %s
    WHERE cron_id = %s"""


def firing_ids(cron_id: str, due: Any) -> tuple[str, str]:
    """The run id and (for a cron without a thread) thread id of one firing."""
    key = f"{cron_id}@{due.isoformat()}"
    run_id = uuid.uuid5(_FIRING_IDS, f"run:{key}")
    return str(run_id), str(uuid.uuid5(_FIRING_IDS, f"thread:{key}"))


def run_body(cron: DictRow) -> RunCreate:
    """The run a firing creates: the stored payload, with the cron's metadata under the
    payload's and the cron id in ``config.configurable`` unless ``context`` is used (the
    run routes refuse both at once)."""
    payload = dict(cron["payload"])
    payload["metadata"] = {**(cron["metadata"] or {}), **(payload.get("metadata") or {})}
    if cron["on_run_completed"]:
        payload["on_completion"] = cron["on_run_completed"]
    config = dict(payload.get("config") or {})
    if payload.get("context"):
        configurable = dict(config.get("configurable") or {})
        configurable.pop("cron_id", None)
        config["configurable"] = configurable
    payload["config"] = config
    payload["assistant_id"] = cron["assistant_id"]
    payload["if_not_exists"] = "create" if cron["thread_id"] is None else "reject"
    return RunCreate.model_validate(payload)


async def fire(state: ServerState, cron: DictRow, conn: Conn) -> str | None:
    """Create the run of ``cron``'s due firing (once, see the module docstring); why none
    was made, or ``None``."""
    run_id, new_thread_id = firing_ids(cron["cron_id"], cron["next_run_date"])
    cur = await conn.execute("SELECT 1 FROM api_runs WHERE run_id = %s", [run_id])
    if await cur.fetchone() is not None:
        return None  # this firing's run was created before a crash: only advance
    try:
        body = run_body(cron)
        thread_id = cron["thread_id"] or new_thread_id
        await create_run(state, cron["owner"], body, thread_id, run_id=run_id)
    except HTTPException as err:
        return f"{err.status_code}: {err.detail}"
    except UserInputError as err:
        return str(err)
    except ValidationError as err:
        return f"422: {describe_validation(list(err.errors()))}"
    except psycopg.errors.UniqueViolation:
        return None  # another scheduler made this firing's run (it read the cron unlocked)
    except (psycopg.OperationalError, PoolTimeout, InfrastructureError):
        raise  # the database is unreachable: this firing is retried on the next poll
    except Exception as err:  # recorded, so one broken cron never blocks the others
        log.exception("cron %s: firing failed", cron["cron_id"])
        return f"{type(err).__name__}: {err}"
    log.info("cron %s fired run %s on thread %s", cron["cron_id"], run_id, thread_id)
    return None


async def fire_one(state: ServerState) -> bool:
    """Fire the most overdue cron, if any is due and not being fired elsewhere."""
    pool = cast(Pool, state.saver.conn)
    async with pool.connection() as conn, conn.transaction():
        cron = await (await conn.execute(CLAIM)).fetchone()
        if cron is None:
            return False
        error = await fire(state, cron, conn)
        enabled = True
        try:
            later = next_run(
                cron["schedule"], max(cron["now"], cron["next_run_date"]), cron["timezone"]
            )
        except HTTPException as err:  # a stored schedule with no firing left
            later, enabled, error = cron["next_run_date"], False, str(err.detail)
        if error is not None:
            log.warning(
                "cron %s made no run at %s: %s", cron["cron_id"], cron["next_run_date"], error
            )
        await conn.execute(ADVANCE, [later, error, enabled, cron["cron_id"]])
    return True


async def fire_due(state: ServerState) -> int:
    """Fire due crons (at most ``BATCH``); how many were fired."""
    fired = 0
    while fired < BATCH and await fire_one(state):
        fired += 1
    return fired


async def _loop(state: ServerState, poll_s: float) -> None:
    while True:
        fired = 0
        try:
            fired = await fire_due(state)
        except Exception as err:  # the database is down, or a bug: never end the loop
            log.warning(
                "cron scheduler: %s: %s; retrying in %.1f s", type(err).__name__, err, poll_s
            )
        if fired < BATCH:
            await asyncio.sleep(poll_s)


@asynccontextmanager
async def scheduling(state: ServerState, poll_s: float = DEFAULT_POLL_S) -> AsyncIterator[None]:
    """Run this process's scheduler while the context is open (``poll_s <= 0``: none)."""
    if poll_s <= 0:
        yield
        return
    task = asyncio.create_task(_loop(state, poll_s), name="cron-scheduler")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["DEFAULT_POLL_S", "fire_due", "firing_ids", "run_body", "scheduling"]
