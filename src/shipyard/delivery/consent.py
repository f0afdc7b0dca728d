"""Whether a run may be delivered, and what its changes approval says will be delivered.

Nothing leaves the machine until a person approved exactly the change being delivered: the
latest decision a person (not a policy) made on the run's changes approves the diff's
content hash. ``[approvals] deliver = "auto"`` lifts this; ``--approve auto`` does not (it
only sets the plan mode). An explicit request to deliver — ``shipyard deliver RUN``, or the
API's ``command`` with ``update: {"delivery_request": {"by": …}}, goto: "deliver"`` — is a
person's decision too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Command

from shipyard.errors import NotWaitingError
from shipyard.policy.config import Policy
from shipyard.state import RunState


def wants_delivery(policy: Policy) -> bool:
    """Whether the run's policy delivers at the end (``[deliver] push = true``)."""
    return policy.deliver.push


def delivery_summary(policy: Policy, branch: str) -> dict[str, Any]:
    """What the changes approval says will be delivered (remote, branch, pull request)."""
    deliver = policy.deliver
    return {
        "remote": deliver.remote,
        "branch": branch,
        "pull_request": deliver.pull_request,
        "base": deliver.base or "the remote's default branch",
        "forge": deliver.forge or "from the remote's URL",
    }


def delivery_words(policy: Policy, branch: str) -> str:
    """The same in one sentence, for the request's summary."""
    deliver = policy.deliver
    what = {
        "draft": "and open a draft pull request",
        "ready": "and open a pull request",
        "none": "(no pull request)",
    }[deliver.pull_request]
    return f" Approving pushes {branch} to {deliver.remote} {what}."


def delivery_request_part(policy: Policy, branch: str) -> tuple[dict[str, Any], str]:
    """The changes request's ``delivery`` payload entry and summary words ({} and "" when
    the run delivers nothing)."""
    if not wants_delivery(policy):
        return {}, ""
    return {"delivery": delivery_summary(policy, branch)}, delivery_words(policy, branch)


def consent_of(state: RunState, policy: Policy, diff_hash: str) -> str | None:
    """Who let this change be delivered, or None when nobody did (see the module doc)."""
    request = state.get("delivery_request") or {}
    if request.get("by"):
        return str(request["by"])
    if policy.approvals.deliver == "auto":
        return 'policy ([approvals] deliver = "auto")'
    for record in reversed(state.get("approvals", [])):
        if record.kind != "changes":
            continue
        if record.decision != "approve":
            return None
        if not record.automatic and record.content_hash == diff_hash:
            return record.by
    return None


def delivery_command(
    run_id: str, values: Mapping[str, Any], next_nodes: Sequence[str], by: str
) -> Command[str] | None:
    """What a driver sends the graph to deliver run ``run_id`` at a person's request: None
    to finish a delivery that was cut short (the graph waits at ``deliver``), else a command
    recording the request and going to ``deliver``. ``NotWaitingError`` unless the run
    completed."""
    status = values.get("status")
    if status != "completed" or not values.get("report"):
        raise NotWaitingError(
            f"run {run_id} is {status or 'not started'}; only a completed run can be delivered"
        )
    if tuple(next_nodes) == ("deliver",):
        return None
    if next_nodes:
        raise NotWaitingError(f"run {run_id} is still running ({', '.join(next_nodes)} next)")
    request = {"by": by, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    return Command(update={"delivery_request": request}, goto="deliver")


REFUSAL = (
    "nothing was pushed: no person approved these changes for delivery. Ask for it "
    "(shipyard deliver RUN, or an API command with update {delivery_request: {by: NAME}} and "
    'goto "deliver"), or set [approvals] deliver = "auto"'
)


__all__ = [
    "REFUSAL",
    "consent_of",
    "delivery_command",
    "delivery_request_part",
    "delivery_summary",
    "delivery_words",
    "wants_delivery",
]
