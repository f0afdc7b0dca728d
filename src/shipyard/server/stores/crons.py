"""Crons as rows (``api_crons``): scheduled runs of an owner, in the API's ``Cron`` shape.

A cron holds the body of the run it creates (``payload``: input, config, context, metadata,
stream options, …) and a ``schedule`` in croniter syntax — five fields, or six with seconds
last — read in UTC unless ``timezone`` names an IANA zone. ``next_run_date`` is always the
next firing after the last one (or after creation); ``server.cron_scheduler`` fires due crons.
Like threads, a cron is visible only to the owner of the API key that created it: another
owner's cron is reported exactly like a missing one (404). Methods are synchronous
(SQLAlchemy on the server's engine); async callers run them in a thread pool.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.server.http.encoding import to_jsonable
from shipyard.server.http.errors import not_found, unprocessable
from shipyard.server.http.shapes import CronDict, JsonObject
from shipyard.server.stores.tables import CronRow

SORTABLE = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "created_at",
    "updated_at",
    "next_run_date",
    "end_time",
)
CronSortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"
]
CronField = Literal[
    "cron_id", "assistant_id", "thread_id", "user_id", "end_time", "schedule", "timezone",
    "payload", "next_run_date", "metadata", "on_run_completed", "enabled", "created_at",
    "updated_at", "last_error",
]  # fmt: skip
FIELDS: tuple[str, ...] = get_args(CronField)
"""The keys of a ``Cron`` (what ``select`` may name)."""


def zone(timezone: str | None) -> ZoneInfo | None:
    """The IANA zone named ``timezone`` (``None`` = UTC); 422 naming the field otherwise."""
    if timezone is None:
        return None
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise unprocessable(
            f"timezone: {timezone!r} is not an IANA time zone (e.g. 'America/New_York')"
        ) from None


def next_run(schedule: str, after: datetime, timezone: str | None = None) -> datetime:
    """The first firing of ``schedule`` strictly after ``after`` (UTC), the schedule read in
    ``timezone``; 422 naming ``schedule`` when it is not valid or never fires."""
    if not croniter.is_valid(schedule):
        raise unprocessable(
            f"schedule: {schedule!r} is not a cron schedule; use five fields (minute hour "
            "day-of-month month day-of-week, e.g. '*/5 * * * *') or six with seconds last"
        )
    tz = zone(timezone)
    base = after.astimezone(tz) if tz is not None else after.astimezone(UTC)
    try:
        found = croniter(schedule, base).get_next(datetime)
    except CroniterBadDateError:
        raise unprocessable(f"schedule: {schedule!r} never fires") from None
    return found.astimezone(UTC)


def cron_dict(row: CronRow) -> CronDict:
    """The API's ``Cron`` for a row (``user_id`` is the owner)."""
    return {
        "cron_id": row.cron_id,
        "assistant_id": row.assistant_id,
        "thread_id": row.thread_id,
        "user_id": row.owner,
        "end_time": row.end_time.isoformat() if row.end_time else None,
        "schedule": row.schedule,
        "timezone": row.timezone,
        "payload": row.payload,
        "next_run_date": row.next_run_date.isoformat(),
        "metadata": row.metadata_,
        "on_run_completed": row.on_run_completed,
        "enabled": row.enabled,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "last_error": row.last_error,
    }


def with_cron_id(payload: JsonObject, cron_id: str) -> JsonObject:
    """``payload`` with ``config.configurable.cron_id`` set (as the official server stores
    it: a fired run's config names its cron)."""
    out = copy.deepcopy(payload)
    config = out.get("config") or {}
    config["configurable"] = {**(config.get("configurable") or {}), "cron_id": cron_id}
    out["config"] = config
    return out


