"""Thread state and time travel: state (latest or at a checkpoint), history (newest first),
and ``update_state`` (``as_node``; fork from ``checkpoint``). For graphs that own a git
worktree (the ``shipyard`` graph) a fork first rewinds the worktree to the forked checkpoint
and starts a new effect epoch, exactly like ``Runner.fork`` — time travel rewinds files too.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from shipyard.delivery.consent import stamped_update
from shipyard.server.deps import Owner, ServerState, State
from shipyard.server.http.errors import conflict, not_found
from shipyard.server.http.shapes import Json, JsonObject
from shipyard.server.stores.checkpoints import (
    checkpoint_ref,
    empty_state,
    interrupts_by_task,
    snapshot_dict,
    thread_config,
)
from shipyard.server.stores.graphs import RegisteredGraph
from shipyard.tools.pin import fork_workspace

router = APIRouter(prefix="/threads/{thread_id}", tags=["thread state"])


class CheckpointRef(BaseModel):
    """A ``Checkpoint`` in a request."""

    checkpoint_id: str | None = None
    checkpoint_ns: str | None = ""
    checkpoint_map: JsonObject | None = None
    thread_id: str | None = None


class StateAtCheckpoint(BaseModel):
    """Body of ``POST /threads/{id}/state/checkpoint``."""

    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryQuery(BaseModel):
    """Body of ``POST /threads/{id}/history``."""

    limit: int = Field(10, ge=1, le=1000)
    before: CheckpointRef | str | None = None
    metadata: JsonObject | None = None
    checkpoint: CheckpointRef | None = None

    @field_validator("before", mode="before")
    @classmethod
    def _config_form(cls, value: Any) -> Any:
        # A RunnableConfig (``{"configurable": {"checkpoint_id": …}}``) names the checkpoint
        # inside ``configurable``; it is the form the official server accepts.
        if isinstance(value, dict) and isinstance(value.get("configurable"), dict):
            return value["configurable"]
        return value


class StateUpdate(BaseModel):
    """Body of ``POST /threads/{id}/state``."""

    values: JsonObject | list[Json] | None = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None


async def _graph(state: ServerState, owner: str, thread_id: str) -> RegisteredGraph | None:
    """The graph of the thread (from ``metadata.graph_id``); ``None`` before any run."""
    thread = await run_in_threadpool(state.threads.get, owner, thread_id)
    graph_id = thread["metadata"].get("graph_id")
    if graph_id is None or graph_id not in state.graphs:
        return None
    return state.graphs.get(graph_id)


async def _state_at(
    state: ServerState, owner: str, thread_id: str, checkpoint: Any, subgraphs: bool = False
) -> JsonObject:
    registered = await _graph(state, owner, thread_id)
    if registered is None:
        if checkpoint:
            raise not_found(f"checkpoint {_id_of(checkpoint)} of thread {thread_id}")
        return empty_state()
    config = thread_config(thread_id, checkpoint)
    if checkpoint:
        await _require_checkpoint(state, config)
    snapshot = await registered.graph.aget_state(config, subgraphs=subgraphs)
    return snapshot_dict(snapshot)


async def _require_checkpoint(state: ServerState, config: RunnableConfig) -> None:
    """404 unless the thread has the checkpoint ``config`` names."""
    if await state.saver.aget_tuple(config) is None:
        conf = config["configurable"]
        raise not_found(f"checkpoint {conf.get('checkpoint_id')} of thread {conf['thread_id']}")


def _id_of(checkpoint: Any) -> str:
    return checkpoint if isinstance(checkpoint, str) else str(checkpoint.get("checkpoint_id"))


@router.get("/state")
async def get_state(
    thread_id: uuid.UUID, state: State, owner: Owner, subgraphs: bool = False
) -> JsonObject:
    """The latest state (``ThreadState``)."""
    return await _state_at(state, owner, str(thread_id), None, subgraphs)


@router.get("/state/{checkpoint_id}")
async def get_state_at(
    thread_id: uuid.UUID, checkpoint_id: str, state: State, owner: Owner, subgraphs: bool = False
) -> JsonObject:
    """The state at a checkpoint id (404 if the thread has no such checkpoint)."""
    return await _state_at(state, owner, str(thread_id), checkpoint_id, subgraphs)


@router.post("/state/checkpoint")
async def post_state_at(
    thread_id: uuid.UUID, body: StateAtCheckpoint, state: State, owner: Owner
) -> JsonObject:
    """The state at a ``Checkpoint``."""
    ref = body.checkpoint.model_dump(exclude_none=True)
    return await _state_at(state, owner, str(thread_id), ref, body.subgraphs)


@router.post("/history")
async def post_history(
    thread_id: uuid.UUID, body: HistoryQuery, state: State, owner: Owner
) -> list[JsonObject]:
    """Checkpoints newest first, at most ``limit``, older than ``before`` if given."""
    before = (
        body.before.model_dump(exclude_none=True)
        if isinstance(body.before, BaseModel)
        else (body.before)
    )
    start = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else None
    return await _history(state, owner, str(thread_id), body.limit, before, body.metadata, start)


@router.get("/history")
async def get_history(
    thread_id: uuid.UUID, state: State, owner: Owner, limit: int = 10, before: str | None = None
) -> list[JsonObject]:
    """Like ``POST /history`` with query parameters."""
    return await _history(state, owner, str(thread_id), limit, before, None, None)


async def _history(
    state: ServerState,
    owner: str,
    thread_id: str,
    limit: int,
    before: Any,
    metadata: JsonObject | None,
    start: JsonObject | None,
) -> list[JsonObject]:
    registered = await _graph(state, owner, thread_id)
    if registered is None:
        return []
    history = registered.graph.aget_state_history(
        thread_config(thread_id, start),
        limit=limit,
        before=thread_config(thread_id, before) if before else None,
        filter=metadata or None,
    )
    return [snapshot_dict(s) async for s in history]


@router.post("/state")
async def update_state(
    thread_id: uuid.UUID, body: StateUpdate, state: State, owner: Owner
) -> JsonObject:
    """Write ``values`` as if ``as_node`` ran, on the latest checkpoint or — a fork — on
    ``checkpoint``; returns the new checkpoint. 409 while a run is active on the thread."""
    tid = str(thread_id)
    thread = await run_in_threadpool(state.threads.get, owner, tid)
    if thread["status"] == "busy":
        raise conflict(f"thread {tid} is busy with a run; wait for it or cancel it first")
    registered = await _graph(state, owner, tid)
    if registered is None:
        raise HTTPException(
            400, f"thread {tid} has no graph yet: start a run on it, or create it with graph_id"
        )
    fork_from: JsonObject | str | None = body.checkpoint_id
    if body.checkpoint is not None:
        fork_from = body.checkpoint.model_dump(exclude_none=True)
    config = thread_config(tid, fork_from)
    values: Json = body.values
    if registered.pins_workspace:  # a request to deliver is the owner's, whatever it says
        values = stamped_update(values, owner)
    if fork_from:
        await _require_checkpoint(state, config)
        snapshot = await registered.graph.aget_state(config)
        if registered.pins_workspace:
            # Commits the rewind drops stay reachable at a ref the state (and report) lists.
            fork = await run_in_threadpool(fork_workspace, snapshot.values)
            # A new epoch: journaled effects of the abandoned timeline are not replayed.
            values = {**(values or {}), "epoch": uuid.uuid4().hex[:8], **fork.update()}
    new_config = await registered.graph.aupdate_state(config, values, as_node=body.as_node)
    latest = await registered.graph.aget_state(thread_config(tid))
    await run_in_threadpool(state.threads.set_state, tid, latest.values, interrupts_by_task(latest))
    ref = checkpoint_ref(new_config)
    return {
        "checkpoint": ref,
        "configurable": dict(new_config.get("configurable", {})),
        "checkpoint_id": ref and ref["checkpoint_id"],
    }
