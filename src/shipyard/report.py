"""The run report: built from final state, stored as JSON and Markdown, with provenance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from shipyard.contracts import Plan, RunReport, RunStatus, Usage, content_hash
from shipyard.state import RunState


def build_report(state: RunState, status: RunStatus, diff_stat: str) -> RunReport:
    """The report a person reads at the end, from the run's final state."""
    plan = state.get("plan")
    verdict = state.get("verdict")
    return RunReport(
        run_id=state.get("run_id", ""),
        goal=state.get("goal", ""),
        repo=state.get("repo", ""),
        status=status,
        summary=_summary(state, status),
        branch=state.get("branch"),
        base_commit=state.get("base_commit"),
        head_commit=state.get("head_commit"),
        plan=Plan.model_validate(plan) if plan is not None else None,
        steps=list(state.get("steps_done", [])),
        evidence=list(verdict.evidence) if verdict else [],
        findings=list(verdict.findings) if verdict else [],
        diff_stat=diff_stat,
        approvals=list(state.get("approvals", [])),
        usage=state.get("usage") or Usage(),
        isolation=state.get("isolation"),
        models=dict(state.get("models", {})),
        model_usage=dict(state.get("model_usage", {})),
        abandoned=list(state.get("abandoned", [])),
    )


def _summary(state: RunState, status: RunStatus) -> str:
    if status == "completed":
        done = len(state.get("steps_done", []))
        return f"completed {done} step(s); the checks pass on {state.get('branch')}"
    return f"{status}: {state.get('reason') or 'no reason recorded'}"


def provenance(
    report: RunReport, policy_hash: str, instructions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What produced this change: inputs, models, policy, the repository instruction files
    the models were given (path -> sha256), commits and evidence references."""
    return {
        "shipyard_version": version("shipyard"),
        "created_at": datetime.now(UTC).isoformat(),
        "run_id": report.run_id,
        "goal_hash": content_hash(report.goal),
        "repo": report.repo,
        "base_commit": report.base_commit,
        "head_commit": report.head_commit,
        "branch": report.branch,
        "plan_hash": content_hash(report.plan) if report.plan else None,
        "policy_hash": policy_hash,
        "instructions": dict(instructions or {}),
        "models": report.models,
        "approvals": [a.model_dump(mode="json") for a in report.approvals],
        "evidence": [
            {"check": e.check, "passed": e.passed, "log": e.log_ref} for e in report.evidence
        ],
        "isolation": report.isolation.model_dump(mode="json") if report.isolation else None,
    }


def render_markdown(report: RunReport) -> str:
    """The report as Markdown."""
    lines = [
        f"# Shipyard run {report.run_id}",
        "",
        f"**Goal:** {report.goal}",
        f"**Status:** {report.status} — {report.summary}",
        f"**Repository:** {report.repo}  **Branch:** {report.branch or '-'}",
        f"**Commits:** {report.base_commit or '-'} → {report.head_commit or '-'}",
        *(f"**Abandoned by a fork, still reachable at:** {ref}" for ref in report.abandoned),
        "",
        "## Plan",
    ]
    if report.plan:
        lines += [f"{report.plan.summary} (risk: {report.plan.risk})", ""]
        lines += [f"{i}. **{s.id}** {s.title}" for i, s in enumerate(report.plan.steps, 1)]
    lines += ["", "## Steps"]
    lines += [
        f"- {s.step_id}: {s.status} after {s.attempts} attempt(s) {s.commit or ''}"
        for s in report.steps
    ]
    lines += ["", "## Evidence"]
    for ev in report.evidence:
        mark = "PASS" if ev.passed else "FAIL"
        lines.append(f"- [{mark}] {ev.check}: {ev.summary} (log: {ev.log_ref or '-'})")
    if report.findings:
        lines += ["", "## Findings"]
        lines += [f"- {f.source} ({f.severity}): {f.message}" for f in report.findings]
    lines += ["", "## Approvals"]
    lines += [f"- {a.kind}: {a.decision} by {a.by} {a.comment}".rstrip() for a in report.approvals]
    lines += ["", "## Diff", "```", report.diff_stat or "(no changes)", "```", "", "## Usage"]
    lines.append(json.dumps(report.usage.model_dump(), sort_keys=True))
    iso = report.isolation
    if iso:
        lines += ["", "## Isolation", f"level {iso.level}; held: {', '.join(iso.held) or '-'}"]
        lines += [f"- missing {k}: {v}" for k, v in iso.missing.items()]
    lines += ["", "## Models"] + [f"- {role}: {label}" for role, label in report.models.items()]
    if report.delivery is not None:
        lines += ["", "## Delivery", _delivery_line(report)]
    lines += ["", "## Model usage"] if report.model_usage else []
    lines += [
        f"- {label}: {u.model_calls} call(s), {u.input_tokens + u.output_tokens} tokens, "
        f"${u.cost_usd:.4f}"
        for label, u in report.model_usage.items()
    ]
    return "\n".join(lines) + "\n"


def _delivery_line(report: RunReport) -> str:
    d = report.delivery
    assert d is not None
    if d.status != "delivered":
        return f"{d.status}: {d.reason}"
    where = f"pushed {d.branch} to {d.remote}" if d.pushed else f"{d.branch} already on {d.remote}"
    return f"delivered: {where}; pull request: {d.pull_request_url or 'none'}"
