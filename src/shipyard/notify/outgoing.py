"""The HTTP request a claimed delivery becomes (``Outgoing``), and how a notification row
is rendered into one: a signed JSON envelope, or a Slack message.

A renderer is a function ``(Delivery, NotifyConfig) -> Outgoing``; the sender has one per
outbox ``kind`` (the server adds the webhook renderer, ``server.runs.webhooks``). A row that
can never be sent raises ``UndeliverableError``: it is recorded ``failed`` with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from shipyard.notify import slack
from shipyard.notify.config import NotifyConfig
from shipyard.notify.events import envelope
from shipyard.notify.outbox import Delivery
from shipyard.notify.signing import DELIVERY_HEADER, EVENT_HEADER, signed_headers


class UndeliverableError(Exception):
    """This delivery can never succeed (no such endpoint here, a refused address, an answer
    that retrying will not change); the message is recorded as the row's ``last_error``."""


@dataclass(frozen=True)
class Outgoing:
    """A POST to make. ``guarded``: the URL came from a client, so the sender resolves it
    and connects only to addresses ``notify.guard`` allows."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    guarded: bool = False


Renderer = Callable[[Delivery, NotifyConfig], Outgoing]


def render_notification(delivery: Delivery, config: NotifyConfig) -> Outgoing:
    """The request announcing a ``notify`` row's event to its endpoint, as configured in
    this process (the secret is read here, never stored with the row)."""
    endpoint = config.endpoint(delivery.target)
    if endpoint is None:
        raise UndeliverableError(
            f"notification endpoint {delivery.target!r} is not configured in this process"
        )
    run_id = delivery.payload.get("run_id")
    link = config.console_url(str(run_id)) if run_id else None
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: delivery.key,
    }
    if endpoint.format == "slack":
        body = orjson.dumps(slack.message(delivery.key, delivery.event, delivery.payload, link))
        return Outgoing(endpoint.url, body, headers)
    data = envelope(
        delivery.key, delivery.event, delivery.created_at, delivery.owner, delivery.payload, link
    )
    body = orjson.dumps(data)
    if endpoint.secret is not None:
        headers.update(signed_headers(endpoint.secret, int(time.time()), body))
    return Outgoing(endpoint.url, body, headers)


__all__ = ["Outgoing", "Renderer", "UndeliverableError", "render_notification"]
