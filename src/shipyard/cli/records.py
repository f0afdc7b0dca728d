"""The run records alone, for the commands that only read them (``runs``, ``stats``).

``Runner.open`` brings LangGraph, the checkpointer, the sandbox probe and the models; a
listing needs none of them, only the ``runs`` table. ``shipyard runs`` reads it with plain
psycopg (``records``: no SQLAlchemy, no pydantic — what a person waits for is mostly
imports) into ``RunRecord``, which carries what a listing shows. The schema is migrated first
when the database is not at the revision this version ships (read from ``alembic_version``
without importing Alembic, which is slower to import than the listing takes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg.rows import dict_row

from shipyard.settings import Settings
from shipyard.store.plain_connection import connect, resolve_database_url
from shipyard.store.run_holders import HOLDER_GONE, is_interrupted

if TYPE_CHECKING:
    from shipyard.store.runs import RunStore

Connection = psycopg.Connection[tuple[object, ...]]

_NEWEST = f"""SELECT id, status, goal, created_at, updated_at, lease_owner,
    {HOLDER_GONE} AS holder_gone
    FROM runs ORDER BY created_at DESC, id LIMIT %(limit)s"""  # noqa: S608 - constant SQL
"""The rows ``RunStore.list_runs`` reads, in its order, with whether each holder is gone."""


@dataclass(frozen=True)
class RunRecord:
    """What a listing shows of a run (``store.runs.Run`` has all of it, and needs pydantic)."""

    id: str
    status: str
    goal: str
    created_at: datetime
    updated_at: datetime
    interrupted: bool
    """Stored as ``running`` but no process drives it any more (``store/run_holders.py``)."""


def shipped_revision() -> str:
    """The newest migration shipped (``vNNNN_name.py`` → ``NNNN``), found without importing
    the migrations package (its ``__init__`` imports Alembic)."""
    spec = find_spec("shipyard.store.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package shipyard.store.migrations is missing")
    versions = Path(next(iter(spec.submodule_search_locations))) / "versions"
    names = [p.name for p in versions.iterdir() if p.name[:1] == "v" and p.name[1:5].isdigit()]
    return max(n[1:5] for n in names)


@contextmanager
def records(settings: Settings) -> Iterator[Connection]:
    """An autocommit psycopg connection to the configured database, migrated to this
    version's schema; ``DatabaseUnavailableError`` when it cannot be reached."""
    url = resolve_database_url(settings)
    with connect(url) as conn:
        if _revision(conn) != shipped_revision():
            from shipyard.store.migrations import migrate  # noqa: PLC0415  (Alembic: heavy)

            migrate(url)
        yield conn


def newest_runs(conn: Connection, limit: int) -> list[RunRecord]:
    """The newest ``limit`` runs first (as ``RunStore.list_runs`` orders them)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_NEWEST, {"limit": limit}).fetchall()
    return [
        RunRecord(
            id=row["id"],
            status=row["status"],
            goal=row["goal"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            interrupted=is_interrupted(row["status"], row["holder_gone"], row["lease_owner"]),
        )
        for row in rows
    ]


@contextmanager
def run_store(settings: Settings) -> Iterator[RunStore]:
    """A ``RunStore`` (SQLAlchemy) on the configured database, migrated to this version's
    schema — for the readers that need more than ``records`` (``stats``)."""
    from shipyard.store.database import make_engine  # noqa: PLC0415  (SQLAlchemy)
    from shipyard.store.runs import RunStore  # noqa: PLC0415  (and pydantic)

    with records(settings):  # reachable and migrated
        engine = make_engine(resolve_database_url(settings))
    try:
        yield RunStore(engine)
    finally:
        engine.dispose()


def _revision(conn: Connection) -> str | None:
    try:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:  # a database never migrated
        return None
    return None if found is None else str(found[0])
