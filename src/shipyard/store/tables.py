"""Shipyard's own tables (docs/architecture.md §8). LangGraph's checkpoint tables are
managed by LangGraph.

Every change here needs a migration in ``store/migrations/versions``; a test compares the
migrated schema with these declarations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to them.
_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = dict[str, Any]


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata."""

    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {Json: JSONB}  # noqa: RUF012 - SQLAlchemy's documented pattern


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class RunRow(Base):
    """One Shipyard run; ``thread_id`` is the LangGraph thread holding its checkpoints."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32))
    goal: Mapped[str] = mapped_column(Text)
    repo: Mapped[str] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(Text)
    base_commit: Mapped[str | None] = mapped_column(String(64))
    head_commit: Mapped[str | None] = mapped_column(String(64))
    report_path: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[Json] = mapped_column(server_default=text("'{}'::jsonb"))
    # Last ``run_events.seq`` handed out; bumped atomically so seqs are gap-free per run.
    event_seq: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    # The process driving the run from the CLI and until when (``store/run_leases.py``).
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # ``shipyard cancel``: the holder stops and finalizes the run as ``cancelled``.
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_by: Mapped[str | None] = mapped_column(Text)
    # Delivery (``nodes/deliver.py``): ``delivered`` / ``failed`` / ``refused``, why, the PR.
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    pull_request_url: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "created_at"),)


class ApprovalRow(Base):
    """An approval request and, once decided, its decision.

    ``status``: ``pending`` (waiting), ``decided`` (a valid decision is recorded),
    ``refused`` (audit row of a decision that was refused as stale; the pending request it
    targeted stays pending), ``superseded`` (a newer interrupt of the same run replaced it).
    """

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    interrupt_id: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(80))
    request: Mapped[Json]
    decision: Mapped[Json | None]
    decided_by: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    created_at: Mapped[datetime] = _now()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'decided', 'refused', 'superseded')", name="status"),
        # At most one pending request per run: two approvers cannot both be "the" decision.
        Index(
            "uq_approvals_one_pending",
            "run_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )


class JournalRow(Base):
    """The side-effect journal (docs/architecture.md §4): intent before the effect, outcome
    after."""

    __tablename__ = "journal"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    thread_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(Text)
    call_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(64))
    intent: Mapped[Json]
    outcome: Mapped[Json | None]
    status: Mapped[str] = mapped_column(String(16), server_default=text("'intent'"))
    created_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("thread_id", "step_key", "call_id"),
        CheckConstraint("status IN ('intent', 'done', 'reconciled', 'failed')", name="status"),
    )


class RunEventRow(Base):
    """An audit / streaming event of a run; ``seq`` counts from 1 per run without gaps."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[Json]
    created_at: Mapped[datetime] = _now()


class CheckCacheRow(Base):
    """Evidence of a check on an exact workspace tree (git tree hash), for one owner;
    ``command_key`` covers the check, its toolchain, environment, policy and isolation."""

    __tablename__ = "check_cache"

    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    tree_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    command_key: Mapped[str] = mapped_column(Text, primary_key=True)
    evidence: Mapped[Json]
    created_at: Mapped[datetime] = _now()
