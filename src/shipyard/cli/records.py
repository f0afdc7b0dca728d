"""The run records alone, for the commands that only read them (``runs``, ``show``,
``stats``).

``Runner.open`` brings LangGraph, the checkpointer, the sandbox probe and the models; a
listing needs none of them, only the ``runs`` table. ``shipyard runs`` reads it with plain
psycopg (``records``: no SQLAlchemy, no pydantic — what a person waits for is mostly
imports) into ``RunRecord``, which carries what a listing shows; ``shipyard show`` finds its
run the way ``RunStore.get_run`` does (an id, or a unique prefix of one: ``find_run``) and
reads its approval rows (``approval_lines``). The schema is migrated first when the database
is not at the revision this version ships (read from ``alembic_version`` without importing
Alembic, which is slower to import than the listing takes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from shipyard.errors import UnknownRunError
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

_DETAIL = f"""SELECT id, status, goal, created_at, updated_at, lease_owner,
    {HOLDER_GONE} AS holder_gone, repo, branch, error FROM runs"""  # noqa: S608 - constant SQL
_BY_ID = _DETAIL + " WHERE id = %(ref)s"
_BY_PREFIX = _DETAIL + r" WHERE id LIKE %(pattern)s ESCAPE '\' LIMIT 6"
MIN_PREFIX = 6
"""Shortest id prefix ``find_run`` accepts (``store.runs.MIN_PREFIX``)."""

_APPROVALS = """SELECT request->>'kind', status, decision->>'decision', decided_by, content_hash
    FROM approvals WHERE run_id = %(run)s ORDER BY id"""


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


@dataclass(frozen=True)
class RunDetail(RunRecord):
    """What ``shipyard show`` shows of a run's row."""

    repo: str
    branch: str | None
    error: str | None


@dataclass(frozen=True)
class ApprovalLine:
    """One row of the ``approvals`` table, as ``shipyard show`` lists it."""

    kind: str
    status: str
    decision: str | None
    """``approve``, ``revise`` or ``reject``; ``None`` while undecided."""
    decided_by: str | None
    content_hash: str


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
    return [RunRecord(**_record_fields(row)) for row in rows]


def find_run(conn: Connection, ref: str) -> RunDetail:
    """The run with id ``ref``, or with this unique id prefix (at least ``MIN_PREFIX``
    characters); ``UnknownRunError`` as ``RunStore.get_run`` raises it."""
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(_BY_ID, {"ref": ref}).fetchone()
        if found is None:
            if len(ref) < MIN_PREFIX:
                raise UnknownRunError(
                    f"no run with id {ref!r} (a prefix must have at least {MIN_PREFIX} characters)"
                )
            found = _one_by_prefix(cur.execute(_BY_PREFIX, {"pattern": _like(ref)}).fetchall(), ref)
    return RunDetail(
        **_record_fields(found), repo=found["repo"], branch=found["branch"], error=found["error"]
    )


def approval_lines(conn: Connection, run_id: str) -> list[ApprovalLine]:
    """Every approval row of the run, oldest first (``RunStore.approvals``)."""
    rows = conn.execute(_APPROVALS, {"run": run_id}).fetchall()
    return [ApprovalLine(*row) for row in rows]  # type: ignore[arg-type]  # the columns' types


def _record_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "goal": row["goal"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "interrupted": is_interrupted(row["status"], row["holder_gone"], row["lease_owner"]),
    }


def _like(prefix: str) -> str:
    """A ``LIKE`` pattern matching what starts with ``prefix`` (its ``%``, ``_`` and ``\\``
    taken literally)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _one_by_prefix(rows: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    if not rows:
        raise UnknownRunError(f"no run with id or id prefix {prefix!r}")
    if len(rows) > 1:
        shown = ", ".join(sorted(r["id"] for r in rows)[:5])
        raise UnknownRunError(
            f"run id prefix {prefix!r} is ambiguous: it matches {shown}"
            f"{' and more' if len(rows) > 5 else ''}; give more characters"
        )
    return rows[0]


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
