"""What happens to a run's records when the graph moves — one place for the CLI's ``Runner``
and the server's workers.

The checkpoints are the truth of a run; the ``runs`` and ``approvals`` rows are what people
and tools list (``shipyard runs``, ``/metrics``, the console). A ``RunBook`` keeps the rows
in step with the checkpoints:

* ``answering`` notes the decision a resume carries, before the graph runs with it;
* ``stopped`` runs at every stop: it settles that decision (``decided`` when it took effect,
  ``refused`` when the gate asked again because the content changed since the request was
  shown — the new request then supersedes it), then records the pending request, a pause,
  or the final status with branch, commits, usage and report;
* ``refuse_stale`` refuses, before anything runs, a decision for content other than the
  pending request's, recording it as ``refused``;
* ``failed`` and ``cancelled`` mark runs that ended without a final state of their own.

Whether a decision matches its request is decided by ``contracts.decision_applies`` alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shipyard.contracts import (
    REFUSED,
    ApprovalDecision,
    ApprovalRequest,
    RunReport,
    RunStatus,
)
from shipyard.errors import StaleApprovalError, UnknownRunError
from shipyard.notify.announce import announce_end, announce_failure, announce_request

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langgraph.types import StateSnapshot

    from shipyard.store.runs import RunStore


@dataclass(frozen=True)
class Stop:
    """Where a run stands after the graph hands control back."""

    run_id: str
    status: RunStatus
    request: ApprovalRequest | None = None
    report: RunReport | None = None
    error: str | None = None
    notice: str | None = None
    """Why the run asks again instead of applying the decision it was given (the content
    changed since the request was shown), in words; or where a fork left the newer commits."""


RECORDED_FIELDS = ("branch", "base_commit", "head_commit")
"""State values copied onto the run's row at every stop (with ``usage`` and the report)."""


