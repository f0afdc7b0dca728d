"""The side-effect journal (docs/architecture.md §4): intent before an effect, outcome after.

An entry is keyed by ``(thread_id, step_key, call_id)``. ``begin`` writes the intent and is
idempotent — a node re-running after a crash gets the entry it wrote before, never a second
one. ``complete`` records the outcome once; completing again keeps the first outcome. An
entry still in status ``intent`` on resume is an effect that may or may not have happened:
the caller reconciles it (looks it up) or surfaces it to a human — never blindly repeats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Engine, Select, select

from shipyard.store.jsonb import jsonb
from shipyard.store.tables import JournalRow
from shipyard.store.writer import Query, writer_for

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


_CLAIM: Query = """
    INSERT INTO journal (thread_id, step_key, call_id, kind, intent)
    VALUES (%(thread_id)s, %(step_key)s, %(call_id)s, %(kind)s, %(intent)s)
    ON CONFLICT (thread_id, step_key, call_id) DO NOTHING
    RETURNING seq, created_at
"""
"""Insert the intent; no row back means the entry was there before."""

_RECORD: Query = """
    INSERT INTO journal (thread_id, step_key, call_id, kind, intent, outcome, status,
                         completed_at)
    VALUES (%(thread_id)s, %(step_key)s, %(call_id)s, %(kind)s, %(intent)s, %(outcome)s,
            'done', now())
    ON CONFLICT (thread_id, step_key, call_id) DO NOTHING
"""
"""A completed call, intent and outcome at once; an entry there before wins."""

_COMPLETE: Query = """
    UPDATE journal SET outcome = %(outcome)s, status = %(status)s, completed_at = now()
    WHERE thread_id = %(thread_id)s AND step_key = %(step_key)s AND call_id = %(call_id)s
      AND status = 'intent'
    RETURNING journal.*
"""


class Journal:
    """Journal entries in Postgres. Writes go through the engine's ``RowWriter`` (intents
    now, outcomes of live effects behind: see ``store.writer``); reads see every write this
    process made before them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = writer_for(engine)

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
        row = self._writer.now(_CLAIM, {**params, "kind": kind, "intent": jsonb(intent)})
        if row is not None:
            entry = JournalEntry(
                **params,
                seq=row["seq"],
                kind=kind,
                intent=intent,
                outcome=None,
                status="intent",
                created_at=row["created_at"],
                completed_at=None,
            )
            return entry, True
        found = self.get(thread_id, step_key, call_id)
        if found is None:  # deleted in between: only a removed thread's entries vanish
            raise LookupError(f"journal entry {thread_id}/{step_key}/{call_id} vanished")
        return found, False

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
        row = self._writer.now(
            _COMPLETE, _completion(thread_id, step_key, call_id, outcome, status)
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

    def complete_behind(
        self, thread_id: str, step_key: str, call_id: str, outcome: dict[str, Any]
    ) -> None:
        """Record the outcome of an effect whose intent this process just wrote (``claim``
        returned ``True``), without waiting: it is written before the step's checkpoint."""
        self._writer.behind(_COMPLETE, _completion(thread_id, step_key, call_id, outcome, "done"))

    def record_behind(
        self,
        thread_id: str,
        step_key: str,
        call_id: str,
        kind: str,
        intent: dict[str, Any],
        outcome: dict[str, Any],
    ) -> None:
        """Record a completed call whose intent was never written, without waiting: it is
        written before the step's checkpoint. Only for a call that is simply made again when
        it is lost (``effects.EffectLog.record``); an entry already there is kept."""
        self._writer.behind(
            _RECORD,
            {
                "thread_id": thread_id,
                "step_key": step_key,
                "call_id": call_id,
                "kind": kind,
                "intent": jsonb(intent),
                "outcome": jsonb(outcome),
            },
        )

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
        self._writer.send()
        with self._engine.connect() as conn:
            row = conn.execute(statement).mappings().first()
        return None if row is None else JournalEntry.from_mapping(row)

    def _all(self, statement: Select[Any]) -> list[JournalEntry]:
        self._writer.send()
        with self._engine.connect() as conn:
            return [JournalEntry.from_mapping(row) for row in conn.execute(statement).mappings()]


def _completion(
    thread_id: str, step_key: str, call_id: str, outcome: dict[str, Any], status: Completion
) -> dict[str, Any]:
    if status not in get_args(Completion):
        raise ValueError(f"status must be one of {get_args(Completion)}, not {status!r}")
    return {
        "thread_id": thread_id,
        "step_key": step_key,
        "call_id": call_id,
        "outcome": jsonb(outcome),
        "status": status,
    }
