"""Telling people and programs what runs did: signed notification events for configured
endpoints, and the LangGraph API's run webhooks, delivered durably through an outbox.

Emitters write events (``emit``, or ``run_ended`` / ``approval_requested``) into the
``outbox`` table — in their own transaction or the caller's; a ``Sender`` in every server
and worker process drains it (``notify.sender``). Configuration: ``notify.config``; the
events and their envelope: ``notify.events``; signatures: ``notify.signing``; which
webhook addresses are refused: ``notify.guard``.

Importing this package does no I/O and imports nothing until a name is used.
"""

from __future__ import annotations

from shipyard import lazy_exports

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI's --help

if TYPE_CHECKING:
    from typing import Any

    from shipyard.notify.announce import approval_requested, run_ended
    from shipyard.notify.config import Endpoint, NotifyConfig, NotifyConfigError, current, load
    from shipyard.notify.events import EVENTS, EventName
    from shipyard.notify.guard import AllowList, WebhookRefusedError
    from shipyard.notify.outbox import OutboxRow, emit

_EXPORTS = {
    "approval_requested": "shipyard.notify.announce",
    "run_ended": "shipyard.notify.announce",
    "Endpoint": "shipyard.notify.config",
    "NotifyConfig": "shipyard.notify.config",
    "NotifyConfigError": "shipyard.notify.config",
    "current": "shipyard.notify.config",
    "load": "shipyard.notify.config",
    "EVENTS": "shipyard.notify.events",
    "EventName": "shipyard.notify.events",
    "AllowList": "shipyard.notify.guard",
    "WebhookRefusedError": "shipyard.notify.guard",
    "OutboxRow": "shipyard.notify.outbox",
    "emit": "shipyard.notify.outbox",
}


def __getattr__(name: str) -> Any:
    return lazy_exports.attribute(__name__, _EXPORTS, name)


__all__ = [
    "EVENTS",
    "AllowList",
    "Endpoint",
    "EventName",
    "NotifyConfig",
    "NotifyConfigError",
    "OutboxRow",
    "WebhookRefusedError",
    "approval_requested",
    "current",
    "emit",
    "load",
    "run_ended",
]
