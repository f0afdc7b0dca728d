"""intake: check the input, fix the policy, create the run's worktree (docs/architecture.md §1)."""

from __future__ import annotations

import uuid
from pathlib import Path

from langgraph.runtime import Runtime
from pydantic import ValidationError

from shipyard.context import Context
from shipyard.contracts import RunInput, Usage
from shipyard.effects import new_timeline
from shipyard.errors import ThreadTakenError, UnknownRunError, UserInputError
from shipyard.nodes.inputs import context_of, event, thread_id
from shipyard.policy.config import load_policy
from shipyard.state import RunState
from shipyard.tools import git

_CLEARED: RunState = {"base_ref": None, "plan": None, "policy": None}
"""The optional inputs of input that failed intake (the reason names what was wrong):
cleared, so corrected input on the same thread does not inherit them."""


def intake(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Validate input and policy, then create ``shipyard/<run-id>`` from the base commit.

    Bad input ends the run as ``failed`` (or ``blocked_by_policy``) with the reason; nothing
    in the user's checkout is touched either way.
    """
    ctx = context_of(runtime)
    run_id = thread_id()
    if state.get("branch"):
        # New input on a thread that holds a run (one that got past intake): its plan,
        # branch and journal would be mixed up with that run's. Raised, so the run errors
        # and that run's state stays. (Input that failed intake left nothing: try again.)
        raise ThreadTakenError(
            f"thread {run_id} already holds Shipyard run {state['run_id']} "
            f"({state.get('status', 'unknown')}); start a new run on a new thread"
        )
    try:
        run_input = parse_input(state)
        if ctx.standalone:
            _record_run(ctx, run_id, run_input)
        repo = git.repo_root(Path(run_input.repo))
        policy = load_policy(repo, run_input.policy)
        base = git.resolve_commit(repo, run_input.base_ref or "HEAD")
    except UserInputError as err:
        return {"run_id": run_id, "status": "failed", "reason": str(err), **_CLEARED}
    isolation = ctx.launcher.report()
    verdict = policy.check_isolation(isolation.level)
    if verdict.action == "deny":
        return {"run_id": run_id, "status": "blocked_by_policy", "reason": verdict.reason}
    # Every intake starts a new journal timeline: a second run on the same thread must
    # never replay the effects of the first (their step keys would otherwise be the same).
    epoch = uuid.uuid4().hex[:8]
    new_timeline(run_id, epoch)
    branch = git.run_branch(run_id)
    workspace = ctx.settings.workspaces / run_id
    git.create_worktree(repo, workspace, branch, base)
    event(ctx, run_id, "intake", {"repo": str(repo), "base": base, "branch": branch})
    return {
        "run_id": run_id,
        "epoch": epoch,
        "status": "running",
        "repo": str(repo),
        "effective_policy": policy.model_dump(mode="json"),
        "branch": branch,
        "workspace": str(workspace),
        "base_commit": base,
        "head_commit": base,
        "work_tree": git.snapshot_tree(workspace),
        "plan": run_input.plan,
        "plan_round": 0,
        "plan_feedback": "",
        "step_index": 0,
        "attempt": 1,
        "feedback": "",
        "verdict": None,
        "steps_done": [],
        "approvals": [],
        "remembered": [],
        "deferred": [],
        "usage": Usage(),
        "models": {role: ctx.models.label(role) for role in ("planner", "developer", "reviewer")},
        "isolation": isolation,
    }


def _record_run(ctx: Context, run_id: str, run_input: RunInput) -> None:
    """The run's row, which a Shipyard driver would have created before the graph ran."""
    try:
        ctx.runs.get_run(run_id)
    except UnknownRunError:
        ctx.runs.create_run(run_input.goal, run_input.repo, run_id=run_id)


def parse_input(state: RunState) -> RunInput:
    """The run input as a contract; a plan that does not validate names the field."""
    raw = {k: state.get(k) for k in ("goal", "repo", "base_ref", "plan", "policy", "allow_dirty")}
    plan = raw.get("plan")
    if hasattr(plan, "model_dump"):
        raw["plan"] = plan.model_dump()
    try:
        return RunInput.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserInputError(f"invalid run input at {where}: {first['msg']}") from None
