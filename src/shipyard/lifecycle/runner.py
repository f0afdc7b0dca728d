"""The runner: drives runs of the graph on Postgres for the CLI (and, later, server workers).

It owns one lifespan's resources (engine, checkpointer, context), starts runs, resumes them
after a crash or with a human's decision, and forks them from an older checkpoint with the
workspace rewound. It keeps Shipyard's own ``runs`` and ``approvals`` rows in step with the
checkpoints: every stop (end, interrupt, pause) is written before control returns.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StateSnapshot

from shipyard.context import Context
from shipyard.contracts import (
    TERMINAL_STATUSES,
    ApprovalDecision,
    ApprovalRequest,
    Decision,
    RunInput,
)
from shipyard.delivery.consent import delivery_command
from shipyard.errors import (
    NotWaitingError,
    UnknownRunError,
)
from shipyard.graph import build_graph
from shipyard.lifecycle.bookkeeping import RunBook, Stop
from shipyard.lifecycle.cancel import cancel_run
from shipyard.lifecycle.drive import drive
from shipyard.lifecycle.preflight import preflight
from shipyard.sandbox.launcher import Launcher
from shipyard.secret_values import load_secrets
from shipyard.settings import Role, Settings
from shipyard.store import (
    check_reachable,
    make_engine,
    migrate,
    open_checkpointer,
    resolve_database_url,
)
from shipyard.tools.pin import fork_workspace, pin_workspace

OnEvent = Callable[[str, Any], None]
"""Receives ``(node name, update)`` for each finished node, ``("custom", data)`` for what a
node reports while it works, and ``("tasks", event)`` when a node starts or ends."""


class Runner:
    """Starts, resumes and forks runs. Use ``async with Runner.open(settings) as runner``."""

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        context: Context,
        database_url: str = "",
    ) -> None:
        self.graph = graph
        self.context = context
        self.database_url = database_url
        """Where the runner waits for the database to come back after losing it."""
        self.book = RunBook(context.runs)
        """The runs' records, kept in step with every stop."""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        models: Mapping[Role, BaseChatModel] | None = None,
        launcher: Launcher | None = None,
        review: bool = False,
    ) -> AsyncIterator[Runner]:
        """Connect (starting the embedded Postgres when ``DATABASE_URL`` is unset), migrate,
        and open the checkpointer for the lifetime of the block."""
        load_secrets()  # the values to mask are those of the environment the run starts in
        url = resolve_database_url(settings)
        check_reachable(url)
        migrate(url)
        engine = make_engine(url)
        try:
            async with open_checkpointer(url) as saver:
                context = Context.build(
                    settings, engine, models=models, launcher=launcher, review=review
                )
                yield cls(build_graph().compile(checkpointer=saver), context, url)
        finally:
            engine.dispose()

    async def start(
        self, run_input: RunInput, *, run_id: str | None = None, on_event: OnEvent | None = None
    ) -> Stop:
        """Preflight the input (policy included: a broken one is refused before the run is
        recorded), record the run and drive it to its first stop."""
        preflight(run_input, policy=True)
        run_id = run_id or uuid.uuid4().hex[:12]
        self.context.runs.create_run(run_input.goal, run_input.repo, run_id=run_id)
        graph_input = run_input.model_dump(mode="json", exclude_none=True)
        return await self._drive(run_id, graph_input, _config(run_id), on_event)

    async def resume(
        self,
        run_id: str,
        decision: ApprovalDecision | None = None,
        *,
        on_event: OnEvent | None = None,
    ) -> Stop:
        """Continue a run stopped by a crash or a pause, or answer its pending approval."""
        run = self.context.runs.get_run(run_id)
        snapshot = await self.graph.aget_state(_config(run.id))
        if not snapshot.values:
            raise UnknownRunError(f"run {run.id} has no checkpoint to resume from")
        if snapshot.interrupts:
            if decision is None:
                raise NotWaitingError(
                    f"run {run.id} is waiting for approval: "
                    f"shipyard approve {run.id} [--reject | --revise] [--comment TEXT]"
                )
            interrupt = snapshot.interrupts[0]
            self.book.refuse_stale(run.id, interrupt.id, interrupt.value, decision)
            command: Command[str] = Command(resume={interrupt.id: decision.model_dump(mode="json")})
            self.book.answering(run.id, decision, interrupt.id)
            try:
                stop = await self._drive(run.id, command, _config(run.id), on_event)
            except BaseException:  # failed, taken over, database lost: record nothing now
                self.book.forget(run.id)
                raise
            if self.book.answer_open(run.id):  # a stop that recorded nothing (paused)
                after = await self.graph.aget_state(_config(run.id))
                self.book.settle(run.id, after.interrupts)
            return stop
        if decision is not None:
            raise NotWaitingError(f"run {run.id} is not waiting for an approval ({run.status})")
        ended = snapshot.values.get("status") in TERMINAL_STATUSES
        if not snapshot.next or (ended and snapshot.next != ("deliver",)):  # a cut-short delivery
            raise NotWaitingError(f"run {run.id} has already ended: {run.status}")
        pin_workspace(snapshot.values)
        return await self._drive(run.id, None, _config(run.id), on_event)

    async def guide(self, run_id: str, guidance: str, *, on_event: OnEvent | None = None) -> Stop:
        """Continue a run that ended as ``needs_human_review`` with a person's guidance.

        The guidance goes to the planner when there is no plan, else to the developer as
        feedback for a fresh attempt at the step that failed. Effects start a new journal
        epoch, so nothing from the failed attempts is replayed. Budgets are not reset.
        """
        run = self.context.runs.get_run(run_id)
        config = _config(run.id)
        values = (await self.graph.aget_state(config)).values
        if values.get("status") != "needs_human_review":
            raise NotWaitingError(
                f"run {run.id} is {run.status}; guidance continues only a run that ended "
                "as needs_human_review"
            )
        epoch = uuid.uuid4().hex[:8]
        update: dict[str, Any] = {"status": "running", "reason": "", "epoch": epoch}
        if values.get("plan") is None:
            update["plan_feedback"] = guidance
            as_node = "intake"
        else:
            update.update(
                feedback=f"A person reviewed the failed attempts and says: {guidance}",
                attempt=1,
                steps_done=[s for s in values.get("steps_done", []) if s.status == "passed"],
            )
            as_node = "refine"
        pin_workspace(values)
        guided = await self.graph.aupdate_state(config, update, as_node=as_node)
        return await self._drive(run.id, None, guided, on_event, new_epoch=epoch)

    async def decide(
        self,
        run_id: str,
        decision: Decision,
        *,
        by: str,
        comment: str = "",
        remember: list[str] | None = None,
        expected_hash: str | None = None,
        on_event: OnEvent | None = None,
    ) -> Stop:
        """Answer the pending approval. ``expected_hash`` is the content hash the person
        reviewed; when given, a different pending content is refused as stale."""
        request = await self.pending(run_id)
        if request is None:
            run = self.context.runs.get_run(run_id)
            raise NotWaitingError(f"run {run.id} is not waiting for an approval ({run.status})")
        answer = ApprovalDecision(
            decision=decision,
            by=by,
            comment=comment,
            content_hash=expected_hash or request.content_hash,
            remember=remember or [],
        )
        return await self.resume(run_id, answer, on_event=on_event)

    async def pending(self, run_id: str) -> ApprovalRequest | None:
        """The approval request the run waits for, if any."""
        run = self.context.runs.get_run(run_id)
        snapshot = await self.graph.aget_state(_config(run.id))
        if not snapshot.interrupts:
            return None
        return ApprovalRequest.from_interrupt(snapshot.interrupts[0].value)

    async def fork(
        self, run_id: str, checkpoint_id: str, *, on_event: OnEvent | None = None
    ) -> Stop:
        """Continue the run from an older checkpoint, its workspace rewound to that point.
        The commits the rewind drops from the branch stay reachable at a ref the stop's
        ``notice`` and the run's report name (``pin.fork_workspace``)."""
        run = self.context.runs.get_run(run_id)
        config = _config(run.id, checkpoint_id)
        snapshot = await self.graph.aget_state(config)
        if not snapshot.values or snapshot.config["configurable"].get("checkpoint_id") is None:
            raise UnknownRunError(f"run {run.id} has no checkpoint {checkpoint_id!r}")
        fork = fork_workspace(snapshot.values)
        epoch = uuid.uuid4().hex[:8]
        forked = await self.graph.aupdate_state(config, {"epoch": epoch, **fork.update()})
        self.context.runs.update_run(run.id, status="running", error=None)
        stop = await self._drive(run.id, None, forked, on_event, new_epoch=epoch)
        if fork.kept is None:
            return stop
        notice = f"the newer commits stay reachable at {fork.kept}"
        return dataclasses.replace(stop, notice=notice)

    async def deliver(self, run_id: str, *, by: str, on_event: OnEvent | None = None) -> Stop:
        """Deliver a completed run now, retry its failed delivery, or finish one that was
        cut short (``delivery.consent.delivery_command``); ``by``: the person asking."""
        run = self.context.runs.get_run(run_id)
        snapshot = await self.graph.aget_state(_config(run.id))
        command = delivery_command(run.id, snapshot.values, snapshot.next, by)
        return await self._drive(run.id, command, _config(run.id), on_event)

    async def history(self, run_id: str) -> list[StateSnapshot]:
        """The run's checkpoints, newest first."""
        run = self.context.runs.get_run(run_id)
        return [s async for s in self.graph.aget_state_history(_config(run.id))]

    async def cancel(self, run_id: str, *, by: str = "cli", wait_s: float = 60.0) -> Stop:
        """Stop a running or waiting run; it ends ``cancelled`` (``shipyard.lifecycle.cancel``)."""
        return await cancel_run(self, run_id, by=by, wait_s=wait_s)

    async def stop_of(self, run_id: str) -> Stop:
        """Record where the run stands now (on its row) and return it."""
        return await self._record_stop(run_id)

    async def _drive(
        self,
        run_id: str,
        graph_input: Any,
        config: RunnableConfig,
        on_event: OnEvent | None,
        *,
        new_epoch: str | None = None,
    ) -> Stop:
        """Run the graph to its next stop (``shipyard.lifecycle.drive``); ``new_epoch``: the journal
        timeline the update before this started (a fork, guidance), which has no entries yet."""
        return await drive(self, run_id, graph_input, config, on_event, new_epoch)

    async def _record_stop(self, run_id: str) -> Stop:
        """Record where the run stands (``RunBook.stopped``)."""
        return self.book.stopped(run_id, await self.graph.aget_state(_config(run_id)))


def _config(run_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": run_id}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable, "recursion_limit": 500}


__all__ = ["OnEvent", "Runner", "Stop"]
