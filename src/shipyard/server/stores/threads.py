"""Threads as rows (``threads`` table); their checkpoints live in LangGraph's tables.

All methods are synchronous (SQLAlchemy on the server's engine); async callers run them in a
thread pool — except the request path's two writes (``create_thread``, ``tag_for_run``),
which are async psycopg on the checkpointer's pool, one statement each, so creating a thread
or starting a run costs no thread-pool hop. Reads and
writes are scoped by ``owner``: another owner's thread is reported exactly like a missing
one (404), so ids cannot be probed. Returned threads are dicts in the API's ``Thread``
shape.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, cast

from psycopg.types.json import Jsonb
from sqlalchemy import ColumnElement, Engine, func, select, update
from sqlalchemy.orm import Session

from shipyard.server.http.encoding import jsonb, to_jsonable
from shipyard.server.http.errors import conflict, not_found
from shipyard.server.http.shapes import Json, JsonObject, ThreadDict, ThreadStatus
from shipyard.server.stores.checkpoints import thread_interrupts
from shipyard.server.stores.tables import THREAD_STATUSES, ThreadRow

if TYPE_CHECKING:
    from shipyard.server.runs.queue import Pool

SORTABLE = ("thread_id", "status", "created_at", "updated_at", "state_updated_at")


def thread_dict(row: ThreadRow) -> ThreadDict:
    """The API's ``Thread`` for a row."""
    return {
        "thread_id": row.thread_id,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "state_updated_at": row.state_updated_at.isoformat(),
        "metadata": row.metadata_,
        "status": cast(ThreadStatus, row.status),
        "config": row.config,
        "values": row.values,
        "interrupts": thread_interrupts(row.interrupts),
        "error": row.error,
    }


def new_id() -> str:
    """A fresh thread id (UUIDv4 text)."""
    return str(uuid.uuid4())


