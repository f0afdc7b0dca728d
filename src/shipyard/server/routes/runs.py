"""Run routes of the LangGraph server API: stateful ``/threads/{id}/runs…``, stateless ``/runs…``.

Runs are created by ``server.run_create``. Streams and waits follow the run's stored
events, so the run may execute in any worker process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from shipyard.server.deps import Owner, ServerState, State
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.http.shapes import JsonObject
from shipyard.server.runs.create import create_run
from shipyard.server.runs.events import Follow, follow
from shipyard.server.runs.outcome import RunEnd, WaitResponse, cancel_quietly
from shipyard.server.runs.queue import ACTIVE, QueuedRun
from shipyard.server.runs.request import RunCreate, run_dict
from shipyard.server.runs.runtime import RunsRuntime

router = APIRouter(tags=["runs"])
SSE = "text/event-stream; charset=utf-8"


async def _thread(state: ServerState, owner: str, thread_id: str, create: bool) -> None:
    try:
        await run_in_threadpool(state.threads.get, owner, thread_id)
    except HTTPException as err:
        if err.status_code != 404 or not create:
            raise HTTPException(404, f"Thread {thread_id} not found.") from None
        await run_in_threadpool(state.threads.create, owner, thread_id, {})


def _location(run: QueuedRun) -> str:
    return f"/threads/{run.thread_id}/runs/{run.run_id}"


def _stream(run: QueuedRun, runtime: RunsRuntime, cancel: bool, spec: Follow) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        done = False
        try:
            async for chunk in follow(runtime.events, runtime.listener, spec):
                yield chunk
            done = True
        finally:
            if not done and cancel:
                await asyncio.shield(cancel_quietly(runtime, run.run_id))

    headers = {"Location": f"{_location(run)}/stream", "Content-Location": _location(run)}
    return StreamingResponse(body(), media_type=SSE, headers=headers)


def _wait(
    state: ServerState, run: QueuedRun, runtime: RunsRuntime, cancel: bool, *, fresh: bool = False
) -> Response:
    """The wait body; ``fresh``: the run was just created (this request subscribed first)."""
    end = RunEnd(runtime, run.run_id, fresh=fresh)
    graph_id = str(run.kwargs.get("graph_id"))
    headers = {"Location": f"{_location(run)}/join", "Content-Location": _location(run)}
    return WaitResponse(
        runtime, state.graphs, end, graph_id, cancel_on_disconnect=cancel, headers=headers
    )


# --- creating runs ------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create(thread_id: str, body: RunCreate, state: State, owner: Owner) -> Response:
    """A background run: the ``Run`` (status ``pending``) and ``Content-Location``."""
    run, _ = await create_run(state, owner, body, thread_id)
    return _json(run_dict(run), {"Content-Location": _location(run)})


@router.post("/runs")
async def create_stateless(body: RunCreate, state: State, owner: Owner) -> Response:
    """A background run on a new thread."""
    run, _ = await create_run(state, owner, body, None)
    return _json(run_dict(run), {"Content-Location": _location(run)})


@router.post("/threads/{thread_id}/runs/stream")
async def stream(thread_id: str, body: RunCreate, state: State, owner: Owner) -> Response:
    """Create a run and stream it as SSE."""
    return await _create_and_stream(state, owner, body, thread_id)


@router.post("/runs/stream")
async def stream_stateless(body: RunCreate, state: State, owner: Owner) -> Response:
    """Create a run on a new thread and stream it."""
    return await _create_and_stream(state, owner, body, None)


async def _create_and_stream(
    state: ServerState, owner: str, body: RunCreate, thread_id: str | None
) -> Response:
    run, runtime = await create_run(state, owner, body, thread_id, now=True)
    spec = Follow(run.run_id, resumable=body.stream_resumable)
    return _stream(run, runtime, body.on_disconnect == "cancel", spec)


@router.post("/threads/{thread_id}/runs/wait")
async def wait(thread_id: str, body: RunCreate, state: State, owner: Owner) -> Response:
    """Create a run and answer with its final values once it ends."""
    run, runtime = await create_run(state, owner, body, thread_id, now=True)
    return _wait(state, run, runtime, body.on_disconnect == "cancel", fresh=True)


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, state: State, owner: Owner) -> Response:
    """Create a run on a new thread and answer with its final values."""
    run, runtime = await create_run(state, owner, body, None, now=True)
    return _wait(state, run, runtime, body.on_disconnect == "cancel", fresh=True)


@router.post("/runs/batch")
async def batch(bodies: list[RunCreate], state: State, owner: Owner) -> list[JsonObject]:
    """Several stateless background runs."""
    return [run_dict((await create_run(state, owner, b, None))[0]) for b in bodies]


# --- reading, joining, cancelling -----------------------------------------------------------


async def _run(state: ServerState, owner: str, thread_id: str, run_id: str) -> QueuedRun:
    runtime = state.runtime
    run = await runtime.queue.get(run_id, owner=owner)
    if run is None or run.thread_id != thread_id:
        raise HTTPException(404, f"Run {run_id} not found.")
    return run


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    state: State,
    owner: Owner,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: str | None = None,
) -> list[JsonObject]:
    """The thread's runs, newest first (404 for an unknown thread)."""
    await _thread(state, owner, thread_id, create=False)
    runtime = state.runtime
    runs = await runtime.queue.for_thread(
        owner, thread_id, limit=limit, offset=offset, status=status
    )
    return [run_dict(r) for r in runs]


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get(thread_id: str, run_id: str, state: State, owner: Owner) -> JsonObject:
    """One run."""
    return run_dict(await _run(state, owner, thread_id, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(thread_id: str, run_id: str, state: State, owner: Owner) -> Response:
    """Wait for the run to end; its final values."""
    run = await _run(state, owner, thread_id, run_id)
    return _wait(state, run, state.runtime, cancel=False)


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    state: State,
    owner: Owner,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    cancel_on_disconnect: bool = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """Follow a run's stream from now on, as the official server does: no ``metadata``,
    only the events still to come (none when the run has ended); a resumable run replays
    the events after ``Last-Event-ID`` first."""
    run = await _run(state, owner, thread_id, run_id)
    runtime = state.runtime
    resumable = bool(run.kwargs.get("resumable"))
    if last_event_id and resumable:
        try:
            after = int(last_event_id)
        except ValueError:
            raise HTTPException(422, "Last-Event-ID: expected an event id from this run") from None
    else:
        after = await runtime.events.next_seq(run.run_id) - 1
    # The SDK sends ``stream_mode=`` (empty) when it has none: that means every mode.
    modes = [m for m in stream_mode or [] if m] or None
    spec = Follow(run.run_id, after_seq=after, resumable=resumable, modes=modes, metadata=False)
    return _stream(run, runtime, cancel_on_disconnect, spec)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(
    thread_id: str,
    run_id: str,
    state: State,
    owner: Owner,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Cancel a pending or running run (202); with ``wait=1`` answer its final values."""
    run = await _run(state, owner, thread_id, run_id)
    runtime = state.runtime
    if run.status not in ACTIVE:
        raise HTTPException(409, f"Run {run_id} has already ended ({run.status}).")
    await runtime.queue.cancel(run, action)
    if wait:
        return _wait(state, run, runtime, cancel=False)
    return Response(status_code=202)


class CancelMany(BaseModel):
    """Body of ``POST /runs/cancel``."""

    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


@router.post("/runs/cancel", status_code=204)
async def cancel_many(
    body: CancelMany,
    state: State,
    owner: Owner,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    """Cancel runs by thread and ids, or every run of the caller with a status."""
    if (body.status is None) == (body.thread_id is None and body.run_ids is None):
        raise HTTPException(422, "body: give either thread_id and run_ids, or status")
    runtime = state.runtime
    runs: list[QueuedRun] = []
    if body.status is not None:
        statuses = ACTIVE if body.status == "all" else (body.status,)
        runs = await runtime.queue.owned_with_status(owner, statuses)
    else:
        for run_id in body.run_ids or []:
            run = await runtime.queue.get(run_id, owner=owner)
            if run is not None and (body.thread_id in (None, run.thread_id)):
                runs.append(run)
    for run in runs:
        if run.status in ACTIVE:
            await runtime.queue.cancel(run, action)
    return Response(status_code=204)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete(thread_id: str, run_id: str, state: State, owner: Owner) -> Response:
    """Delete an ended run (409 while it is pending or running: cancel it first)."""
    run = await _run(state, owner, thread_id, run_id)
    if run.status in ACTIVE:
        raise HTTPException(409, f"Run {run_id} is {run.status}; cancel it before deleting it.")
    await state.runtime.queue.delete([run.run_id])
    return Response(status_code=204)


def _json(content: Any, headers: dict[str, str]) -> Response:
    return JSONResponse(content, headers=headers)


__all__ = ["create_run", "router"]
