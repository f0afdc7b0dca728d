"""approve_plan and approve_changes: the human gates (docs/architecture.md §1, §4).

Each gate interrupts before anything else it does has an effect (the node re-runs from the
top on resume). The interrupt payload is an ``ApprovalRequest`` with, beside its own fields,
LangChain's human-in-the-loop fields (``action_requests`` and ``review_configs``, made by
``hitl.interrupt_value``) so Agent Inbox and agent-chat-ui can render and answer it. The
resume value must be an ``ApprovalDecision`` echoing the request's ``content_hash``, or a
LangChain-shaped answer, which the server binds to the pending request's hash before it
reaches the graph (``hitl.bind_resume``). The request is computed afresh
each time the node runs, from the files as they are now: when they changed since the request
was shown, an approval (or revision) of the old content is refused by asking again with the
new request, whose ``refused`` field says why in words — it is never applied. A rejection
applies to the run, not to content, so it always takes effect. Callers (``Runner``, the
server, through ``bookkeeping.RunBook``) check the hash against the pending request first so
a person gets a clear error instead of a second prompt, and record a decision only once they
know whether it took effect. Whether a decision matches a request is
``contracts.decision_applies``, everywhere.

A change that alters how it is tested (``tools/testconfig.py``) always needs a person, under
every policy: its request says so in words first, carries the evidence of its checks under
the base commit's test configuration (``tools/baseline.py``) and shows those files' diff
before the rest.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from shipyard.context import Context
from shipyard.contracts import (
    ApprovalDecision,
    ApprovalRecord,
    ApprovalRequest,
    Evidence,
    Plan,
    Risk,
    content_hash,
)
from shipyard.delivery.consent import delivery_request_part
from shipyard.hitl import interrupt_value
from shipyard.nodes.inputs import policy_of, workspace_of
from shipyard.state import RunState
from shipyard.tools import git
from shipyard.tools.baseline import SUFFIX, alterations_of, diff_split
from shipyard.tools.environment import networked_setup
from shipyard.tools.testconfig import Alteration

DIFF_PREVIEW_BYTES = 8_000


def approve_plan(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Approve, revise (plan again with feedback) or reject the plan. A person must approve
    even a plan the policy would auto-approve when the sandbox is weaker than the policy's
    ``min_isolation`` and the policy says ``ask``, and when the environment's setup asks for
    the network: approving grants it, and the setup runs with it right then, on the base
    commit's files (``tools/environment.networked_setup``)."""
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
    networked = policy.environment.network
    if networked:
        payload["environment"] = _network_request(policy.environment.setup)
    request = ApprovalRequest(
        kind="plan",
        run_id=state["run_id"],
        summary=plan.summary + (f" — {payload['environment']['why']}" if networked else ""),
        risk="high" if weak or networked else plan.risk,
        payload=payload,
        content_hash=content_hash(payload),
    )
    mode = policy.approvals.plan
    # Isolation below the policy's minimum, or a setup with the network, always needs a
    # person, whatever the plan mode.
    automatic = mode == "never" or (mode == "auto-low-risk" and plan.risk == "low")
    if automatic and not (weak or networked):
        return {"approvals": [*state.get("approvals", []), _automatic(request, mode)]}
    decision = ask(request)
    update: RunState = {"approvals": [*state.get("approvals", []), _record(request, decision)]}
    if decision.decision == "reject":
        update["status"] = "rejected"
        update["reason"] = f"plan rejected by {decision.by}"
    elif decision.decision == "revise":
        update["plan_feedback"] = decision.comment or "Propose a different plan."
    elif networked:
        env, limit = policy.environment, policy.checks.timeout_s
        failed = networked_setup(workspace_of(state), env, limit)
        update["networked_setup"] = failed.summary if failed is not None else "done"
    return update


def _network_request(setup: list[str]) -> dict[str, Any]:
    """What the plan request says about a setup that asks for the network."""
    command = shlex.join(setup)
    return {
        "setup": setup,
        "network": "outbound",
        "why": (
            f"the environment setup `{command}` asks for the network: approving lets it run "
            "once now, on the base commit's files, with outbound network — the internet and "
            "this machine's other addresses are reachable, its loopback (where the database "
            "listens) is not"
        ),
    }


