"""Persistence (DESIGN §4, §8): Postgres URLs and engines, tables, migrations, checkpointer,
embedded Postgres, side-effect journal, runs and approvals, check cache, artifacts.

Importing this package does no I/O; everything that touches a database takes its URL or
engine explicitly.
"""

from __future__ import annotations

from shipyard.store.approvals import Approval, ApprovalStatus
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.check_cache import PgCheckCache
from shipyard.store.checkpointer import contract_allowlist, make_serializer, open_checkpointer
from shipyard.store.database import (
    check_reachable,
    make_engine,
    mask_password,
    psycopg_conninfo,
    resolve_database_url,
    sqlalchemy_url,
    with_database,
)
from shipyard.store.embedded import ensure_embedded, stop_embedded
from shipyard.store.journal import Journal, JournalEntry, JournalStatus
from shipyard.store.migrations import current_revision, head_revision, migrate
from shipyard.store.runs import Run, RunEvent, RunStore

__all__ = [
    "Approval",
    "ApprovalStatus",
    "ArtifactStore",
    "Journal",
    "JournalEntry",
    "JournalStatus",
    "PgCheckCache",
    "Run",
    "RunEvent",
    "RunStore",
    "check_reachable",
    "contract_allowlist",
    "current_revision",
    "ensure_embedded",
    "head_revision",
    "make_engine",
    "make_serializer",
    "mask_password",
    "migrate",
    "open_checkpointer",
    "psycopg_conninfo",
    "resolve_database_url",
    "sqlalchemy_url",
    "stop_embedded",
    "with_database",
]
