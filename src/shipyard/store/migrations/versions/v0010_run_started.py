"""When a run of the API started (``api_runs.started_at``), for the webhook's
``run_started_at`` (``server/runs/webhooks.py``).

A run starts when a worker first holds it: the claim of a pending run, or an insert already
claimed, both of which write ``status = 'running'``. A trigger stamps the first such write,
so every way a run starts is seen in one place and the queue's statements stay as they are;
a run reclaimed after its lease expired keeps its first start. A run that ended without
starting (cancelled while pending) has none.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_FUNCTION = """
CREATE FUNCTION shipyard_run_started() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.started_at := now();
    RETURN NEW;
END $$
"""

_TRIGGER = """
CREATE TRIGGER api_runs_started BEFORE INSERT OR UPDATE OF status ON api_runs FOR EACH ROW
WHEN (NEW.status = 'running' AND NEW.started_at IS NULL)
EXECUTE FUNCTION shipyard_run_started()
"""


def upgrade() -> None:
    """Add ``started_at`` and the trigger that stamps it."""
    op.add_column("api_runs", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(_FUNCTION)
    op.execute(_TRIGGER)


def downgrade() -> None:
    """Drop the trigger, its function and the column."""
    op.execute("DROP TRIGGER IF EXISTS api_runs_started ON api_runs")
    op.execute("DROP FUNCTION IF EXISTS shipyard_run_started()")
    op.drop_column("api_runs", "started_at")
