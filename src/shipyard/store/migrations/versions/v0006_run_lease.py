"""CLI run leases and cancel requests on ``runs``: who drives a run, until when, and
whether someone asked it to stop.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the lease and cancel-request columns."""
    op.add_column("runs", sa.Column("lease_owner", sa.String(128), nullable=True))
    op.add_column("runs", sa.Column("lease_expires_at", _TS, nullable=True))
    op.add_column("runs", sa.Column("cancel_requested_at", _TS, nullable=True))
    op.add_column("runs", sa.Column("cancel_requested_by", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop them."""
    for column in ("cancel_requested_by", "cancel_requested_at", "lease_expires_at"):
        op.drop_column("runs", column)
    op.drop_column("runs", "lease_owner")
