"""Request body size limit (ASGI middleware): an oversized body gets 413 before any handler
acts on it — by ``Content-Length`` up front, or by counting the bytes of a chunked body."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.server.http.encoding import dumps

DEFAULT_MAX_BODY = 16 * 1024 * 1024
"""Bytes a request body may have (16 MiB)."""


class _TooLarge(HTTPException):
    """Raised from ``receive``: FastAPI re-raises ``HTTPException``s from body reading and
    the app's error handlers turn it into the 413 response."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _detail(max_bytes))


DRAIN_BYTES = 1024 * 1024
"""Unread body read and dropped before a 413 (at most): closing a connection with unread
data makes the kernel reset it, which can destroy the 413 before the client reads it."""


async def _drain(receive: Receive) -> None:
    left = DRAIN_BYTES
    while left > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        left -= len(message.get("body", b""))


def _detail(max_bytes: int) -> str:
    return f"request body larger than the limit of {max_bytes} bytes"


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413 ``{"detail": …}``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive)
            await self._refuse(send)
            return
        seen = 0
        started = ended = False

        async def counting_receive() -> Message:
            nonlocal seen, ended
            message = await receive()
            ended = message["type"] != "http.request" or not message.get("more_body", False)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:  # the handler answered before reading everything; nothing to fix
                raise
            if not ended:
                await _drain(receive)
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = dumps({"detail": _detail(self.max_bytes)})
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
