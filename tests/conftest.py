"""Shared fixtures: a real Postgres for every test that needs one.

* ``pg_server_url`` (session): ``DATABASE_URL`` if set, else an embedded Postgres started for
  this session (stopped and deleted at session end).
* ``db_template`` (session): the name of a migrated template database on that server, built
  once per migration set and shared by concurrent sessions (see ``tests/databases.py``).
* ``db_url`` (function): a fresh, migrated database on that server — a copy of the template —
  dropped afterwards. The URL is in SQLAlchemy form (``postgresql+psycopg://…``); pass it to
  ``shipyard.store.make_engine``, or through ``shipyard.store.psycopg_conninfo`` for plain
  psycopg / the checkpointer. Tests of the migrations themselves start from
  ``tests.databases.create_empty`` instead.
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

from shipyard.settings import Settings
from shipyard.store import ensure_embedded, psycopg_conninfo, stop_embedded
from tests.databases import create_from_template, drop, ensure_template


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


@pytest.fixture(scope="session")
def db_template(pg_server_url: str) -> str:
    """The migrated template database's name (built unless this migration set has one)."""
    return ensure_template(pg_server_url)


@pytest.fixture
def db_url(pg_server_url: str, db_template: str) -> Iterator[str]:
    """A fresh migrated database (random name, a copy of the template), dropped after the test."""
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    url = create_from_template(pg_server_url, name, db_template)
    try:
        yield url
    finally:
        with psycopg.connect(psycopg_conninfo(pg_server_url), autocommit=True) as conn:
            drop(conn, name)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings with a private home directory and the test's own database."""
    return Settings(home=tmp_path / "home", database_url=db_url)
