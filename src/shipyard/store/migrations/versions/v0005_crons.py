"""Server crons (``api_crons``): scheduled runs, fired by every server process's scheduler.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision: str | None = "0004"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_NOW = sa.text("now()")
_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    """Create the cron table and its indexes."""
    op.create_table(
        "api_crons",
        sa.Column("cron_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column(
            "thread_id",
            sa.String(64),
            sa.ForeignKey(
                "threads.thread_id",
                ondelete="CASCADE",
                name="fk_api_crons_thread_id_threads",
            ),
            nullable=True,
        ),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("payload", JSONB(), nullable=False, server_default=_EMPTY),
        sa.Column("metadata", JSONB(), nullable=False, server_default=_EMPTY),
        sa.Column("on_run_completed", sa.String(16), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint(
            "on_run_completed IS NULL OR on_run_completed IN ('delete', 'keep')",
            name="ck_api_crons_on_run_completed",
        ),
        sa.PrimaryKeyConstraint("cron_id", name="pk_api_crons"),
    )
    op.create_index("ix_api_crons_owner", "api_crons", ["owner"])
    op.create_index("ix_api_crons_thread_id", "api_crons", ["thread_id"])
    # What the scheduler's claim reads: enabled crons by their next firing.
    op.create_index(
        "ix_api_crons_due", "api_crons", ["next_run_date"], postgresql_where=sa.text("enabled")
    )


def downgrade() -> None:
    """Drop the cron table."""
    op.drop_table("api_crons")
