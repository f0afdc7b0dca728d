"""LangChain's human-in-the-loop shape for Shipyard's approvals (docs/architecture.md §9).

LangChain's inbox UIs (agent-chat-ui, Agent Inbox) render an interrupt whose value carries
``action_requests: [{name, args, description}]`` and ``review_configs: [{action_name,
allowed_decisions}]``, and resume it with ``{"decisions": [{"type": "approve"} | {"type":
"edit", "edited_action": {"name", "args"}} | {"type": "reject", "message"}]}`` (the older
Agent Inbox sends ``[{"type": "accept" | "response" | "edit" | "ignore", "args"}]``).

``interrupt_value`` builds the payload every approval gate interrupts with: all
``ApprovalRequest`` fields plus that shape (``ApprovalRequest.from_interrupt`` reads the
request back, ignoring the rest). ``bound_decision`` maps a LangChain-shaped resume onto an
``ApprovalDecision`` for the request it answers — the content hash is the one of the
interrupt the caller named (or the one pending when it named none), so a decision never
silently applies to content nobody was shown. The mapping: ``approve``/``accept`` →
approve; ``edit``/``response`` → revise, its comment from the edited ``args["comment"]``
(or the response text); ``reject``/``ignore`` → reject with the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.contracts import REFUSED, ApprovalDecision, ApprovalRequest, Decision
from shipyard.errors import StaleApprovalError, UserInputError

ALLOWED_DECISIONS = ["approve", "edit", "reject"]
_OLDER: dict[str, Decision] = {
    "accept": "approve",
    "response": "revise",
    "edit": "revise",
    "ignore": "reject",
}
_NEWER: dict[str, Decision] = {"approve": "approve", "edit": "revise", "reject": "reject"}


class ResumeShapeError(UserInputError):
    """A LangChain-shaped resume Shipyard cannot map (names what is wrong)."""


def action_name(request: ApprovalRequest) -> str:
    """The action a request asks about, as LangChain's UIs title it."""
    return f"approve_{request.kind}"


def interrupt_value(request: ApprovalRequest, refused: str = "") -> dict[str, Any]:
    """The interrupt payload: ``request``'s fields, ``refused`` when set, and the
    ``action_requests``/``review_configs`` LangChain's UIs render (the summary and, for
    changes, the diff in the description; the content hash and an empty comment in the
    args, so an edit carries them back)."""
    value: dict[str, Any] = request.model_dump(mode="json")
    if refused:
        value[REFUSED] = refused
    args = {
        "kind": request.kind,
        "run_id": request.run_id,
        "risk": request.risk,
        "content_hash": request.content_hash,
        "comment": "",
    }
    value["action_requests"] = [
        {"name": action_name(request), "args": args, "description": _description(request)}
    ]
    value["review_configs"] = [
        {"action_name": action_name(request), "allowed_decisions": list(ALLOWED_DECISIONS)}
    ]
    return value


def is_langchain(resume: Any) -> bool:
    """Whether ``resume`` is in one of LangChain's resume shapes."""
    if isinstance(resume, dict):
        return set(resume) == {"decisions"}
    return (
        isinstance(resume, list)
        and len(resume) > 0
        and all(isinstance(r, dict) and "type" in r for r in resume)
    )


def bound_decision(resume: Any, request: ApprovalRequest, by: str) -> ApprovalDecision:
    """The ``ApprovalDecision`` a LangChain-shaped ``resume`` makes for ``request``.

    An edit whose args carry a ``content_hash`` keeps it (the caller's check then refuses
    one that is out of date). Raises ``ResumeShapeError`` for anything but exactly one
    decision of a known type.
    """
    newer = isinstance(resume, dict)
    items = resume["decisions"] if newer else resume
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise ResumeShapeError(
            f"a Shipyard approval takes exactly one decision; got {_count(items)}"
        )
    item = items[0]
    kind = item.get("type")
    table = _NEWER if newer else _OLDER
    if kind not in table:
        raise ResumeShapeError(
            f"unknown decision type {kind!r}; use one of {', '.join(sorted(table))}"
        )
    decision = table[kind]
    args = _edited_args(item) if kind == "edit" else {}
    comment = _comment(item, args, newer)
    if decision == "revise" and not comment:
        raise ResumeShapeError("an edit (revise) needs a comment: set args.comment")
    return ApprovalDecision(
        decision=decision,
        by=by,
        comment=comment,
        content_hash=str(args.get("content_hash") or request.content_hash),
        remember=[str(r) for r in args.get("remember", [])],
    )


