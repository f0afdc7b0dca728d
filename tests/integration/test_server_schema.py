"""Migration 0002 produces exactly the server tables declared in ``server.stores.tables``."""

from __future__ import annotations

from shipyard.server.stores.tables import ApiKeyRow, AssistantRow, AssistantVersionRow, ThreadRow
from tests.support import schema_diff

OURS = {t.__tablename__ for t in (AssistantRow, AssistantVersionRow, ThreadRow, ApiKeyRow)}


def test_migrated_schema_matches_the_server_table_declarations(db_url: str) -> None:
    diff, tables = schema_diff(db_url, OURS)
    assert diff == []
    assert tables >= OURS
