"""LangChain's human-in-the-loop shapes mapped onto Shipyard's approvals (``shipyard.hitl``):
the interrupt value keeps every request field and carries ``action_requests``/
``review_configs``; each decision shape maps to one ``ApprovalDecision`` bound to the
pending interrupt; anything else is refused with a message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from shipyard.contracts import ApprovalRequest
from shipyard.errors import StaleApprovalError
from shipyard.hitl import ResumeShapeError, bind_resume, bound_decision, interrupt_value

REQUEST = ApprovalRequest(
    kind="changes",
    run_id="r1",
    summary="1 file(s) changed on shipyard/r1",
    risk="high",
    payload={"diff": "diff --git a/x b/x\n+x\n", "files": ["x"]},
    content_hash="sha256:abc",
)


@dataclass
class Pending:
    id: str
    value: Any


def test_the_interrupt_value_keeps_the_request_and_adds_langchains_shape() -> None:
    value = interrupt_value(REQUEST, "it changed")
    assert ApprovalRequest.from_interrupt(value) == REQUEST
    assert value["refused"] == "it changed"
    (action,) = value["action_requests"]
    assert action["name"] == "approve_changes"
    assert action["args"]["content_hash"] == "sha256:abc"
    assert "```diff\ndiff --git a/x b/x\n+x\n```" in action["description"]
    assert value["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]


@pytest.mark.parametrize(
    ("resume", "decision", "comment"),
    [
        ({"decisions": [{"type": "approve"}]}, "approve", ""),
        ({"decisions": [{"type": "reject", "message": "no"}]}, "reject", "no"),
        (
            {"decisions": [{"type": "edit", "edited_action": {"args": {"comment": "smaller"}}}]},
            "revise",
            "smaller",
        ),
        ([{"type": "accept", "args": None}], "approve", ""),
        ([{"type": "response", "args": "rename it"}], "revise", "rename it"),
        ([{"type": "edit", "args": {"action": "a", "args": {"comment": "c"}}}], "revise", "c"),
        ([{"type": "ignore", "args": None}], "reject", ""),
    ],
)
def test_each_shape_maps_to_one_decision(resume: Any, decision: str, comment: str) -> None:
    mapped = bound_decision(resume, REQUEST, "alice")
    assert (mapped.decision, mapped.comment, mapped.by) == (decision, comment, "alice")
    assert mapped.content_hash == "sha256:abc"


def test_an_edit_keeps_the_hash_it_carries_so_a_stale_one_is_caught() -> None:
    edit = {"type": "edit", "edited_action": {"args": {"comment": "c", "content_hash": "old"}}}
    assert bound_decision({"decisions": [edit]}, REQUEST, "a").content_hash == "old"


@pytest.mark.parametrize(
    ("resume", "message"),
    [
        ({"decisions": []}, "exactly one decision; got 0 decisions"),
        ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "got 2 decisions"),
        ({"decisions": [{"type": "accept"}]}, "unknown decision type 'accept'"),
        ([{"type": "approve", "args": None}], "unknown decision type 'approve'"),
        ({"decisions": [{"type": "edit", "edited_action": {"args": {}}}]}, "needs a comment"),
        ({"decisions": "approve"}, "exactly one decision; got 'approve'"),
    ],
)
def test_shapes_it_cannot_map_are_refused(resume: Any, message: str) -> None:
    with pytest.raises(ResumeShapeError, match=message):
        bound_decision(resume, REQUEST, "a")


def test_binding_names_the_pending_interrupt_and_refuses_another() -> None:
    pending = [Pending("i2", interrupt_value(REQUEST))]
    approve = {"decisions": [{"type": "approve"}]}
    bound = bind_resume(approve, pending, "alice")
    assert bound == {
        "i2": {
            "decision": "approve",
            "by": "alice",
            "comment": "",
            "content_hash": "sha256:abc",
            "remember": [],
        }
    }
    assert bind_resume({"i2": approve}, pending, "alice") == bound
    with pytest.raises(StaleApprovalError, match="answers interrupt i1, but the thread now waits"):
        bind_resume({"i1": approve}, pending, "alice")
    plain = {"decision": "approve", "content_hash": "x"}
    # Shipyard's own shape keeps its shape, signed by the caller the server authenticated.
    assert bind_resume(plain, pending, "alice") == {**plain, "by": "alice"}
    claimed = {**plain, "by": "bob"}
    assert bind_resume(claimed, pending, "alice") == {**plain, "by": "alice (as bob)"}
    assert bind_resume({"i2": claimed}, pending, "alice") == {
        "i2": {**plain, "by": "alice (as bob)"}
    }
    assert bind_resume(plain, [], "alice") is plain  # nothing pending: left to the stale check
