"""Shipyard's own run records for runs of the ``shipyard`` graph served over the API.

Over the API the thread is the Shipyard run (its id is the thread id, as in the CLI). A
worker keeps the ``runs`` and ``approvals`` rows through a ``Ledger``: the row is created
before the first run on the thread, and every stop, failure and cancellation is recorded by
the same ``bookkeeping.RunBook`` the CLI's runner uses. ``check_resume`` is what the routes
call at create time so a decision for content other than the pending request's is refused
(and recorded as refused) with 409 before any run exists; a rejection is never refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.types import Command, StateSnapshot

from shipyard.context import Context
from shipyard.contracts import RunInput
from shipyard.errors import NotWaitingError, UnknownRunError
from shipyard.lifecycle.bookkeeping import RunBook, decision_in
from shipyard.lifecycle.cancel import Graph, finish_cancelled
from shipyard.lifecycle.preflight import preflight
from shipyard.server.runs.queue import QueuedRun


class Ledger:
    """Keeps ``runs``/``approvals`` rows for one run of the shipyard graph."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.book = RunBook(context.runs, owner=context.owner)

    @classmethod
    def of(cls, context: Any) -> Ledger | None:
        """A ledger when ``context`` is Shipyard's (other graphs keep no such records)."""
        return cls(context) if isinstance(context, Context) else None

    async def before(self, run: QueuedRun, graph_input: Any) -> None:
        """Create the run row for a new goal; note the decision a resume carries."""
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
            decision = decision_in(graph_input.resume)
            if approval is not None and decision is not None:
                self.book.answering(thread_id, decision, approval.interrupt_id)
        runs.update_run(thread_id, status="running", error=None)

    async def after(self, run: QueuedRun, snapshot: StateSnapshot) -> None:
        """Record where the run stopped (``RunBook.stopped``)."""
        await asyncio.to_thread(self.book.stopped, run.thread_id, snapshot)

    async def cancelled(self, run: QueuedRun, graph: Graph, rolled_back: bool) -> None:
        """Record a cancelled run: an interrupted one ends ``cancelled`` with its report
        (``shipyard.lifecycle.cancel``); a rolled-back one is recorded as the state it returned
        to, or ``cancelled`` when no state is left."""
        if not rolled_back:
            await finish_cancelled(graph, self.context, run.thread_id, "the API")
        snapshot = await graph.aget_state({"configurable": {"thread_id": run.thread_id}})
        if snapshot.values:
            await self.after(run, snapshot)
            return
        why = "cancelled by the API (rollback)"
        await asyncio.to_thread(self.book.cancelled, run.thread_id, why)

    async def failed(self, run: QueuedRun, message: str) -> None:
        """Mark the Shipyard run failed (when its row exists)."""
        await asyncio.to_thread(self.book.failed, run.thread_id, message)


def check_resume(context: Any, thread_id: str, snapshot: StateSnapshot, resume: Any) -> None:
    """Refuse a resume that answers nothing, or an approval whose hash is out of date.

    Raises ``NotWaitingError`` when no interrupt is pending and ``StaleApprovalError`` when
    the decision's ``content_hash`` differs from the pending ``ApprovalRequest``'s — except
    for a rejection, which applies to the run whatever its content is now. The refusal is
    recorded on the run when ``context`` is Shipyard's.
    """
    if not snapshot.interrupts:
        raise NotWaitingError("the thread has no pending interrupt to resume")
    interrupt = snapshot.interrupts[0]
    decision = decision_in(resume, interrupt.id)
    if decision is None or not isinstance(context, Context):
        return
    RunBook(context.runs).refuse_stale(thread_id, interrupt.id, interrupt.value, decision)


__all__ = ["Ledger", "check_resume"]
