"""The state diagram of one run (docs/architecture.md §1): wiring and routers only.

The drawing is generated, never hand-drawn: ``graph.get_graph().draw_mermaid()`` gives it,
and the README shows that output (``tests/unit/test_routers.py`` keeps the two equal).
Every ending goes through ``finalize``, which writes the report for any status; a completed
run whose policy delivers goes on to ``deliver`` (push, pull request). Routers are
pure functions of state returning ``Literal`` node names; the model never decides whether
something passed, is done, or is approved.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import StateGraph

from shipyard.context import Context
from shipyard.contracts import Plan
from shipyard.nodes import (
    approve_changes,
    approve_plan,
    deliver,
    escalate,
    execute,
    finalize,
    intake,
    plan,
    refine,
    validate,
)
from shipyard.policy.config import Policy
from shipyard.state import InputState, RunState


def _running(state: RunState) -> bool:
    return state.get("status") == "running"


def _last_decision(state: RunState, kind: str) -> str | None:
    for record in reversed(state.get("approvals", [])):
        if record.kind == kind:
            return record.decision
    return None


def after_intake(state: RunState) -> Literal["plan", "finalize"]:
    return "plan" if _running(state) else "finalize"


def after_plan(state: RunState) -> Literal["approve_plan", "escalate"]:
    return "approve_plan" if _running(state) and state.get("plan") is not None else "escalate"


def after_plan_approval(state: RunState) -> Literal["execute", "plan", "finalize"]:
    if not _running(state):
        return "finalize"
    return "plan" if _last_decision(state, "plan") == "revise" else "execute"


def after_execute(state: RunState) -> Literal["validate", "escalate"]:
    return "validate" if _running(state) else "escalate"


def after_validate(
    state: RunState,
) -> Literal["execute", "approve_changes", "refine", "escalate"]:
    verdict = state.get("verdict")
    if not _running(state):
        return "escalate"
    if verdict is not None and verdict.passed:
        steps = Plan.model_validate(state["plan"]).steps
        return "execute" if state["step_index"] < len(steps) else "approve_changes"
    budgets = Policy.model_validate(state.get("effective_policy") or {}).budgets
    return "refine" if state["attempt"] < budgets.attempts_per_step else "escalate"


def after_changes_approval(state: RunState) -> Literal["execute", "validate", "finalize"]:
    if not _running(state):
        return "finalize"
    decision = _last_decision(state, "changes")
    if decision == "revise":
        return "execute"
    return "validate" if decision == "approve" and state.get("recheck") else "finalize"


def after_finalize(state: RunState) -> Literal["deliver", "__end__"]:
    if state.get("status") != "completed":
        return "__end__"
    deliver_policy = Policy.model_validate(state.get("effective_policy") or {}).deliver
    return "deliver" if deliver_policy.push else "__end__"


def build_graph() -> StateGraph[RunState, Context, InputState, RunState]:
    """The uncompiled graph; each caller compiles it with its own checkpointer."""
    builder = StateGraph(RunState, context_schema=Context, input_schema=InputState)
    for name, node in [
        ("intake", intake),
        ("plan", plan),
        ("approve_plan", approve_plan),
        ("execute", execute),
        ("validate", validate),
        ("refine", refine),
        ("approve_changes", approve_changes),
        ("escalate", escalate),
        ("finalize", finalize),
        ("deliver", deliver),
    ]:
        builder.add_node(name, node)
    builder.set_entry_point("intake")
    builder.add_conditional_edges("intake", after_intake)
    builder.add_conditional_edges("plan", after_plan)
    builder.add_conditional_edges("approve_plan", after_plan_approval)
    builder.add_conditional_edges("execute", after_execute)
    builder.add_conditional_edges("validate", after_validate)
    builder.add_edge("refine", "execute")
    builder.add_conditional_edges("approve_changes", after_changes_approval)
    builder.add_edge("escalate", "finalize")
    builder.add_conditional_edges("finalize", after_finalize)
    builder.set_finish_point("deliver")
    return builder


graph = build_graph().compile()
"""The graph for ``langgraph.json`` / ``langgraph dev``: compiled without a checkpointer."""