class RunBook:
    """Keeps one ``RunStore``'s rows in step with the runs driven in this process."""

    def __init__(self, runs: RunStore, owner: str = "local") -> None:
        self.runs = runs
        self.owner = owner
        """Whose runs these are (named in the notifications: ``shipyard.notify``)."""
        self._answers: dict[str, tuple[ApprovalDecision, str]] = {}
        """Per run: the decision it is being driven with and the interrupt it answers."""

    def answering(self, run_id: str, decision: ApprovalDecision, interrupt_id: str) -> None:
        """``decision`` (for interrupt ``interrupt_id``) is about to be sent to the graph."""
        self._answers[run_id] = (decision, interrupt_id)

    def forget(self, run_id: str) -> None:
        """The drive with the noted decision failed: record nothing of it now."""
        self._answers.pop(run_id, None)

    def refuse_stale(self, run_id: str, interrupt_id: str, value: Any, decision: Any) -> None:
        """Refuse (and record as refused) a decision for content other than the pending
        request's: ``StaleApprovalError`` saying what is pending. Values that are not
        approval decisions, and interrupts that are not approval requests, pass."""
        if not isinstance(decision, ApprovalDecision) or not isinstance(value, dict):
            return
        request = ApprovalRequest.from_interrupt(value)
        if request.applies(decision):
            return
        with contextlib.suppress(UnknownRunError):  # a thread the CLI never recorded
            self.runs.record_decision(run_id, decision, "refused", interrupt_id=interrupt_id)
        raise StaleApprovalError(
            f"the decision is for {decision.content_hash}, but run {run_id} now waits for "
            f"{request.kind} approval of {request.content_hash}; look at what is pending "
            f"(`shipyard show {run_id}` or the thread's state) and decide on that"
        )

    def stopped(self, run_id: str, snapshot: StateSnapshot) -> Stop:
        """Record where the run stopped (see the module docstring) and return it."""
        self._settle(run_id, snapshot.interrupts)
        values = snapshot.values or {}
        fields: dict[str, Any] = {k: values[k] for k in RECORDED_FIELDS if values.get(k)}
        if values.get("usage") is not None:
            fields["usage"] = values["usage"]
        if snapshot.interrupts:
            interrupt = snapshot.interrupts[0]
            request = ApprovalRequest.from_interrupt(interrupt.value)
            self.runs.record_approval_request(run_id, interrupt.id, request)
            self.runs.update_run(run_id, status="awaiting_approval", **fields)
            # notify: a person is asked to decide (after the rows; idempotent per interrupt)
            announce_request(self.runs.engine, run_id, interrupt.id, request, owner=self.owner)
            notice = interrupt.value.get(REFUSED) if isinstance(interrupt.value, dict) else None
            return Stop(run_id, "awaiting_approval", request=request, notice=notice)
        if snapshot.next:  # stopped before a node by request (a breakpoint), not ended
            self.runs.update_run(run_id, status="paused", **fields)
            return Stop(run_id, "paused")
        status: RunStatus = values.get("status", "failed")
        report = values.get("report")
        if isinstance(report, RunReport):
            fields["report_path"] = report.report_path
        self.runs.update_run(run_id, status=status, error=values.get("reason"), **fields)
        # notify: the run ended (after the row; idempotent per final checkpoint)
        announce_end(self.runs.engine, run_id, snapshot, owner=self.owner)
        return Stop(
            run_id,
            status,
            report=report if isinstance(report, RunReport) else None,
            error=values.get("reason"),
        )

    def answer_open(self, run_id: str) -> bool:
        """Whether a noted decision has not been settled yet (its drive recorded no stop)."""
        return run_id in self._answers

    def settle(self, run_id: str, interrupts: Sequence[Any]) -> None:
        """Record the noted decision as it turned out, judged from ``interrupts`` (where the
        run waits now), when ``stopped`` did not."""
        self._settle(run_id, interrupts)

    def failed(self, run_id: str, message: str) -> None:
        """Mark the run failed (when it has a row)."""
        self.forget(run_id)
        with contextlib.suppress(UnknownRunError):
            self.runs.update_run(run_id, status="failed", error=message)
            # notify: the run failed (only a run that has a row)
            announce_failure(self.runs.engine, run_id, message, owner=self.owner)

    def cancelled(self, run_id: str, why: str) -> None:
        """Mark the run cancelled when no state of it is left to record (a rollback)."""
        self.forget(run_id)
        with contextlib.suppress(UnknownRunError):
            self.runs.update_run(run_id, status="cancelled", error=why)

    def _settle(self, run_id: str, interrupts: Sequence[Any]) -> None:
        answer = self._answers.pop(run_id, None)
        if answer is None:
            return
        decision, answered = answer
        outcome = decision_outcome(answered, interrupts)
        if outcome is not None:
            self.runs.record_decision(run_id, decision, outcome, interrupt_id=answered)


def decision_outcome(
    answered: str, interrupts: Sequence[Any]
) -> Literal["decided", "refused"] | None:
    """Whether a decision sent to the interrupt ``answered`` took effect, judged from the
    interrupts the run waits at afterwards: ``"refused"`` when the gate asked again (its
    payload says why), ``None`` when the run still waits at ``answered`` (the node never
    got to it), ``"decided"`` otherwise."""
    if not interrupts:
        return "decided"
    first = interrupts[0]
    if first.id == answered:
        return None
    value = first.value
    return "refused" if isinstance(value, dict) and value.get(REFUSED) else "decided"


def decision_in(resume: Any, interrupt_id: str | None = None) -> ApprovalDecision | None:
    """The ``ApprovalDecision`` a resume value carries (plain, or in an interrupt-id map),
    or ``None`` when it carries none."""
    if isinstance(resume, ApprovalDecision):
        return resume
    if isinstance(resume, dict) and interrupt_id is not None and interrupt_id in resume:
        resume = resume[interrupt_id]
    elif isinstance(resume, dict) and len(resume) == 1:
        only = next(iter(resume.values()))
        resume = only if isinstance(only, dict) and "decision" in only else resume
    if isinstance(resume, dict) and "decision" in resume:
        return ApprovalDecision.model_validate(resume)
    return None


__all__ = ["RECORDED_FIELDS", "RunBook", "Stop", "decision_in", "decision_outcome"]
