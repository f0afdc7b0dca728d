"""Threads written on the request path: async psycopg on the checkpointer's pool, one
statement each, so creating a thread or starting a run costs no thread-pool hop (the rest of
``threads.ThreadStore`` is synchronous SQLAlchemy). Owner-scoped like the store: another
owner's thread is reported exactly like a missing one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from psycopg.types.json import Jsonb

from shipyard.server.encoding import jsonb
from shipyard.server.errors import conflict
from shipyard.server.threads import new_id

if TYPE_CHECKING:
    from shipyard.server.queue import Pool

_INSERT = """
INSERT INTO threads (thread_id, owner, metadata, interrupts) VALUES (%s, %s, %s, '{}'::jsonb)
ON CONFLICT (thread_id) DO NOTHING
RETURNING thread_id, owner, created_at, updated_at, state_updated_at, metadata, status, config,
    values, interrupts, error
"""
_EXISTING = """
SELECT thread_id, owner, created_at, updated_at, state_updated_at, metadata, status, config,
    values, interrupts, error
FROM threads WHERE thread_id = %s
"""


async def create_thread(
    pool: Pool,
    owner: str,
    thread_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    *,
    if_exists: Literal["raise", "do_nothing"] = "raise",
) -> dict[str, Any]:
    """``ThreadStore.create`` on the async pool (one statement when the id is new): the
    routes' hot path, without a thread-pool hop."""
    thread_id = thread_id or new_id()
    async with pool.connection() as conn:
        cur = await conn.execute(_INSERT, [thread_id, owner, _jsonb(metadata or {})])
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(_EXISTING, [thread_id])
            row = await cur.fetchone()
            if row is None or if_exists != "do_nothing" or row["owner"] != owner:
                raise conflict(f"thread {thread_id} already exists")
    return _mapping_dict(row)


def _mapping_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """The API's ``Thread`` for a row read with psycopg."""
    return {
        "thread_id": row["thread_id"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "state_updated_at": row["state_updated_at"].isoformat(),
        "metadata": row["metadata"],
        "status": row["status"],
        "config": row["config"],
        "values": row["values"],
        "interrupts": row["interrupts"],
        "error": row["error"],
    }


def _jsonb(value: Any) -> Jsonb:
    return jsonb(value)


_TAG = """
UPDATE threads SET
    metadata = CASE WHEN metadata ? 'graph_id' AND metadata ? 'assistant_id' THEN metadata
                    ELSE metadata || %(tags)s END,
    updated_at = CASE WHEN metadata ? 'graph_id' AND metadata ? 'assistant_id' THEN updated_at
                      ELSE now() END
WHERE thread_id = %(thread_id)s AND owner = %(owner)s
RETURNING thread_id
"""


async def tag_for_run(pool: Pool, owner: str, thread_id: str, tags: dict[str, Any]) -> bool:
    """For a new run: whether the owner's thread exists, and (when its metadata lacks
    ``graph_id`` or ``assistant_id``) merge ``tags`` into its metadata — one statement on
    the async pool, no thread-pool hop."""
    params = {"tags": _jsonb(tags), "thread_id": thread_id}
    async with pool.connection() as conn:
        cur = await conn.execute(_TAG, {**params, "owner": owner})
        return await cur.fetchone() is not None


__all__ = ["create_thread", "tag_for_run"]
