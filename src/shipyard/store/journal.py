"""The side-effect journal (DESIGN §4): intent before an effect, outcome after.

An entry is keyed by ``(thread_id, step_key, call_id)``. ``begin`` writes the intent and is
idempotent — a node re-running after a crash gets the entry it wrote before, never a second
one. ``complete`` records the outcome once; completing again keeps the first outcome. An
entry still in status ``intent`` on resume is an effect that may or may not have happened:
the caller reconciles it (looks it up) or surfaces it to a human — never blindly repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Engine, Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

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
        """Build from a database row."""
        status = row.status
        assert status in get_args(JournalStatus), f"unexpected journal status {status!r}"
        return cls(
            seq=row.seq,
            thread_id=row.thread_id,
            step_key=row.step_key,
            call_id=row.call_id,
            kind=row.kind,
            intent=row.intent,
            outcome=row.outcome,
            status=status,  # type: ignore[arg-type]  # checked just above
            created_at=row.created_at,
            completed_at=row.completed_at,
        )


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
        statement = (
            insert(JournalRow)
            .values(
                thread_id=thread_id, step_key=step_key, call_id=call_id, kind=kind, intent=intent
            )
            .on_conflict_do_nothing(index_elements=["thread_id", "step_key", "call_id"])
        )
        with self._engine.begin() as conn:
            conn.execute(statement)
        entry = self.get(thread_id, step_key, call_id)
        assert entry is not None, "journal entry vanished right after it was written"
        return entry

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
        statement = (
            update(JournalRow)
            .where(
                JournalRow.thread_id == thread_id,
                JournalRow.step_key == step_key,
                JournalRow.call_id == call_id,
                JournalRow.status == "intent",
            )
            .values(outcome=outcome, status=status, completed_at=func.now())
        )
        with self._engine.begin() as conn:
            conn.execute(statement)
        entry = self.get(thread_id, step_key, call_id)
        if entry is None:
            raise LookupError(
                f"no journal intent for thread {thread_id!r}, step {step_key!r}, call "
                f"{call_id!r}: call Journal.begin before the effect"
            )
        return entry

    def get(self, thread_id: str, step_key: str, call_id: str) -> JournalEntry | None:
        """The entry for this key, or ``None``."""
        statement = select(JournalRow).where(
            JournalRow.thread_id == thread_id,
            JournalRow.step_key == step_key,
            JournalRow.call_id == call_id,
        )
        return self._one(statement)

    def entries(self, thread_id: str, step_key: str | None = None) -> list[JournalEntry]:
        """A thread's entries (optionally of one step) in the order they were begun."""
        statement = select(JournalRow).where(JournalRow.thread_id == thread_id)
        if step_key is not None:
            statement = statement.where(JournalRow.step_key == step_key)
        return self._all(statement.order_by(JournalRow.seq))

    def open_intents(self, thread_id: str) -> list[JournalEntry]:
        """Entries of the thread with an intent but no outcome, oldest first."""
        statement = (
            select(JournalRow)
            .where(JournalRow.thread_id == thread_id, JournalRow.status == "intent")
            .order_by(JournalRow.seq)
        )
        return self._all(statement)

    def _one(self, statement: Select[JournalRow]) -> JournalEntry | None:
        with Session(self._engine) as session:
            row = session.scalars(statement).first()
            return None if row is None else JournalEntry.from_row(row)

    def _all(self, statement: Select[JournalRow]) -> list[JournalEntry]:
        with Session(self._engine) as session:
            return [JournalEntry.from_row(row) for row in session.scalars(statement)]