def bind_resume(resume: Any, interrupts: Sequence[Any], by: str) -> Any:
    """``resume`` as the API passes it to the graph: a LangChain-shaped value (plain, or in
    a one-entry map keyed by the interrupt id it answers) becomes ``{interrupt id:
    ApprovalDecision}`` for the pending approval, decided by ``by``; a Shipyard decision
    keeps its shape but is signed by ``by`` too (:func:`signed`); anything else is returned
    unchanged.

    Raises ``StaleApprovalError`` when the named interrupt is no longer the pending one,
    ``ResumeShapeError`` for a shape it cannot map.
    """
    named, value = _named(resume)
    if not interrupts:
        return resume
    if not is_langchain(value):
        return signed(value, by) if named is None else {named: signed(value, by)}
    pending = interrupts[0]
    if named is not None and named != pending.id:
        raise StaleApprovalError(
            f"the decision answers interrupt {named}, but the thread now waits at "
            f"{pending.id}; read the thread state and decide on what is pending"
        )
    request = ApprovalRequest.from_interrupt(pending.value)
    decision = bound_decision(value, request, by)
    return {pending.id: decision.model_dump(mode="json")}


def signed(decision: Any, by: str) -> Any:
    """A Shipyard decision (``{"decision": …, "by": …}``) as made by ``by``, the caller the
    server authenticated: a client names itself, it does not name the approver. A different
    name it gave is kept beside, as said: ``"<by> (as <name>)"``."""
    if not isinstance(decision, dict) or "decision" not in decision:
        return decision
    given = str(decision.get("by") or "").strip()[:200]
    return {**decision, "by": by if given in ("", by) else f"{by} (as {given})"}


def _named(resume: Any) -> tuple[str | None, Any]:
    """``(interrupt id, value)`` of a one-entry id map; ``(None, resume)`` otherwise."""
    if isinstance(resume, dict) and len(resume) == 1 and not is_langchain(resume):
        ((key, value),) = resume.items()
        if is_langchain(value) or (isinstance(value, dict) and "decision" in value):
            return str(key), value
    return None, resume


def _edited_args(item: dict[str, Any]) -> dict[str, Any]:
    """The args of an edit: ``edited_action.args`` (newer) or ``args.args`` (older)."""
    action = item.get("edited_action", item.get("args"))
    args = action.get("args") if isinstance(action, dict) else None
    return args if isinstance(args, dict) else {}


def _comment(item: dict[str, Any], args: dict[str, Any], newer: bool) -> str:
    if item.get("type") == "edit":
        return str(args.get("comment") or "")
    if newer:
        return str(item.get("message") or "")
    text = item.get("args")
    return text if isinstance(text, str) else ""


def _count(items: Any) -> str:
    return f"{len(items)} decisions" if isinstance(items, list) else repr(items)


def _description(request: ApprovalRequest) -> str:
    """Markdown for the UI: why approval is needed, the summary, and the diff if any."""
    lines = [f"**{request.kind} approval** (risk: {request.risk})", "", request.summary]
    plan = request.payload.get("plan")
    if isinstance(plan, dict):
        lines += [""] + [f"1. {s.get('title', '')}" for s in plan.get("steps", [])]
    diff = request.payload.get("diff")
    if isinstance(diff, str) and diff:
        lines += ["", "```diff", diff.rstrip("\n"), "```"]
    return "\n".join(lines)


__all__ = [
    "ALLOWED_DECISIONS",
    "ResumeShapeError",
    "action_name",
    "bind_resume",
    "bound_decision",
    "interrupt_value",
    "is_langchain",
    "signed",
]