def approve_changes(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Ask for sign-off when the diff touches protected paths, alters how the change is
    tested, when commands were deferred, when files changed after the checks ran
    (``unchecked``: edited in the workspace while the run waited), or when policy wants every
    change signed off; otherwise approve automatically. A change that alters how it is
    tested is never approved automatically, whatever the policy or remembered approvals
    say."""
    policy = policy_of(state)
    ws, base = workspace_of(state), state["base_commit"]
    files = git.changed_files(ws, base)
    protected = [f for f in files if policy.check_path(f, "write").action != "allow"]
    testing = alterations_of(ws, base, policy).changes
    deferred = state.get("deferred", [])
    diff = git.diff(ws, base)
    # Files edited in the workspace after validate committed what it checked.
    unchecked = git.changed_files(ws, state["head_commit"])
    # What approving delivers: a person signs it off unless ``[approvals] deliver = "auto"``.
    delivery, delivers = delivery_request_part(policy, state["branch"])
    request = ApprovalRequest(
        kind="changes",
        run_id=state["run_id"],
        summary=_changes_summary(state, files, testing) + _unchecked(unchecked) + delivers,
        risk="high" if unchecked else _changes_risk(state, protected, deferred, testing),
        payload={
            **_changes_payload(state, files, protected, deferred, testing),
            "unchecked": unchecked,
            **delivery,
        },
        content_hash=content_hash(diff.encode()),
    )
    asks = protected or deferred or testing or unchecked or policy.approvals.changes == "always"
    asks = asks or (bool(delivery) and policy.approvals.deliver != "auto")
    earlier = _approved_before_recheck(state, request.content_hash)
    if earlier is not None and not unchecked:
        return {"approvals": [*state.get("approvals", []), earlier]}
    if not asks:
        return {"approvals": [*state.get("approvals", []), _automatic(request, "protected-only")]}
    decision = ask(request, lambda stale: _changed_since(unchecked, stale))
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
        if unchecked:  # approved, but never checked: validate checks and commits them first
            steps = Plan.model_validate(state["plan"]).steps
            update["step_index"] = len(steps) - 1
            update["attempt"] = state.get("attempt", 1) + 1
            update["work_tree"] = git.snapshot_tree(ws)
            update["recheck"] = True
    return update


def _approved_before_recheck(state: RunState, content_hash: str) -> ApprovalRecord | None:
    """After a re-check of approved edits (``recheck``) passed, the same content needs no
    second sign-off: the approval it already has, recorded again for this request."""
    last = next((a for a in reversed(state.get("approvals", [])) if a.kind == "changes"), None)
    if last is None or last.decision != "approve" or last.content_hash != content_hash:
        return None
    comment = f"approved by {last.by} before the re-check; the checks pass"
    return last.model_copy(update={"comment": comment, "automatic": True})


def ask(
    request: ApprovalRequest, why: Callable[[ApprovalDecision], str] | None = None
) -> ApprovalDecision:
    """Interrupt until a decision for exactly this request's content arrives, or a
    rejection (which needs no content). A decision for other content is answered by asking
    again, the payload's ``REFUSED`` saying why (``why``, else that the hash differs)."""
    payload = interrupt_value(request)
    while True:
        value = interrupt(payload)
        decision = ApprovalDecision.model_validate(
            value.model_dump() if isinstance(value, ApprovalDecision) else value
        )
        if request.applies(decision):
            return decision
        reason = why(decision) if why is not None else ""
        payload = interrupt_value(
            request,
            reason
            or f"a decision for {decision.content_hash} does not match this request "
            f"({request.content_hash}); here is the request",
        )


def _changed_since(files: list[str], stale: ApprovalDecision) -> str:
    """Why a decision about other content is not applied, naming ``files``: those that
    differ from the tree the checks validated (what a request is first made from)."""
    if not files:
        return ""
    return (
        f"the workspace changed since the request was shown: {', '.join(files)} changed "
        f"after the checks ran (the decision was for {stale.content_hash}); here is the new "
        "request"
    )


def _record(request: ApprovalRequest, decision: ApprovalDecision) -> ApprovalRecord:
    return ApprovalRecord(
        kind=request.kind,
        decision=decision.decision,
        by=decision.by,
        comment=decision.comment,
        content_hash=request.content_hash,
        at=datetime.now(UTC),
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


def _unchecked(files: list[str]) -> str:
    """Words for files that changed after the checks ran (edited in the workspace while
    the run waited): they are in the diff shown, but no check ran on them."""
    if not files:
        return ""
    return f" Changed after the checks ran, so not checked: {', '.join(files)}."


def _changes_risk(
    state: RunState, protected: list[str], deferred: list[str], testing: list[Alteration]
) -> Risk:
    if protected or deferred or testing:
        return "high"
    plan = state.get("plan")
    return Plan.model_validate(plan).risk if plan is not None else "medium"


def _changes_summary(state: RunState, files: list[str], testing: list[Alteration]) -> str:
    """What the person is asked about, in words; a change to its testing comes first."""
    changed = f"{len(files)} file(s) changed on {state['branch']}"
    ignored = sum(e.preexisting for e in _evidence(state))
    if ignored:
        changed += (
            f" ({ignored} check failure(s) already present at the base commit were not "
            "counted; see pre_existing_failures)"
        )
    if not testing:
        return changed
    altered = ", ".join(f"{t.path} ({t.reason})" for t in testing)
    base = _base_configuration(state)
    if not base:
        established = (
            "No run under the base commit's test configuration was recorded, so the pass "
            "could not be established under it."
        )
    elif all(e.passed and "could not be established" not in e.summary for e in base):
        established = "The checks also pass under the base commit's test configuration."
    else:
        established = (
            "Under the base commit's test configuration the pass could not be established "
            "for every test (see base_configuration)."
        )
    return f"This change alters how it is tested: {altered}. {established} {changed}."


def _base_configuration(state: RunState) -> list[Evidence]:
    return [e for e in _evidence(state) if e.check.endswith(SUFFIX)]


def _evidence(state: RunState) -> list[Evidence]:
    verdict = state.get("verdict")
    return list(verdict.evidence) if verdict is not None else []


def _changes_payload(
    state: RunState,
    files: list[str],
    protected: list[str],
    deferred: list[str],
    testing: list[Alteration],
) -> dict[str, Any]:
    """The request's payload; ``diff`` shows the files that alter testing first."""
    ws, base = workspace_of(state), state["base_commit"]
    first, rest = diff_split(ws, base, [t.path for t in testing])
    diff = first + rest
    return {
        "alters_testing": [{"path": t.path, "reason": t.reason} for t in testing],
        "base_configuration": [f"{e.check}: {e.summary}" for e in _base_configuration(state)],
        "pre_existing_failures": [
            f"{e.check}: {e.summary}" for e in _evidence(state) if e.preexisting
        ],
        "files": files,
        "protected": protected,
        "deferred_commands": deferred,
        "diff_stat": git.diff_stat(ws, base),
        "diff": diff[:DIFF_PREVIEW_BYTES],
        "diff_truncated": len(diff) > DIFF_PREVIEW_BYTES,
    }
