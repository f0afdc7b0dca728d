"""plan: ask the planner for a ``Plan``, or take the one the user gave (docs/architecture.md §1)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from shipyard.agent import instructions, prompts, repo_map
from shipyard.agent.economics import charged
from shipyard.context import Context
from shipyard.contracts import Plan, Usage
from shipyard.effects import EffectLog
from shipyard.llm.gateway import CallOverBudgetError
from shipyard.llm.pricing import Allowance
from shipyard.nodes.inputs import context_of, journal_key, over_budget, policy_of, workspace_of
from shipyard.state import RunState
from shipyard.tools.files import Workspace


def plan(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Produce the plan. Invalid planner output gets one repair round, then the run escalates
    with the replies kept as an artifact."""
    ctx = context_of(runtime)
    given = state.get("plan")
    if given is not None and state.get("plan_round", 0) == 0:
        return {"plan": Plan.model_validate(given), "plan_round": 1}
    if (spent := over_budget(state, ctx)) is not None:
        return {"status": "needs_human_review", "reason": spent}
    round_ = state.get("plan_round", 0)

    def ask() -> dict[str, Any]:
        # A model call changes nothing outside: one cut short by a crash is simply asked again.
        return _ask_planner(state, ctx, round_)

    log = EffectLog(ctx.journal, state["run_id"], journal_key(state, "plan", round_))
    try:
        outcome = log.record("planner", "model", {"role": "planner", "round": round_}, ask)
    except CallOverBudgetError as err:  # the call's worst case exceeds what is left
        return {"status": "needs_human_review", "reason": str(err)}
    usage = Usage.model_validate(outcome["usage"])
    update: RunState = {
        "usage": state["usage"] + usage,
        "model_usage": charged(state.get("model_usage", {}), outcome.get("label", ""), usage),
        "instructions": {**state.get("instructions", {}), **outcome.get("instructions", {})},
    }
    if outcome["plan"] is None:
        ref = ctx.artifacts.put(state["run_id"], f"planner-replies-{round_}.json", outcome["raw"])
        reason = f"the planner's replies never validated ({outcome['error']}); kept at {ref}"
        return {**update, "status": "needs_human_review", "reason": reason}
    new_plan = Plan.model_validate(outcome["plan"])
    max_steps = policy_of(state).budgets.max_steps
    if len(new_plan.steps) > max_steps:
        reason = f"the plan has {len(new_plan.steps)} steps; the budget allows {max_steps}"
        return {**update, "status": "needs_human_review", "reason": reason}
    return {**update, "plan": new_plan, "plan_round": round_ + 1}


def _ask_planner(state: RunState, ctx: Context, round_: int) -> dict[str, Any]:
    ws, base, policy = workspace_of(state), state["base_commit"], policy_of(state)
    if policy.agent.repo_map.enabled:
        listing = repo_map.build(ws, base, state["goal"], policy, ctx.launcher)
    else:
        listing = Workspace(ws).list_files(".")
    notes = instructions.load(ws, base, [], policy)
    request = prompts.planning_request(
        state["goal"], listing, state.get("plan_feedback", ""), notes.render()
    )
    messages = [SystemMessage(prompts.PLANNER), HumanMessage(request)]
    left = Allowance.of(state["usage"], policy_of(state).budgets)
    reply = ctx.models.structured("planner", messages, Plan, key=f"plan/{round_}", allowance=left)
    return {
        "plan": reply.value.model_dump(mode="json") if reply.value else None,
        "raw": json.dumps(reply.raw),
        "error": reply.error,
        "usage": reply.usage.model_dump(mode="json"),
        "instructions": notes.hashes,
        "label": reply.label,
    }
