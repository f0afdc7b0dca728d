"""Migrations: run from code, concurrently, and produce exactly the declared schema.

These tests start from empty databases, never from the migrated template ``db_url`` copies.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from shipyard.store import current_revision, head_revision, migrate
from shipyard.store.database import psycopg_conninfo
from shipyard.store.tables import (
    ApprovalRow,
    CheckCacheRow,
    JournalRow,
    RunEventRow,
    RunRow,
)
from tests.databases import create_empty, drop
from tests.support import schema_diff

_MIGRATE = "import sys; from shipyard.store import migrate; migrate(sys.argv[1])"


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Iterator[str]:
    """A database with nothing in it (random name), dropped after the test."""
    name = f"shipyard_test_empty_{uuid.uuid4().hex[:12]}"
    url = create_empty(pg_server_url, name)
    try:
        yield url
    finally:
        with psycopg.connect(psycopg_conninfo(pg_server_url), autocommit=True) as conn:
            drop(conn, name)


def test_two_processes_migrate_a_fresh_database_at_once(empty_db_url: str) -> None:
    url = empty_db_url
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", _MIGRATE, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        results.append((proc.returncode, stderr))
    assert results == [(0, ""), (0, "")]
    assert current_revision(url) == head_revision()
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert versions == [(head_revision(),)]


def test_migrated_schema_matches_the_store_table_declarations(empty_db_url: str) -> None:
    assert current_revision(empty_db_url) is None
    migrate(empty_db_url)
    migrate(empty_db_url)  # a second upgrade of an up-to-date database is a no-op
    # Other modules (the server's) declare their tables on the same Base; compare ours here.
    ours = {t.__tablename__ for t in (RunRow, ApprovalRow, JournalRow, RunEventRow, CheckCacheRow)}

    diff, _ = schema_diff(empty_db_url, ours)
    assert diff == []


def test_the_cli_reads_the_shipped_revision_without_alembic() -> None:
    from shipyard.cli.records import shipped_revision  # noqa: PLC0415
    from shipyard.store import head_revision  # noqa: PLC0415

    assert shipped_revision() == head_revision()
