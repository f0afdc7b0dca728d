"""validate: run the checks, compute the verdict in code, pin a passing step to a commit.

The verdict comes from exit codes and parsed reports (``tools/checks.py``). An optional
reviewer (on when the policy's ``[review] enabled``, ``SHIPYARD_REVIEW`` or the driver's
``Context.review`` says so: :func:`review_enabled`) may add findings that make a passing
step fail; it is never asked about failing evidence, so it can never make it pass. The
checks see the developer's tree and whatever they write is undone afterwards, pass or fail
(``tools/checked_tree.py``). A passing step becomes a commit of exactly the tree the checks
validated — a journaled effect, so a crash between the commit and the checkpoint finds the
commit instead of making another.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from shipyard.agent import prompts
from shipyard.context import Context
from shipyard.contracts import Evidence, Finding, Plan, PlanStep, Review, StepOutcome, Usage
from shipyard.effects import EffectLog
from shipyard.nodes.inputs import context_of, event, journal_key, policy_of, workspace_of
from shipyard.sandbox.launcher import Launcher, Limits, hiding
from shipyard.state import RunState
from shipyard.tools import git
from shipyard.tools.baseline import baseline_evidence
from shipyard.tools.checked_tree import checked_tree
from shipyard.tools.checks import (
    Artifacts,
    CheckCache,
    CheckSpec,
    detect_checks,
    run_check,
    run_checks,
    verdict_from,
)
from shipyard.tools.environment import environment_checks, environment_launcher, setup_evidence
from shipyard.tools.pin import pin_workspace
from shipyard.tools.preexisting import judged_against_base, unfinished


def validate(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Check the current step's work; on a pass, commit it and move to the next step."""
    ctx = context_of(runtime)
    ws = workspace_of(state)
    pin_workspace(state)
    policy = policy_of(state)
    configured = policy.checks.run or None
    specs = detect_checks(ws, configured) if configured or policy.checks.detect else []
    specs = environment_checks(specs, policy.environment)
    setup = setup_evidence(ws, policy.environment, ctx.launcher, policy.checks.timeout_s)
    limit = policy.checks.timeout_s
    specs = [s.model_copy(update={"timeout": min(s.timeout, limit)}) for s in specs]
    with checked_tree(ws) as tree:
        evidence = ([setup] if setup else []) + _run(state, ctx, specs, tree)
        evidence = _against_base(state, ctx, specs, evidence, tree)
    # Never judged against the base commit: a test the change's configuration hides may
    # well fail there too (the bug the run fixes), so there every failure counts.
    evidence += _under_base_configuration(evidence, state, ctx)
    plan = Plan.model_validate(state["plan"])
    step = plan.steps[state["step_index"]]
    passed = all(e.passed for e in evidence)
    asked = passed and review_enabled(state, ctx)
    findings, usage = _review(state, ctx, step) if asked else ([], state["usage"])
    usage = usage + Usage(wall_s=sum(e.duration_s for e in evidence if not e.cached))
    if not specs:
        findings.append(
            Finding(source="validate", severity="warning", message="no checks were detected")
        )
    verdict = verdict_from(evidence, findings)
    if not verdict.passed:
        return {"verdict": verdict, "usage": usage, "recheck": False}
    sha = _commit(state, ctx, step, tree)
    outcome = StepOutcome(step_id=step.id, status="passed", attempts=state["attempt"], commit=sha)
    done = state.get("steps_done", [])
    if state.get("recheck") and done and done[-1].step_id == step.id:
        done = done[:-1]  # the re-checked step replaces its earlier outcome
    return {
        "verdict": verdict,
        "usage": usage,
        "recheck": False,
        "head_commit": sha,
        "work_tree": tree,
        "steps_done": [*done, outcome],
        "step_index": state["step_index"] + 1,
        "attempt": 1,
        "feedback": "",
    }


def _run(state: RunState, ctx: Context, specs: list[CheckSpec], tree: str) -> list[Evidence]:
    """The checks on the developer's ``tree`` (see :func:`_setting`)."""
    ws = workspace_of(state)
    changed = git.changed_files(ws, state["head_commit"])
    return run_checks(specs, workspace=ws, changed_files=changed, tree=tree, **_setting(state, ctx))


def _setting(state: RunState, ctx: Context) -> _CheckSetting:
    """How every check of the step runs: in the sandbox with the policy's environment and
    forbidden paths, no file larger than the workspace budget, cached per owner unless the
    policy turns the cache off."""
    policy = policy_of(state)
    # No file a check writes (workspace or private /tmp) may exceed the workspace budget.
    file_size = min(Limits().file_size_bytes, policy.budgets.workspace_mb << 20)
    return _CheckSetting(
        launcher=hiding(
            environment_launcher(ctx.launcher, policy.environment), policy.paths.forbidden
        ),
        artifacts=ctx.artifacts,
        run_id=state["run_id"],
        cache=ctx.check_cache if policy.checks.cache else None,
        owner=ctx.owner,
        policy_hash=policy.content_hash,
        limits=Limits(file_size_bytes=file_size),
    )


class _CheckSetting(TypedDict):
    launcher: Launcher
    artifacts: Artifacts
    run_id: str
    cache: CheckCache | None
    owner: str
    policy_hash: str
    limits: Limits


