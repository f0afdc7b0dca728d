"""The server's tables (migration ``v0002_server``): assistants, their versions, threads and
API keys; crons (``v0005_crons``). Declared on the store's ``Base`` so one metadata describes
the whole schema.

Every row a caller can see carries an ``owner``: the owner of the API key that created it
(``"local"`` in single-owner mode). Rows of other owners are invisible — the routes answer 404.
Default assistants (one per graph id) belong to ``SYSTEM_OWNER`` and are visible to everyone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.store.tables import Base, Json

SYSTEM_OWNER = "system"
"""Owner of the default assistants; no API key may be created for it."""


THREAD_STATUSES = ("idle", "busy", "interrupted", "error")


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _json() -> Mapped[Json]:
    return mapped_column(server_default=text("'{}'::jsonb"))


class AssistantRow(Base):
    """The current version of an assistant (a graph id plus config, context and metadata)."""

    __tablename__ = "assistants"

    assistant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    graph_id: Mapped[str] = mapped_column(String(128))
    config: Mapped[Json] = _json()
    context: Mapped[Json] = _json()
    metadata_: Mapped[Json] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class AssistantVersionRow(Base):
    """Every version an assistant ever had; ``assistants`` mirrors the one set as latest."""

    __tablename__ = "assistant_versions"

    assistant_id: Mapped[str] = mapped_column(
        ForeignKey("assistants.assistant_id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    graph_id: Mapped[str] = mapped_column(String(128))
    config: Mapped[Json] = _json()
    context: Mapped[Json] = _json()
    metadata_: Mapped[Json] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class ThreadRow(Base):
    """A LangGraph thread: its checkpoints live in LangGraph's tables under ``thread_id``.

    ``status`` is ``idle | busy | interrupted | error``; the run workers set it.
    ``values`` and ``interrupts`` cache the latest state for listing without a graph.
    """

    __tablename__ = "threads"

    thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default=text("'idle'"))
    metadata_: Mapped[Json] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    config: Mapped[Json] = _json()
    values: Mapped[Json | None]
    interrupts: Mapped[Json] = _json()
    error: Mapped[Json | None]
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    state_updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index(None, "created_at"),
        CheckConstraint("status IN ('idle', 'busy', 'interrupted', 'error')", name="status"),
    )


class ApiKeyRow(Base):
    """An API key: only a hash of the secret is kept; the secret is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CronRow(Base):
    """A cron: a run ``payload`` created on ``schedule`` (croniter syntax, UTC unless
    ``timezone``) while ``enabled`` and before ``end_time``. ``thread_id`` set: every firing
    runs on that thread (deleting the thread deletes its crons); ``None``: each firing runs
    on a new thread. ``next_run_date`` is the next firing; ``last_error`` why the latest
    due firing created no run (``None`` when it did)."""

    __tablename__ = "api_crons"

    cron_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    assistant_id: Mapped[str] = mapped_column(String(64))
    thread_id: Mapped[str | None] = mapped_column(
        ForeignKey("threads.thread_id", ondelete="CASCADE"), index=True
    )
    schedule: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[Json] = _json()
    metadata_: Mapped[Json] = mapped_column("metadata", server_default=text("'{}'::jsonb"))
    on_run_completed: Mapped[str | None] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    end_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_run_date: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index("ix_api_crons_due", "next_run_date", postgresql_where=text("enabled")),
        CheckConstraint(
            "on_run_completed IS NULL OR on_run_completed IN ('delete', 'keep')",
            name="on_run_completed",
        ),
    )
