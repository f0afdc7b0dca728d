"""Cancelling a run: its state says ``cancelled``, its report is written, its workspace and
branch are kept as they were.

``finish_cancelled`` is the one way a run becomes ``cancelled``, for the CLI and the server
alike: from the run's newest checkpoint it writes ``status: cancelled`` (as if ``escalate``
had, so the graph's next node is ``finalize``) and runs ``finalize``, which writes the
report for that status. Nothing is rewound or committed: the branch stays at the last
validated step and the workspace keeps what the cancelled node left.

``cancel_run`` is ``shipyard cancel``: it records the request on the run's row. A run driven
by a live process (it holds the run's lease) is stopped by that process, which sees the
request with its next heartbeat, kills the run's commands and calls ``finish_cancelled``;
``cancel_run`` waits for it. A run nobody drives (waiting at an approval, paused,
interrupted), or whose driver vanished meanwhile, is finished here under its lease.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel

from shipyard.context import Context
from shipyard.contracts import TERMINAL_STATUSES
from shipyard.effects import invocation
from shipyard.errors import NotWaitingError
from shipyard.lifecycle.bookkeeping import Stop
from shipyard.lifecycle.lease import RunLease
from shipyard.sandbox.isolation import inflight

if TYPE_CHECKING:
    from shipyard.lifecycle.runner import OnEvent, Runner

Graph = Pregel[Any, Any, Any, Any]

SERVER_HOLDER = "a server worker"


async def finish_cancelled(
    graph: Graph, context: Context, thread_id: str, by: str, on_event: OnEvent | None = None
) -> bool:
    """Mark the run cancelled in its state and run ``finalize``; ``False`` (nothing done)
    when the run had already ended or has no checkpoint."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}, "recursion_limit": 50}
    snapshot = await graph.aget_state(config)
    values = snapshot.values or {}
    if values.get("status") in TERMINAL_STATUSES and not snapshot.next:
        await asyncio.to_thread(context.runs.leases.clear_cancel, thread_id)
        return False
    if not values:
        return False
    update = {"status": "cancelled", "reason": f"cancelled by {by}"}
    cancelled = await graph.aupdate_state(config, update, as_node="escalate")
    inflight.stop(thread_id)  # the report needs no command; none may start any more
    with invocation(), inflight.commands_of(thread_id):
        async for chunk in graph.astream(
            None, cancelled, context=context, stream_mode="updates", durability="sync"
        ):
            for node, node_update in dict(chunk).items():
                if on_event is not None:
                    on_event(node, node_update)
    # Acted on: a later fork or guidance of the run must not be stopped by it again.
    await asyncio.to_thread(context.runs.leases.clear_cancel, thread_id)
    return True


async def cancel_run(runner: Runner, run_ref: str, *, by: str, wait_s: float) -> Stop:
    """``shipyard cancel``: stop the run (see the module docstring); waits up to ``wait_s``
    for a live driver to stop it before finishing it here."""
    runs = runner.context.runs
    run = runs.get_run(run_ref)
    if run.status in TERMINAL_STATUSES:
        raise NotWaitingError(f"run {run.id} has already ended: {run.status}")
    holder = runs.leases.holder(run.id)
    if holder == SERVER_HOLDER:
        raise NotWaitingError(
            f"run {run.id} is driven by a Shipyard server: cancel it there "
            f"(POST /threads/{run.thread_id}/runs/<run_id>/cancel)"
        )
    runs.leases.request_cancel(run.id, by)
    deadline = time.monotonic() + wait_s
    while holder is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if runs.get_run(run.id).status in TERMINAL_STATUSES:  # cancelled there, or ended
            runs.leases.clear_cancel(run.id)
            return await runner.stop_of(run.id)
        holder = runs.leases.holder(run.id)
    async with RunLease.hold(runs.leases, run.id):
        if await finish_cancelled(runner.graph, runner.context, run.id, by):
            return await runner.stop_of(run.id)
        return await _without_state(runner, run.id, by)


async def _without_state(runner: Runner, run_id: str, by: str) -> Stop:
    """A run with no checkpoint yet (its process died in intake): only its row records it."""
    snapshot = await runner.graph.aget_state({"configurable": {"thread_id": run_id}})
    if snapshot.values:  # it ended meanwhile
        return await runner.stop_of(run_id)
    reason = f"cancelled by {by} before its first checkpoint"
    runner.book.cancelled(run_id, reason)
    runner.context.runs.leases.clear_cancel(run_id)
    return Stop(run_id, "cancelled", error=reason)
