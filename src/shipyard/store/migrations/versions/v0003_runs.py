"""Server runs: the run queue (``api_runs``) and stored stream events (``run_stream_events``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision: str | None = "0002"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_NOW = sa.text("now()")
_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    """Create the run queue and the stream event log."""
    op.create_table(
        "api_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column(
            "thread_id",
            sa.String(64),
            sa.ForeignKey("threads.thread_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("kwargs", JSONB(), nullable=False, server_default=_EMPTY),
        sa.Column("metadata", JSONB(), nullable=False, server_default=_EMPTY),
        sa.Column("multitask_strategy", sa.String(16), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cancel_action", sa.String(16), nullable=True),
        sa.Column("start_checkpoint_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'success', 'error', 'timeout', 'interrupted')",
            name="ck_api_runs_status",
        ),
    )
    op.create_index("ix_api_runs_thread_created", "api_runs", ["thread_id", "created_at"])
    op.create_index(
        "ix_api_runs_claimable",
        "api_runs",
        ["created_at"],
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    # The guarantee behind "one run at a time per thread": a second claim on a busy thread
    # fails here even if two workers race past the claim query's own checks.
    op.create_index(
        "ux_api_runs_one_running_per_thread",
        "api_runs",
        ["thread_id"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "run_stream_events",
        sa.Column(
            "run_id",
            sa.String(64),
            sa.ForeignKey("api_runs.run_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("data", JSONB(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("run_id", "seq", name="pk_run_stream_events"),
    )


def downgrade() -> None:
    """Drop the run queue and its events."""
    op.drop_table("run_stream_events")
    op.drop_table("api_runs")
