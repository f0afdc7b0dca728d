"""Migration 0002 produces exactly the server tables declared in ``shipyard.server.tables``."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from shipyard.server.tables import ApiKeyRow, AssistantRow, AssistantVersionRow, ThreadRow
from shipyard.store import make_engine
from shipyard.store.tables import Base

OURS = {t.__tablename__ for t in (AssistantRow, AssistantVersionRow, ThreadRow, ApiKeyRow)}


def _include(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    table = name if type_ == "table" else parent.get("table_name")
    return table in OURS


def _include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in OURS


def test_migrated_schema_matches_the_server_table_declarations(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": _include, "include_object": _include_object}
            )
            diff = compare_metadata(context, Base.metadata)
            tables = set(conn.dialect.get_table_names(conn))
    finally:
        engine.dispose()
    assert diff == []
    assert tables >= OURS
