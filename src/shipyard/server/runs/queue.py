"""The run queue: runs are rows of ``api_runs``, claimed by workers under a lease.

Life of a run: ``pending`` → (claimed) ``running`` → ``success | error | timeout |
interrupted``. A claim takes the oldest claimable run with ``FOR UPDATE SKIP LOCKED`` and
gives the worker a lease it renews by heartbeat; a run whose lease expired (its worker died)
is claimable again and the next worker continues it from its last checkpoint.

One run at a time per thread, always: a pending run is claimable only when no other run of
its thread is running and no older run of its thread is pending (FIFO per thread), and a
partial unique index on ``(thread_id) WHERE status = 'running'`` refuses a second running
run even if two claims race past those checks. Every change that may make a run claimable
sends ``NOTIFY shipyard_runs``; a cancel request sends ``NOTIFY shipyard_cancel``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from shipyard.server.http.encoding import jsonb
from shipyard.server.http.shapes import JsonObject
from shipyard.server.runs.queue_sql import (
    ACTIVE_OF_THREAD,
    ASK_TO_STOP,
    CLAIM,
    DELETE_PENDING,
    END,
    FINISH,
    FOR_THREAD,
    FREE_THREAD,
    GET,
    INSERT,
    INSERT_CLAIMED,
    INTERRUPT_PENDING,
    OWNED,
    OWNED_WITH_STATUS,
    RENEW,
)
from shipyard.server.runs.records import (
    ACTIVE,
    TERMINAL,
    CancelAction,
    Conn,
    MultitaskStrategy,
    NewRun,
    NoSuchThreadError,
    Pool,
    QueuedRun,
    RunStatus,
    ThreadBusyError,
    ThreadOutcome,
)
from shipyard.server.stores.listener import CANCEL_CHANNEL, EVENTS_CHANNEL, RUNS_CHANNEL

__all__ = [
    "ACTIVE",
    "TERMINAL",
    "CancelAction",
    "Conn",
    "MultitaskStrategy",
    "NewRun",
    "NoSuchThreadError",
    "Pool",
    "QueuedRun",
    "RunQueue",
    "RunStatus",
    "ThreadBusyError",
    "ThreadOutcome",
]


class RunQueue:
    """Runs in Postgres. Every method is one transaction on a connection of ``pool``."""

    def __init__(self, pool: Pool, *, lease_s: float = 30.0) -> None:
        self.pool = pool
        self.lease_s = lease_s

    async def enqueue(
        self, new: NewRun, claim_for: str | None = None
    ) -> tuple[QueuedRun, list[str]]:
        """Insert a pending run, applying ``multitask_strategy`` to the thread's active runs.

        Returns the run and the ids of runs it supersedes (cancelled with ``interrupt`` or
        ``rollback``). Raises ``ThreadBusyError`` for ``reject`` on a busy thread and
        ``NoSuchThreadError`` when the thread is not ``new.owner``'s (nothing inserted). With
        ``claim_for`` (a worker of this process, strategy ``enqueue``, no delay) the run
        comes back already claimed by that worker when its thread is free
        (``queue_sql.INSERT_CLAIMED``).
        """
        run_id = new.run_id or str(uuid.uuid4())
        params = {
            "run_id": run_id,
            "thread_id": new.thread_id,
            "owner": new.owner,
            "assistant_id": new.assistant_id,
            "kwargs": jsonb(new.kwargs),
            "metadata": jsonb(new.metadata),
            "tags": jsonb(new.tags),
            "strategy": new.multitask_strategy,
            "after": new.after_seconds,
            "runs": RUNS_CHANNEL,
        }
        if new.multitask_strategy == "enqueue":
            return await self._insert(params, claim_for if new.after_seconds <= 0 else None), []
        return await self._insert_superseding(new, params)

    async def _insert(self, params: JsonObject, claim_for: str | None) -> QueuedRun:
        """Strategy ``enqueue``: active runs do not matter — one statement, which still takes
        the thread's lock, so a concurrent ``reject`` or ``interrupt`` sees this run or comes
        first."""
        if claim_for is not None:
            params = {**params, "worker": claim_for, "lease": self.lease_s}
        async with self.pool.connection() as conn:
            try:
                cur = await conn.execute(INSERT if claim_for is None else INSERT_CLAIMED, params)
            except psycopg.errors.UniqueViolation:
                if claim_for is None:
                    raise
                # A run of the thread started meanwhile: queue this one behind it.
                cur = await conn.execute(INSERT, params)
            row = await cur.fetchone()
        if row is None:
            raise NoSuchThreadError(params["thread_id"])
        return QueuedRun.from_row({k: v for k, v in row.items() if k != "woken"})

    async def _insert_superseding(
        self, new: NewRun, params: JsonObject
    ) -> tuple[QueuedRun, list[str]]:
        """Strategies ``reject``, ``interrupt`` and ``rollback``: one transaction holding the
        thread's lock across the check of its active runs and the insert."""
        async with self.pool.connection() as conn, conn.transaction():
            # Serialise run creation per thread so the multitask check cannot race.
            cur = await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%(thread_id)s, 7)), " + OWNED,
                {"thread_id": new.thread_id, "owner": new.owner},
            )
            if not (await cur.fetchone() or {}).get("exists"):
                raise NoSuchThreadError(new.thread_id)  # before anything is cancelled
            active = await _active(conn, new.thread_id)
            superseded: list[str] = []
            if active and new.multitask_strategy == "reject":
                raise ThreadBusyError(
                    f"Thread {new.thread_id} is already running a task. Wait for it to finish "
                    "or choose a different multitask strategy."
                )
            if active and new.multitask_strategy in ("interrupt", "rollback"):
                superseded = [r.run_id for r in active]
                action: CancelAction = (
                    "rollback" if new.multitask_strategy == "rollback" else "interrupt"
                )
                for run in active:
                    await _cancel(conn, run, action)
            cur = await conn.execute(INSERT, params)
            row = await cur.fetchone()
        if row is None:
            raise NoSuchThreadError(new.thread_id)
        return QueuedRun.from_row(row), superseded

    async def claim(self, worker_id: str) -> QueuedRun | None:
        """Take the oldest claimable run for ``worker_id``, or ``None``. One statement
        (its own transaction): the run comes with ``latest_checkpoint_id`` and ``more``."""
        async with self.pool.connection() as conn:
            try:
                cur = await conn.execute(CLAIM, {"worker": worker_id, "lease": self.lease_s})
                row = await cur.fetchone()
            except psycopg.errors.UniqueViolation:
                return None  # another worker started a run of that thread meanwhile
        return QueuedRun.from_row(row) if row else None

    async def renew(self, run_id: str, worker_id: str) -> tuple[bool, CancelAction | None]:
        """Extend the lease. Returns ``(still ours, requested cancel action)``."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(RENEW, [self.lease_s, run_id, worker_id])
            row = await cur.fetchone()
        if row is None:
            return False, None
        return True, row["cancel_action"]

    async def finish(
        self,
        run_id: str,
        worker_id: str,
        status: RunStatus,
        error: str | None = None,
        thread: ThreadOutcome | None = None,
    ) -> bool:
        """Record the outcome if ``worker_id`` still holds the lease; frees the thread.

        With ``thread``, the thread's status and cached state are written in the same
        statement (and only if the run was still ours).
        """
        if thread is None:
            return await self._end(run_id, worker_id, status, error)
        params = {
            "status": status,
            "error": error,
            "run_id": run_id,
            "worker": worker_id,
            "t_status": thread.status,
            "t_error": _jsonb(thread.error),
            "set_values": thread.values is not None,
            "values": _jsonb(thread.values),
            "set_interrupts": thread.interrupts is not None,
            "interrupts": _jsonb(thread.interrupts),
            "runs": RUNS_CHANNEL,
            "events": EVENTS_CHANNEL,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(FINISH, params)
            row = await cur.fetchone()
        return bool(row and row["ended"])

    async def release(self, run_id: str, worker_id: str) -> bool:
        """Give a running run back to the queue (graceful shutdown); it resumes elsewhere."""
        return await self._end(run_id, worker_id, "pending", None)

    async def _end(self, run_id: str, worker: str, status: RunStatus, error: str | None) -> bool:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(END, [status, error, run_id, worker])
            ended = await cur.fetchone() is not None
            await _notify(conn, run_id)
        return ended

    async def get(self, run_id: str, *, owner: str | None = None) -> QueuedRun | None:
        """The run, or ``None`` (also when it belongs to another owner)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(GET, [run_id, owner, owner])
            row = await cur.fetchone()
        return QueuedRun.from_row(row) if row else None

    async def for_thread(
        self,
        owner: str,
        thread_id: str,
        *,
        limit: int = 10,
        offset: int = 0,
        status: str | None = None,
    ) -> list[QueuedRun]:
        """The thread's runs, newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(FOR_THREAD, [owner, thread_id, status, status, limit, offset])
            return [QueuedRun.from_row(r) for r in await cur.fetchall()]

    async def owned_with_status(self, owner: str, statuses: Sequence[str]) -> list[QueuedRun]:
        """The owner's runs with one of ``statuses``, oldest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(OWNED_WITH_STATUS, [owner, list(statuses)])
            return [QueuedRun.from_row(r) for r in await cur.fetchall()]

    async def active(self, thread_id: str) -> list[QueuedRun]:
        """The thread's pending and running runs, oldest first."""
        async with self.pool.connection() as conn:
            return await _active(conn, thread_id)

    async def cancel(self, run: QueuedRun, action: CancelAction) -> None:
        """Cancel a run: a pending one ends now (``interrupted``, or deleted for
        ``rollback``); a running one is told to stop by its worker."""
        async with self.pool.connection() as conn, conn.transaction():
            await _cancel(conn, run, action)

    async def delete(self, run_ids: Sequence[str]) -> None:
        """Delete runs (and, by cascade, their stream events)."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM api_runs WHERE run_id = ANY(%s)", [list(run_ids)])
            for run_id in run_ids:
                await _notify(conn, run_id)

    async def depth(self) -> int:
        """How many runs wait to be claimed."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM api_runs WHERE status='pending'")
            row = await cur.fetchone()
        return int(row["n"]) if row else 0


