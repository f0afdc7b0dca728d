"""Waiting for a run to end and what ``runs.wait`` / ``join`` answer (the LangGraph server API).

The body is the thread's final values — with ``"__interrupt__": [...]`` when the run
stopped at an interrupt — or ``{"__error__": {"error", "message"}}`` when it failed.
``wait_body`` streams a ``\\n`` every few seconds while the run is still going (JSON allows
leading whitespace, and proxies keep the connection open) and cancels the run if the client
goes away and asked for ``on_disconnect="cancel"``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from shipyard.server.http.encoding import dumps
from shipyard.server.http.shapes import JsonObject
from shipyard.server.runs.queue import TERMINAL
from shipyard.server.runs.runtime import RunsRuntime
from shipyard.server.stores.graphs import GraphRegistry
from shipyard.server.stores.listener import EVENTS_CHANNEL

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
        self.row: JsonObject | None = None
        """The ``END`` row once ended (``None``: the run was deleted)."""

    def _on_event(self, payload: str) -> None:
        if payload in (self.run_id, ""):
            self._wake.set()

    async def wait(self, poll_s: float = 1.0) -> AsyncGenerator[None, None]:
        """Return once the run has ended (or was deleted); yields after each idle ``poll_s``
        so the caller can send keep-alives."""
        look = not self.fresh
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

    async def within(self, seconds: float, poll_s: float = 1.0) -> bool:
        """Whether the run ends before ``seconds`` of idle polls have passed; after
        ``False``, ``wait`` goes on from there."""
        idle = 0.0
        async with contextlib.aclosing(self.wait(poll_s)) as waits:
            async for _ in waits:
                idle += poll_s
                if idle >= seconds:
                    self.fresh = False  # a later ``wait`` must look first
                    return False
        return True

    def close(self) -> None:
        """Stop listening (the wait is over, or abandoned)."""
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
    idle_s: float = 0.0,
) -> AsyncIterator[bytes]:
    """The streamed body of ``runs.wait`` / ``join`` / ``cancel?wait=1``; ``idle_s``: how
    long the run was already waited for without a byte sent."""
    done = False
    try:
        idle = idle_s
        if idle >= KEEPALIVE_S:
            idle = 0.0
            yield b"\n"
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


class WaitResponse(Response):
    """The ``runs.wait`` / ``join`` response. A run that ends before the first keep-alive
    is due (the usual case) is answered as a plain JSON response; a longer one becomes the
    streamed ``wait_body``. A client that asked for ``cancel_on_disconnect`` is watched
    from the start (the streamed body notices a disconnect)."""

    media_type = "application/json"

    def __init__(
        self,
        runtime: RunsRuntime,
        graphs: GraphRegistry,
        end: RunEnd,
        graph_id: str,
        *,
        cancel_on_disconnect: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(headers=headers)
        self.wait_args = (runtime, graphs, end, graph_id)
        self.cancel_on_disconnect = cancel_on_disconnect
        self.given_headers = dict(headers or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer once the run ended, or stream keep-alives until it does."""
        runtime, graphs, end, graph_id = self.wait_args
        if not self.cancel_on_disconnect:
            try:
                ended = await end.within(KEEPALIVE_S)
                if ended:
                    self.body = dumps(await final_values(runtime, graphs, end, graph_id))
                    self.init_headers(self.given_headers)
            except BaseException:
                end.close()
                raise
            if ended:
                end.close()
                await super().__call__(scope, receive, send)
                return
        body = wait_body(
            *self.wait_args,
            cancel_on_disconnect=self.cancel_on_disconnect,
            idle_s=0.0 if self.cancel_on_disconnect else KEEPALIVE_S,
        )
        streamed = StreamingResponse(body, media_type=self.media_type, headers=self.given_headers)
        await streamed(scope, receive, send)


async def cancel_quietly(runtime: RunsRuntime, run_id: str) -> None:
    """Cancel the run (``interrupt``) if it still exists — after a client went away."""
    run = await runtime.queue.get(run_id)
    if run is not None and run.status in ("pending", "running"):
        with contextlib.suppress(Exception):
            await runtime.queue.cancel(run, "interrupt")


__all__ = [
    "END",
    "KEEPALIVE_S",
    "RunEnd",
    "WaitResponse",
    "cancel_quietly",
    "final_values",
    "wait_body",
]
