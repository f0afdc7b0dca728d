"""Shipyard's own run records for runs of the ``shipyard`` graph served over the API.

The CLI's ``Runner`` keeps the ``runs`` and ``approvals`` rows in step with the checkpoints;
over the API the thread is the Shipyard run (its id is the thread id, as in the CLI) and the
worker does the same through a ``Ledger``: the row is created before the first run on the
thread, every stop records the pending approval or the final status, and a resume's decision
is checked against the pending request and recorded. ``check_resume`` is what the routes
call at create time so a stale decision is refused with 409 before any run exists.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from langgraph.types import Command, StateSnapshot

from shipyard.context import Context
from shipyard.contracts import ApprovalDecision, ApprovalRequest, RunInput
from shipyard.errors import NotWaitingError, StaleApprovalError, UnknownRunError
from shipyard.preflight import preflight
from shipyard.server.queue import QueuedRun


class Ledger:
    """Keeps ``runs``/``approvals`` rows for one run of the shipyard graph."""

    def __init__(self, context: Context) -> None:
        self.context = context

    @classmethod
    def of(cls, context: Any) -> Ledger | None:
        """A ledger when ``context`` is Shipyard's (other graphs keep no such records)."""
        return cls(context) if isinstance(context, Context) else None

    async def before(self, run: QueuedRun, graph_input: Any) -> None:
        """Create the run row for a new goal; record the decision a resume carries."""
        await asyncio.to_thread(self._before, run.thread_id, graph_input)

    def _before(self, thread_id: str, graph_input: Any) -> None:
        runs = self.context.runs
        if isinstance(graph_input, dict) and "goal" in graph_input:
            run_input = RunInput.model_validate(graph_input)
            preflight(run_input)
            try:
                runs.get_run(thread_id)
            except UnknownRunError:
                runs.create_run(run_input.goal, run_input.repo, run_id=thread_id)
        elif isinstance(graph_input, Command) and graph_input.resume is not None:
            approval = runs.pending_approval(thread_id)
            decision = _decision(graph_input.resume)
            if approval is not None and decision is not None:
                runs.record_decision(thread_id, decision, interrupt_id=approval.interrupt_id)
        runs.update_run(thread_id, status="running", error=None)

    async def after(self, run: QueuedRun, snapshot: StateSnapshot) -> None:
        """Record where the run stopped: a pending approval or the final status."""
        await asyncio.to_thread(self._after, run.thread_id, snapshot)

    def _after(self, thread_id: str, snapshot: StateSnapshot) -> None:
        runs = self.context.runs
        values = snapshot.values or {}
        fields = {k: values[k] for k in ("branch", "base_commit", "head_commit") if values.get(k)}
        if snapshot.interrupts:
            interrupt = snapshot.interrupts[0]
            request = ApprovalRequest.model_validate(_request_fields(interrupt.value))
            runs.record_approval_request(thread_id, interrupt.id, request)
            runs.update_run(thread_id, status="awaiting_approval", **fields)
            return
        if snapshot.next:
            runs.update_run(thread_id, status="paused", **fields)
            return
        report = values.get("report")
        if report is not None and getattr(report, "report_path", None):
            fields["report_path"] = report.report_path
        status = values.get("status", "failed")
        runs.update_run(thread_id, status=status, error=values.get("reason"), **fields)

    async def failed(self, run: QueuedRun, message: str) -> None:
        """Mark the Shipyard run failed (when its row exists)."""

        def mark() -> None:
            with contextlib.suppress(UnknownRunError):
                self.context.runs.update_run(run.thread_id, status="failed", error=message)

        await asyncio.to_thread(mark)


def check_resume(snapshot: StateSnapshot, resume: Any) -> None:
    """Refuse a resume that answers nothing, or an approval whose hash is out of date.

    Raises ``NotWaitingError`` when no interrupt is pending and ``StaleApprovalError`` when
    the decision's ``content_hash`` differs from the pending ``ApprovalRequest``'s.
    """
    if not snapshot.interrupts:
        raise NotWaitingError("the thread has no pending interrupt to resume")
    interrupt = snapshot.interrupts[0]
    decision = _decision(resume, interrupt.id)
    if decision is None or not isinstance(interrupt.value, dict):
        return
    request = ApprovalRequest.model_validate(_request_fields(interrupt.value))
    if decision.content_hash != request.content_hash:
        raise StaleApprovalError(
            f"the decision is for {decision.content_hash}, but the thread now waits for "
            f"{request.kind} approval of {request.content_hash}; read the thread state and "
            "decide on what is pending"
        )


def _decision(resume: Any, interrupt_id: str | None = None) -> ApprovalDecision | None:
    """The ``ApprovalDecision`` in a resume value (plain, or in an interrupt-id map)."""
    if isinstance(resume, dict) and interrupt_id is not None and interrupt_id in resume:
        resume = resume[interrupt_id]
    elif isinstance(resume, dict) and len(resume) == 1:
        only = next(iter(resume.values()))
        resume = only if isinstance(only, dict) and "decision" in only else resume
    if isinstance(resume, dict) and "decision" in resume:
        return ApprovalDecision.model_validate(resume)
    return None


def _request_fields(value: Any) -> dict[str, Any]:
    fields = dict(value)
    fields.pop("refused", None)
    return fields


__all__ = ["Ledger", "check_resume"]
