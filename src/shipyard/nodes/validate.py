"""validate: run the checks, compute the verdict in code, pin a passing step to a commit.

The verdict comes from exit codes and parsed reports (``tools/checks.py``). An optional
reviewer may add findings that make a passing step fail; it can never make failing
evidence pass. A passing step becomes a commit on the run branch — a journaled effect, so a
crash between the commit and the checkpoint finds the commit instead of making another.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from shipyard import prompts
from shipyard.context import Context
from shipyard.contracts import Finding, Plan, PlanStep, Review, StepOutcome, Usage
from shipyard.effects import EffectLog
from shipyard.nodes.run import context_of, journal_key, policy_of, workspace_of
from shipyard.pin import pin_workspace
from shipyard.state import RunState
from shipyard.tools import git
from shipyard.tools.checks import detect_checks, run_checks, verdict_from


def validate(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Check the current step's work; on a pass, commit it and move to the next step."""
    ctx = context_of(runtime)
    ws = workspace_of(state)
    pin_workspace(state)
    policy = policy_of(state)
    configured = policy.checks.run or None
    specs = detect_checks(ws, configured) if configured or policy.checks.detect else []
    evidence = run_checks(
        specs,
        workspace=ws,
        launcher=ctx.launcher,
        artifacts=ctx.artifacts,
        run_id=state["run_id"],
        cache=ctx.check_cache,
        changed_files=git.changed_files(ws, state["head_commit"]),
    )
    plan = Plan.model_validate(state["plan"])
    step = plan.steps[state["step_index"]]
    findings, usage = _review(state, ctx, step, passed=all(e.passed for e in evidence))
    usage = usage + Usage(wall_s=sum(e.duration_s for e in evidence if not e.cached))
    if not specs:
        findings.append(
            Finding(source="validate", severity="warning", message="no checks were detected")
        )
    verdict = verdict_from(evidence, findings)
    if not verdict.passed:
        return {"verdict": verdict, "usage": usage}
    pin_workspace(state)  # drop anything the checks left behind before committing
    sha = _commit(state, ctx, step)
    outcome = StepOutcome(step_id=step.id, status="passed", attempts=state["attempt"], commit=sha)
    return {
        "verdict": verdict,
        "usage": usage,
        "head_commit": sha,
        "work_tree": git.snapshot_tree(ws),
        "steps_done": [*state.get("steps_done", []), outcome],
        "step_index": state["step_index"] + 1,
        "attempt": 1,
        "feedback": "",
    }


def _commit(state: RunState, ctx: Context, step: PlanStep) -> str:
    ws = workspace_of(state)
    attempt = state["attempt"]
    message = (
        f"shipyard: {step.title}\n\nRun: {state['run_id']}\nStep: {step.id} (attempt {attempt})"
    )
    marker = f"Step: {step.id} (attempt {attempt})"
    tree = state["work_tree"]

    def commit(_intent: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"sha": git.commit_all(ws, message).sha, "tree": tree}

    def reconcile(_intent: dict[str, Any]) -> dict[str, Any]:
        # Look the commit up first; only when it is not there was it never made.
        found = git.find_commit(ws, f"Run: {state['run_id']}\n{marker}", tree)
        return {"sha": found, "tree": tree} if found else commit()

    log = EffectLog(ctx.journal, state["run_id"], journal_key(state, "validate", step.id, attempt))
    outcome = log.run("commit", "git:commit", {"tree": tree, "message": message}, commit, reconcile)
    return str(outcome["sha"])


def _review(
    state: RunState, ctx: Context, step: PlanStep, *, passed: bool
) -> tuple[list[Finding], Usage]:
    """The reviewer's findings (only asked when enabled and the checks passed)."""
    usage = state["usage"]
    if not (ctx.review and passed):
        return [], usage
    key = f"{step.id}/{state['attempt']}"
    diff = git.diff(workspace_of(state), state["head_commit"])[:20_000]

    def ask() -> dict[str, Any]:
        messages = [SystemMessage(prompts.REVIEWER), HumanMessage(f"Step: {step.title}\n{diff}")]
        reply = ctx.models.structured("reviewer", messages, Review, key=key)
        review = reply.value or Review(
            summary="the reviewer's reply never validated", request_changes=False
        )
        return {"review": review.model_dump(mode="json"), "usage": reply.usage.model_dump()}

    outcome = EffectLog(ctx.journal, state["run_id"], journal_key(state, "review", key)).record(
        "reviewer", "model", {"key": key}, ask
    )
    review = Review.model_validate(outcome["review"])
    findings = list(review.findings)
    if review.request_changes and not any(f.severity == "error" for f in findings):
        findings.append(Finding(source="reviewer", severity="error", message=review.summary))
    return findings, usage + Usage.model_validate(outcome["usage"])
