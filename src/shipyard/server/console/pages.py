"""The console's pages (GET): the runs list, a run, the start form, sign-in, downloads.

Every page acts as the request's ``Viewer`` (``session.py``); a run the viewer cannot see
is the 404 page, exactly as the API answers 404 for another owner's thread.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.server.console.config import config_of
from shipyard.server.console.listing import PAGE_SIZE, STATUS_FILTERS, RunsPage, list_runs
from shipyard.server.console.render import page
from shipyard.server.console.run_view import load_run
from shipyard.server.console.session import Viewer, keys_required, viewer_of
from shipyard.server.deps import state_of
from shipyard.store.artifacts import SCHEME, ArtifactStore

router = APIRouter(prefix="/ui", include_in_schema=False)
NOTICES = {"not-running": "Nothing to cancel: the run is not running."}
"""Notices a redirect may name (by key: a link cannot put words on the page)."""


async def current_viewer(request: Request) -> Viewer:
    """FastAPI dependency: the viewer (``SignInRequired`` sends the browser to sign in)."""
    return await run_in_threadpool(viewer_of, request)


Seen = Annotated[Viewer, Depends(current_viewer)]


def not_found(request: Request, viewer: Viewer | None, what: str) -> HTMLResponse:
    """The 404 page."""
    text = f"There is no {what} here, or it belongs to someone else."
    return page(request, "message.html", 404, viewer=viewer, heading="Not found", text=text)


@router.get("/", response_class=HTMLResponse)
async def runs_page(
    request: Request, viewer: Seen, status: str = "", q: str = "", offset: int = Query(0, ge=0)
) -> HTMLResponse:
    """The runs list, waiting-for-me first; ``status`` filters, ``q`` searches goals."""
    status = status if status in STATUS_FILTERS else ""
    listing = await run_in_threadpool(
        list_runs,
        state_of(request).engine,
        viewer.owner,
        cli=viewer.cli_runs,
        status=status,
        query=q,
        offset=offset,
    )
    query = urlencode({"status": status, "q": q, "offset": offset})
    return page(
        request,
        "runs.html",
        viewer=viewer,
        listing=listing,
        statuses=STATUS_FILTERS,
        status=status,
        q=q,
        pages=_pages(listing, status, q),
        live_url=f"/ui/live?{query}",
    )


def _pages(listing: RunsPage, status: str, q: str) -> list[tuple[str, str]]:
    links = []
    if listing.offset > 0:
        back = max(listing.offset - PAGE_SIZE, 0)
        links.append(("newer", "/ui/?" + urlencode({"status": status, "q": q, "offset": back})))
    if listing.offset + len(listing.runs) < listing.total:
        on = listing.offset + PAGE_SIZE
        links.append(("older", "/ui/?" + urlencode({"status": status, "q": q, "offset": on})))
    return links


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str, viewer: Seen, notice: str = "") -> HTMLResponse:
    """One run: plan, timeline, evidence, diff, usage, isolation, approvals — live."""
    view = await load_run(state_of(request), viewer, run_id)
    if view is None:
        return not_found(request, viewer, "run")
    return page(request, "run.html", viewer=viewer, view=view, notice=NOTICES.get(notice, ""))


@router.get("/runs/{run_id}/artifacts/{name}")
async def artifact(request: Request, run_id: str, name: str, viewer: Seen) -> Response:
    """One of the run's artifacts (report, provenance manifest, a check's log), as a
    download."""
    if await load_run(state_of(request), viewer, run_id) is None:
        return not_found(request, viewer, "run")
    store = ArtifactStore(state_of(request).settings.artifacts)
    try:
        data = await run_in_threadpool(store.read, f"{SCHEME}{run_id}/{name}")
    except (ValueError, FileNotFoundError):
        return not_found(request, viewer, "artifact")
    return _download(data, name)


@router.get("/runs/{run_id}/patch")
async def patch(request: Request, run_id: str, viewer: Seen) -> Response:
    """The run's patch file, as a download."""
    view = await load_run(state_of(request), viewer, run_id)
    path = view.report.patch_path if view is not None and view.report is not None else None
    if view is None or not path:
        return not_found(request, viewer, "patch")
    with open(path, "rb") as handle:
        data = await run_in_threadpool(handle.read)
    return _download(data, f"{run_id}.patch")


def _download(data: bytes, name: str) -> Response:
    safe = "".join(c for c in name if c.isalnum() or c in "._-") or "download"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "content-disposition": f'attachment; filename="{safe}"',
            "x-content-type-options": "nosniff",
        },
    )


@router.get("/new", response_class=HTMLResponse)
async def new_run_page(request: Request, viewer: Seen) -> HTMLResponse:
    """The start-a-run form."""
    return await start_form(request, viewer, {}, [])


async def start_form(
    request: Request, viewer: Viewer, form: dict[str, str], errors: list[str]
) -> HTMLResponse:
    """The start form with ``form``'s values and ``errors`` (422 when there are any): the
    configured repositories as choices, earlier runs' repositories as suggestions for a
    typed path."""
    listing = await run_in_threadpool(
        list_runs, state_of(request).engine, viewer.owner, cli=viewer.cli_runs
    )
    configured = config_of(request).repos
    earlier = sorted({r.repo for r in listing.runs} - set(configured))
    values = {k: form.get(k, "") for k in ("goal", "repo", "repo_choice", "base_ref")}
    return page(
        request,
        "new.html",
        422 if errors else 200,
        viewer=viewer,
        form=values,
        errors=errors,
        configured=configured,
        repos=earlier,
    )


@router.get("/login", response_class=HTMLResponse, response_model=None)
async def login_page(request: Request, next: str = "/ui/") -> Response:
    """The sign-in form (straight to the console when the server needs no keys)."""
    if not await run_in_threadpool(keys_required, request):
        return RedirectResponse("/ui/", status_code=303)
    return page(request, "login.html", next=local_target(next), error="")


def local_target(target: str) -> str:
    """``target`` when it is a console path, else the console's root (no open redirect)."""
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


__all__ = [
    "NOTICES",
    "Seen",
    "current_viewer",
    "local_target",
    "not_found",
    "router",
    "start_form",
]
