"""``/assistants/*``: create, get, patch, delete, search, count, versions, latest, and the
graph drawing, schemas and subgraphs Studio needs (the LangGraph server API)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shipyard.server.deps import Owner, ServerState, State
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.http.errors import unprocessable
from shipyard.server.http.schemas import graph_schemas
from shipyard.server.http.shapes import JsonObject, as_json

router = APIRouter(prefix="/assistants", tags=["assistants"])


class AssistantCreate(BaseModel):
    """Body of ``POST /assistants``."""

    graph_id: str
    assistant_id: str | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(BaseModel):
    """Body of ``PATCH /assistants/{id}``: given fields change, metadata merges."""

    graph_id: str | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(BaseModel):
    """Body of ``POST /assistants/search`` and ``/count``."""

    metadata: JsonObject | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class VersionsQuery(BaseModel):
    """Body of ``POST /assistants/{id}/versions``."""

    metadata: JsonObject | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class SetLatest(BaseModel):
    """Body of ``POST /assistants/{id}/latest``."""

    version: int = Field(ge=1)


@router.post("")
async def create(body: AssistantCreate, state: State, owner: Owner) -> JsonObject:
    """Create an assistant (version 1)."""
    fields = body.model_dump(exclude={"graph_id", "if_exists"})
    return as_json(
        await run_in_threadpool(
            lambda: state.assistants.create(
                owner, body.graph_id, if_exists=body.if_exists, **fields
            )
        )
    )


@router.post("/search")
async def search(body: AssistantSearch, state: State, owner: Owner) -> JSONResponse:
    """A page of assistants with ``X-Pagination-Total`` / ``X-Pagination-Next`` headers."""
    filters = body.model_dump(exclude={"select"})
    items, total = await run_in_threadpool(lambda: state.assistants.search(owner, **filters))
    shown = [as_json(item) for item in items]
    if body.select:
        shown = [{k: v for k, v in item.items() if k in body.select} for item in items]
    return JSONResponse(shown, headers=pagination(body.offset, len(shown), total))


@router.post("/count")
async def count(body: AssistantSearch, state: State, owner: Owner) -> int:
    """How many assistants match."""
    filters = body.model_dump(include={"metadata", "graph_id", "name"})
    return await run_in_threadpool(lambda: state.assistants.count(owner, **filters))


@router.get("/{assistant_id}")
async def get(assistant_id: str, state: State, owner: Owner) -> JsonObject:
    """One assistant (a graph id names its default assistant)."""
    return as_json(await run_in_threadpool(state.assistants.get, owner, assistant_id))


@router.patch("/{assistant_id}")
async def patch(assistant_id: str, body: AssistantPatch, state: State, owner: Owner) -> JsonObject:
    """A new version of the assistant."""
    changes = body.model_dump()
    return as_json(
        await run_in_threadpool(lambda: state.assistants.patch(owner, assistant_id, **changes))
    )


@router.delete("/{assistant_id}", status_code=204)
async def delete(
    assistant_id: str, state: State, owner: Owner, delete_threads: bool = False
) -> Response:
    """Delete the assistant (its threads stay unless ``delete_threads``)."""
    assistant = await run_in_threadpool(state.assistants.get, owner, assistant_id)
    await run_in_threadpool(state.assistants.delete, owner, assistant_id)
    if delete_threads:
        threads, _ = await run_in_threadpool(
            lambda: state.threads.search(
                owner, metadata={"assistant_id": assistant["assistant_id"]}, limit=10_000
            )
        )
        for thread in threads:
            await run_in_threadpool(state.threads.delete, owner, thread["thread_id"])
            await state.saver.adelete_thread(thread["thread_id"])
    return Response(status_code=204)


@router.post("/{assistant_id}/versions")
async def versions(
    assistant_id: str, body: VersionsQuery, state: State, owner: Owner
) -> list[JsonObject]:
    """Versions of the assistant, newest first."""
    query = body.model_dump()
    found = await run_in_threadpool(lambda: state.assistants.versions(owner, assistant_id, **query))
    return [as_json(v) for v in found]


@router.post("/{assistant_id}/latest")
async def set_latest(assistant_id: str, body: SetLatest, state: State, owner: Owner) -> JsonObject:
    """Make an earlier version the current one."""
    return as_json(
        await run_in_threadpool(state.assistants.set_latest, owner, assistant_id, body.version)
    )


@router.get("/{assistant_id}/graph")
async def graph(
    assistant_id: str, state: State, owner: Owner, xray: Annotated[str, Query()] = "false"
) -> JsonObject:
    """The graph drawing: ``{"nodes": [...], "edges": [...]}``; ``xray`` (bool or depth)
    expands subgraphs. Node data lose the runnable's class path (``id``), as the official
    server sends them."""
    compiled = await _graph_of(state, owner, assistant_id)
    drawn = dict((await compiled.aget_graph(xray=_xray(xray))).to_json())
    for node in drawn.get("nodes", []):
        if isinstance(data := node.get("data"), dict):
            data.pop("id", None)
    return drawn


@router.get("/{assistant_id}/schemas")
async def schemas(assistant_id: str, state: State, owner: Owner) -> JsonObject:
    """Input, output, state and context JSON schemas of the assistant's graph."""
    assistant = await run_in_threadpool(state.assistants.get, owner, assistant_id)
    registered = state.graphs.get(assistant["graph_id"])
    return graph_schemas(registered.graph_id, registered.graph)


@router.get("/{assistant_id}/subgraphs")
@router.get("/{assistant_id}/subgraphs/{namespace}")
async def subgraphs(
    assistant_id: str,
    state: State,
    owner: Owner,
    namespace: str | None = None,
    recurse: bool = False,
) -> JsonObject:
    """Schemas of the graph's subgraphs by namespace (``{}`` when it has none)."""
    assistant = await run_in_threadpool(state.assistants.get, owner, assistant_id)
    compiled = state.graphs.get(assistant["graph_id"]).graph
    return {
        ns: graph_schemas(assistant["graph_id"], sub)
        async for ns, sub in compiled.aget_subgraphs(namespace=namespace, recurse=recurse)
    }


async def _graph_of(state: ServerState, owner: str, assistant_id: str) -> Any:
    assistant = await run_in_threadpool(state.assistants.get, owner, assistant_id)
    return state.graphs.get(assistant["graph_id"]).graph


def _xray(text: str) -> bool | int:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    try:
        return int(lowered)
    except ValueError:
        raise unprocessable(f"xray: expected true, false or a depth, got {text!r}") from None


def pagination(offset: int, returned: int, total: int) -> dict[str, str]:
    """``X-Pagination-Total`` and, when more remain, ``X-Pagination-Next`` (next offset)."""
    headers = {"X-Pagination-Total": str(total)}
    if offset + returned < total:
        headers["X-Pagination-Next"] = str(offset + returned)
    return headers
