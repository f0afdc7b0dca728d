"""Live updates over SSE: the runs list and a run page re-render on the server when the
runs' stored stream events or run records change, and send the new HTML as one SSE event
(htmx's SSE extension swaps it in; no reload, no client-side templates).

A page follows the same notifications the API's streams do (``stream events stored``,
``runs changed``: ``stores/listener.py``), so a run executed by any server process updates
every console watching it; a fragment is sent only when it differs from the last one sent,
and a heartbeat comment keeps the connection open while nothing changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard.server.console.listing import STATUS_FILTERS, list_runs
from shipyard.server.console.pages import Seen, not_found
from shipyard.server.console.render import fragment
from shipyard.server.console.run_view import load_run
from shipyard.server.console.session import csrf_token
from shipyard.server.deps import state_of
from shipyard.server.stores.listener import EVENTS_CHANNEL, RUNS_CHANNEL

router = APIRouter(prefix="/ui", include_in_schema=False)
HEARTBEAT_S = 10.0
SETTLE_S = 0.02
"""After a notification, wait this long so a burst of them renders once."""


def sse(event: str, html: str) -> bytes:
    """One SSE event carrying ``html`` (one ``data:`` line per line of it)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {event}\n{lines}\n".encode()


def _stream(request: Request, event: str, render: Callable[[], Awaitable[str]]) -> Response:
    listener = state_of(request).runtime.listener

    async def body() -> AsyncIterator[bytes]:
        wake = asyncio.Event()
        forget = [listener.on(c, lambda _p: wake.set()) for c in (EVENTS_CHANNEL, RUNS_CHANNEL)]
        last = None
        try:
            while not await request.is_disconnected():
                wake.clear()
                html = await render()
                if html != last:
                    last = html
                    yield sse(event, html)
                try:
                    await asyncio.wait_for(wake.wait(), timeout=HEARTBEAT_S)
                    await asyncio.sleep(SETTLE_S)
                except TimeoutError:
                    yield b": heartbeat\n\n"
        finally:
            for unsubscribe in forget:
                unsubscribe()

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


@router.get("/runs/{run_id}/live")
async def run_live(request: Request, run_id: str, viewer: Seen) -> Response:
    """The run page's body whenever it changes."""
    state = state_of(request)
    if await load_run(state, viewer, run_id) is None:
        return not_found(request, viewer, "run")
    csrf = csrf_token(request)

    async def render() -> str:
        view = await load_run(state, viewer, run_id)
        return fragment("_run_body.html", view=view, csrf=csrf) if view is not None else ""

    return _stream(request, "run", render)


@router.get("/live")
async def runs_live(
    request: Request, viewer: Seen, status: str = "", q: str = "", offset: int = Query(0, ge=0)
) -> Response:
    """The runs table whenever it changes."""
    engine = state_of(request).engine
    status = status if status in STATUS_FILTERS else ""

    async def render() -> str:
        listing = await run_in_threadpool(
            list_runs,
            engine,
            viewer.owner,
            cli=viewer.cli_runs,
            status=status,
            query=q,
            offset=offset,
        )
        return fragment("_runs_table.html", listing=listing, pages=[])

    return _stream(request, "runs", render)


__all__ = ["router", "sse"]
