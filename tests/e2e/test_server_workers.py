"""Worker loops against the real queue: a loop that finishes a run goes idle without
looking at the queue again — unless a run was queued while no loop could take it."""

from __future__ import annotations

import asyncio
from typing import cast

from langgraph_sdk.client import LangGraphClient

from shipyard.server import ServerOptions
from shipyard.server.runs.events import EventLog
from shipyard.server.runs.queue import Pool, QueuedRun, RunQueue
from shipyard.server.runs.runtime import RunsRuntime
from shipyard.server.runs.worker import WorkerPool
from shipyard.server.stores.listener import Listener
from shipyard.store import psycopg_conninfo
from tests.e2e.runs_support import GRAPHS, ROOT, effects
from tests.support import eventually


class CountingQueue(RunQueue):
    """The real queue, counting claim statements."""

    claims = 0

    async def claim(self, worker_id: str) -> QueuedRun | None:
        self.claims += 1
        return await super().claim(worker_id)


async def test_a_loop_claims_after_a_run_only_when_a_wake_was_missed(
    start_server, make_client, tmp_path
) -> None:
    # No workers in the server: ONE loop of our own, polling only every 60 s, so whatever
    # it claims promptly it claims because it was woken or had a wake kept for it.
    running = start_server(ServerOptions(workers=0, graphs=GRAPHS, graphs_base=ROOT))
    state = running.state
    pool = cast(Pool, state.saver.conn)
    queue = CountingQueue(pool, lease_s=10)
    listener = Listener(psycopg_conninfo(state.url))
    await listener.start()
    workers = WorkerPool(state, RunsRuntime(queue, EventLog(pool), listener), 1, poll_s=60)
    sdk: LangGraphClient = make_client(running.url)
    try:
        await eventually(lambda: workers.waiting == 1, what="the loop idle")
        assert queue.claims == 1  # its first look at the (empty) queue

        tid = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(tid, "probe_chain", input={"count": 0})
        assert (await asyncio.wait_for(sdk.runs.join(tid, run["run_id"]), 30))["count"] == 10
        await eventually(lambda: workers.waiting == 1, what="the loop idle after the run")
        assert queue.claims == 2  # woken, claimed; no claim for nothing after the run

        # A run queued while the only loop executes: its wake is kept, and the loop takes
        # the run as soon as it is free — not at the next poll.
        (tmp_path / "s").mkdir()
        slow_tid = (await sdk.threads.create())["thread_id"]
        slow_input = {"dir": str(tmp_path / "s"), "hold_s": 1.0}
        slow = await sdk.runs.create(slow_tid, "slow", input=slow_input)
        await eventually(lambda: "hold-start" in effects(tmp_path / "s"), what="the slow run")
        behind_tid = (await sdk.threads.create())["thread_id"]
        behind = await sdk.runs.create(behind_tid, "probe_chain", input={"count": 0})
        await asyncio.wait_for(sdk.runs.join(slow_tid, slow["run_id"]), 30)
        done = await asyncio.wait_for(sdk.runs.join(behind_tid, behind["run_id"]), 30)
        assert done["count"] == 10
        await eventually(lambda: workers.waiting == 1, what="the loop idle after both runs")
        assert queue.claims == 4  # the slow run, then the kept wake: nothing more
    finally:
        await workers.stop(drain_s=5)
        await listener.stop()
