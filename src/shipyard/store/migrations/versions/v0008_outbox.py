"""The outbox (``shipyard.notify.outbox``): deliveries of notifications and run webhooks,
and the trigger that writes a run's webhook in the transaction that ends the run.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision: str | None = "0007"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_TS = sa.DateTime(timezone=True)

# A run ending (``success``, ``error``, ``timeout``, ``interrupted``) with a ``webhook`` in
# its kwargs gets one outbox row, keyed by its id: the run as it ended, its thread's values
# and when it ended. Every way a run ends goes through an UPDATE of ``api_runs.status``, so
# this one place sees them all, in their own transactions.
_FUNCTION = """
CREATE FUNCTION shipyard_run_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (kind, key, target, url, event, owner, payload)
    VALUES ('webhook', NEW.run_id, 'webhook', NEW.kwargs->>'webhook', 'run.' || NEW.status,
            NEW.owner,
            jsonb_build_object(
                'run', to_jsonb(NEW),
                'values', (SELECT t."values" FROM threads t WHERE t.thread_id = NEW.thread_id),
                'ended_at', now()))
    ON CONFLICT (key, target) DO NOTHING;
    RETURN NULL;
END $$
"""

_TRIGGER = """
CREATE TRIGGER api_runs_webhook AFTER UPDATE OF status ON api_runs FOR EACH ROW
WHEN (NEW.status IN ('success', 'error', 'timeout', 'interrupted')
      AND OLD.status IS DISTINCT FROM NEW.status
      AND NEW.kwargs->>'webhook' IS NOT NULL)
EXECUTE FUNCTION shipyard_run_webhook()
"""


def upgrade() -> None:
    """Create the outbox, its due-rows index and the run-webhook trigger."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("key", "target", name="uq_outbox_key_target"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_outbox_status"),
        sa.CheckConstraint("kind IN ('notify', 'webhook')", name="ck_outbox_kind"),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.execute(_FUNCTION)
    op.execute(_TRIGGER)


def downgrade() -> None:
    """Drop the trigger, its function and the outbox."""
    op.execute("DROP TRIGGER IF EXISTS api_runs_webhook ON api_runs")
    op.execute("DROP FUNCTION IF EXISTS shipyard_run_webhook()")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
