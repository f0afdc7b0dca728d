"""Check evidence cached in Postgres, shared by every worker (``tools.checks.CheckCache``).

Keyed by owner, the workspace's tree hash and the check's command key (which covers the
check, its toolchain, the sandbox's environment, the policy and the isolation): the same
files checked the same way for the same owner give the same evidence. An owner never sees
another owner's entries.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects.postgresql import insert

from shipyard.contracts import Evidence
from shipyard.store.tables import CheckCacheRow


class PgCheckCache:
    """A ``CheckCache`` on the ``check_cache`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, owner: str, tree_hash: str, command_key: str) -> Evidence | None:
        """The evidence ``owner`` stored for this key, exactly as it was put, or ``None``."""
        statement = select(CheckCacheRow.evidence).where(
            CheckCacheRow.owner == owner,
            CheckCacheRow.tree_hash == tree_hash,
            CheckCacheRow.command_key == command_key,
        )
        with self._engine.connect() as conn:
            stored = conn.execute(statement).scalar()
        return None if stored is None else Evidence.model_validate(stored)

    def put(self, owner: str, tree_hash: str, command_key: str, evidence: Evidence) -> None:
        """Store (or replace) ``owner``'s evidence for this key."""
        data = evidence.model_dump(mode="json")
        statement = (
            insert(CheckCacheRow)
            .values(owner=owner, tree_hash=tree_hash, command_key=command_key, evidence=data)
            .on_conflict_do_update(
                index_elements=["owner", "tree_hash", "command_key"],
                set_={"evidence": data, "created_at": func.now()},
            )
        )
        with self._engine.begin() as conn:
            conn.execute(statement)
