"""execute: the developer model carries out one plan step through its tools
(docs/architecture.md §1, §3).

Every model call and tool call is a journaled effect (``effects.EffectLog``), so when this
node re-runs after a crash it replays what already happened instead of doing it again:
the workspace is first pinned to the tree recorded by the last completed effect (which also
undoes a write that was cut short), recorded replies and results are replayed, and the loop
goes on live from there. The loop is bounded by the step's tool-call budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManager
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    message_to_dict,
    messages_from_dict,
)
from langgraph.config import get_config
from langgraph.runtime import Runtime

from shipyard.agent import conversation, instructions, prompts
from shipyard.agent.economics import charged, merged, spent_since, sum_usage
from shipyard.agent.routing import Route, route
from shipyard.context import Context
from shipyard.contracts import Plan, PlanStep, Usage
from shipyard.effects import EffectLog
from shipyard.llm.gateway import CallOverBudgetError
from shipyard.llm.pricing import Allowance
from shipyard.nodes import best_of
from shipyard.nodes.inputs import context_of, event, journal_key, policy_of, workspace_of
from shipyard.policy.config import budget_exceeded
from shipyard.secret_values import redact_values_obj
from shipyard.state import RunState
from shipyard.tools import git
from shipyard.tools.agent import MUTATING, Toolbox, ToolResult, tool_schemas
from shipyard.tools.errors import ToolError
from shipyard.tools.pin import pin_workspace

NUDGE = "Use the tools to make the change; call `finish` with a summary when the step is done."


@dataclass
class _Attempt:
    """One attempt at one step (or one candidate of it): the conversation and what it used."""

    ctx: Context
    state: RunState
    step: PlanStep
    log: EffectLog
    toolbox: Toolbox
    usage: Usage
    route: Route
    root: Path
    """The worktree it works in: the run's, or a candidate's (``best_of``)."""
    key: str
    """The script key prefix of its model calls: ``<step>/<attempt>[/c<k>]``."""
    model_usage: dict[str, Usage] = field(default_factory=dict)
    messages: list[BaseMessage] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    calls: int = 0
    summary: str = ""


def execute(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Work on ``plan.steps[step_index]`` until ``finish``, the tool budget, or a spent run
    budget (which ends the run as ``needs_human_review``); with ``[agent.best_of] n > 1``
    as N candidates of which the code keeps one (``shipyard.nodes.best_of``)."""
    ctx = context_of(runtime)
    plan = Plan.model_validate(state["plan"])
    step, attempt_no = plan.steps[state["step_index"]], state["attempt"]
    policy = policy_of(state)
    # Read from the base commit for the step's planned paths: the same bytes on a resume.
    notes = instructions.load(workspace_of(state), state["base_commit"], step.files_hint, policy)
    request = prompts.step_request(
        plan, step, attempt_no, state.get("feedback", ""), notes.render()
    )

    def make(root: Path, number: int, log: EffectLog) -> _Attempt:
        return _Attempt(
            ctx=ctx,
            state=state,
            step=step,
            log=log,
            toolbox=_toolbox(state, ctx, root),
            usage=state["usage"],
            route=route(plan, step, attempt_no, policy.agent.routing),
            root=root,
            key=f"{step.id}/{attempt_no}{best_of.suffix(number)}",
            messages=[SystemMessage(prompts.DEVELOPER), HumanMessage(request)],
        )

    log = EffectLog(
        ctx.journal, state["run_id"], journal_key(state, "execute", step.id, attempt_no)
    )
    if policy.agent.best_of.n > 1:

        def work(root: Path, number: int, own: EffectLog) -> tuple[_Attempt, str | None]:
            attempt = make(root, number, own)
            return attempt, _work(attempt, runtime)

        picked = best_of.run(state, ctx, log, work)
        kept, others, spent = picked.kept, picked.others, picked.spent
    else:
        pin_workspace(state, tree=log.last_tree())
        kept, others = make(workspace_of(state), 1, log), []
        spent = _work(kept, runtime)
    attempts = [kept, *others]
    update: RunState = {
        "work_tree": git.snapshot_tree(workspace_of(state)),
        "usage": state["usage"] + sum_usage(spent_since(a.usage, state["usage"]) for a in attempts),
        "model_usage": merged(state.get("model_usage", {}), *(a.model_usage for a in attempts)),
        "instructions": {**state.get("instructions", {}), **notes.hashes},
        "deferred": [*state.get("deferred", []), *kept.deferred],
    }
    if spent is not None:
        update["status"] = "needs_human_review"
        update["reason"] = spent
    return update


def _work(attempt: _Attempt, runtime: Runtime[Context]) -> str | None:
    """The developer loop; returns the spent budget's description, if one ran out."""
    budgets = policy_of(attempt.state).budgets
    for turn in range(budgets.tool_calls_per_step):
        if (spent := budget_exceeded(attempt.usage, budgets)) is not None:
            return spent
        _condense(attempt, turn)
        try:
            reply = _model_turn(attempt, turn)
        except CallOverBudgetError as err:  # the call's worst case exceeds what is left
            return str(err)
        attempt.messages.append(reply)
        if not reply.tool_calls:
            attempt.messages.append(HumanMessage(NUDGE))
            continue
        for index, call in enumerate(reply.tool_calls):
            result = _tool_turn(attempt, f"{turn}.{index}", call)
            runtime.stream_writer({"tool": call["name"], "step": attempt.step.id})
            attempt.messages.append(ToolMessage(result.content, tool_call_id=call["id"] or ""))
            if result.finished:
                attempt.summary = result.content
                return None
        if attempt.calls >= budgets.tool_calls_per_step:
            break
    return None


