"""Creating a run (the LangGraph server API), for the run routes.

``create_run`` checks the thread (404, or created with ``if_not_exists="create"``), the
assistant (422 for an unknown graph), a resume against what is pending (409 when nothing
is, or when an approval's content hash is stale — before any run exists; a resume in
LangChain's shape is bound to the pending approval first, ``shipyard.hitl``), then enqueues it
under the thread's ``multitask_strategy`` (409 for ``reject`` on a busy thread). A request to
deliver in a command is stamped with the caller's owner as the person asking
(``delivery.consent.stamped_command``). A run the client waits for goes straight to an idle
worker of this process when there is one.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool

from shipyard.delivery.consent import stamped_command
from shipyard.errors import NotWaitingError
from shipyard.hitl import bind_resume
from shipyard.server.deps import ServerState
from shipyard.server.http.shapes import AssistantDict, JsonObject
from shipyard.server.runs.ledger import check_resume
from shipyard.server.runs.queue import NewRun, NoSuchThreadError, Pool, QueuedRun, ThreadBusyError
from shipyard.server.runs.request import RunCreate, check, run_kwargs
from shipyard.server.runs.runtime import RunsRuntime
from shipyard.server.stores.listener import RUNS_CHANNEL
from shipyard.server.stores.threads import create_thread, tag_for_run


async def _run_thread(
    state: ServerState, owner: str, thread_id: str, tags: JsonObject, create: bool
) -> None:
    """The thread a run goes to exists (404, or created when ``create``) and names its
    graph and assistant in its metadata."""
    pool = cast(Pool, state.saver.conn)
    if await tag_for_run(pool, owner, thread_id, tags):
        return
    if not create:
        raise HTTPException(404, f"Thread {thread_id} not found.")
    await create_thread(pool, owner, thread_id, tags, if_exists="do_nothing")
    if not await tag_for_run(pool, owner, thread_id, tags):  # another owner's id
        raise HTTPException(404, f"Thread {thread_id} not found.")


async def _check_resume(
    state: ServerState, owner: str, graph_id: str, thread_id: str, body: RunCreate
) -> None:
    registered = state.graphs.get(graph_id)
    snapshot = await registered.graph.aget_state({"configurable": {"thread_id": thread_id}})
    if not snapshot.interrupts:
        raise NotWaitingError(
            f"thread {thread_id} has no pending interrupt to resume; send input instead"
        )
    if registered.pins_workspace:  # Shipyard's graph: its decisions are bound to content
        assert body.command is not None  # a resume is in the command
        body.command["resume"] = bind_resume(body.resume(), snapshot.interrupts, owner)
        context = registered.context() if registered.context_factory else None
        await asyncio.to_thread(check_resume, context, thread_id, snapshot, body.resume())


async def _assistant(state: ServerState, owner: str, assistant_id: str) -> AssistantDict:
    """The assistant a run names: a default one from memory when it can, else the store's."""
    cached = state.assistants.cached_default(assistant_id)
    if cached is not None:
        return cached
    return await run_in_threadpool(state.assistants.resolve, owner, assistant_id)


async def create_run(
    state: ServerState,
    owner: str,
    body: RunCreate,
    thread_id: str | None,
    *,
    now: bool = False,
    run_id: str | None = None,
) -> tuple[QueuedRun, RunsRuntime]:
    """Validate, then enqueue the run (creating a temporary thread for stateless runs).

    ``now`` (the client waits for the run: ``wait``, ``stream``): when a worker of this
    process is idle, the run is created already claimed by it, and it starts at once.
    ``run_id``: the new run's id (default: a fresh one; an id in use is a unique violation).
    """
    stateless = thread_id is None
    check(body, stateless=stateless)
    assistant = await _assistant(state, owner, body.assistant_id)
    graph_id = assistant["graph_id"]
    tags = {"graph_id": graph_id, "assistant_id": str(assistant["assistant_id"])}
    if thread_id is None:
        thread_id = str(uuid.uuid4())
        await create_thread(cast(Pool, state.saver.conn), owner, thread_id, tags)
    elif body.resume() is not None:
        await _run_thread(state, owner, thread_id, tags, create=False)  # never create to resume
        await _check_resume(state, owner, graph_id, thread_id, body)
    if body.command is not None and state.graphs.get(graph_id).pins_workspace:
        body.command = stamped_command(body.command, owner)  # the owner asks, no one else
    new = NewRun(
        thread_id=thread_id,
        owner=owner,
        assistant_id=str(assistant["assistant_id"]),
        kwargs=run_kwargs(body, assistant, temporary=stateless),
        metadata=body.metadata or {},
        multitask_strategy=body.multitask_strategy,
        after_seconds=body.after_seconds,
        tags=tags,
        run_id=run_id,
    )
    runtime = state.runtime
    try:
        run = await _enqueue(state, runtime, new, now=now)
    except NoSuchThreadError:
        if body.if_not_exists != "create":
            raise HTTPException(404, f"Thread {thread_id} not found.") from None
        await create_thread(
            cast(Pool, state.saver.conn), owner, thread_id, tags, if_exists="do_nothing"
        )
        try:
            run = await _enqueue(state, runtime, new, now=now)
        except NoSuchThreadError:  # another owner's id
            raise HTTPException(404, f"Thread {thread_id} not found.") from None
    return run, runtime  # the enqueue marked the thread busy


async def _enqueue(
    state: ServerState, runtime: RunsRuntime, new: NewRun, *, now: bool
) -> QueuedRun:
    """Enqueue ``new``; with ``now``, claimed by an idle worker of this process if any."""
    workers = state.workers if now else None
    reserved = workers.reserve() if workers is not None else None
    claimed: QueuedRun | None = None
    try:
        run, _ = await runtime.queue.enqueue(new, claim_for=reserved)
        if reserved is not None and run.lease_owner == reserved:
            claimed = run
    except ThreadBusyError as err:
        raise HTTPException(409, str(err)) from None
    finally:
        if workers is not None and reserved is not None:
            workers.handoff(reserved, claimed)
    if claimed is None:
        # Committed: this process's workers may claim it now, without waiting for the NOTIFY.
        runtime.listener.local(RUNS_CHANNEL, run.run_id)
    return run


__all__ = ["create_run"]