class CronStore:
    """Create, read, update, delete and search the crons of an owner."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        owner: str,
        *,
        assistant_id: str,
        thread_id: str | None,
        schedule: str,
        payload: JsonObject,
        timezone: str | None = None,
        on_run_completed: str | None = None,
        enabled: bool = True,
        end_time: datetime | None = None,
    ) -> CronDict:
        """A new cron, first firing after now; 422 for a bad schedule or time zone, 404 when
        ``thread_id`` is not a thread (checked by the caller; this catches a deletion since)."""
        cron_id = str(uuid.uuid4())
        payload = to_jsonable(with_cron_id(payload, cron_id))
        row = CronRow(
            cron_id=cron_id,
            owner=owner,
            assistant_id=assistant_id,
            thread_id=thread_id,
            schedule=schedule,
            timezone=timezone,
            payload=payload,
            metadata_=payload.get("metadata") or {},
            on_run_completed=None if thread_id else (on_run_completed or "delete"),
            enabled=enabled,
            end_time=_utc(end_time),
            next_run_date=next_run(schedule, datetime.now(UTC), timezone),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
                session.flush()
                session.refresh(row)
                return cron_dict(row)
        except IntegrityError:  # the thread was deleted meanwhile
            raise not_found(f"thread {thread_id}") from None

    def get(self, owner: str, cron_id: str) -> CronDict:
        """The cron; 404 if it does not exist or belongs to another owner."""
        with Session(self.engine) as session:
            return cron_dict(self._row(session, owner, cron_id))

    def update(self, owner: str, cron_id: str, changes: JsonObject) -> CronDict:
        """Apply a ``PATCH`` body (as the official server does): ``schedule`` / ``timezone``
        recompute ``next_run_date`` from now, ``end_time: null`` clears the end, ``metadata``
        merges into the cron's, and the body merges into ``payload`` (keeping its assistant
        and cron id). 404 if not the owner's; 422 for a bad schedule or time zone."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, owner, cron_id, lock=True)
            _reschedule(row, changes)
            if "end_time" in changes:
                row.end_time = _utc(changes["end_time"])
            for name in ("enabled", "on_run_completed"):
                if changes.get(name) is not None:
                    setattr(row, name, changes[name])
            if changes.get("metadata") is not None:
                row.metadata_ = {**row.metadata_, **changes["metadata"]}
            merged = {**row.payload, **to_jsonable(changes), "assistant_id": row.assistant_id}
            row.payload = with_cron_id(merged, row.cron_id)
            row.updated_at = datetime.now(UTC)
            session.flush()
            return cron_dict(row)

    def delete(self, owner: str, cron_id: str) -> None:
        """Delete the cron (runs it created stay); 404 if not the owner's."""
        with Session(self.engine) as session, session.begin():
            session.delete(self._row(session, owner, cron_id, lock=True))

    def search(
        self,
        owner: str,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        enabled: bool | None = None,
        metadata: JsonObject | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: CronSortBy = "created_at",
        sort_order: Literal["asc", "desc"] = "desc",
    ) -> tuple[list[CronDict], int]:
        """One page of the owner's matching crons and the total number of matches."""
        where = _filters(owner, assistant_id, thread_id, enabled, metadata)
        column = getattr(CronRow, sort_by if sort_by in SORTABLE else "created_at")
        order = column.asc() if sort_order == "asc" else column.desc()
        with Session(self.engine) as session:
            total = session.scalar(select(func.count()).select_from(CronRow).where(*where))
            rows = session.scalars(
                select(CronRow)
                .where(*where)
                .order_by(order.nulls_last(), CronRow.cron_id)
                .limit(limit)
                .offset(offset)
            )
            return [cron_dict(r) for r in rows], int(total or 0)

    def count(
        self,
        owner: str,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        metadata: JsonObject | None = None,
    ) -> int:
        """How many of the owner's crons match."""
        where = _filters(owner, assistant_id, thread_id, None, metadata)
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(CronRow).where(*where)) or 0)

    def _row(self, session: Session, owner: str, cron_id: str, *, lock: bool = False) -> CronRow:
        row = session.get(CronRow, cron_id, with_for_update=lock)
        if row is None or row.owner != owner:
            raise not_found(f"cron {cron_id}")
        return row


def _reschedule(row: CronRow, changes: JsonObject) -> None:
    """A new ``schedule`` or ``timezone``: the next firing is recomputed from now."""
    schedule, timezone = changes.get("schedule"), changes.get("timezone")
    if schedule is None and timezone is None:
        return
    schedule = schedule or row.schedule
    timezone = timezone or row.timezone
    row.next_run_date = next_run(schedule, datetime.now(UTC), timezone)
    row.schedule, row.timezone = schedule, timezone


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is read as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _filters(
    owner: str,
    assistant_id: str | None,
    thread_id: str | None,
    enabled: bool | None,
    metadata: JsonObject | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [CronRow.owner == owner]
    if assistant_id:
        where.append(CronRow.assistant_id == assistant_id)
    if thread_id:
        where.append(CronRow.thread_id == thread_id)
    if enabled is not None:
        where.append(CronRow.enabled.is_(enabled))
    if metadata:
        where.append(CronRow.metadata_.contains(metadata))
    return where


__all__ = [
    "FIELDS",
    "SORTABLE",
    "CronField",
    "CronSortBy",
    "CronStore",
    "cron_dict",
    "next_run",
    "zone",
]