def _under_base_configuration(
    evidence: list[Evidence], state: RunState, ctx: Context
) -> list[Evidence]:
    """The change's test checks re-run under the base commit's test configuration when the
    change alters it (``tools/baseline.py``)."""
    policy = policy_of(state)
    return baseline_evidence(
        evidence,
        workspace=Path(state["workspace"]),
        base=state["base_commit"],
        policy=policy,
        launcher=hiding(ctx.launcher, policy.paths.forbidden),
        artifacts=ctx.artifacts,
        run_id=state["run_id"],
        scratch_root=ctx.settings.workspaces,
    )


def _against_base(
    state: RunState, ctx: Context, specs: list[CheckSpec], evidence: list[Evidence], tree: str
) -> list[Evidence]:
    """``evidence`` with failures already present at the base commit not counted
    (``tools/preexisting.py``); a targeted test run that passes so gets its full run (on
    the step's ``tree``, still in the workspace), judged the same way."""
    setting = _setting(state, ctx)

    def run(spec: CheckSpec, targets: Sequence[str], directory: Path, tree_id: str) -> Evidence:
        return run_check(spec, targets, workspace=directory, tree=tree_id, **setting)

    def judged(found: list[Evidence]) -> list[Evidence]:
        return judged_against_base(
            found, specs, workspace=ws, base=state["base_commit"], policy=policy_of(state),
            scratch=ctx.settings.workspaces / f"{state['run_id']}.base", run=run,
        )  # fmt: skip

    ws = workspace_of(state)
    result = judged(evidence)
    if rest := unfinished(result, specs):
        result += judged([run(spec, [], ws, tree) for spec in rest])
    return result


def _commit(state: RunState, ctx: Context, step: PlanStep, tree: str) -> str:
    """Commit ``tree`` (the tree the checks validated) on the run branch, once."""
    ws = workspace_of(state)
    attempt = state["attempt"]
    message = (
        f"shipyard: {step.title}\n\nRun: {state['run_id']}\nStep: {step.id} (attempt {attempt})"
    )
    marker = f"Step: {step.id} (attempt {attempt})"

    def commit(_intent: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"sha": git.commit_tree(ws, tree, message).sha, "tree": tree}

    def reconcile(_intent: dict[str, Any]) -> dict[str, Any]:
        # Look the commit up first; only when it is not there was it never made.
        found = git.find_commit(ws, f"Run: {state['run_id']}\n{marker}", tree)
        return {"sha": found, "tree": tree} if found else commit()

    log = EffectLog(ctx.journal, state["run_id"], journal_key(state, "validate", step.id, attempt))
    outcome = log.run("commit", "git:commit", {"tree": tree, "message": message}, commit, reconcile)
    return str(outcome["sha"])


def review_enabled(state: RunState, ctx: Context) -> bool:
    """Whether the reviewer is asked in this run: any of the policy's ``[review] enabled``,
    the environment's ``SHIPYARD_REVIEW`` (``Settings.review``) and the driver's
    ``Context.review`` turns it on; none turns it off (it can only make a step stricter)."""
    return policy_of(state).review.enabled or ctx.settings.review or ctx.review


def _review(state: RunState, ctx: Context, step: PlanStep) -> tuple[list[Finding], Usage]:
    """The reviewer's findings on the step's diff (the caller asks only when enabled and
    the checks passed), its verdict among them: a request for changes always carries an
    error finding, an approval an ``info`` one; a reply that never validated is a warning
    (the step stands on its checks). Each review is also a ``review`` audit event."""
    key = f"{step.id}/{state['attempt']}"
    diff = git.diff(workspace_of(state), state["head_commit"])[:20_000]

    def ask() -> dict[str, Any]:
        messages = [SystemMessage(prompts.REVIEWER), HumanMessage(f"Step: {step.title}\n{diff}")]
        reply = ctx.models.structured("reviewer", messages, Review, key=key)
        review = reply.value or Review(summary=UNREVIEWED, findings=[_unreviewed()])
        return {"review": review.model_dump(mode="json"), "usage": reply.usage.model_dump()}

    outcome = EffectLog(ctx.journal, state["run_id"], journal_key(state, "review", key)).record(
        "reviewer", "model", {"key": key}, ask
    )
    review = Review.model_validate(outcome["review"])
    where = {"step_id": step.id, "attempt": state["attempt"]}
    event(ctx, state["run_id"], "review", {**where, **outcome["review"]})
    findings = list(review.findings)
    if review.request_changes and not any(f.severity == "error" for f in findings):
        findings.append(Finding(source="reviewer", severity="error", message=review.summary))
    elif not review.request_changes and review.summary != UNREVIEWED:
        findings.append(
            Finding(source="reviewer", severity="info", message=f"approved: {review.summary}")
        )
    return findings, state["usage"] + Usage.model_validate(outcome["usage"])


UNREVIEWED = "the reviewer's reply never validated"
"""The summary recorded for a reply that never validated: the step was not reviewed."""


def _unreviewed() -> Finding:
    message = f"{UNREVIEWED}: the step was not reviewed"
    return Finding(source="reviewer", severity="warning", message=message)
