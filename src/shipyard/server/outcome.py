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


END = """SELECT r.status, t.values, t.interrupts FROM api_runs r
    LEFT JOIN threads t ON t.thread_id = r.thread_id WHERE r.run_id = %s"""
"""A run's status with its thread's state as cached at the run's end (``RunQueue.finish``
writes both in one statement): one read says whether it ended and what to answer."""


class RunEnd:
    """Waits for one run to end: subscribed from construction, so an end that comes between
    creating the run and waiting for it is not missed."""

    def __init__(self, runtime: RunsRuntime, run_id: str, *, fresh: bool = False) -> None:
        """``fresh``: the run was just created by this request (no need to look before the
        first notification)."""
        self.runtime = runtime
        self.run_id = run_id
        self.fresh = fresh
        self._wake = asyncio.Event()
        self._unsubscribe = runtime.listener.on(EVENTS_CHANNEL, self._on_event)
        self.row: dict[str, Any] | None = None
        """The ``END`` row once ended (``None``: the run was deleted)."""

    def _on_event(self, payload: str) -> None:
        if payload in (self.run_id, ""):
            self._wake.set()

    async def wait(self, poll_s: float = 1.0) -> AsyncIterator[None]:
        """Return once the run has ended (or was deleted); yields after each idle ``poll_s``
        so the caller can send keep-alives."""
        look = not self.fresh
        try:
            while True:
                if look:
                    self._wake.clear()
                    async with self.runtime.queue.pool.connection() as conn:
                        row = await (await conn.execute(END, [self.run_id])).fetchone()
                    if row is None or row["status"] in TERMINAL:
                        self.row = row
                        return
                look = True
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=poll_s)
                except TimeoutError:
                    yield
        finally:
            self._unsubscribe()

    def close(self) -> None:
        self._unsubscribe()


async def final_values(
    runtime: RunsRuntime, graphs: GraphRegistry, end: RunEnd, graph_id: str
) -> Any:
    """The ``wait``/``join`` body of an ended run."""
    row = end.row
    if row is not None and row["status"] == "error":
        error = await runtime.events.last_error(end.run_id)
        return {"__error__": error or {"error": "Error", "message": "the run failed"}}
    if graph_id not in graphs or row is None:
        return None
    # The thread's state as cached with the run's end (``threads.get`` answers from it
    # too): no checkpoint to load and no tasks to prepare.
    values = row["values"]
    interrupts = [i for pending in (row["interrupts"] or {}).values() for i in pending]
    if interrupts and isinstance(values, dict):
        values["__interrupt__"] = interrupts
    return values


async def wait_body(
    runtime: RunsRuntime,
    graphs: GraphRegistry,
    end: RunEnd,
    graph_id: str,
    *,
    cancel_on_disconnect: bool = False,
) -> AsyncIterator[bytes]:
    """The streamed body of ``runs.wait`` / ``join`` / ``cancel?wait=1``."""
    done = False
    try:
        idle = 0.0
        async for _ in end.wait():
            idle += 1.0
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield b"\n"
        done = True
        yield dumps(await final_values(runtime, graphs, end, graph_id))
    finally:
        end.close()
        if not done and cancel_on_disconnect:
            await asyncio.shield(cancel_quietly(runtime, end.run_id))


async def cancel_quietly(runtime: RunsRuntime, run_id: str) -> None:
    """Cancel the run (``interrupt``) if it still exists — after a client went away."""
    run = await runtime.queue.get(run_id)
    if run is not None and run.status in ("pending", "running"):
        with contextlib.suppress(Exception):
            await runtime.queue.cancel(run, "interrupt")


__all__ = ["END", "KEEPALIVE_S", "RunEnd", "cancel_quietly", "final_values", "wait_body"]
