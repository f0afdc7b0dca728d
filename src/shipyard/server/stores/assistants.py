"""Assistants as rows: a graph id plus config, context and metadata, with every version kept.

Each registered graph has a default assistant (owner ``SYSTEM_OWNER``, id
``uuid5(NAMESPACE_GRAPH, graph_id)``, ``metadata.created_by == "system"``) that every owner can
read and run but nobody can change or delete. Wherever an assistant id is accepted, a graph
id means that default assistant. Methods are synchronous (run them in a thread pool from
async code) and return dicts in the API's ``Assistant`` shape.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shipyard.server.http.errors import conflict, not_found, unprocessable
from shipyard.server.http.shapes import AssistantDict, JsonObject
from shipyard.server.stores.graphs import default_assistant_id
from shipyard.server.stores.tables import SYSTEM_OWNER, AssistantRow, AssistantVersionRow

SORTABLE = ("assistant_id", "graph_id", "name", "created_at", "updated_at")
_FIELDS = ("graph_id", "config", "context", "metadata_", "name", "description")


def assistant_dict(row: AssistantRow | AssistantVersionRow) -> AssistantDict:
    """The API's ``Assistant`` (or ``AssistantVersion``) for a row."""
    out: AssistantDict = {
        "assistant_id": row.assistant_id,
        "graph_id": row.graph_id,
        "config": row.config,
        "context": row.context,
        "metadata": row.metadata_,
        "name": row.name,
        "description": row.description,
        "version": row.version,
        "created_at": row.created_at.isoformat(),
    }
    if isinstance(row, AssistantRow):
        out["updated_at"] = row.updated_at.isoformat()
    return out


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class AssistantStore:
    """Assistants of an owner, plus the system's default ones; ``graph_ids`` are the graphs
    an assistant may name."""

    def __init__(self, engine: Engine, graph_ids: Iterable[str]) -> None:
        self.engine = engine
        self._registered = list(graph_ids)  # langgraph.json order: the defaults' creation order
        self.graph_ids = sorted(self._registered)
        # Default assistants never change (nobody may patch or delete them): once read, a
        # run names them without a query. Keyed by the id asked for (graph id or UUID).
        self._defaults: dict[str, AssistantDict] = {}

    def ensure_defaults(self) -> None:
        """Insert the default assistant of every graph (idempotent, safe concurrently), one
        after the other in registration order: as on the official server, a search (newest
        first) lists the last registered graph's first."""
        with Session(self.engine) as session, session.begin():
            for order, graph_id in enumerate(self._registered):
                fields = {
                    "assistant_id": default_assistant_id(graph_id),
                    "graph_id": graph_id,
                    "metadata": {"created_by": "system"},
                    "name": graph_id,
                    "config": {},
                    "context": {},
                }
                # one transaction has one now(): a microsecond apart keeps the order
                created = func.now() + timedelta(microseconds=order)
                session.execute(
                    insert(AssistantRow)
                    .values(owner=SYSTEM_OWNER, created_at=created, updated_at=created, **fields)
                    .on_conflict_do_nothing()
                )
                session.execute(
                    insert(AssistantVersionRow).values(version=1, **fields).on_conflict_do_nothing()
                )

    def check_graph(self, graph_id: str) -> None:
        """422 naming the registered graphs unless ``graph_id`` is one of them."""
        if graph_id not in self.graph_ids:
            raise unprocessable(
                f"graph_id: unknown graph {graph_id!r}; registered graphs: "
                + ", ".join(self.graph_ids)
            )

    def create(
        self,
        owner: str,
        graph_id: str,
        *,
        assistant_id: str | None = None,
        config: JsonObject | None = None,
        context: JsonObject | None = None,
        metadata: JsonObject | None = None,
        name: str | None = None,
        description: str | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> AssistantDict:
        """A new assistant at version 1; an existing id: returned with ``do_nothing`` if the
        owner's, else 409."""
        self.check_graph(graph_id)
        assistant_id = assistant_id or str(uuid.uuid4())
        fields = {
            "graph_id": graph_id,
            "config": config or {},
            "context": context or {},
            "metadata_": metadata or {},
            "name": name or "Untitled",
            "description": description,
        }
        with Session(self.engine) as session, session.begin():
            existing = session.get(AssistantRow, assistant_id, with_for_update=True)
            if existing is not None:
                if if_exists == "do_nothing" and existing.owner == owner:
                    return assistant_dict(existing)
                raise conflict(f"assistant {assistant_id} already exists")
            row = AssistantRow(assistant_id=assistant_id, owner=owner, version=1, **fields)
            session.add(row)
            session.flush()
            session.add(AssistantVersionRow(assistant_id=assistant_id, version=1, **fields))
            session.flush()
            session.refresh(row)
            return assistant_dict(row)

    def get(self, owner: str, assistant_id: str) -> AssistantDict:
        """The assistant (own or default; a graph id names its default); 404 otherwise."""
        with Session(self.engine) as session:
            return assistant_dict(self._visible(session, owner, assistant_id))

    def resolve(self, owner: str, assistant_id: str) -> AssistantDict:
        """For runs: like ``get``, but an id that is neither a UUID nor a registered graph id
        is a 422 listing the registered graphs (as the reference server answers)."""
        if not _is_uuid(assistant_id) and assistant_id not in self.graph_ids:
            raise unprocessable(
                f"assistant_id: {assistant_id!r} is neither an assistant id nor a registered "
                "graph; registered graphs: " + ", ".join(self.graph_ids)
            )
        cached = self.cached_default(assistant_id)
        if cached is not None:
            return cached
        with Session(self.engine) as session:
            row = self._visible(session, owner, assistant_id)
            found = assistant_dict(row)
        if row.owner == SYSTEM_OWNER:
            self._defaults[assistant_id] = copy.deepcopy(found)
        return found

    def cached_default(self, assistant_id: str) -> AssistantDict | None:
        """``resolve``'s answer without the database when ``assistant_id`` names a default
        assistant read before (visible to every owner); ``None`` otherwise."""
        cached = self._defaults.get(assistant_id)
        return None if cached is None else copy.deepcopy(cached)

    def patch(self, owner: str, assistant_id: str, **changes: Any) -> AssistantDict:
        """A new version with ``changes`` (graph_id, config, context, name, description
        replace; metadata merges); it becomes the latest."""
        if changes.get("graph_id") is not None:
            self.check_graph(changes["graph_id"])
        with Session(self.engine) as session, session.begin():
            row = self._owned(session, owner, assistant_id, lock=True)
            top = session.scalar(
                select(func.max(AssistantVersionRow.version)).where(
                    AssistantVersionRow.assistant_id == row.assistant_id
                )
            )
            for key, value in changes.items():
                if value is None:
                    continue
                if key == "metadata":
                    row.metadata_ = {**row.metadata_, **value}
                else:
                    setattr(row, key, value)
            row.version = int(top or 0) + 1
            row.updated_at = datetime.now(UTC)
            session.add(self._version_of(row))
            session.flush()
            return assistant_dict(row)

    def delete(self, owner: str, assistant_id: str) -> None:
        """Delete the assistant and its versions; 404 if not the owner's, 409 for defaults."""
        with Session(self.engine) as session, session.begin():
            session.delete(self._owned(session, owner, assistant_id, lock=True))

    def versions(
        self,
        owner: str,
        assistant_id: str,
        *,
        metadata: JsonObject | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[AssistantDict]:
        """Versions of the assistant, newest first."""
        with Session(self.engine) as session:
            row = self._visible(session, owner, assistant_id)
            query = select(AssistantVersionRow).where(
                AssistantVersionRow.assistant_id == row.assistant_id
            )
            if metadata:
                query = query.where(AssistantVersionRow.metadata_.contains(metadata))
            rows = session.scalars(
                query.order_by(AssistantVersionRow.version.desc()).limit(limit).offset(offset)
            )
            return [assistant_dict(v) for v in rows]

    def set_latest(self, owner: str, assistant_id: str, version: int) -> AssistantDict:
        """Make ``version`` the current one; 404 for an unknown version."""
        with Session(self.engine) as session, session.begin():
            row = self._owned(session, owner, assistant_id, lock=True)
            found = session.get(AssistantVersionRow, (row.assistant_id, version))
            if found is None:
                raise not_found(f"version {version} of assistant {assistant_id}")
            for key in _FIELDS:
                setattr(row, key, getattr(found, key))
            row.version = version
            row.updated_at = datetime.now(UTC)
            session.flush()
            return assistant_dict(row)

    def search(
        self,
        owner: str,
        *,
        metadata: JsonObject | None = None,
        graph_id: str | None = None,
        name: str | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: Literal["asc", "desc"] = "desc",
    ) -> tuple[list[AssistantDict], int]:
        """One page of visible assistants matching the filters, and the number of matches."""
        where = _filters(owner, metadata, graph_id, name)
        column = getattr(AssistantRow, sort_by if sort_by in SORTABLE else "created_at")
        order = column.asc() if sort_order == "asc" else column.desc()
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(AssistantRow).where(*where))
            rows = session.scalars(
                select(AssistantRow)
                .where(*where)
                .order_by(order, AssistantRow.assistant_id)
                .limit(limit)
                .offset(offset)
            )
            return [assistant_dict(r) for r in rows], int(total or 0)

    def count(
        self,
        owner: str,
        *,
        metadata: JsonObject | None = None,
        graph_id: str | None = None,
        name: str | None = None,
    ) -> int:
        """How many visible assistants match."""
        where = _filters(owner, metadata, graph_id, name)
        with Session(self.engine) as session:
            found = session.scalar(select(func.count()).select_from(AssistantRow).where(*where))
            return int(found or 0)

    def _visible(self, session: Session, owner: str, assistant_id: str) -> AssistantRow:
        key = default_assistant_id(assistant_id) if assistant_id in self.graph_ids else assistant_id
        row = session.get(AssistantRow, key)
        if row is None or row.owner not in (owner, SYSTEM_OWNER):
            raise not_found(f"assistant {assistant_id}")
        return row

    def _owned(
        self, session: Session, owner: str, assistant_id: str, *, lock: bool = False
    ) -> AssistantRow:
        row = self._visible(session, owner, assistant_id)
        if row.owner == SYSTEM_OWNER:
            raise conflict(
                f"assistant {assistant_id} is the default assistant of graph {row.graph_id!r} "
                "and cannot be changed; create your own with the same graph_id"
            )
        if lock:
            session.refresh(row, with_for_update=True)
        return row

    @staticmethod
    def _version_of(row: AssistantRow) -> AssistantVersionRow:
        fields = {key: getattr(row, key) for key in _FIELDS}
        return AssistantVersionRow(assistant_id=row.assistant_id, version=row.version, **fields)


def _filters(
    owner: str, metadata: JsonObject | None, graph_id: str | None, name: str | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [AssistantRow.owner.in_((owner, SYSTEM_OWNER))]
    if metadata:
        where.append(AssistantRow.metadata_.contains(metadata))
    if graph_id:
        where.append(AssistantRow.graph_id == graph_id)
    if name:
        where.append(AssistantRow.name.ilike(f"%{name}%"))
    return where
