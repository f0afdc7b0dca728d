"""The tests' database template (``tests/databases.py``): one per migration set, copies at
the head revision, stale templates dropped, a template dropped under a session rebuilt."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from shipyard.store import current_revision, head_revision, psycopg_conninfo
from tests.databases import (
    TEMPLATE_PREFIX,
    create_from_template,
    drop,
    ensure_template,
    template_name,
)


def _names(pg_server_url: str) -> set[str]:
    with psycopg.connect(psycopg_conninfo(pg_server_url), autocommit=True) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


def test_the_template_is_migrated_once_and_copies_are_at_the_head(
    pg_server_url: str, db_template: str, db_url: str
) -> None:
    assert db_template == template_name() == ensure_template(pg_server_url)
    assert db_template.startswith(TEMPLATE_PREFIX)
    assert current_revision(db_url) == head_revision()
    with psycopg.connect(psycopg_conninfo(pg_server_url)) as conn:
        row = conn.execute(
            "SELECT datallowconn FROM pg_database WHERE datname = %s", [db_template]
        ).fetchone()
    assert row == (False,)  # nobody connects to a template: copies never find it busy


def test_a_template_of_another_migration_set_is_dropped(pg_server_url: str) -> None:
    stale = f"{TEMPLATE_PREFIX}{'0' * 16}"
    with psycopg.connect(psycopg_conninfo(pg_server_url), autocommit=True) as conn:
        drop(conn, stale)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(stale)))
    assert stale in _names(pg_server_url)
    ensure_template(pg_server_url)
    names = _names(pg_server_url)
    assert stale not in names and template_name() in names


def test_a_copy_of_a_template_gone_meanwhile_uses_the_rebuilt_one(pg_server_url: str) -> None:
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    gone = f"{TEMPLATE_PREFIX}gone_{uuid.uuid4().hex[:8]}"
    url = create_from_template(pg_server_url, name, gone)
    try:
        assert current_revision(url) == head_revision()
    finally:
        with psycopg.connect(psycopg_conninfo(pg_server_url), autocommit=True) as conn:
            drop(conn, name)
