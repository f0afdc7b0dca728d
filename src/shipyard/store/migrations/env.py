"""Alembic environment: migrations run on the connection ``migrate()`` hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shipyard.store.tables import Base


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "run migrations through shipyard.store.migrate(url), which provides the connection"
        )
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


_run()
