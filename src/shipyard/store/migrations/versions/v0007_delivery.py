"""Delivery on ``runs``: its status, why it failed, and the pull request's URL.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    """Add the delivery columns."""
    op.add_column("runs", sa.Column("delivery_status", sa.String(16), nullable=True))
    op.add_column("runs", sa.Column("delivery_error", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("pull_request_url", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    for column in ("pull_request_url", "delivery_error", "delivery_status"):
        op.drop_column("runs", column)
