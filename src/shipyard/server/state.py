"""What one server process holds for its lifetime, built and torn down by the app's lifespan.

Routes reach it through the ``server_state`` dependency; workers receive it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

if TYPE_CHECKING:  # the stores import this module for ``server_state``
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from sqlalchemy import Engine

    from shipyard.server.assistants import AssistantStore
    from shipyard.server.auth import Auth
    from shipyard.server.graphs import GraphRegistry
    from shipyard.server.threads import ThreadStore
    from shipyard.settings import Settings


@dataclass
class ServerState:
    """The lifespan's resources.

    ``url`` is the database URL in use (``DATABASE_URL`` or the embedded server); ``engine``
    is a sync SQLAlchemy engine for Shipyard's own tables (call it from a thread pool in
    async code); ``saver`` is the LangGraph checkpointer every graph in ``graphs`` is compiled
    with; ``auth`` resolves API keys to owners; ``threads`` and ``assistants`` are the stores.
    """

    settings: Settings
    url: str
    engine: Engine
    saver: AsyncPostgresSaver
    graphs: GraphRegistry
    auth: Auth
    threads: ThreadStore
    assistants: AssistantStore
    extras: dict[str, Any]
    """Room for other components' per-process objects (e.g. the worker pool)."""


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
