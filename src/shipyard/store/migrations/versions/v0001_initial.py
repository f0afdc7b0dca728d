"""Initial schema: runs, approvals, journal, run_events, check_cache.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    """Create Shipyard's tables."""
    _create_runs()
    _create_approvals()
    _create_journal()
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_events"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_events_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "check_cache",
        sa.Column("tree_hash", sa.Text(), nullable=False),
        sa.Column("command_key", sa.Text(), nullable=False),
        sa.Column("evidence", JSONB(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("tree_hash", "command_key", name="pk_check_cache"),
    )


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("branch", sa.Text(), nullable=True),
        sa.Column("base_commit", sa.String(64), nullable=True),
        sa.Column("head_commit", sa.String(64), nullable=True),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("usage", JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        _created_at(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_thread_id", "runs", ["thread_id"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])


def _create_approvals() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("interrupt_id", sa.String(128), nullable=False),
        sa.Column("content_hash", sa.String(80), nullable=False),
        sa.Column("request", JSONB(), nullable=False),
        sa.Column("decision", JSONB(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), server_default=sa.text("'pending'"), nullable=False),
        _created_at(),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_approvals_run_id_runs", ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'decided', 'refused', 'superseded')",
            name="ck_approvals_status",
        ),
    )
    op.create_index("ix_approvals_run_id", "approvals", ["run_id"])
    op.create_index(
        "uq_approvals_one_pending",
        "approvals",
        ["run_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )


def _create_journal() -> None:
    op.create_table(
        "journal",
        sa.Column("seq", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("step_key", sa.Text(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("intent", JSONB(), nullable=False),
        sa.Column("outcome", JSONB(), nullable=True),
        sa.Column("status", sa.String(16), server_default=sa.text("'intent'"), nullable=False),
        _created_at(),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_journal"),
        sa.UniqueConstraint(
            "thread_id", "step_key", "call_id", name="uq_journal_thread_id_step_key_call_id"
        ),
        sa.CheckConstraint(
            "status IN ('intent', 'done', 'reconciled', 'failed')", name="ck_journal_status"
        ),
    )


def downgrade() -> None:
    """Drop Shipyard's tables (checkpoints are LangGraph's and stay)."""
    for table in ("check_cache", "run_events", "journal", "approvals", "runs"):
        op.drop_table(table)
