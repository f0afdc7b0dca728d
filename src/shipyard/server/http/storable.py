"""Requests carrying text Postgres cannot store get 422 before any handler acts on them
(ASGI middleware), for every route at once.

A JSON body can only carry NUL or an unpaired surrogate as a ``\\u0000`` / ``\\ud800`` escape,
so a byte search finds candidates; only then is the body parsed to name the field
(``body.metadata.team: text cannot contain NUL …``). The path and query string are checked
too. Nothing reaches a handler, so nothing is stored. What Shipyard writes itself goes through
``shipyard.store.jsonb.dumps``, which replaces such characters instead.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.server.http.encoding import dumps
from shipyard.store.jsonb import find_unstorable, unstorable_reason

_CANDIDATE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_NOTHING_STORED = "; nothing was stored"


_SHOWN_ESCAPED = re.compile("[\x00-\x1f\ud800-\udfff]")


def field_name(path: tuple[str | int, ...]) -> str:
    """``("body", "metadata", "k")`` as ``body.metadata.k``; control characters and
    surrogates in a key are shown as ``\\uXXXX`` escapes."""
    return ".".join(_SHOWN_ESCAPED.sub(_escape, p) if isinstance(p, str) else str(p) for p in path)


def _escape(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def body_problem(body: bytes) -> str | None:
    """The 422 detail for a JSON ``body`` holding unstorable text, else ``None`` (also for a
    body that is not JSON: the route reports that)."""
    if not _CANDIDATE.search(body):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    found = find_unstorable(value)
    if found is None:
        return None
    path, reason = found
    return f"{field_name(('body', *path))}: {reason}{_NOTHING_STORED}"


def url_problem(scope: Scope) -> str | None:
    """The 422 detail for a path or query string holding unstorable text, else ``None``."""
    reason = unstorable_reason(scope.get("path", ""))
    if reason is not None:
        return f"path: {reason}{_NOTHING_STORED}"
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        reason = unstorable_reason(name) or unstorable_reason(value)
        if reason is not None:
            return f"{field_name(('query', name))}: {reason}{_NOTHING_STORED}"
    return None


async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
    """The whole body, and a non-body message that ended it early (a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replay(body: bytes, early: Message | None, receive: Receive) -> Receive:
    """A ``receive`` giving ``body`` once, then what the client sends next (disconnects)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if early is not None:
        pending.append(early)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class StorableText:
    """Refuse requests whose text Postgres cannot store with 422 ``{"detail": …}``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the URL, then the body of a request that has one; pass it on or refuse it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = url_problem(scope)
        if problem is None and scope.get("method") in {"POST", "PUT", "PATCH"}:
            body, early = await _read_body(receive)
            problem = body_problem(body)
            receive = _replay(body, early, receive)
        if problem is None:
            await self.app(scope, receive, send)
            return
        await _refuse(send, problem)


async def _refuse(send: Send, detail: str) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": dumps({"detail": detail})})
