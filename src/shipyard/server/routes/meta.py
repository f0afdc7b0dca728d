"""Health and server info: ``GET /ok``, ``GET /``, ``GET /info`` (no API key needed: they
reveal nothing about anyone's data). OpenAPI is FastAPI's own ``/openapi.json``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from shipyard.server.deps import ServerState, State
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.http.shapes import JsonObject

router = APIRouter(tags=["meta"])


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _ping(state: ServerState) -> None:
    with state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get("/ok")
async def ok(state: State, check_db: int = 0) -> JSONResponse:
    """``{"ok": true}``; with ``check_db=1`` the database is queried too (500 if it fails)."""
    if check_db:
        try:
            await run_in_threadpool(_ping, state)
        except Exception as err:  # any failure means "not healthy", which is the answer
            return JSONResponse(
                {"ok": False, "detail": f"database check failed: {type(err).__name__}"},
                status_code=500,
            )
    return JSONResponse({"ok": True, "services": {}})


@router.get("/", include_in_schema=False)
async def root(state: State) -> JSONResponse:
    """Same as ``/ok`` (for load balancers)."""
    return await ok(state)


@router.get("/info")
async def info(state: State) -> JsonObject:
    """Server version and feature flags (what Studio reads first)."""
    return {
        "version": _version("shipyard"),
        "langgraph_py_version": _version("langgraph"),
        "flags": {
            "assistants": True,
            "crons": True,
            "langsmith": False,
            "langsmith_tracing_replicas": False,
        },
        "host": {"kind": "self-hosted", "project_id": None, "revision_id": None},
        "graphs": state.graphs.ids(),
    }
