"""refine: turn failing evidence into compact feedback for the next attempt
(docs/architecture.md §1). Each refine is an audit event (``refine``): the retries that
``shipyard stats`` and ``/metrics`` count."""

from __future__ import annotations

from langgraph.runtime import Runtime

from shipyard.context import Context
from shipyard.contracts import Verdict
from shipyard.nodes.inputs import context_of, event
from shipyard.redact import redact
from shipyard.state import RunState

FEEDBACK_CHARS = 4_000
"""Feedback is failure slices, never whole logs: the full logs stay in the artifact store."""


def refine(state: RunState, runtime: Runtime[Context]) -> RunState:
    """Send the step back to execute with what failed."""
    verdict = state.get("verdict")
    attempt = state["attempt"] + 1
    payload = {"step_index": state.get("step_index", 0), "attempt": attempt}
    event(context_of(runtime), state["run_id"], "refine", payload)
    return {"feedback": failure_slices(verdict) if verdict else "", "attempt": attempt}


def failure_slices(verdict: Verdict, limit: int = FEEDBACK_CHARS) -> str:
    """The failing checks and their individual failures, redacted (``shipyard.redact``) and
    trimmed to ``limit`` characters."""
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
    text = redact("\n".join(parts))
    return text if len(text) <= limit else text[: limit - 20] + "\n... (trimmed)"
