"""Migration 0002 produces exactly the server tables declared in ``shipyard.server.tables``."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import shipyard.server.tables  # noqa: F401 - registers the server tables on Base.metadata
from shipyard.store import make_engine
from shipyard.store.tables import Base


def test_migrated_schema_matches_store_and_server_declarations(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    # Tables of later migrations (the runs helper's) are declared in their own modules.
    foreign = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith(("api_runs", "run_stream")))]
    assert foreign == []
