"""Executing one claimed run: drive the graph, store its stream, record how it ended.

A run's ``kwargs`` (written by the routes) hold everything the graph call needs:
``graph_id``, ``input``, ``command``, ``config``, ``context``, ``stream_mode``,
``interrupt_before/after``, ``durability``, ``checkpoint_id``, ``subgraphs``.

Outcomes: the graph returned — run ``success`` and thread ``interrupted``
when it stopped at ``interrupt()`` or a breakpoint, else ``idle``; the graph raised — an
``error`` event, run ``error``, thread ``error``; cancelled — run ``interrupted`` (or, for
``rollback``, the run and the checkpoints it wrote deleted). A retry after a lost lease
continues from the thread's latest checkpoint when the first attempt made progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot, StreamMode

from shipyard.context import Context
from shipyard.effects import invocation, new_timeline
from shipyard.sandbox.isolation import inflight
from shipyard.server.http.encoding import to_jsonable
from shipyard.server.http.shapes import Json, JsonObject
from shipyard.server.runs.events import EventBatch, EventLog
from shipyard.server.runs.graph_call import (
    MODE_OF,
    ThreadStatus,
    command_of,
    default_durability,
    event_of,
    has_checkpointer,
    run_config,
    thread_outcome,
)
from shipyard.server.runs.ledger import Ledger
from shipyard.server.runs.queue import Pool, QueuedRun, RunQueue, ThreadOutcome
from shipyard.server.runs.stream_modes import converted, root_config, stream_plan
from shipyard.server.stores.checkpoints import thread_config
from shipyard.server.stores.graphs import GraphRegistry, RegisteredGraph
from shipyard.store.outage import database_outage
from shipyard.store.saver import ShipyardSaver, thread_known_empty
from shipyard.tools.pin import fork_workspace

log = logging.getLogger(__name__)


class SetThreadStatus(Protocol):
    """Records a thread's status and, when given, its latest state and error."""

    def __call__(
        self,
        thread_id: str,
        status: ThreadStatus,
        snapshot: StateSnapshot | None = None,
        error: Json = None,
    ) -> Awaitable[None]: ...


StopReason = Literal["interrupt", "rollback", "lease_lost", "shutdown"]


@dataclass
class Deps:
    """What executing a run needs from the process."""

    queue: RunQueue
    events: EventLog
    graphs: GraphRegistry
    set_thread_status: SetThreadStatus
    pool: Pool
    """The checkpointer's pool (rollback deletes checkpoints through it)."""


