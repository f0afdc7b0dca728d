"""escalate: stop for a human with an evidence summary (docs/architecture.md §1)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from shipyard.context import Context
from shipyard.contracts import Plan, StepOutcome
from shipyard.nodes.refine import failure_slices
from shipyard.state import RunState


def escalate(state: RunState, runtime: Runtime[Context]) -> RunState:
    """End the run as ``needs_human_review``, saying why and what the evidence shows.

    A person continues it with ``shipyard resume RUN --guidance TEXT``.
    """
    verdict = state.get("verdict")
    reason = state.get("reason") or "the step's attempts are spent and the checks still fail"
    if verdict is not None and not verdict.passed:
        reason += "\n" + failure_slices(verdict, limit=2_000)
    update: RunState = {"status": "needs_human_review", "reason": reason}
    plan = state.get("plan")
    if plan is not None and state.get("step_index", 0) < len(Plan.model_validate(plan).steps):
        step = Plan.model_validate(plan).steps[state.get("step_index", 0)]
        failed = StepOutcome(
            step_id=step.id, status="failed", attempts=state.get("attempt", 1), summary=reason
        )
        update["steps_done"] = [*state.get("steps_done", []), failed]
    return update
