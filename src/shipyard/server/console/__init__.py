"""The web console at ``/ui/`` (docs/architecture.md §9): server-rendered pages over the
same stores, owners and run creation as the API, live over SSE, with vendored htmx and
its SSE extension as the only script (``static/``); nothing is loaded from elsewhere.

``mount(app)`` adds its routes, its static files and the redirect to the sign-in form, and
reads the console's configuration (``config.py``) from the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from shipyard.server.console import actions, live, pages
from shipyard.server.console.config import ConsoleConfig
from shipyard.server.console.session import SignInRequired

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the console from ``app`` under ``/ui/``."""
    app.state.console = ConsoleConfig.from_env(os.environ)
    for module in (pages, actions, live):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(actions.ForgedForm, actions.forged)


async def _to_sign_in(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)


__all__ = ["mount"]
