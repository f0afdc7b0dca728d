"""approve_plan and approve_changes: the human gates (DESIGN §1, §4).

Each gate interrupts before anything else it does has an effect (the node re-runs from the
top on resume). The interrupt payload is an ``ApprovalRequest``; the resume value must be an
``ApprovalDecision`` echoing the request's ``content_hash``. A decision about different
content is refused by asking again — it is never applied. Callers (``Runner``, the server)
check the hash first so a person gets a clear error instead of a second prompt.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from shipyard.context import Context
from shipyard.contracts import (
    ApprovalDecision,
    ApprovalRecord,
    ApprovalRequest,
    Plan,
    Risk,
    content_hash,
)
from shipyard.nodes.run import policy_of, workspace_of
from shipyard.state import RunState
from shipyard.tools import git

DIFF_PREVIEW_BYTES = 8_000


def approve_plan(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Approve, revise (plan again with feedback) or reject the plan. When the sandbox is
    weaker than the policy's ``min_isolation`` and the policy says ``ask``, a person must
    approve even a plan the policy would auto-approve."""
    plan = Plan.model_validate(state["plan"])
    policy = policy_of(state)
    payload: dict[str, Any] = {
        "plan": plan.model_dump(mode="json"),
        "round": state.get("plan_round", 1),
    }
    isolation = state.get("isolation")
    weak = isolation is not None and policy.check_isolation(isolation.level).action == "ask"
    if weak and isolation is not None:
        payload["isolation"] = {
            "achieved": isolation.level,
            "required": policy.min_isolation,
            "missing": isolation.missing,
        }
    request = ApprovalRequest(
        kind="plan",
        run_id=state["run_id"],
        summary=plan.summary,
        risk="high" if weak else plan.risk,
        payload=payload,
        content_hash=content_hash(payload),
    )
    mode = policy.approvals.plan
    # Isolation below the policy's minimum always needs a person, whatever the plan mode.
    if not weak and (mode == "never" or (mode == "auto-low-risk" and plan.risk == "low")):
        return {"approvals": [*state.get("approvals", []), _automatic(request, mode)]}
    decision = ask(request)
    update: RunState = {"approvals": [*state.get("approvals", []), _record(request, decision)]}
    if decision.decision == "reject":
        update["status"] = "rejected"
        update["reason"] = f"plan rejected by {decision.by}"
    elif decision.decision == "revise":
        update["plan_feedback"] = decision.comment or "Propose a different plan."
    return update


def approve_changes(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Ask for sign-off when the diff touches protected paths, when commands were deferred,
    or when policy wants every change signed off; otherwise approve automatically."""
    policy = policy_of(state)
    ws, base = workspace_of(state), state["base_commit"]
    files = git.changed_files(ws, base)
    protected = [f for f in files if policy.check_path(f, "write").action != "allow"]
    deferred = state.get("deferred", [])
    diff = git.diff(ws, base)
    request = ApprovalRequest(
        kind="changes",
        run_id=state["run_id"],
        summary=f"{len(files)} file(s) changed on {state['branch']}",
        risk=_changes_risk(state, protected, deferred),
        payload=_changes_payload(ws, base, files, protected, deferred, diff),
        content_hash=content_hash(diff.encode()),
    )
    if not (protected or deferred or policy.approvals.changes == "always"):
        return {"approvals": [*state.get("approvals", []), _automatic(request, "protected-only")]}
    decision = ask(request)
    update: RunState = {"approvals": [*state.get("approvals", []), _record(request, decision)]}
    if decision.decision == "reject":
        update["status"] = "rejected"
        update["reason"] = f"changes rejected by {decision.by}"
    elif decision.decision == "revise":
        steps = Plan.model_validate(state["plan"]).steps
        update["step_index"] = len(steps) - 1
        update["attempt"] = state.get("attempt", 1) + 1
        update["feedback"] = f"A human reviewed the change and asked for: {decision.comment}"
    else:
        update["remembered"] = [*state.get("remembered", []), *decision.remember]
        update["deferred"] = []
    return update


def ask(request: ApprovalRequest) -> ApprovalDecision:
    """Interrupt until a decision for exactly this request's content arrives."""
    payload: dict[str, Any] = request.model_dump(mode="json")
    while True:
        value = interrupt(payload)
        decision = ApprovalDecision.model_validate(
            value.model_dump() if isinstance(value, ApprovalDecision) else value
        )
        if decision.content_hash == request.content_hash:
            return decision
        payload = {
            **request.model_dump(mode="json"),
            "refused": f"a decision for {decision.content_hash} does not match this request",
        }


def _record(request: ApprovalRequest, decision: ApprovalDecision) -> ApprovalRecord:
    return ApprovalRecord(
        kind=request.kind,
        decision=decision.decision,
        by=decision.by,
        comment=decision.comment,
        content_hash=request.content_hash,
    )


def _automatic(request: ApprovalRequest, mode: str) -> ApprovalRecord:
    return ApprovalRecord(
        kind=request.kind,
        decision="approve",
        by=f"policy (approvals: {mode})",
        comment="approved automatically",
        content_hash=request.content_hash,
        automatic=True,
    )


def _changes_risk(state: RunState, protected: list[str], deferred: list[str]) -> Risk:
    if protected or deferred:
        return "high"
    plan = state.get("plan")
    return Plan.model_validate(plan).risk if plan is not None else "medium"


def _changes_payload(
    ws: Any, base: str, files: list[str], protected: list[str], deferred: list[str], diff: str
) -> dict[str, Any]:
    return {
        "files": files,
        "protected": protected,
        "deferred_commands": deferred,
        "diff_stat": git.diff_stat(ws, base),
        "diff": diff[:DIFF_PREVIEW_BYTES],
        "diff_truncated": len(diff) > DIFF_PREVIEW_BYTES,
    }
