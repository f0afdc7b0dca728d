"""Waiting for a run to end and what ``runs.wait`` / ``join`` answer (reference §4.5).

The body is the thread's final values — with ``"__interrupt__": [...]`` when the run
stopped at an interrupt — or ``{"__error__": {"error", "message"}}`` when it failed.
``wait_body`` streams a ``\\n`` every few seconds while the run is still going (JSON allows
leading whitespace, and proxies keep the connection open) and cancels the run if the client
goes away and asked for ``on_disconnect="cancel"``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from shipyard.server.encoding import dumps
from shipyard.server.graphs import GraphRegistry
from shipyard.server.listener import EVENTS_CHANNEL
from shipyard.server.queue import TERMINAL
from shipyard.server.worker import RunsRuntime

KEEPALIVE_S = 5.0


async def wait_ended(
    runtime: RunsRuntime, run_id: str, poll_s: float = 1.0, seen: list[str | None] | None = None
) -> AsyncIterator[None]:
    """Return once the run has ended (or was deleted); yields after each idle ``poll_s`` so
    the caller can send keep-alives. The status it ended with is appended to ``seen``."""
    wake = asyncio.Event()

    def on_event(payload: str) -> None:
        if payload in (run_id, ""):
            wake.set()

    unsubscribe = runtime.listener.on(EVENTS_CHANNEL, on_event)
    try:
        while True:
            wake.clear()
            status, _ = await runtime.events.run_status(run_id)
            if status is None or status in TERMINAL:
                if seen is not None:
                    seen.append(status)
                return
            try:
                await asyncio.wait_for(wake.wait(), timeout=poll_s)
            except TimeoutError:
                yield
    finally:
        unsubscribe()


async def final_values(
    runtime: RunsRuntime,
    graphs: GraphRegistry,
    run_id: str,
    thread_id: str,
    graph_id: str,
    seen: list[str | None] | None = None,
) -> Any:
    """The ``wait``/``join`` body of an ended run (``seen``: its status, if just read)."""
    status = seen[0] if seen else (await runtime.events.run_status(run_id))[0]
    if status == "error":
        error = await runtime.events.last_error(run_id)
        return {"__error__": error or {"error": "Error", "message": "the run failed"}}
    if graph_id not in graphs:
        return None
    # The thread's state as cached with the run's end (``RunQueue.finish`` writes it in the
    # statement that ends the run; ``threads.get`` answers from it too): no checkpoint to
    # load and no tasks to prepare.
    async with runtime.queue.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT values, interrupts FROM threads WHERE thread_id = %s", [thread_id]
        )
        row = await cur.fetchone()
    if row is None:
        return None
    values = row["values"]
    interrupts = [i for pending in (row["interrupts"] or {}).values() for i in pending]
    if interrupts and isinstance(values, dict):
        values["__interrupt__"] = interrupts
    return values


async def wait_body(
    runtime: RunsRuntime,
    graphs: GraphRegistry,
    run_id: str,
    thread_id: str,
    graph_id: str,
    *,
    cancel_on_disconnect: bool = False,
) -> AsyncIterator[bytes]:
    """The streamed body of ``runs.wait`` / ``join`` / ``cancel?wait=1``."""
    done = False
    try:
        idle = 0.0
        seen: list[str | None] = []
        async for _ in wait_ended(runtime, run_id, seen=seen):
            idle += 1.0
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield b"\n"
        done = True
        yield dumps(await final_values(runtime, graphs, run_id, thread_id, graph_id, seen))
    finally:
        if not done and cancel_on_disconnect:
            await asyncio.shield(cancel_quietly(runtime, run_id))


async def cancel_quietly(runtime: RunsRuntime, run_id: str) -> None:
    """Cancel the run (``interrupt``) if it still exists — after a client went away."""
    run = await runtime.queue.get(run_id)
    if run is not None and run.status in ("pending", "running"):
        with contextlib.suppress(Exception):
            await runtime.queue.cancel(run, "interrupt")


__all__ = ["KEEPALIVE_S", "cancel_quietly", "final_values", "wait_body", "wait_ended"]
