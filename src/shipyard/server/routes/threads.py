"""``/threads`` CRUD: create (client-chosen id, ``if_exists``), get, patch metadata, delete,
search with pagination headers, count, copy, prune (the LangGraph server API). State and history are
in ``routes/state.py``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Header, Response
from langgraph.types import StateUpdate
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shipyard.server.deps import Owner, ServerState, State
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.http.errors import unprocessable
from shipyard.server.http.shapes import JsonObject, ThreadStatus, as_json
from shipyard.server.routes.assistants import pagination
from shipyard.server.runs.queue import Pool
from shipyard.server.stores.checkpoints import copy_checkpoints, interrupts_by_task, thread_config
from shipyard.server.stores.threads import create_thread

router = APIRouter(prefix="/threads", tags=["threads"])


class SuperstepUpdate(BaseModel):
    """One update of a pre-populated superstep."""

    values: JsonObject | None = None
    command: JsonObject | None = None
    as_node: str


class Superstep(BaseModel):
    """A superstep of ``POST /threads`` ``supersteps``."""

    updates: list[SuperstepUpdate]


class ThreadCreate(BaseModel):
    """Body of ``POST /threads`` (the SDK sends ``graph_id`` as ``metadata.graph_id``)."""

    thread_id: uuid.UUID | None = None
    metadata: JsonObject | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: str | None = None
    supersteps: list[Superstep] | None = None
    ttl: JsonObject | None = None


class ThreadPatch(BaseModel):
    """Body of ``PATCH /threads/{id}``."""

    metadata: JsonObject | None = None
    ttl: JsonObject | None = None


class ThreadSearch(BaseModel):
    """Body of ``POST /threads/search`` and ``/count``."""

    metadata: JsonObject | None = None
    values: JsonObject | None = None
    ids: list[uuid.UUID] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] = (
        "created_at"
    )
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class ThreadPrune(BaseModel):
    """Body of ``POST /threads/prune``."""

    thread_ids: list[uuid.UUID]
    strategy: Literal["delete", "keep_latest"] = "delete"


@router.post("")
async def create(body: ThreadCreate, state: State, owner: Owner) -> JsonObject:
    """Create a thread (409 if the id exists, unless ``if_exists="do_nothing"``)."""
    metadata = dict(body.metadata or {})
    if body.graph_id is not None:
        metadata["graph_id"] = body.graph_id
    graph_id = metadata.get("graph_id")
    if graph_id is not None and (body.graph_id is not None or body.supersteps):
        await run_in_threadpool(state.assistants.check_graph, str(graph_id))
    thread_id = str(body.thread_id) if body.thread_id else None
    pool = cast(Pool, state.saver.conn)
    thread = await create_thread(pool, owner, thread_id, metadata, if_exists=body.if_exists)
    if body.supersteps:
        await _prepopulate(state, thread["thread_id"], graph_id, body.supersteps)
        thread = await run_in_threadpool(state.threads.get, owner, thread["thread_id"])
    return as_json(thread)


async def _prepopulate(
    state: ServerState, thread_id: str, graph_id: Any, supersteps: list[Superstep]
) -> None:
    """Write ``supersteps`` as the thread's first checkpoints (needs ``graph_id``)."""
    if graph_id is None:
        raise unprocessable("supersteps: a thread with supersteps needs a graph_id")
    graph = state.graphs.get(str(graph_id)).graph
    steps = [[StateUpdate(u.values, u.as_node) for u in step.updates] for step in supersteps]
    await graph.abulk_update_state(thread_config(thread_id), steps)
    latest = await graph.aget_state(thread_config(thread_id))
    await run_in_threadpool(
        state.threads.set_state, thread_id, latest.values, interrupts_by_task(latest)
    )


@router.post("/search")
async def search(body: ThreadSearch, state: State, owner: Owner) -> JSONResponse:
    """A page of the caller's threads, with ``X-Pagination-Total``/``-Next`` headers."""
    filters = body.model_dump(exclude={"select", "ids"})
    ids = [str(i) for i in body.ids] if body.ids else None
    items, total = await run_in_threadpool(lambda: state.threads.search(owner, ids=ids, **filters))
    shown = [as_json(item) for item in items]
    if body.select:
        shown = [{k: v for k, v in item.items() if k in body.select} for item in items]
    return JSONResponse(shown, headers=pagination(body.offset, len(shown), total))


@router.post("/count")
async def count(body: ThreadSearch, state: State, owner: Owner) -> int:
    """How many of the caller's threads match."""
    filters = body.model_dump(include={"metadata", "values", "status"})
    return await run_in_threadpool(lambda: state.threads.count(owner, **filters))


@router.post("/prune")
async def prune(body: ThreadPrune, state: State, owner: Owner) -> JsonObject:
    """Delete threads, or keep only their latest checkpoint; unknown ids are skipped."""
    pruned = []
    for thread_id in map(str, body.thread_ids):
        if await run_in_threadpool(state.threads.owner_of, thread_id) != owner:
            continue
        if body.strategy == "delete":
            await run_in_threadpool(state.threads.delete, owner, thread_id)
            await state.saver.adelete_thread(thread_id)
        else:
            await state.saver.aprune([thread_id], strategy="keep_latest")
        pruned.append(thread_id)
    return {"pruned_count": len(pruned)}


@router.get("/{thread_id}")
async def get(thread_id: uuid.UUID, state: State, owner: Owner) -> JsonObject:
    """One thread (404 if missing or another owner's)."""
    return as_json(await run_in_threadpool(state.threads.get, owner, str(thread_id)))


@router.patch("/{thread_id}")
async def patch(
    thread_id: uuid.UUID,
    body: ThreadPatch,
    state: State,
    owner: Owner,
    prefer: Annotated[str | None, Header()] = None,
) -> Any:
    """Merge metadata; ``Prefer: return=minimal`` answers 204 without a body."""
    thread = await run_in_threadpool(state.threads.patch, owner, str(thread_id), body.metadata)
    if prefer and "return=minimal" in prefer:
        return Response(status_code=204)
    return as_json(thread)


@router.delete("/{thread_id}", status_code=204)
async def delete(thread_id: uuid.UUID, state: State, owner: Owner) -> Response:
    """Delete the thread and its checkpoints."""
    await run_in_threadpool(state.threads.delete, owner, str(thread_id))
    await state.saver.adelete_thread(str(thread_id))
    return Response(status_code=204)


@router.post("/{thread_id}/copy")
async def copy(thread_id: uuid.UUID, state: State, owner: Owner) -> JsonObject:
    """A new thread with the same metadata and a copy of every checkpoint."""
    thread = await run_in_threadpool(state.threads.copy, owner, str(thread_id))
    await copy_checkpoints(state.saver, str(thread_id), thread["thread_id"])
    return as_json(thread)
