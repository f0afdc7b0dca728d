"""The pull request a run opens says why to trust it.

Title: the plan's summary (else the goal), one line. Body: the goal, the plan, a table of
the checks that passed (command, counts, duration), the diff stat, who approved what and
when (and who let it be delivered), the isolation level, usage and cost, the provenance
manifest's hash and, when the server's public URL is configured, the run's console link.
Built from the redacted report, then masked once more: no secret value can reach the forge.
"""

from __future__ import annotations

from shipyard.contracts import Evidence, RunReport
from shipyard.redact import redact

TITLE_CHARS = 120


def title_of(report: RunReport) -> str:
    """One line: the plan's summary, else the goal, cut at ``TITLE_CHARS``."""
    text = report.plan.summary if report.plan and report.plan.summary.strip() else report.goal
    line = " ".join(text.split()) or f"Shipyard run {report.run_id}"
    return redact(line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…")


def body_of(
    report: RunReport,
    *,
    manifest_hash: str,
    console_url: str | None,
    approved_by: str | None = None,
) -> str:
    """The Markdown body; ``approved_by``: who let the change be delivered."""
    lines = [f"## Goal\n\n{report.goal}\n", *_plan(report), *_checks(report.evidence)]
    lines += ["## Diff\n", "```", report.diff_stat or "(no changes)", "```\n"]
    lines += _approvals(report, approved_by)
    lines += _run_facts(report, manifest_hash, console_url)
    return redact("\n".join(lines)) + "\n"


def _plan(report: RunReport) -> list[str]:
    if report.plan is None:
        return []
    lines = ["## Plan\n", f"{report.plan.summary} (risk: {report.plan.risk})\n"]
    lines += [f"{i}. **{step.id}** {step.title}" for i, step in enumerate(report.plan.steps, 1)]
    return [*lines, ""]


def _checks(evidence: list[Evidence]) -> list[str]:
    passed = [e for e in evidence if e.passed]
    if not passed:
        return ["## Checks\n", "No check ran.\n"]
    rows = ["## Checks\n", "| check | command | result | duration |", "|---|---|---|---|"]
    for e in passed:
        command = " ".join(e.command).replace("|", "\\|")
        summary = e.summary.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {e.check} | `{command}` | {summary} | {e.duration_s:.1f} s |")
    return [*rows, ""]


def _approvals(report: RunReport, approved_by: str | None) -> list[str]:
    lines = ["## Approvals\n"]
    for a in report.approvals:
        at = f" at {a.at.isoformat(timespec='seconds')}" if a.at else ""
        lines.append(f"- {a.kind}: {a.decision} by {a.by}{at}")
    if approved_by:
        lines.append(f"- delivery: approved by {approved_by}")
    return [*(lines if len(lines) > 1 else [*lines, "- none recorded"]), ""]


def _run_facts(report: RunReport, manifest_hash: str, console_url: str | None) -> list[str]:
    usage = report.usage
    iso = report.isolation
    lines = [
        "## Run\n",
        f"- isolation: {iso.level if iso else 'unknown'}",
        f"- usage: {usage.model_calls} model calls, {usage.tool_calls} tool calls, "
        f"{usage.input_tokens + usage.output_tokens} tokens, ${usage.cost_usd:.4f}, "
        f"{usage.wall_s:.0f} s",
        f"- provenance manifest: `{manifest_hash}`",
        f"- commits: {report.base_commit or '-'} → {report.head_commit or '-'}",
    ]
    if console_url:
        lines.append(f"- console: {console_url}")
    return [*lines, "", f"*Opened by Shipyard run {report.run_id}.*"]


__all__ = ["TITLE_CHARS", "body_of", "title_of"]