async def _active(conn: Conn, thread_id: str) -> list[QueuedRun]:
    cur = await conn.execute(ACTIVE_OF_THREAD, [thread_id])
    return [QueuedRun.from_row(r) for r in await cur.fetchall()]


async def _cancel(conn: Conn, run: QueuedRun, action: CancelAction) -> None:
    # rollback: a pending run is gone at once; a running one is deleted by its worker after
    # it stopped and removed the checkpoints the run wrote.
    ended = DELETE_PENDING if action == "rollback" else INTERRUPT_PENDING
    cur = await conn.execute(ended, [run.run_id])
    if cur.rowcount:
        await conn.execute(FREE_THREAD, {"thread_id": run.thread_id})
    await conn.execute(ASK_TO_STOP, [action, run.run_id])
    await conn.execute("SELECT pg_notify(%s, %s)", [CANCEL_CHANNEL, run.run_id])
    await _notify(conn, run.run_id)


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else jsonb(value)


async def _notify(conn: Conn, run_id: str) -> None:
    """Wake workers (a thread may be free) and followers of the run (it may have ended)."""
    await conn.execute(
        "SELECT pg_notify(%s, %s), pg_notify(%s, %s)",
        [RUNS_CHANNEL, run_id, EVENTS_CHANNEL, run_id],
    )
