"""What one server process holds for its lifetime, built and torn down by the app's lifespan.

Routes reach it through the ``server_state`` dependency; workers receive it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:  # the stores import this module for ``server_state``
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from prometheus_client import CollectorRegistry
    from sqlalchemy import Engine

    from shipyard.server.observe.telemetry import Telemetry
    from shipyard.server.runs.runtime import RunsRuntime
    from shipyard.server.runs.worker import WorkerPool
    from shipyard.server.stores.assistants import AssistantStore
    from shipyard.server.stores.graphs import GraphRegistry
    from shipyard.server.stores.keys import Auth
    from shipyard.server.stores.threads import ThreadStore
    from shipyard.settings import Settings


@dataclass
class ServerState:
    """The lifespan's resources.

    ``url`` is the database URL in use (``DATABASE_URL`` or the embedded server); ``engine``
    is a sync SQLAlchemy engine for Shipyard's own tables (call it from a thread pool in
    async code); ``saver`` is the LangGraph checkpointer every graph in ``graphs`` is compiled
    with; ``auth`` resolves API keys to owners; ``threads`` and ``assistants`` are the stores;
    ``runtime`` is what runs share (queue, event log, listener); ``telemetry`` traces runs and
    requests (disabled unless configured); ``metrics`` is the ``/metrics`` registry;
    ``workers`` is this process's worker pool once the lifespan started it.
    """

    settings: Settings
    url: str
    engine: Engine
    saver: AsyncPostgresSaver
    graphs: GraphRegistry
    auth: Auth
    threads: ThreadStore
    assistants: AssistantStore
    runtime: RunsRuntime
    telemetry: Telemetry
    metrics: CollectorRegistry
    workers: WorkerPool | None = None


def state_of(request: Request) -> ServerState:
    """The running app's ``ServerState``."""
    state = getattr(request.app.state, "server", None)
    if not isinstance(state, ServerState):
        raise RuntimeError("the app's lifespan has not started: run it under uvicorn")
    return state


async def server_state(request: Request) -> ServerState:
    """FastAPI dependency: ``state_of`` (a coroutine, because FastAPI runs a plain function
    dependency in its thread pool: a thread hop on every request)."""
    return state_of(request)


State = Annotated[ServerState, Depends(server_state)]
"""Route parameter type for the app's ``ServerState``."""


async def current_owner(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> str:
    """FastAPI dependency: the owner the request acts as (401 when the key is missing or bad).

    Answered from the cache on the event loop when it can be; a lookup that needs the
    database runs in the thread pool so it never blocks the loop.
    """
    auth = state_of(request).auth
    if auth.cached(x_api_key):
        return auth.owner_for(x_api_key)
    return await run_in_threadpool(auth.owner_for, x_api_key)


Owner = Annotated[str, Depends(current_owner)]
"""Route parameter type for the caller's owner."""
