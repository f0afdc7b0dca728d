"""refine: turn failing evidence into compact feedback for the next attempt (DESIGN §1)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from shipyard.context import Context
from shipyard.contracts import Verdict
from shipyard.state import RunState

FEEDBACK_CHARS = 4_000
"""Feedback is failure slices, never whole logs: the full logs stay in the artifact store."""


def refine(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Send the step back to execute with what failed."""
    verdict = state.get("verdict")
    return {
        "feedback": failure_slices(verdict) if verdict else "",
        "attempt": state["attempt"] + 1,
    }


def failure_slices(verdict: Verdict, limit: int = FEEDBACK_CHARS) -> str:
    """The failing checks and their individual failures, trimmed to ``limit`` characters."""
    parts: list[str] = []
    for ev in verdict.evidence:
        if ev.passed:
            continue
        parts.append(f"check {ev.check} failed (exit {ev.exit_code}): {ev.summary}")
        if ev.failure_count > len(ev.failures):
            parts.append(f"({ev.failure_count} failures in all; the first are shown)")
        for failure in ev.failures[:10]:
            where = f" at {failure.path}:{failure.line}" if failure.path else ""
            parts.append(f"- {failure.id}{where}: {failure.message}")
            if failure.detail:
                parts.append("  " + failure.detail.strip().replace("\n", "\n  ")[:800])
    parts.extend(
        f"- {f.source} ({f.severity}): {f.message}"
        for f in verdict.findings
        if f.severity == "error"
    )
    text = "\n".join(parts)
    return text if len(text) <= limit else text[: limit - 20] + "\n... (trimmed)"
