"""The FastAPI app speaking the LangGraph server API (docs/architecture.md §9).

``create_app`` builds the app; ONE lifespan owns every resource: the database (embedded or
``DATABASE_URL``), migrations, the engine, the checkpointer, the graph registry with its
default assistants, and the run workers (``shipyard.server.runs.worker``, when installed). Routes
live in ``shipyard.server.routes.*``; the runs router is included when its module exists; the
web console (``shipyard.server.console``) is served at ``/ui/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from langgraph.pregel import Pregel
from sqlalchemy import Engine

from shipyard.context import Context
from shipyard.server import console
from shipyard.server.deps import ServerState
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.http.errors import install_error_handlers
from shipyard.server.http.limits import DEFAULT_MAX_BODY, BodyLimit
from shipyard.server.http.storable import StorableText
from shipyard.server.observe import metrics
from shipyard.server.observe.telemetry import Telemetry, TracingMiddleware, opened
from shipyard.server.processes.gc_tuning import tuned_gc
from shipyard.server.routes import assistants, meta, runs, thread_state, threads
from shipyard.server.routes import crons as cron_routes
from shipyard.server.runs.queue import Pool
from shipyard.server.runs.runtime import DEFAULT_LEASE_S, opened_runtime
from shipyard.server.runs.scheduler import DEFAULT_POLL_S, scheduling
from shipyard.server.runs.webhooks import sending
from shipyard.server.runs.worker import start_workers
from shipyard.server.stores.assistants import AssistantStore
from shipyard.server.stores.graphs import GraphRegistry
from shipyard.server.stores.keys import Auth
from shipyard.server.stores.listener import KEYS_CHANNEL
from shipyard.server.stores.threads import ThreadStore
from shipyard.settings import Settings
from shipyard.store import (
    check_reachable,
    make_engine,
    migrate,
    open_checkpointer,
    resolve_database_url,
)

log = logging.getLogger("shipyard.server")

EXPOSED_HEADERS = ("x-pagination-total", "x-pagination-next", "content-location", "location")


@dataclass(frozen=True)
class ServerOptions:
    """How the app behaves beyond ``Settings``.

    ``graphs``: graph id → spec (``langgraph.json`` ``graphs``; ``None`` = packaged default),
    resolved against ``graphs_base``. ``require_keys``: key mode even with no keys (a server
    listening beyond loopback). ``drain_s``: how long shutdown waits for running runs before
    re-queueing them. ``cron_poll_s``: how often this process's cron scheduler looks for due
    crons (0 = no scheduler here). ``lease_s``: how long a worker's claim on a run lasts
    without a heartbeat. ``telemetry``: a tracer to use instead of the ``OTEL_*`` variables'
    (tests and embedders; the lifespan does not shut it down).
    """

    workers: int = 1
    require_keys: bool = False
    cors_origins: Sequence[str] = ("*",)
    max_body_bytes: int = DEFAULT_MAX_BODY
    drain_s: float = 10.0
    graphs: dict[str, str] | None = None
    graphs_base: Path | None = None
    pool_size: int = 20
    cron_poll_s: float = DEFAULT_POLL_S
    lease_s: float = DEFAULT_LEASE_S
    telemetry: Telemetry | None = None


def create_app(
    settings: Settings, options: ServerOptions | None = None, *, workers: int | None = None
) -> FastAPI:
    """The app; resources are opened when its lifespan starts (under uvicorn).

    ``workers`` overrides ``options.workers`` (run workers inside this process; 0 = none).
    """
    options = options or ServerOptions()
    if workers is not None:
        options = replace(options, workers=workers)
    app = FastAPI(
        title="Shipyard",
        description="LangGraph-compatible server for Shipyard runs",
        version=_version(),
        default_response_class=JSONResponse,
        lifespan=_lifespan(settings, options),
    )
    install_error_handlers(app)
    _include_routers(app)
    app.add_middleware(StorableText)
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)
    app.add_middleware(TracingMiddleware)
    origins = list(options.cors_origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials="*" not in origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=list(EXPOSED_HEADERS),
        allow_private_network=True,
    )
    return app


def _lifespan(settings: Settings, options: ServerOptions) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = resolve_database_url(settings)
        check_reachable(url)
        migrate(url)
        engine = make_engine(url)
        try:
            async with open_checkpointer(url, max_size=options.pool_size) as saver:
                graphs = GraphRegistry.load(
                    saver, options.graphs, _context_for(settings, engine), options.graphs_base
                )
                assistants = AssistantStore(engine, [g.graph_id for g in graphs])
                assistants.ensure_defaults()
                with opened(options.telemetry, os.environ) as telemetry:
                    pool = cast(Pool, saver.conn)
                    queue = telemetry.queue(pool, options.lease_s)
                    async with opened_runtime(url, pool, queue) as runtime:
                        state = ServerState(
                            settings=settings,
                            url=url,
                            engine=engine,
                            saver=saver,
                            graphs=graphs,
                            auth=Auth(engine, require_keys=options.require_keys),
                            threads=ThreadStore(engine),
                            assistants=assistants,
                            runtime=runtime,
                            telemetry=telemetry,
                            metrics=metrics.new_registry(),
                        )
                        metrics.register(state)
                        app.state.server = state
                        async with _serving(state, options):
                            yield
        finally:
            engine.dispose()

    return lifespan


@asynccontextmanager
async def _serving(state: ServerState, options: ServerOptions) -> AsyncIterator[None]:
    """The outbox sender (notifications, webhooks: ``server.runs.webhooks``), workers and
    the cron scheduler running, the heap frozen once everything is open. The sender stops
    last, after the workers drained."""
    async with sending(state), _workers(state, options), scheduling(state, options.cron_poll_s):
        with tuned_gc(os.environ):
            yield


@asynccontextmanager
async def _workers(state: ServerState, options: ServerOptions) -> AsyncIterator[None]:
    # Even with no worker loops the pool owns this process's notification listener (used by
    # streams and joins), so it is always started and stopped here.
    pool = await start_workers(state, max(options.workers, 0))
    state.workers = pool
    # Keys created or revoked by another process (``shipyard keys``) reach the cache here.
    forget_keys = pool.runtime.listener.on(KEYS_CHANNEL, state.auth.invalidate)
    state.auth.invalidate()  # anything cached before the listener was in place
    try:
        yield
    finally:
        forget_keys()
        await pool.stop(options.drain_s)


def _context_for(
    settings: Settings, engine: Engine
) -> Callable[[Pregel[Any, Any, Any, Any]], Callable[[], Any] | None]:
    """Graphs declaring ``shipyard.context.Context`` share one Context (as ``Runner.open``
    builds it); other graphs get none."""
    shared: list[Context] = []

    def factory() -> Context:
        if not shared:
            shared.append(Context.build(settings, engine))
        return shared[0]

    def choose(graph: Pregel[Any, Any, Any, Any]) -> Callable[[], Any] | None:
        return factory if getattr(graph, "context_schema", None) is Context else None

    return choose


def _include_routers(app: FastAPI) -> None:
    for module in (meta, assistants, threads, thread_state, runs, cron_routes, metrics):
        app.include_router(module.router)
    console.mount(app)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("shipyard")
    except PackageNotFoundError:
        return "0.0.0"
