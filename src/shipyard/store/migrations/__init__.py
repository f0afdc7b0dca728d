"""Schema migrations (Alembic), driven from code — no ``alembic.ini`` at runtime.

``migrate(url)`` upgrades the database to the newest revision. It holds a Postgres
transaction-level advisory lock for the whole upgrade, so two processes starting at once
(two workers, a CLI and a server) do not race: the second waits, then finds nothing to do.
Postgres DDL is transactional, so a failed migration leaves the schema as it was.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from shipyard.store.database import make_engine

# Arbitrary constant shared by every Shipyard process: "the migration lock".
_MIGRATION_LOCK_KEY = 0x5348_4950_5944  # "SHIPYD"


def alembic_config() -> Config:
    """An Alembic config pointing at this package's scripts."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head_revision() -> str:
    """The newest revision shipped with this version of Shipyard."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations package has no revisions"
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is on (``None`` before the first migration)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the head revision; safe to call concurrently."""
    config = alembic_config()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            # env.py runs the migrations on this connection, inside this transaction.
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()
