"""The outbox (migration ``v0008_outbox``): deliveries that must happen, kept in Postgres
until they did.

A row is one delivery of one event to one destination: ``kind`` ``notify`` (an event for
a configured endpoint, named by ``target``) or ``webhook`` (a run's end for the URL its
creator gave; written by a trigger on ``api_runs`` in the transaction that ends the run).
Rows are unique by ``(key, target)``: writing an event twice writes it once, so an emitter
may write "right after" its own transaction and again on every retry.

Life of a row: ``pending`` → ``sent``, or ``failed`` (attempts spent, or refused for good).
A sender claims due rows with ``FOR UPDATE SKIP LOCKED`` and pushes ``next_attempt_at``
past its lease, so a sender that dies mid-send leaves the row to be claimed again when the
lease runs out: at-least-once, and receivers drop repeats by the key. Settled rows are
the record of what was delivered (``attempts``, ``last_error``, ``sent_at``) and are pruned
after ``KEEP_DAYS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    DateTime,
    Engine,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.notify.config import NotifyConfig, current
from shipyard.notify.events import EventName
from shipyard.store.tables import Base, Json

Kind = Literal["notify", "webhook"]
WEBHOOK_TARGET = "webhook"


class OutboxRow(Base):
    """One delivery of one event to one destination."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(Text)
    """The event's idempotency key, sent with every attempt."""
    target: Mapped[str] = mapped_column(Text)
    """The endpoint's name (``notify``) or ``webhook``."""
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(128))
    payload: Mapped[Json]
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("key", "target"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        CheckConstraint("kind IN ('notify', 'webhook')", name="kind"),
        Index("ix_outbox_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
    )


def emit(
    bind: Engine | Connection,
    event: EventName,
    payload: Mapping[str, Any],
    *,
    key: str,
    owner: str = "local",
    config: NotifyConfig | None = None,
) -> int:
    """Write ``event`` for every configured endpoint that wants it; return the rows written.

    ``bind``: an engine (its own transaction) or a connection (the caller's transaction:
    the event exists when it commits). ``key`` identifies the event: a key already written
    writes nothing. ``config`` defaults to this process's (``config.current()``). No network
    I/O here: a sender delivers the rows.
    """
    config = config or current()
    rows = [
        {
            "kind": "notify",
            "key": key,
            "target": endpoint.name,
            "url": endpoint.url,
            "event": event,
            "owner": owner,
            "payload": dict(payload),
        }
        for endpoint in config.endpoints
        if endpoint.wants(event)
    ]
    if not rows:
        return 0
    statement = insert(OutboxRow).values(rows).on_conflict_do_nothing().returning(OutboxRow.id)
    if isinstance(bind, Connection):
        return len(bind.execute(statement).all())
    with bind.begin() as conn:
        return len(conn.execute(statement).all())


@dataclass(frozen=True)
class Delivery:
    """A claimed row: what to send, and which attempt this is."""

    id: int
    kind: Kind
    key: str
    target: str
    url: str
    event: str
    owner: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


CLAIM = """
UPDATE outbox SET attempts = attempts + 1,
    next_attempt_at = now() + make_interval(secs => %(lease)s)
WHERE id IN (
    SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()
        AND kind = ANY(%(kinds)s)
        AND (%(targets)s::text[] IS NULL OR target = ANY(%(targets)s))
    ORDER BY next_attempt_at, id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING id, kind, key, target, url, event, owner, payload, attempts, created_at
"""
"""Takes up to ``limit`` due rows of the ``kinds`` given — and of the ``targets`` given,
unless that is NULL — for ``lease`` seconds (one statement, its own transaction: no lock is
held while sending)."""

SENT = """UPDATE outbox SET status = 'sent', sent_at = now(), last_error = NULL
    WHERE id = %(id)s AND status = 'pending'"""

RETRY = """UPDATE outbox SET last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(delay)s)
    WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempts)s"""
"""Schedules the next attempt — unless another sender claimed the row since (its lease
ran out while this attempt was in flight): then that sender decides."""

FAILED = """UPDATE outbox SET status = 'failed', last_error = %(error)s
    WHERE id = %(id)s AND status = 'pending' AND attempts = %(attempts)s"""

KEEP_DAYS = 30
"""How long a settled (``sent`` or ``failed``) row stays, as the record of its delivery."""

PRUNE = """DELETE FROM outbox WHERE status <> 'pending'
    AND created_at < now() - make_interval(days => %(days)s)"""


__all__ = [
    "CLAIM",
    "FAILED",
    "KEEP_DAYS",
    "PRUNE",
    "RETRY",
    "SENT",
    "WEBHOOK_TARGET",
    "Delivery",
    "OutboxRow",
    "emit",
]
