"""Shared fixtures: a real Postgres for every test that needs one.

* ``pg_server_url`` (session): ``DATABASE_URL`` if set, else an embedded Postgres started for
  this session (stopped and deleted at session end).
* ``db_url`` (function): a fresh, migrated database on that server, dropped afterwards. The URL
  is in SQLAlchemy form (``postgresql+psycopg://…``); pass it to ``shipyard.store.make_engine``,
  or through ``shipyard.store.psycopg_conninfo`` for plain psycopg / the checkpointer.
* ``settings`` (function): ``Settings`` with ``home=tmp_path/"home"`` and that database.

The embedded server's data directory lives in its own ``mkdtemp`` directory rather than under
pytest's ``tmp_path_factory``: when tests run as root, Postgres runs as another user and needs
the directory's parents to be traversable, while every new pytest session resets
``/tmp/pytest-of-<user>`` to mode 0700 — a concurrent session could then break a starting
server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from shipyard.settings import Settings
from shipyard.store import (
    ensure_embedded,
    migrate,
    psycopg_conninfo,
    sqlalchemy_url,
    stop_embedded,
    with_database,
)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a running Postgres server (any database on it; superuser rights needed)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    base = Path(tempfile.mkdtemp(prefix="shipyard-test-pg-"))
    pgdata = base / "pgdata"
    try:
        yield ensure_embedded(pgdata)
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def db_url(pg_server_url: str) -> Iterator[str]:
    """A fresh migrated database (random name), dropped after the test."""
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg_conninfo(pg_server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = sqlalchemy_url(with_database(pg_server_url, name))
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            # FORCE terminates connections a test left open (pools, leaked sessions).
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings with a private home directory and the test's own database."""
    return Settings(home=tmp_path / "home", database_url=db_url)
