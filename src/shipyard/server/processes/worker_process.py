"""The ``shipyard worker`` command: worker loops (``server.worker``) in a process of their
own, on any machine that reaches the database, with no HTTP listener."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shipyard.server.app import ServerOptions, create_app
from shipyard.settings import Settings

log = logging.getLogger(__name__)


async def run_worker_process(
    settings: Settings,
    n: int,
    *,
    lease_s: float | None = None,
    drain_s: float = 10.0,
    graphs: dict[str, str] | None = None,
    graphs_base: Path | None = None,
    pool_size: int | None = None,
    started: Callable[[], None] | None = None,
) -> None:
    """The ``shipyard worker`` command: serve runs until SIGTERM/SIGINT, then drain.

    Opens the same resources as the server (through the app's lifespan, with no HTTP
    listener) so a worker process runs graphs exactly as an in-server worker does;
    ``graphs``/``graphs_base`` are the ``langgraph.json`` graphs (default: the packaged ones).
    ``started`` is called once the workers run (``server.processes``).
    """
    options = replace(
        ServerOptions(), workers=n, drain_s=drain_s, graphs=graphs, graphs_base=graphs_base
    )
    if lease_s:
        options = replace(options, lease_s=lease_s)
    if pool_size is not None:
        options = replace(options, pool_size=pool_size)
    app = create_app(settings, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app.router.lifespan_context(app):
        log.info("shipyard worker: %d worker(s) running", n)
        if started is not None:
            started()
        await stop.wait()


__all__ = ["run_worker_process"]
