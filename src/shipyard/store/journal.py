"""The side-effect journal (DESIGN §4): intent before an effect, outcome after.

An entry is keyed by ``(thread_id, step_key, call_id)``. ``begin`` writes the intent and is
idempotent — a node re-running after a crash gets the entry it wrote before, never a second
one. ``complete`` records the outcome once; completing again keeps the first outcome. An
entry still in status ``intent`` on resume is an effect that may or may not have happened:
the caller reconciles it (looks it up) or surfaces it to a human — never blindly repeats it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Engine, Select, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB

from shipyard.store.tables import JournalRow

JournalStatus = Literal["intent", "done", "reconciled", "failed"]
Completion = Literal["done", "reconciled", "failed"]


@dataclass(frozen=True)
class JournalEntry:
    """One journaled effect. ``outcome`` is ``None`` while ``status == "intent"``."""

    seq: int
    thread_id: str
    step_key: str
    call_id: str
    kind: str
    intent: dict[str, Any]
    outcome: dict[str, Any] | None
    status: JournalStatus
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: JournalRow) -> JournalEntry:
        """Build from an ORM row."""
        return cls.from_mapping({c.key: getattr(row, c.key) for c in JournalRow.__table__.c})

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> JournalEntry:
        """Build from a row's column mapping."""
        status = row["status"]
        assert status in get_args(JournalStatus), f"unexpected journal status {status!r}"
        return cls(
            seq=row["seq"],
            thread_id=row["thread_id"],
            step_key=row["step_key"],
            call_id=row["call_id"],
            kind=row["kind"],
            intent=row["intent"],
            outcome=row["outcome"],
            status=status,
            created_at=row["created_at"],
            completed_at=row["completed_at"],
        )


# Every journal write below starts with the CTE
#   WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS on_)
# and references ``relaxed`` so Postgres evaluates it: the statement's own (autocommit)
# transaction then commits without waiting for the WAL flush.
#
# Journal and audit rows survive any crash of a Shipyard process as they are: the server has
# them. They reach disk at the latest with the node's checkpoint, which commits synchronously
# and so flushes all WAL written before it. Only a crash of the Postgres server itself within
# ``wal_writer_delay`` (200 ms by default) can lose the newest ones; every effect they describe
# is confined to the run's pinned workspace, which resume rolls back to the last recorded
# tree, so such a loss can repeat work but never leak it. One round trip per write and no
# fsync wait keep the journal's cost per effect near two network round trips.

_CLAIM = text(
    """
    WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS on_)
    INSERT INTO journal (thread_id, step_key, call_id, kind, intent)
    SELECT :thread_id, :step_key, :call_id, :kind, :intent FROM relaxed
    ON CONFLICT (thread_id, step_key, call_id) DO UPDATE SET kind = journal.kind
    RETURNING *, (xmax = 0) AS inserted
    """
).bindparams(bindparam("intent", type_=JSONB))
"""Insert the intent, or touch the stored entry so RETURNING gives it (xmax 0 = inserted)."""

_COMPLETE = text(
    """
    WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS on_)
    UPDATE journal SET outcome = :outcome, status = :status, completed_at = now()
    FROM relaxed
    WHERE thread_id = :thread_id AND step_key = :step_key AND call_id = :call_id
      AND status = 'intent'
    RETURNING journal.*
    """
).bindparams(bindparam("outcome", type_=JSONB))


class Journal:
    """Journal entries in Postgres. Every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(
        self, thread_id: str, step_key: str, call_id: str, kind: str, intent: dict[str, Any]
    ) -> JournalEntry:
        """Record the intent of an effect; return the existing entry if it was recorded before.

        The stored entry wins: if an entry exists, its ``intent`` (not the given one) is
        returned, whatever its status.
        """
        return self.claim(thread_id, step_key, call_id, kind, intent)[0]

    def claim(
        self, thread_id: str, step_key: str, call_id: str, kind: str, intent: dict[str, Any]
    ) -> tuple[JournalEntry, bool]:
        """Like ``begin`` (one round trip), and say whether this call wrote the intent —
        ``False`` means the entry was there before: replay or reconcile it."""
        params = {"thread_id": thread_id, "step_key": step_key, "call_id": call_id}
        with _autocommit(self._engine) as conn:
            row = conn.execute(_CLAIM, {**params, "kind": kind, "intent": intent}).mappings().one()
        return JournalEntry.from_mapping(row), bool(row["inserted"])

    def complete(
        self,
        thread_id: str,
        step_key: str,
        call_id: str,
        outcome: dict[str, Any],
        status: Completion = "done",
    ) -> JournalEntry:
        """Record the outcome of an effect begun earlier; return the entry.

        Completing an already completed entry changes nothing (the first outcome stands).
        Raises ``LookupError`` if no intent was recorded — an effect must never run unjournaled.
        """
        if status not in get_args(Completion):
            raise ValueError(f"status must be one of {get_args(Completion)}, not {status!r}")
        params = {"thread_id": thread_id, "step_key": step_key, "call_id": call_id}
        with _autocommit(self._engine) as conn:
            row = (
                conn.execute(_COMPLETE, {**params, "outcome": outcome, "status": status})
                .mappings()
                .first()
            )
        if row is not None:
            return JournalEntry.from_mapping(row)
        entry = self.get(thread_id, step_key, call_id)  # already completed, or never begun
        if entry is None:
            raise LookupError(
                f"no journal intent for thread {thread_id!r}, step {step_key!r}, call "
                f"{call_id!r}: call Journal.begin before the effect"
            )
        return entry

    def get(self, thread_id: str, step_key: str, call_id: str) -> JournalEntry | None:
        """The entry for this key, or ``None``."""
        statement = select(JournalRow.__table__).where(
            JournalRow.thread_id == thread_id,
            JournalRow.step_key == step_key,
            JournalRow.call_id == call_id,
        )
        return self._one(statement)

    def entries(self, thread_id: str, step_key: str | None = None) -> list[JournalEntry]:
        """A thread's entries (optionally of one step) in the order they were begun."""
        statement = select(JournalRow.__table__).where(JournalRow.thread_id == thread_id)
        if step_key is not None:
            statement = statement.where(JournalRow.step_key == step_key)
        return self._all(statement.order_by(JournalRow.seq))

    def open_intents(self, thread_id: str) -> list[JournalEntry]:
        """Entries of the thread with an intent but no outcome, oldest first."""
        statement = (
            select(JournalRow.__table__)
            .where(JournalRow.thread_id == thread_id, JournalRow.status == "intent")
            .order_by(JournalRow.seq)
        )
        return self._all(statement)

    def _one(self, statement: Select[Any]) -> JournalEntry | None:
        with self._engine.connect() as conn:
            row = conn.execute(statement).mappings().first()
        return None if row is None else JournalEntry.from_mapping(row)

    def _all(self, statement: Select[Any]) -> list[JournalEntry]:
        with self._engine.connect() as conn:
            return [JournalEntry.from_mapping(row) for row in conn.execute(statement).mappings()]


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    """A pooled connection in autocommit mode: each statement is its own transaction."""
    with engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")
