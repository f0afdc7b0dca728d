"""The events people are notified of, and the envelope an endpoint receives.

* ``approval.requested`` — a run waits at approve_plan / approve_changes; data: run_id,
  kind, summary, risk, interrupt_id, content_hash
* ``run.completed``, ``run.needs_human_review``, ``run.failed`` — a run ended with that
  status; data: run_id, status, goal, branch, error
* ``delivery.opened`` — a run's pull request was opened (or found); data: run_id, url, forge,
  repository, branch, draft

The envelope (format ``json``)::

    {"id": <idempotency key>, "event": <name>, "created_at": <ISO 8601>, "owner": <owner>,
     "run_id": <id or null>, "url": <console link or null>, "data": {...}}

``id`` is the same on every attempt at the same event: receivers drop repeats by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

EventName = Literal[
    "approval.requested",
    "run.completed",
    "run.needs_human_review",
    "run.failed",
    "delivery.opened",
]
EVENTS: tuple[EventName, ...] = get_args(EventName)

RUN_END_EVENTS: dict[str, EventName] = {
    "completed": "run.completed",
    "needs_human_review": "run.needs_human_review",
    "failed": "run.failed",
}
"""Which final run status is announced by which event (other endings are not announced)."""


def envelope(
    key: str,
    event: str,
    created_at: datetime,
    owner: str,
    data: dict[str, Any],
    console_url: str | None,
) -> dict[str, Any]:
    """The JSON body a ``json`` endpoint receives for one event."""
    return {
        "id": key,
        "event": event,
        "created_at": created_at.isoformat(),
        "owner": owner,
        "run_id": data.get("run_id"),
        "url": console_url,
        "data": data,
    }


def headline(event: str, data: dict[str, Any]) -> str:
    """One line saying what happened, for people (Slack's ``text``)."""
    run = data.get("run_id", "?")
    if event == "approval.requested":
        return f"Run {run} waits for {data.get('kind', '')} approval: {data.get('summary', '')}"
    if event == "delivery.opened":
        return f"Run {run} opened a pull request: {data.get('url', '')}"
    goal = data.get("goal") or ""
    ended = {
        "run.completed": "completed",
        "run.needs_human_review": "needs human review",
        "run.failed": "failed",
    }.get(event, event)
    reason = f" ({data['error']})" if data.get("error") else ""
    return f"Run {run} {ended}{reason}: {goal}".rstrip(": ")


__all__ = ["EVENTS", "RUN_END_EVENTS", "EventName", "envelope", "headline"]
