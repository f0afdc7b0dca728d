"""Run workers: asyncio tasks that claim queued runs and execute them.

``start_workers(state, n)`` starts ``n`` worker loops in the server process (the app's
lifespan calls it and ``await pool.stop(drain_s)`` at shutdown);
``worker_process.run_worker_process`` is the ``shipyard worker`` command — the same loops in
a process of their own, on any machine that reaches the database. A loop claims a run
(woken by ``NOTIFY`` or a poll), executes it while a heartbeat renews its lease every third
of the lease, and stops the execution when the run is cancelled or the lease was lost.
``stop`` drains: running runs get ``drain_s`` to finish, then go back to the queue to
continue elsewhere.

The lease is the queue's (``ServerOptions.lease_s``, default ``runtime.DEFAULT_LEASE_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any, cast

from langgraph.types import StateSnapshot

from shipyard.server.deps import ServerState
from shipyard.server.http.errors import purge
from shipyard.server.http.shapes import Json
from shipyard.server.runs.execution import Deps, Execution, ThreadStatus
from shipyard.server.runs.queue import Pool, QueuedRun
from shipyard.server.runs.runtime import RunsRuntime
from shipyard.server.stores.listener import CANCEL_CHANNEL, EVENTS_CHANNEL, RUNS_CHANNEL

log = logging.getLogger(__name__)


class WorkerPool:
    """``n`` worker loops sharing one queue and listener."""

    def __init__(self, state: ServerState, runtime: RunsRuntime, n: int, poll_s: float) -> None:
        self.runtime = runtime
        self.poll_s = poll_s
        self.telemetry = state.telemetry
        self.deps = Deps(
            queue=runtime.queue,
            events=runtime.events,
            graphs=state.graphs,
            set_thread_status=_thread_status_setter(state),
            pool=cast(Pool, state.saver.conn),
        )
        prefix = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.worker_ids = [f"{prefix}:{i}" for i in range(n)]
        self.running: dict[str, Execution] = {}
        self._wakes = {w: asyncio.Event() for w in self.worker_ids}
        self._idle: list[str] = []  # loops waiting after finding nothing, longest first
        self._executing: set[str] = set()
        self._claiming: set[str] = set()  # loops inside a claim statement right now
        self._missed = False  # a wake came while no loop could look at the queue
        self._checks: dict[str, asyncio.Event] = {}
        self._reserved: set[str] = set()  # idle loops set aside for a run created here
        self._handed: dict[str, QueuedRun] = {}  # runs created already claimed by a loop
        self._stopping = False
        self._unsubscribe = [
            runtime.listener.on(RUNS_CHANNEL, self._wake),
            runtime.listener.on(CANCEL_CHANNEL, self._check),
        ]
        self._loops = [asyncio.create_task(self._loop(w), name=w) for w in self.worker_ids]

    @property
    def waiting(self) -> int:
        """How many loops wait for a wake or their next poll: each has finished its last
        look at the queue (or decided it needs none) and claims nothing until woken."""
        return len(self._idle)

    async def stop(self, drain_s: float) -> None:
        """Stop claiming; give running runs ``drain_s`` seconds, then re-queue the rest."""
        self._stopping = True
        self._wake("")
        running = [e.task for e in self.running.values() if e.task is not None]
        if running:
            await asyncio.wait(running, timeout=drain_s)
        for execution in list(self.running.values()):
            execution.stop("shutdown")
        await asyncio.gather(*self._loops, return_exceptions=True)
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def _wake(self, _payload: str) -> None:
        """A run may be claimable: wake every loop that is claiming right now (its claim may
        have missed it) and ONE idle loop. A loop that claims a run passes the wake on, so
        a burst of runs still reaches every idle loop without each notification making
        every idle loop query the queue. When no loop is claiming or idle (all execute, or
        are set aside for a run created here), the wake is kept for the next loop that
        finishes a run: only then does a finished loop look at the queue before it idles."""
        for worker_id in self._claiming:
            self._wakes[worker_id].set()
        if self._stopping:
            for event in self._wakes.values():
                event.set()
        elif self._idle:
            self._wakes[self._idle.pop(0)].set()
        elif not self._claiming:
            self._missed = True

    def _check(self, run_id: str) -> None:
        for key, event in self._checks.items():
            if run_id in (key, ""):
                event.set()

    def reserve(self) -> str | None:
        """Set an idle loop aside for a run this process is creating (``enqueue(...,
        claim_for=...)``); ``None`` when none is idle. Always follow with ``handoff``."""
        if self._stopping or not self._idle:
            return None
        worker_id = self._idle.pop()  # the most recently idle
        self._reserved.add(worker_id)
        return worker_id

    def handoff(self, worker_id: str, run: QueuedRun | None) -> None:
        """Give a reserved loop the run created claimed by it (``None``: it was queued
        instead; the loop goes back to the queue)."""
        self._reserved.discard(worker_id)
        if run is not None:
            self._handed[worker_id] = run
        self._wakes[worker_id].set()

    async def _loop(self, worker_id: str) -> None:
        wake = self._wakes[worker_id]
        look = True  # at the queue: at start, after a wake or poll, after a missed wake
        while not self._stopping or worker_id in self._handed:
            wake.clear()
            run = self._handed.pop(worker_id, None)
            if run is None and (look or self._missed):
                self._missed = False
                run = await self._claim(worker_id)
            look = True
            if run is None:
                if wake.is_set():
                    continue  # woken while claiming: look again
                self._idle.append(worker_id)
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=self.poll_s)
                    while worker_id in self._reserved:  # until ``handoff``
                        wake.clear()
                        await wake.wait()
                finally:
                    if worker_id in self._idle:
                        self._idle.remove(worker_id)
                continue
            if run.more:
                self._wake("")  # let one idle loop take the next
            execution = Execution(run, self.deps, worker_id)
            self.running[run.run_id] = execution
            self._executing.add(worker_id)
            try:
                await self._execute(execution)
            except Exception:
                log.exception("worker %s: run %s crashed its worker", worker_id, run.run_id)
            finally:
                self._executing.discard(worker_id)
                self.running.pop(run.run_id, None)
                # Waiters in this process learn the run ended without the NOTIFY round trip.
                self.runtime.listener.local(EVENTS_CHANNEL, run.run_id)
            # Every change that makes a run claimable wakes a loop (``_wake``): unless a
            # wake was missed meanwhile, idle at once instead of claiming for nothing.
            look = False

    async def _claim(self, worker_id: str) -> QueuedRun | None:
        self._claiming.add(worker_id)
        try:
            return await self.runtime.queue.claim(worker_id)
        except Exception:
            log.exception("worker %s could not claim a run; retrying", worker_id)
            await purge(self.runtime.queue.pool)  # drop connections a restart killed
            return None
        finally:
            self._claiming.discard(worker_id)

    async def _execute(self, execution: Execution) -> None:
        run_id = execution.run.run_id
        check = self._checks[run_id] = asyncio.Event()
        execution.task = asyncio.create_task(self.telemetry.traced(execution), name=f"run-{run_id}")
        beat = asyncio.create_task(self._heartbeat(execution, check))
        try:
            await asyncio.shield(execution.task)
        finally:
            beat.cancel()
            self._checks.pop(run_id, None)

    async def _heartbeat(self, execution: Execution, check: asyncio.Event) -> None:
        queue = self.runtime.queue
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(check.wait(), timeout=queue.lease_s / 3)
            check.clear()
            try:
                ours, action = await queue.renew(execution.run.run_id, execution.worker_id)
            except Exception:
                log.exception("heartbeat of run %s failed", execution.run.run_id)
                continue
            if not ours:
                execution.stop("lease_lost")
            elif action is not None:
                execution.stop(action)


async def start_workers(state: ServerState, n: int, *, poll_s: float = 2.0) -> WorkerPool:
    """Start ``n`` worker loops in this process; ``await pool.stop(drain_s)`` to stop."""
    return WorkerPool(state, state.runtime, n, poll_s)


def _thread_status_setter(state: ServerState) -> Any:
    async def set_status(
        thread_id: str,
        status: ThreadStatus,
        snapshot: StateSnapshot | None = None,
        error: Json = None,
    ) -> None:
        values = snapshot.values if snapshot is not None else None
        interrupts = None
        if snapshot is not None:
            interrupts = {t.id: list(t.interrupts) for t in snapshot.tasks if t.interrupts}
        await asyncio.to_thread(
            state.threads.set_status,
            thread_id,
            status,
            values=values,
            interrupts=interrupts,
            error=error,
        )

    return set_status


__all__ = [
    "WorkerPool",
    "start_workers",
]
