"""Shipyard's own run records for runs of the ``shipyard`` graph served over the API.

The CLI's ``Runner`` keeps the ``runs`` and ``approvals`` rows in step with the checkpoints;
over the API the thread is the Shipyard run (its id is the thread id, as in the CLI) and the
worker does the same through a ``Ledger``: the row is created before the first run on the
thread, every stop records the pending approval or the final status, and a resume's decision
is recorded once the run shows whether it took effect: ``decided``, or ``refused`` when the
gate asked again because the content changed since the request was shown (the new request
then supersedes it). ``check_resume`` is what the routes call at create time so a decision
for content other than the pending request's is refused with 409 before any run exists; a
rejection needs no content hash and is never refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from langgraph.types import Command, StateSnapshot

from shipyard.context import Context
from shipyard.contracts import ApprovalDecision, ApprovalRequest, RunInput
from shipyard.errors import NotWaitingError, StaleApprovalError, UnknownRunError
from shipyard.nodes.approve import decision_outcome
from shipyard.preflight import preflight
from shipyard.run_cancel import Graph, finish_cancelled
from shipyard.server.queue import QueuedRun


class Ledger:
    """Keeps ``runs``/``approvals`` rows for one run of the shipyard graph."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._answer: tuple[ApprovalDecision, str] | None = None
        """The decision this run carries and the interrupt it answers, until ``after``."""

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
                self._answer = (decision, approval.interrupt_id)
        runs.update_run(thread_id, status="running", error=None)

    async def after(self, run: QueuedRun, snapshot: StateSnapshot) -> None:
        """Record where the run stopped: a pending approval or the final status."""
        await asyncio.to_thread(self._after, run.thread_id, snapshot)

    def _after(self, thread_id: str, snapshot: StateSnapshot) -> None:
        runs = self.context.runs
        values = snapshot.values or {}
        fields = {k: values[k] for k in ("branch", "base_commit", "head_commit") if values.get(k)}
        if values.get("usage") is not None:
            fields["usage"] = values["usage"]
        if self._answer is not None:
            decision, answered = self._answer
            self._answer = None
            outcome = decision_outcome(answered, snapshot.interrupts)
            if outcome is not None:
                runs.record_decision(thread_id, decision, outcome, interrupt_id=answered)
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

    async def cancelled(self, run: QueuedRun, graph: Graph, rolled_back: bool) -> None:
        """Record a cancelled run: an interrupted one ends ``cancelled`` with its report
        (``shipyard.run_cancel``); a rolled-back one is recorded as the state it returned
        to, or ``cancelled`` when no state is left."""
        if not rolled_back:
            await finish_cancelled(graph, self.context, run.thread_id, "the API")
        snapshot = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        if snapshot.values:
            await self.after(run, snapshot)
            return

        def mark() -> None:
            with contextlib.suppress(UnknownRunError):
                self.context.runs.update_run(
                    run.thread_id, status="cancelled", error="cancelled by the API (rollback)"
                )

        await asyncio.to_thread(mark)

    async def failed(self, run: QueuedRun, message: str) -> None:
        """Mark the Shipyard run failed (when its row exists)."""

        def mark() -> None:
            with contextlib.suppress(UnknownRunError):
                self.context.runs.update_run(run.thread_id, status="failed", error=message)

        await asyncio.to_thread(mark)


def check_resume(snapshot: StateSnapshot, resume: Any) -> None:
    """Refuse a resume that answers nothing, or an approval whose hash is out of date.

    Raises ``NotWaitingError`` when no interrupt is pending and ``StaleApprovalError`` when
    the decision's ``content_hash`` differs from the pending ``ApprovalRequest``'s — except
    for a rejection, which applies to the run whatever its content is now.
    """
    if not snapshot.interrupts:
        raise NotWaitingError("the thread has no pending interrupt to resume")
    interrupt = snapshot.interrupts[0]
    decision = _decision(resume, interrupt.id)
    if decision is None or not isinstance(interrupt.value, dict):
        return
    request = ApprovalRequest.model_validate(_request_fields(interrupt.value))
    if decision.content_hash != request.content_hash and decision.decision != "reject":
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
