"""Cron routes of the LangGraph server API: ``/runs/crons`` (a new thread per firing),
``/threads/{id}/runs/crons`` (every firing on that thread), search, count, get, patch and
delete. Rows live in ``server.crons``; ``server.cron_scheduler`` fires them.

A cron's run body is checked when the cron is created or changed, as a run created now would
be (unknown assistant 404, bad stream mode 422, …), so a firing fails only when something
changed since (its reason is kept in the cron's ``last_error``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from shipyard.server.deps import Owner, ServerState, State
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.http.errors import describe_validation
from shipyard.server.http.shapes import Json, JsonObject, as_json
from shipyard.server.routes.assistants import pagination
from shipyard.server.runs.request import RunCreate, check
from shipyard.server.stores.crons import CronField, CronSortBy, CronStore, next_run, zone

router = APIRouter(tags=["crons"])


class CronCreate(RunCreate):
    """Body of ``POST /runs/crons`` and ``POST /threads/{id}/runs/crons``: a run's body plus
    when to create it. ``on_run_completed`` applies to crons without a thread."""

    schedule: str = Field(min_length=1)
    end_time: datetime | None = None
    enabled: bool = True
    timezone: str | None = None
    on_run_completed: Literal["delete", "keep"] | None = None


class CronPatch(BaseModel):
    """Body of ``PATCH /runs/crons/{id}``: what changes (``end_time: null`` clears it)."""

    model_config = ConfigDict(extra="ignore")

    schedule: str | None = Field(None, min_length=1)
    end_time: datetime | None = None
    input: Json = None
    metadata: JsonObject | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: bool | None = None
    timezone: str | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None


class CronSearch(BaseModel):
    """Body of ``POST /runs/crons/search``."""

    assistant_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    enabled: bool | None = None
    metadata: JsonObject | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: CronSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[CronField] | None = None


class CronCount(BaseModel):
    """Body of ``POST /runs/crons/count``."""

    assistant_id: uuid.UUID | None = None
    thread_id: uuid.UUID | None = None
    metadata: JsonObject | None = None


def _store(state: ServerState) -> CronStore:
    return CronStore(state.engine)


def _check_run(payload: JsonObject, *, stateless: bool) -> None:
    """Refuse a payload whose run the run routes would refuse (422 naming the field)."""
    try:
        body = RunCreate.model_validate(payload)
    except ValidationError as err:
        raise HTTPException(422, describe_validation(list(err.errors()))) from None
    check(body, stateless=stateless)


async def _create(
    state: ServerState, owner: str, body: CronCreate, thread_id: str | None
) -> JsonObject:
    zone(body.timezone)
    next_run(body.schedule, datetime.now(UTC), body.timezone)  # 422 before any I/O
    check(body, stateless=thread_id is None)
    # Any id that names no assistant of the caller is a 404 here, as on the official server.
    assistant = await run_in_threadpool(state.assistants.get, owner, body.assistant_id)
    if thread_id is not None:
        await run_in_threadpool(state.threads.get, owner, thread_id)  # 404 if not the owner's
    payload = body.model_dump(mode="json", exclude_unset=True)
    payload["assistant_id"] = str(assistant["assistant_id"])
    return as_json(
        await run_in_threadpool(
            lambda: _store(state).create(
                owner,
                assistant_id=str(assistant["assistant_id"]),
                thread_id=thread_id,
                schedule=body.schedule,
                payload=payload,
                timezone=body.timezone,
                on_run_completed=body.on_run_completed,
                enabled=body.enabled,
                end_time=body.end_time,
            )
        )
    )


@router.post("/runs/crons")
async def create(body: CronCreate, state: State, owner: Owner) -> JsonObject:
    """A cron whose every firing runs on a new thread."""
    return await _create(state, owner, body, None)


@router.post("/threads/{thread_id}/runs/crons")
async def create_for_thread(
    thread_id: uuid.UUID, body: CronCreate, state: State, owner: Owner
) -> JsonObject:
    """A cron whose every firing runs on the thread (404 if it is not the caller's)."""
    return await _create(state, owner, body, str(thread_id))


@router.post("/runs/crons/search")
async def search(body: CronSearch, state: State, owner: Owner) -> JSONResponse:
    """A page of the caller's crons, with ``X-Pagination-Total``/``-Next`` headers."""
    items, total = await run_in_threadpool(
        lambda: _store(state).search(
            owner,
            assistant_id=str(body.assistant_id) if body.assistant_id else None,
            thread_id=str(body.thread_id) if body.thread_id else None,
            enabled=body.enabled,
            metadata=body.metadata,
            limit=body.limit,
            offset=body.offset,
            sort_by=body.sort_by,
            sort_order=body.sort_order,
        )
    )
    shown = [as_json(item) for item in items]
    if body.select:
        shown = [{k: v for k, v in item.items() if k in body.select} for item in items]
    return JSONResponse(shown, headers=pagination(body.offset, len(shown), total))


@router.post("/runs/crons/count")
async def count(body: CronCount, state: State, owner: Owner) -> int:
    """How many of the caller's crons match."""
    return await run_in_threadpool(
        lambda: _store(state).count(
            owner,
            assistant_id=str(body.assistant_id) if body.assistant_id else None,
            thread_id=str(body.thread_id) if body.thread_id else None,
            metadata=body.metadata,
        )
    )


@router.get("/runs/crons/{cron_id}")
async def get(cron_id: uuid.UUID, state: State, owner: Owner) -> JsonObject:
    """One cron (404 if missing or another owner's)."""
    return as_json(await run_in_threadpool(_store(state).get, owner, str(cron_id)))


@router.patch("/runs/crons/{cron_id}")
async def patch(cron_id: uuid.UUID, body: CronPatch, state: State, owner: Owner) -> JsonObject:
    """Change a cron (400 when nothing would change)."""
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k == "end_time"
    }
    if not changes:
        raise HTTPException(400, "body: nothing to update; give at least one field")
    store = _store(state)
    current = await run_in_threadpool(store.get, owner, str(cron_id))
    merged = {**current["payload"], **body.model_dump(mode="json", exclude_unset=True)}
    if merged.get("context"):  # a firing drops the stored cron id from the run's config
        config = dict(merged.get("config") or {})
        configurable = dict(config.get("configurable") or {})
        configurable.pop("cron_id", None)
        merged["config"] = {**config, "configurable": configurable}
    _check_run(merged, stateless=current["thread_id"] is None)
    return as_json(await run_in_threadpool(store.update, owner, str(cron_id), changes))


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete(cron_id: uuid.UUID, state: State, owner: Owner) -> Response:
    """Delete a cron; runs it created stay."""
    await run_in_threadpool(_store(state).delete, owner, str(cron_id))
    return Response(status_code=204)
