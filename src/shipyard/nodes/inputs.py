"""What every node reads from state and runtime: the run's context, policy and workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime

from shipyard.context import Context, standalone_context
from shipyard.policy.config import Policy, budget_exceeded
from shipyard.redact import redact_obj
from shipyard.state import RunState


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's dependencies: the driver's ``Context`` (the CLI's runner, Shipyard's
    server), or — under another LangGraph server, which gives none or a ``hollow`` one —
    the process's ``standalone_context``."""
    ctx = runtime.context
    if isinstance(ctx, Context) and not ctx.hollow:
        return ctx
    return standalone_context(ctx if isinstance(ctx, Context) else None)


def thread_id() -> str:
    """The LangGraph thread id of the current run."""
    return str(get_config()["configurable"]["thread_id"])


def policy_of(state: RunState) -> Policy:
    """The effective policy fixed at intake."""
    return Policy.model_validate(state.get("effective_policy") or {})


def workspace_of(state: RunState) -> Path:
    """The run's worktree."""
    return Path(state["workspace"])


def over_budget(state: RunState, ctx: Context) -> str | None:
    """A sentence naming the spent budget, or None while budget remains."""
    usage = state.get("usage")
    if usage is None:
        return None
    return budget_exceeded(usage, policy_of(state).budgets)


def journal_key(state: RunState, *parts: object) -> str:
    """The journal's step key: the run's epoch (a fork starts a new one) and ``parts``."""
    return "/".join([state.get("epoch", "0"), *map(str, parts)])


def event(ctx: Context, run_id: str, kind: str, payload: dict[str, Any]) -> None:
    """Record an audit event with the run, secrets masked (written before the step's
    checkpoint: ``store.writer``)."""
    ctx.runs.append_event_behind(run_id, kind, redact_obj(payload))
