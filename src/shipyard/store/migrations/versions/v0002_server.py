"""Server tables: assistants, assistant_versions, threads, api_keys (all owned).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    default = None if nullable else sa.func.now()
    return sa.Column(name, sa.DateTime(timezone=True), server_default=default, nullable=nullable)


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(name, JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False)


def _assistant_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("graph_id", sa.String(128), nullable=False),
        _json("config"),
        _json("context"),
        _json("metadata"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    """Create the server's tables."""
    op.create_table(
        "assistants",
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        *_assistant_columns(),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("assistant_id", name="pk_assistants"),
    )
    op.create_index("ix_assistants_owner", "assistants", ["owner"])
    op.create_table(
        "assistant_versions",
        sa.Column("assistant_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        *_assistant_columns(),
        _at("created_at"),
        sa.PrimaryKeyConstraint("assistant_id", "version", name="pk_assistant_versions"),
        sa.ForeignKeyConstraint(
            ["assistant_id"],
            ["assistants.assistant_id"],
            name="fk_assistant_versions_assistant_id_assistants",
            ondelete="CASCADE",
        ),
    )
    _create_threads()
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("hash", name="uq_api_keys_hash"),
    )


def _create_threads() -> None:
    op.create_table(
        "threads",
        sa.Column("thread_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'idle'"), nullable=False),
        _json("metadata"),
        _json("config"),
        sa.Column("values", JSONB(), nullable=True),
        _json("interrupts"),
        sa.Column("error", JSONB(), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("state_updated_at"),
        sa.PrimaryKeyConstraint("thread_id", name="pk_threads"),
        sa.CheckConstraint(
            "status IN ('idle', 'busy', 'interrupted', 'error')", name="ck_threads_status"
        ),
    )
    op.create_index("ix_threads_owner", "threads", ["owner"])
    op.create_index("ix_threads_created_at", "threads", ["created_at"])


def downgrade() -> None:
    """Drop the server's tables."""
    for table in ("api_keys", "threads", "assistant_versions", "assistants"):
        op.drop_table(table)
