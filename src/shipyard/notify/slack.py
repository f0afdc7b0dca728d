"""Events as Slack incoming-webhook messages (``format = "slack"``).

Slack takes ``{"text": ...}`` with links written ``<url|label>``; the text is the event's
headline and a link to the run's console page (when the server's public URL is known).
Slack webhooks are not signed: their URL is the secret. The idempotency key goes along as
``shipyard_event_id`` for receivers that relay the message elsewhere.
"""

from __future__ import annotations

from typing import Any

from shipyard.notify.events import headline

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: str) -> str:
    """``text`` with the three characters Slack's markup reserves escaped."""
    return "".join(_ESCAPES.get(c, c) for c in text)


def message(key: str, event: str, data: dict[str, Any], console_url: str | None) -> dict[str, Any]:
    """The Slack message announcing ``event``."""
    text = escape(headline(event, data))
    if console_url:
        text += f" <{console_url}|Open in Shipyard>"
    return {"text": text, "shipyard_event_id": key}


__all__ = ["escape", "message"]
