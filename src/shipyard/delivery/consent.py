"""Whether a run may be delivered, and what its changes approval says will be delivered.

Nothing leaves the machine until a person approved exactly the change being delivered: the
latest decision a person (not a policy) made on the run's changes approves the diff's
content hash. ``[approvals] deliver = "auto"`` lifts this; ``--approve auto`` does not (it
only sets the plan mode). An explicit request to deliver — ``shipyard deliver RUN``, or the
API's ``command`` with ``update: {"delivery_request": {"by": …}}, goto: "deliver"`` — is a
person's decision too.

Whoever drives the run stamps that request with the person it knows (``stamped_command``):
the CLI with the local user, the server with the authenticated owner. A name the client
put in the request is not believed: it is kept, labelled ``as_given``, and never used as
the approver.
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
    return Command(update={"delivery_request": delivery_request(by)}, goto="deliver")


AS_GIVEN_CHARS = 200


def delivery_request(by: str, as_given: object = None) -> dict[str, str]:
    """The state's ``delivery_request``: ``by`` the person the driver authenticated, now;
    ``as_given`` the name the client claimed, when it claimed another (a note, no more)."""
    request = {"by": by, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    if as_given is not None and str(as_given) not in ("", by):
        request["as_given"] = str(as_given)[:AS_GIVEN_CHARS]
    return request


def stamped_command(command: Mapping[str, Any], by: str) -> dict[str, Any]:
    """``command`` with its ``update`` stamped (``stamped_update``)."""
    if "update" not in command:
        return dict(command)
    return {**command, "update": stamped_update(command["update"], by)}


def stamped_update(update: Any, by: str) -> Any:
    """A state update (a map, or LangGraph's list of ``[key, value]`` pairs) with each
    ``delivery_request`` in it replaced by one made ``by`` the authenticated person; the
    client's ``by`` survives only as ``as_given``. Anything else is returned unchanged."""
    if isinstance(update, Mapping) and "delivery_request" in update:
        return {**update, "delivery_request": _restamped(update["delivery_request"], by)}
    if isinstance(update, list):
        return [_restamped_pair(pair, by) for pair in update]
    return update


def _restamped(asked: Any, by: str) -> dict[str, str]:
    return delivery_request(by, asked.get("by") if isinstance(asked, Mapping) else None)


def _restamped_pair(pair: Any, by: str) -> Any:
    if isinstance(pair, list | tuple) and len(pair) == 2 and pair[0] == "delivery_request":
        return ["delivery_request", _restamped(pair[1], by)]
    return pair


REFUSAL = (
    "nothing was pushed: no person approved these changes for delivery. Ask for it "
    "(shipyard deliver RUN, or an API command with update {delivery_request: {}} and "
    'goto "deliver"), or set [approvals] deliver = "auto"'
)


__all__ = [
    "AS_GIVEN_CHARS",
    "REFUSAL",
    "consent_of",
    "delivery_command",
    "delivery_request",
    "delivery_request_part",
    "delivery_summary",
    "delivery_words",
    "stamped_command",
    "stamped_update",
    "wants_delivery",
]
