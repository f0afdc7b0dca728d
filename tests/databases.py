"""Test databases, each a copy of one migrated template.

Migrating a database runs every Alembic revision; copying a migrated one is a file copy on
the server. So a Postgres server holds one migrated template per *migration set*, and each
test's database is ``CREATE DATABASE … TEMPLATE`` of it:

* The template is named for a fingerprint of the migration scripts
  (``shipyard_tmpl_<sha256 prefix>``): a changed, added or removed migration means a new
  template, never a stale one.
* Templates are built and dropped under an exclusive advisory lock, and copied under the
  shared one: pytest sessions running at once wait for one build and reuse it, and no
  template disappears while it is being copied. Templates with another fingerprint are
  dropped when a session starts (a session still using one rebuilds it on its next copy).
* A template is migrated under a scratch name and renamed once the migration committed: a
  session killed mid-build leaves no half-migrated template (the next build drops its scratch).
* Templates refuse connections: Postgres refuses to copy a database anyone is connected to,
  so no stray connection can break a copy.

Tests of the migrations themselves use ``create_empty`` instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
from psycopg import sql

import shipyard.store.migrations
from shipyard.store import migrate, psycopg_conninfo, sqlalchemy_url, with_database

TEMPLATE_PREFIX = "shipyard_tmpl_"
"""Names of template databases (the fingerprint follows)."""

# Arbitrary constant shared by every test session: "the test template lock".
_TEMPLATE_LOCK_KEY = 0x5348_5450_4C54  # "SHTPLT"


def migrations_fingerprint() -> str:
    """A hash of every migration script's path and text (the migration set's identity)."""
    root = Path(shipyard.store.migrations.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def template_name() -> str:
    """The template database for the migration scripts as they are now."""
    return TEMPLATE_PREFIX + migrations_fingerprint()


def ensure_template(server_url: str) -> str:
    """Build the migrated template on ``server_url`` unless it exists; return its name.

    Safe to call from several processes at once; drops templates of other migration sets.
    """
    name = template_name()
    with psycopg.connect(psycopg_conninfo(server_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_TEMPLATE_LOCK_KEY])
        try:
            if not _exists(conn, name):
                _build(conn, server_url, name)
            _drop_others(conn, keep=name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_TEMPLATE_LOCK_KEY])
    return name


def create_from_template(server_url: str, name: str, template: str) -> str:
    """Create database ``name`` as a copy of ``template`` (rebuilt first if another session
    dropped it); return its SQLAlchemy URL."""
    try:
        _copy(server_url, name, template)
    except psycopg.errors.InvalidCatalogName:  # dropped by a session with other migrations
        _copy(server_url, name, ensure_template(server_url))
    return sqlalchemy_url(with_database(server_url, name))


def create_empty(server_url: str, name: str) -> str:
    """Create (or re-create) an empty database ``name``; return its SQLAlchemy URL."""
    with psycopg.connect(psycopg_conninfo(server_url), autocommit=True) as conn:
        drop(conn, name)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return sqlalchemy_url(with_database(server_url, name))


def drop(conn: psycopg.Connection, name: str) -> None:
    """Drop database ``name`` if it exists; FORCE ends connections a test left open."""
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _copy(server_url: str, name: str, template: str) -> None:
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
    with psycopg.connect(psycopg_conninfo(server_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock_shared(%s)", [_TEMPLATE_LOCK_KEY])
        try:
            conn.execute(statement.format(sql.Identifier(name), sql.Identifier(template)))
        finally:
            conn.execute("SELECT pg_advisory_unlock_shared(%s)", [_TEMPLATE_LOCK_KEY])


def _exists(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def _build(conn: psycopg.Connection, server_url: str, name: str) -> None:
    scratch = f"{name}_building"
    drop(conn, scratch)
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    migrate(sqlalchemy_url(with_database(server_url, scratch)))
    # Renaming waits (up to 5 s, as Postgres does) for the migration's connection to end.
    conn.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(scratch), sql.Identifier(name)
        )
    )
    conn.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
    )


def _drop_others(conn: psycopg.Connection, keep: str) -> None:
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname <> %s",
        [TEMPLATE_PREFIX, keep],
    ).fetchall()
    for (other,) in rows:
        drop(conn, other)