def _model_turn(attempt: _Attempt, turn: int) -> AIMessage:
    key = f"{attempt.key}/{turn}"

    chosen = attempt.route

    def call() -> dict[str, Any]:
        # A model call changes nothing outside, so one cut short is simply asked again.
        left = Allowance.of(attempt.usage, policy_of(attempt.state).budgets)
        reply = attempt.ctx.models.chat(
            "developer",
            attempt.messages,
            tools=tool_schemas(),
            key=key,
            allowance=left,
            model=chosen.model,
        )
        return {
            "message": message_to_dict(reply.message),
            "usage": reply.usage.model_dump(),
            "label": reply.label,
        }

    intent: dict[str, Any] = {"key": key}
    if chosen.tier != "role":
        intent["route"] = {
            "tier": chosen.tier,
            "model": chosen.model,
            "reason": chosen.reason,
        }
    # The reply is code the developer writes: secret values masked only (llm/redaction.py).
    outcome = attempt.log.record(f"model.{turn}", "model", intent, call, mask=redact_values_obj)
    usage = Usage.model_validate(outcome["usage"])
    attempt.usage = attempt.usage + usage
    attempt.model_usage = charged(attempt.model_usage, outcome.get("label", ""), usage)
    message = messages_from_dict([outcome["message"]])[0]
    if not isinstance(message, AIMessage):
        raise RuntimeError(f"journaled model reply for {key} is not an AI message")
    return message


def _condense(attempt: _Attempt, turn: int) -> None:
    """Bring the conversation under ``[agent.context] max_tokens`` before a model turn. The
    decision is journaled: a resumed attempt applies the recorded edits, never new ones."""
    rules = policy_of(attempt.state).agent.context
    if conversation.condensation(attempt.messages, rules) is None:
        return
    before = conversation.estimate(attempt.messages)

    def decide() -> dict[str, Any]:
        edits = conversation.condensation(attempt.messages, rules) or []
        trial = list(attempt.messages)
        conversation.apply(trial, edits)
        after = conversation.estimate(trial)
        where = {
            "step_id": attempt.step.id,
            "attempt": attempt.state["attempt"],
            "turn": turn,
        }
        summary = {
            **where,
            "edits": len(edits),
            "tokens_before": before,
            "tokens_after": after,
        }
        event(attempt.ctx, attempt.state["run_id"], "context.condensed", summary)
        return {"edits": edits, "tokens_before": before, "tokens_after": after}

    intent = {"turn": turn, "tokens": before, "max_tokens": rules.max_tokens}
    outcome = attempt.log.record(f"condense.{turn}", "context", intent, decide)
    conversation.apply(attempt.messages, outcome["edits"])


def _tool_turn(attempt: _Attempt, call_id: str, call: ToolCall) -> ToolResult:
    name, args = call["name"], call["args"]
    ws = attempt.root

    def run() -> dict[str, Any]:
        started = attempt.ctx.clock()
        result = _reported(name, lambda: attempt.toolbox.call(name, args))
        tree = git.snapshot_tree(ws) if name in MUTATING else None
        return {**_dump(result), "tree": tree, "wall_s": attempt.ctx.clock() - started}

    def reconcile(_intent: dict[str, Any]) -> dict[str, Any]:
        # A command may have had effects we cannot look up, so it is reported to the model
        # instead of repeated (the workspace was pinned to the tree before it).
        text = (
            f"interrupted: `{args.get('command')}` was cut off by a crash; the workspace was "
            "rolled back to before it and it was NOT run again. Run it again if you need it."
        )
        return {**_dump(ToolResult(text)), "tree": git.snapshot_tree(ws)}

    intent = {"name": name, "args": args}
    if name == "run_command":  # may act outside the workspace: intent first
        outcome = attempt.log.run(f"tool.{call_id}", f"tool:{name}", intent, run, reconcile)
    else:  # reads, and writes the workspace pin undoes: made again when cut short
        outcome = attempt.log.record(f"tool.{call_id}", f"tool:{name}", intent, run)
    attempt.calls += 1
    # Wall time counts work (model calls, tools, checks), not time spent waiting for a person.
    attempt.usage = attempt.usage + Usage(tool_calls=1, wall_s=outcome.get("wall_s", 0.0))
    result = ToolResult(outcome["content"], outcome["finished"], outcome["deferred"])
    if result.deferred:
        attempt.deferred.append(result.deferred)
    return result


def _reported(name: str, call: Callable[[], ToolResult]) -> ToolResult:
    """Run a tool call as a LangChain tool run of the node, so the run's callbacks (tracing)
    see it — by name only, never its arguments or output; a call the toolbox refused ends
    as a tool error carrying the refusal's first line (redacted by the span handler)."""
    manager = CallbackManager.configure(inheritable_callbacks=get_config().get("callbacks"))
    run = manager.on_tool_start({"name": name}, "", name=name)
    try:
        result = call()
    except BaseException as err:
        run.on_tool_error(err)
        raise
    if result.content.startswith(_REFUSALS):  # the model is told; the span says it failed
        run.on_tool_error(ToolError(result.content.splitlines()[0]))
    else:
        run.on_tool_end("")
    return result


_REFUSALS = ("error: ", "denied by policy")
"""How a tool result that did nothing starts (a bad call, a refusal, a policy denial)."""


def _toolbox(state: RunState, ctx: Context, root: Path) -> Toolbox:
    run_id = state["run_id"]
    return Toolbox(
        root=root,
        policy=policy_of(state),
        launcher=ctx.launcher,
        remembered=list(state.get("remembered", [])),
        record=lambda kind, payload: event(ctx, run_id, kind, payload),
    )


def _dump(result: ToolResult) -> dict[str, Any]:
    return {
        "content": result.content,
        "finished": result.finished,
        "deferred": result.deferred,
    }
