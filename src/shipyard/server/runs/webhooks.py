"""Run webhooks (the ``webhook`` field of run creation) and this process's outbox sender.

When a run with a ``webhook`` ends — ``success``, ``error``, ``timeout`` or
``interrupted`` — the trigger of migration ``v0008_outbox`` writes an outbox row in the
transaction that ended it (every end is an UPDATE of ``api_runs.status``; a run deleted by
a ``rollback`` ends no webhook). ``render_webhook`` turns the row into the POST the
official server sends: the API's ``Run`` as it ended, plus ``run_started_at`` (when a
worker first held it: ``api_runs.started_at`` of migration ``v0010_run_started``; null for a
run cancelled before it started), ``run_ended_at`` (the ending transaction's time),
``webhook_sent_at`` (all ISO-8601), the thread's ``values`` and, for a failed run, ``error``
(``{"error": <type>, "message": ...}``). The URL was checked when the run was created
(``notify.guard.check_url``, a 422 naming the field) and is checked again, address by
address, each time it is sent.

``sending(state)``: the lifespan's outbox sender — notifications and webhooks — woken
whenever a run ends (``EVENTS_CHANNEL``) and polling otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import UTC, datetime

import orjson

from shipyard.notify import config as notify_config
from shipyard.notify.config import NotifyConfig
from shipyard.notify.outbox import Delivery
from shipyard.notify.outgoing import Outgoing, UndeliverableError, render_notification
from shipyard.notify.sender import Sender
from shipyard.notify.sender import sending as sender_running
from shipyard.server.deps import ServerState
from shipyard.server.http.shapes import JsonObject
from shipyard.server.runs.records import QueuedRun
from shipyard.server.runs.request import run_dict
from shipyard.server.stores.listener import EVENTS_CHANNEL, STORED

_RUN_FIELDS = {f.name for f in fields(QueuedRun)}
_TIMES = ("created_at", "updated_at", "lease_expires_at")


def render_webhook(delivery: Delivery, _config: NotifyConfig) -> Outgoing:
    """The POST announcing a run's end to the URL its creator gave (guarded)."""
    payload = webhook_payload(delivery.payload, datetime.now(UTC))
    body = orjson.dumps(payload)
    return Outgoing(delivery.url, body, {"Content-Type": "application/json"}, guarded=True)


def webhook_payload(row: JsonObject, sent_at: datetime) -> JsonObject:
    """What the official server POSTs, from the trigger's record of the ended run."""
    try:
        run = _queued_run(row["run"])
    except (KeyError, TypeError, ValueError) as err:
        raise UndeliverableError(f"the outbox row does not describe a run: {err}") from None
    payload = {
        **run_dict(run),
        "run_started_at": row["run"].get("started_at"),
        "run_ended_at": row.get("ended_at"),
        "webhook_sent_at": sent_at.isoformat(),
        "values": row.get("values"),
    }
    if run.status == "error" and run.error:
        kind, _, message = run.error.partition(": ")
        payload["error"] = {"error": kind, "message": message or run.error}
    return payload


def _queued_run(record: JsonObject) -> QueuedRun:
    values = {k: v for k, v in record.items() if k in _RUN_FIELDS}
    for name in _TIMES:
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    return QueuedRun(**values)


@contextlib.asynccontextmanager
async def sending(state: ServerState) -> AsyncIterator[Sender]:
    """The outbox sender of this process, running for the duration."""
    config = notify_config.current()  # a bad configuration stops the server here
    renderers = {"notify": render_notification, "webhook": render_webhook}
    sender = Sender(state.runtime.queue.pool, config, renderers)

    def on_event(payload: str) -> None:
        if not payload.endswith(STORED):  # a run's state changed: it may have ended
            sender.wake()

    forget = state.runtime.listener.on(EVENTS_CHANNEL, on_event)
    try:
        async with sender_running(sender):
            yield sender
    finally:
        forget()


__all__ = ["render_webhook", "sending", "webhook_payload"]
