"""Check cache entries belong to one owner; keys now cover toolchain, environment and policy.

Existing entries are dropped: their keys covered only the tree and the check spec, so no
new lookup could match them, and the cache is only a speed-up.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    """Empty the cache, add ``owner`` and make it part of the primary key."""
    op.execute("DELETE FROM check_cache")
    op.drop_constraint("pk_check_cache", "check_cache", type_="primary")
    op.add_column("check_cache", sa.Column("owner", sa.Text(), nullable=False))
    op.create_primary_key("pk_check_cache", "check_cache", ["owner", "tree_hash", "command_key"])


def downgrade() -> None:
    """Back to entries shared by every owner (emptied again: they were per owner)."""
    op.execute("DELETE FROM check_cache")
    op.drop_constraint("pk_check_cache", "check_cache", type_="primary")
    op.drop_column("check_cache", "owner")
    op.create_primary_key("pk_check_cache", "check_cache", ["tree_hash", "command_key"])