class ThreadStore:
    """Create, read, search, update and delete threads of an owner."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        owner: str,
        thread_id: str | None = None,
        metadata: JsonObject | None = None,
        *,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> ThreadDict:
        """A new thread. An existing ``thread_id`` of this owner is returned unchanged with
        ``if_exists="do_nothing"``; otherwise (or if another owner has it) 409."""
        thread_id = thread_id or new_id()
        with Session(self.engine) as session, session.begin():
            existing = session.get(ThreadRow, thread_id, with_for_update=True)
            if existing is not None:
                if if_exists == "do_nothing" and existing.owner == owner:
                    return thread_dict(existing)
                raise conflict(f"thread {thread_id} already exists")
            row = ThreadRow(
                thread_id=thread_id, owner=owner, metadata_=metadata or {}, interrupts={}
            )
            session.add(row)
            session.flush()
            session.refresh(row)
            return thread_dict(row)

    def get(self, owner: str, thread_id: str) -> ThreadDict:
        """The thread; 404 if it does not exist or belongs to another owner."""
        with Session(self.engine) as session:
            return thread_dict(self._row(session, owner, thread_id))

    def owner_of(self, thread_id: str) -> str | None:
        """Who owns ``thread_id`` (``None`` if no such thread) — for workers, not routes."""
        with Session(self.engine) as session:
            return session.scalar(select(ThreadRow.owner).where(ThreadRow.thread_id == thread_id))

    def patch(self, owner: str, thread_id: str, metadata: JsonObject | None) -> ThreadDict:
        """Merge ``metadata`` into the thread's metadata (keys set to ``None`` stay, as
        values); 404 if the thread is not the owner's."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, owner, thread_id, lock=True)
            if metadata:
                row.metadata_ = {**row.metadata_, **metadata}
            row.updated_at = datetime.now(UTC)
            session.flush()
            return thread_dict(row)

    def delete(self, owner: str, thread_id: str) -> None:
        """Delete the row (checkpoints are the caller's to delete); 404 if not the owner's."""
        with Session(self.engine) as session, session.begin():
            session.delete(self._row(session, owner, thread_id, lock=True))

    def set_status(
        self,
        thread_id: str,
        status: ThreadStatus,
        *,
        values: Json = None,
        interrupts: JsonObject | None = None,
        error: Json = None,
    ) -> None:
        """Record where the thread stands (called by run workers, with no owner check).

        ``values``/``interrupts`` replace the cached latest state when given; ``error`` is
        cleared unless given.
        """
        if status not in THREAD_STATUSES:
            raise ValueError(f"unknown thread status {status!r}")
        now = datetime.now(UTC)
        fields: JsonObject = {"status": status, "updated_at": now, "error": error}
        if values is not None:
            fields.update(values=to_jsonable(values), state_updated_at=now)
        if interrupts is not None:
            fields["interrupts"] = to_jsonable(interrupts)
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(ThreadRow).where(ThreadRow.thread_id == thread_id).values(fields)
            )

    def set_state(self, thread_id: str, values: Json, interrupts: JsonObject) -> None:
        """Replace the cached latest state (after ``update_state``) without touching status."""
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(ThreadRow)
                .where(ThreadRow.thread_id == thread_id)
                .values(
                    values=to_jsonable(values),
                    interrupts=to_jsonable(interrupts),
                    updated_at=now,
                    state_updated_at=now,
                )
            )

    def search(
        self,
        owner: str,
        *,
        metadata: JsonObject | None = None,
        values: JsonObject | None = None,
        ids: Sequence[str] | None = None,
        status: ThreadStatus | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: Literal["asc", "desc"] = "desc",
    ) -> tuple[list[ThreadDict], int]:
        """One page of the owner's matching threads and the total number of matches."""
        where = _filters(owner, metadata, values, ids, status)
        column = getattr(ThreadRow, sort_by if sort_by in SORTABLE else "created_at")
        order = column.asc() if sort_order == "asc" else column.desc()
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(ThreadRow).where(*where))
            rows = session.scalars(
                select(ThreadRow)
                .where(*where)
                .order_by(order, ThreadRow.thread_id)
                .limit(limit)
                .offset(offset)
            )
            return [thread_dict(r) for r in rows], int(total or 0)

    def count(
        self,
        owner: str,
        *,
        metadata: JsonObject | None = None,
        values: JsonObject | None = None,
        status: ThreadStatus | None = None,
    ) -> int:
        """How many of the owner's threads match."""
        where = _filters(owner, metadata, values, None, status)
        with Session(self.engine) as session:
            return int(
                session.scalar(select(func.count()).select_from(ThreadRow).where(*where)) or 0
            )

    def copy(self, owner: str, thread_id: str) -> ThreadDict:
        """A new thread with the same metadata, config and cached state (the caller copies
        the checkpoints); 404 if the source is not the owner's."""
        with Session(self.engine) as session, session.begin():
            src = self._row(session, owner, thread_id)
            row = ThreadRow(
                thread_id=new_id(),
                owner=owner,
                status="idle" if src.status == "busy" else src.status,
                metadata_=dict(src.metadata_),
                config=dict(src.config),
                values=src.values,
                interrupts=dict(src.interrupts),
                error=src.error,
            )
            session.add(row)
            session.flush()
            session.refresh(row)
            return thread_dict(row)

    def _row(
        self, session: Session, owner: str, thread_id: str, *, lock: bool = False
    ) -> ThreadRow:
        row = session.get(ThreadRow, thread_id, with_for_update=lock)
        if row is None or row.owner != owner:
            raise not_found(f"thread {thread_id}")
        return row


def _filters(
    owner: str,
    metadata: JsonObject | None,
    values: JsonObject | None,
    ids: Sequence[str] | None,
    status: str | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [ThreadRow.owner == owner]
    if metadata:
        where.append(ThreadRow.metadata_.contains(metadata))
    if values:
        where.append(ThreadRow.values.contains(values))
    if ids:
        where.append(ThreadRow.thread_id.in_(list(ids)))
    if status:
        where.append(ThreadRow.status == status)
    return where


# The request path's writes: async psycopg on the checkpointer's pool.

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
    metadata: JsonObject | None = None,
    *,
    if_exists: Literal["raise", "do_nothing"] = "raise",
) -> ThreadDict:
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


def _mapping_dict(row: Mapping[str, Any]) -> ThreadDict:
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


def _jsonb(value: Json) -> Jsonb:
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


async def tag_for_run(pool: Pool, owner: str, thread_id: str, tags: JsonObject) -> bool:
    """For a new run: whether the owner's thread exists, and (when its metadata lacks
    ``graph_id`` or ``assistant_id``) merge ``tags`` into its metadata — one statement on
    the async pool, no thread-pool hop."""
    params = {"tags": _jsonb(tags), "thread_id": thread_id}
    async with pool.connection() as conn:
        cur = await conn.execute(_TAG, {**params, "owner": owner})
        return await cur.fetchone() is not None


__all__ = ["create_thread", "tag_for_run"]
