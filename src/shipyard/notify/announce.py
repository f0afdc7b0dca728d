"""The events of a run, announced: what the run bookkeeping and delivery call.

Each writes its event to the outbox through ``outbox.emit`` with a key naming the event
instance, so calling one again (a retry, a resumed process) writes nothing new.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from shipyard.notify.events import RUN_END_EVENTS
from shipyard.notify.outbox import emit

if TYPE_CHECKING:
    from langgraph.types import StateSnapshot

    from shipyard.contracts import ApprovalRequest


def run_ended(
    bind: Engine | Connection,
    run_id: str,
    status: str,
    *,
    goal: str = "",
    error: str | None = None,
    branch: str | None = None,
    attempt: str = "0",
    owner: str = "local",
) -> int:
    """Announce a run's final ``status`` (``completed``, ``needs_human_review``,
    ``failed``; other statuses are not announced and write nothing). ``attempt`` tells
    one ending of the run from a later one (the API run that ended it, say)."""
    event = RUN_END_EVENTS.get(status)
    if event is None:
        return 0
    data = {"run_id": run_id, "status": status, "goal": goal, "branch": branch, "error": error}
    return emit(bind, event, data, key=f"{event}:{run_id}:{attempt}", owner=owner)


def approval_requested(
    bind: Engine | Connection,
    run_id: str,
    *,
    kind: str,
    summary: str,
    interrupt_id: str,
    content_hash: str,
    risk: str = "",
    owner: str = "local",
) -> int:
    """Announce that ``run_id`` waits for a person's ``kind`` approval at ``interrupt_id``."""
    data = {
        "run_id": run_id,
        "kind": kind,
        "summary": summary,
        "risk": risk,
        "interrupt_id": interrupt_id,
        "content_hash": content_hash,
    }
    key = f"approval.requested:{run_id}:{interrupt_id}"
    return emit(bind, "approval.requested", data, key=key, owner=owner)


def announce_request(
    bind: Engine | Connection,
    run_id: str,
    interrupt_id: str,
    request: ApprovalRequest,
    *,
    owner: str = "local",
) -> int:
    """``approval_requested`` for the ``ApprovalRequest`` a run now waits at."""
    return approval_requested(
        bind,
        run_id,
        kind=request.kind,
        summary=request.summary,
        interrupt_id=interrupt_id,
        content_hash=request.content_hash,
        risk=request.risk,
        owner=owner,
    )


def announce_end(
    bind: Engine | Connection, run_id: str, snapshot: StateSnapshot, *, owner: str = "local"
) -> int:
    """``run_ended`` for the final state in ``snapshot``; its checkpoint tells this ending
    from a later one (after a resume), and recording the same ending again writes nothing."""
    values = snapshot.values or {}
    checkpoint = (snapshot.config.get("configurable") or {}).get("checkpoint_id") or "0"
    return run_ended(
        bind,
        run_id,
        str(values.get("status", "failed")),
        goal=str(values.get("goal") or ""),
        error=values.get("reason"),
        branch=values.get("branch"),
        attempt=str(checkpoint),
        owner=owner,
    )


def announce_failure(
    bind: Engine | Connection, run_id: str, message: str, *, owner: str = "local"
) -> int:
    """``run_ended`` with status ``failed`` for a run that raised (each failure is its own
    event: there is no checkpoint of it to tell one from another)."""
    attempt = uuid.uuid4().hex
    return run_ended(bind, run_id, "failed", error=message, attempt=attempt, owner=owner)


__all__ = [
    "announce_end",
    "announce_failure",
    "announce_request",
    "approval_requested",
    "run_ended",
]
