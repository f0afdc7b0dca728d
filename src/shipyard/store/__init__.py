"""Persistence (docs/architecture.md §4, §8): Postgres URLs and engines, tables,
migrations, checkpointer, embedded Postgres, side-effect journal, runs and approvals, check
cache, artifacts.

Importing this package does no I/O and imports no store module until one of its names is
used (``lazy_exports``); everything that touches a database takes its URL or
engine explicitly.
"""

from __future__ import annotations

from shipyard import lazy_exports

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI's --help

if TYPE_CHECKING:
    from typing import Any

    from shipyard.store.approvals import Approval, ApprovalStatus
    from shipyard.store.artifacts import ArtifactStore
    from shipyard.store.check_cache import PgCheckCache
    from shipyard.store.checkpoint_serde import contract_allowlist, make_serializer
    from shipyard.store.checkpointer import open_checkpointer
    from shipyard.store.database import (
        check_reachable,
        make_engine,
        mask_password,
        psycopg_conninfo,
        sqlalchemy_url,
        with_database,
    )
    from shipyard.store.embedded import ensure_embedded, stop_embedded
    from shipyard.store.journal import Journal, JournalEntry, JournalStatus
    from shipyard.store.migrations import current_revision, head_revision, migrate
    from shipyard.store.plain_connection import resolve_database_url
    from shipyard.store.runs import Run, RunEvent, RunStore

_EXPORTS = {
    "Approval": "shipyard.store.approvals",
    "ApprovalStatus": "shipyard.store.approvals",
    "ArtifactStore": "shipyard.store.artifacts",
    "PgCheckCache": "shipyard.store.check_cache",
    "contract_allowlist": "shipyard.store.checkpoint_serde",
    "make_serializer": "shipyard.store.checkpoint_serde",
    "open_checkpointer": "shipyard.store.checkpointer",
    "check_reachable": "shipyard.store.database",
    "make_engine": "shipyard.store.database",
    "mask_password": "shipyard.store.database",
    "psycopg_conninfo": "shipyard.store.database",
    "resolve_database_url": "shipyard.store.plain_connection",
    "sqlalchemy_url": "shipyard.store.database",
    "with_database": "shipyard.store.database",
    "ensure_embedded": "shipyard.store.embedded",
    "stop_embedded": "shipyard.store.embedded",
    "Journal": "shipyard.store.journal",
    "JournalEntry": "shipyard.store.journal",
    "JournalStatus": "shipyard.store.journal",
    "current_revision": "shipyard.store.migrations",
    "head_revision": "shipyard.store.migrations",
    "migrate": "shipyard.store.migrations",
    "Run": "shipyard.store.runs",
    "RunEvent": "shipyard.store.runs",
    "RunStore": "shipyard.store.runs",
}


def __getattr__(name: str) -> Any:
    return lazy_exports.attribute(__name__, _EXPORTS, name)


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
