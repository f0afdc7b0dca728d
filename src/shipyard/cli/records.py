"""The run records alone, for the commands that only read them (``runs``, ``stats``).

``Runner.open`` brings LangGraph, the checkpointer, the sandbox probe and the models; a
listing needs none of them, only the ``runs`` table. The schema is migrated first when the
database is not at the revision this version ships (read from ``alembic_version`` without
importing Alembic, which is slower to import than the listing takes).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from shipyard.settings import Settings
from shipyard.store.database import check_reachable, make_engine, resolve_database_url
from shipyard.store.runs import RunStore


def shipped_revision() -> str:
    """The newest migration shipped (``vNNNN_name.py`` → ``NNNN``)."""
    versions = files("shipyard.store.migrations") / "versions"
    names = [p.name for p in versions.iterdir() if p.name[:1] == "v" and p.name[1:5].isdigit()]
    return max(n[1:5] for n in names)


@contextmanager
def run_store(settings: Settings) -> Iterator[RunStore]:
    """A ``RunStore`` on the configured database, migrated to this version's schema."""
    url = resolve_database_url(settings)
    check_reachable(url)
    engine = make_engine(url)
    try:
        if _revision(engine) != shipped_revision():
            from shipyard.store.migrations import migrate  # noqa: PLC0415  (Alembic: heavy)

            migrate(url)
        yield RunStore(engine)
    finally:
        engine.dispose()


def _revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet: a database never migrated
        return None
    return None if found is None else str(found)
