"""Every error leaves the server as ``{"detail": "<a sentence a person can act on>"}``.

Status codes follow the reference: 404 unknown thing (also another owner's thing), 409
conflict, 422 invalid body or parameters (the message names the field; text Postgres
cannot store is refused so by ``server.storable`` before any route), 413 body too large,
401 bad key, 503 database unreachable (the request fails fast; retry later).
Shipyard's own exceptions map by who can act on them: ``UnknownRunError`` → 404,
``AuthenticationError`` → 401, ``NotWaitingError``/``StaleApprovalError`` → 409, other
``UserInputError`` → 400, ``InfrastructureError`` → 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard.errors import (
    AuthenticationError,
    InfrastructureError,
    NotWaitingError,
    StaleApprovalError,
    UnknownRunError,
    UserInputError,
)
from shipyard.server.http.encoding import JSONResponse

log = logging.getLogger("shipyard.server")

_UNAVAILABLE = (
    psycopg.OperationalError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    PoolTimeout,
    InfrastructureError,
)


def not_found(what: str) -> HTTPException:
    """A 404 with ``{"detail": "<what> not found"}``."""
    return HTTPException(404, f"{what} not found")


def conflict(detail: str) -> HTTPException:
    """A 409."""
    return HTTPException(409, detail)


def unprocessable(detail: str) -> HTTPException:
    """A 422 (the message should name the field)."""
    return HTTPException(422, detail)


def describe_validation(errors: list[Any]) -> str:
    """One line per problem, each naming the field: ``body.limit: Input should be …``."""
    lines = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            lines.append(f"malformed JSON body: {err.get('ctx', {}).get('error', err['msg'])}")
            continue
        lines.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(lines)


def _body(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _body(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _body(422, describe_validation(list(exc.errors())))


async def _shipyard(request: Request, exc: Exception) -> JSONResponse:
    status = 400
    if isinstance(exc, UnknownRunError):
        status = 404
    elif isinstance(exc, AuthenticationError):
        status = 401
    elif isinstance(exc, (NotWaitingError, StaleApprovalError)):
        status = 409
    return _body(status, str(exc))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    # Idle pooled connections may be dead too (a restarted server): drop them now rather
    # than fail one more request per stale connection once the database is back.
    pool = getattr(getattr(getattr(request.app.state, "server", None), "saver", None), "conn", None)
    if isinstance(pool, AsyncConnectionPool):
        task = asyncio.create_task(purge(pool))
        _PURGES.add(task)
        task.add_done_callback(_PURGES.discard)
    return _body(
        503,
        "the database is unavailable; nothing was changed — retry in a few seconds",
        {"Retry-After": "2"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return _body(500, f"internal error ({type(exc).__name__}); see the server log")


_PURGES: set[asyncio.Task[None]] = set()


async def purge(pool: AsyncConnectionPool[Any]) -> None:
    """Check the pool's idle connections, discarding broken ones (never raises)."""
    with contextlib.suppress(Exception):
        await pool.check()


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the ``{"detail": …}`` shape."""
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(UserInputError, _shipyard)
    for exc_type in _UNAVAILABLE:
        app.add_exception_handler(exc_type, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