class Execution:
    """One attempt at one run, by one worker. ``stop(reason)`` cancels it from outside."""

    def __init__(self, run: QueuedRun, deps: Deps, worker_id: str) -> None:
        self.run = run
        self.deps = deps
        self.worker_id = worker_id
        self.reason: StopReason | None = None
        self.outcome: Literal["success", "waiting", "error"] | None = None  # for telemetry
        self.task: asyncio.Task[None] | None = None
        # The thread's checkpoint before the run; known once ``_start`` ran (a retry reads
        # it from the row). Rollback deletes only what came after it.
        self.start_known = run.attempts > 1 or run.cancel_action is not None
        self.start_checkpoint = run.start_checkpoint_id
        self.new_epoch: str | None = None
        """A journal timeline this attempt begins (a run from a named checkpoint)."""

    def stop(self, reason: StopReason) -> None:
        """Cancel the graph call; the run is then recorded according to ``reason``."""
        if self.reason is None and self.task is not None:
            self.reason = reason
            self.task.cancel()

    async def __call__(self) -> None:
        """Execute and record the outcome; never raises except ``CancelledError`` of the
        caller."""
        run = self.run
        if run.cancel_action is not None:  # cancelled while its worker was dead
            self.reason = run.cancel_action
            await self._cancelled(self._graph_or_none())
            return
        registered = self._graph_or_none()
        if registered is None:
            await self._fail(None, f"graph {run.kwargs.get('graph_id')!r} is not served here")
            return
        self.task = asyncio.current_task()
        try:
            await self._drive(registered)
        except asyncio.CancelledError:
            if self.reason is None:
                raise
            await asyncio.shield(self._cancelled(registered))
        except Exception as err:
            if database_outage(err):
                # Not the run's fault: leave it to be claimed again (now, or when the lease
                # runs out if the database is still down); it continues from its checkpoint.
                log.warning("run %s interrupted by a database outage: %s", run.run_id, err)
                with contextlib.suppress(Exception):
                    await self.deps.queue.release(run.run_id, self.worker_id)
                return
            log.info("run %s failed: %s: %s", run.run_id, type(err).__name__, err)
            await self._fail(registered, err)

    def _graph_or_none(self) -> RegisteredGraph | None:
        graph_id = str(self.run.kwargs.get("graph_id", ""))
        return self.deps.graphs.graphs.get(graph_id)

    async def _drive(self, registered: RegisteredGraph) -> None:
        run, deps = self.run, self.deps
        graph = registered.graph
        # The claim marked the thread ``busy`` (same statement).
        graph_input, config = await self._start(registered)
        # Shipyard's graph gets its Context; other graphs the request's ``context`` dict.
        context = registered.context() if registered.context_factory else run.kwargs.get("context")
        if isinstance(context, Context):  # the run's owner: check cache entries are per owner
            context = dataclasses.replace(context, owner=run.owner)
        ledger = Ledger.of(context)
        if ledger is not None:
            await ledger.before(run, graph_input)
        # Only the run's own attempts write its events: a first attempt starts at 1.
        first = 1 if run.attempts <= 1 else await deps.events.next_seq(run.run_id)
        saver = graph.checkpointer
        # Stream events go in the transactions of the checkpoint writes.
        carrier = saver.carry if isinstance(saver, ShipyardSaver) else None
        events = EventBatch(deps.events, run.run_id, first, carrier)
        try:
            # invocation(): journal timelines begun by this run's nodes (effects)
            with invocation(), inflight.driving(run.thread_id), self._head_hint(registered, config):
                if self.new_epoch is not None:
                    new_timeline(run.thread_id, self.new_epoch)
                await self._stream(registered, graph_input, config, context, events)
            await events.flush()  # every event stored before the run can be seen ended
        finally:
            await events.settle()  # never leave a write in flight behind a failed run
        snapshot = await graph.aget_state(thread_config(run.thread_id))
        if ledger is not None:
            await ledger.after(run, snapshot)
        status: ThreadStatus = "interrupted" if snapshot.next else "idle"
        await deps.queue.finish(
            run.run_id, self.worker_id, "success", thread=thread_outcome(status, snapshot)
        )
        self.outcome = "waiting" if snapshot.next else "success"

    async def _stream(
        self,
        registered: RegisteredGraph,
        graph_input: Any,
        config: RunnableConfig,
        context: Any,
        events: EventBatch,
    ) -> None:
        """The graph call, adding what it streams to ``events``: the plain ``astream`` loop,
        or for ``events`` / ``messages`` the conversions of ``server.stream_modes``."""
        run, graph, kwargs = self.run, registered.graph, self.run.kwargs
        plan = stream_plan(kwargs.get("stream_mode"))
        call: JsonObject = {
            "context": context,
            "interrupt_before": kwargs.get("interrupt_before"),
            "interrupt_after": kwargs.get("interrupt_after"),
            "durability": kwargs.get("durability") or default_durability(registered),
            "subgraphs": bool(kwargs.get("subgraphs")),
        }
        if plan.converts:
            root = root_config(config, run.run_id, run.attempts, registered.graph_id, graph.name)
            async for name, data in converted(graph, graph_input, root, plan, **call):
                events.add(name, data)
            return
        # the API modes LangGraph lacks (events, messages) were converted above
        modes = cast(
            "list[StreamMode]", [MODE_OF.get(m, m) for m in kwargs.get("stream_mode") or ["values"]]
        )
        async for part in graph.astream(graph_input, config, stream_mode=modes, **call):
            events.add(*event_of(part))

    def _head_hint(
        self, registered: RegisteredGraph, config: RunnableConfig
    ) -> contextlib.AbstractContextManager[None]:
        """Tell Shipyard's saver what the claim saw: a thread with no checkpoint yet (the
        first run of a new thread) needs no read of its head."""
        run = self.run
        empty = run.head_known and run.latest_checkpoint_id is None
        asks = config.get("configurable", {}).get("checkpoint_id")
        if empty and not asks and isinstance(registered.graph.checkpointer, ShipyardSaver):
            return thread_known_empty(run.thread_id)
        return contextlib.nullcontext()

    async def _start(self, registered: RegisteredGraph) -> tuple[Any, RunnableConfig]:
        """The graph input and config of this attempt."""
        run, kwargs = self.run, self.run.kwargs
        # The claim read the thread's newest checkpoint (and, on a first attempt, recorded it
        # as the run's start).
        latest = run.latest_checkpoint_id if has_checkpointer(registered) else None
        config = run_config(run)
        if run.attempts <= 1:
            self.start_checkpoint, self.start_known = latest, True
        elif latest != run.start_checkpoint_id:
            # An earlier attempt wrote checkpoints: continue from the newest one.
            return None, run_config(run, with_checkpoint=False)
        command = kwargs.get("command")
        if command:
            return command_of(command), config
        graph_input = kwargs.get("input")
        if graph_input is None and kwargs.get("checkpoint_id") and registered.pins_workspace:
            return None, await self._fork(registered, config)
        return graph_input, config

    async def _fork(self, registered: RegisteredGraph, config: RunnableConfig) -> RunnableConfig:
        """A run from a named checkpoint (Studio's "re-run from here") is a fork, as
        ``update_state`` from a checkpoint is: the files are rewound to what the checkpoint
        records and a new journal timeline begins, so no effect of the abandoned line (a
        commit) is replayed into this one; the commits the rewind drops from the branch stay
        reachable at a ref the state (and report) lists. Returns the fork's config."""
        snapshot = await registered.graph.aget_state(config)
        fork = await asyncio.to_thread(fork_workspace, snapshot.values)
        self.new_epoch = uuid.uuid4().hex[:8]
        update = {"epoch": self.new_epoch, **fork.update()}
        return await registered.graph.aupdate_state(config, update)

    async def _fail(self, registered: RegisteredGraph | None, err: Exception | str) -> None:
        run, deps = self.run, self.deps
        self.outcome = "error"
        if isinstance(err, Exception):
            data = {"error": type(err).__name__, "message": str(err)}
        else:
            data = {"error": "RuntimeError", "message": err}
        seq = await deps.events.next_seq(run.run_id)
        await deps.events.append(run.run_id, seq, [("error", data)])
        if registered is not None:
            ledger = Ledger.of(registered.context())
            if ledger is not None:
                await ledger.failed(run, data["message"])
        reason = f"{data['error']}: {data['message']}"
        outcome = ThreadOutcome("error", error=to_jsonable(data))
        await deps.queue.finish(run.run_id, self.worker_id, "error", reason, thread=outcome)

    async def _cancelled(self, registered: RegisteredGraph | None) -> None:
        run, deps, reason = self.run, self.deps, self.reason
        if reason == "lease_lost":
            return  # another worker owns the run now
        if reason == "shutdown":
            await deps.queue.release(run.run_id, self.worker_id)
            await deps.set_thread_status(run.thread_id, "busy")
            return
        if reason == "rollback" and self.start_known:
            await _delete_checkpoints(deps.pool, run.thread_id, self.start_checkpoint)
        if registered is None:
            await deps.set_thread_status(run.thread_id, "idle")
        else:
            ledger = Ledger.of(registered.context())
            if ledger is not None:  # Shipyard's run ends ``cancelled``, with its report
                await ledger.cancelled(run, registered.graph, reason == "rollback")
            # A cancelled run leaves the thread at its last checkpoint: idle, or still
            # waiting at the interrupt it stopped at before.
            snapshot = await registered.graph.aget_state(thread_config(self.run.thread_id))
            status: ThreadStatus = "interrupted" if snapshot.interrupts else "idle"
            await deps.set_thread_status(run.thread_id, status, snapshot)
        if reason == "rollback":
            await deps.queue.delete([run.run_id])
        else:
            await deps.queue.finish(run.run_id, self.worker_id, "interrupted")


async def _delete_checkpoints(pool: Pool, thread_id: str, start: str | None) -> None:
    """Remove every checkpoint a run wrote: those newer than ``start`` (checkpoint ids are
    time-ordered UUIDv6 strings; ``None`` means the thread had none)."""
    async with pool.connection() as conn, conn.transaction():
        for table in ("checkpoint_writes", "checkpoints"):
            await conn.execute(
                f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id > %s",  # noqa: S608
                [thread_id, start or ""],
            )


__all__ = [
    "MODE_OF",
    "Deps",
    "Execution",
    "SetThreadStatus",
    "StopReason",
    "ThreadStatus",
    "thread_outcome",
]
