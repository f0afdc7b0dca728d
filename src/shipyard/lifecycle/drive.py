"""Driving a run of the graph to its next stop, for the runner: under the run's lease, with
its commands tracked, through a lost database, and stopped by a cancel request.

``drive`` holds the run's lease (``shipyard.lifecycle.lease``) while it streams the graph. A cancel
request seen by the lease's heartbeat ends the run ``cancelled`` (``shipyard.lifecycle.cancel``).
A database that goes away mid-run is waited for (``store.outage``): when it answers again
the drive takes the lease back, pins the workspace to the newest checkpoint and continues
from there, as ``shipyard resume`` would; when it does not, ``DatabaseUnavailableError``
(exit code 3) leaves the run at its last checkpoint for ``shipyard resume``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from langchain_core.runnables import RunnableConfig

from shipyard.effects import invocation, new_timeline
from shipyard.errors import ModelUnavailableError
from shipyard.lifecycle.bookkeeping import Stop
from shipyard.lifecycle.cancel import finish_cancelled
from shipyard.lifecycle.lease import RunCancelledError, RunLease, RunTakenOverError
from shipyard.sandbox.isolation import inflight
from shipyard.store.outage import database_outage, outlast_outage
from shipyard.tools.pin import pin_workspace

if TYPE_CHECKING:
    from shipyard.lifecycle.runner import OnEvent, Runner


async def drive(
    runner: Runner,
    run_id: str,
    graph_input: Any,
    config: RunnableConfig,
    on_event: OnEvent | None,
    new_epoch: str | None,
) -> Stop:
    """Run the graph to its next stop and record it (see the module docstring)."""
    runs = runner.context.runs
    lost_at: float | None = None  # when the database went away, while it is away
    async with RunLease.hold(runs.leases, run_id) as lease:
        runs.update_run(run_id, status="running", error=None)
        while True:
            try:
                if lost_at is not None:  # it came back: continue from the checkpoint
                    graph_input, config, new_epoch = None, await _rejoin(runner, lease), None
                    if on_event is not None:
                        on_event("notice", "the database is back; continuing")
                    lost_at = None
                await lease.guard(_stream(runner, run_id, graph_input, config, on_event, new_epoch))
                return await runner.stop_of(run_id)
            except RunCancelledError:
                by = runs.get_run(run_id).cancel_by or "cli"
                await finish_cancelled(runner.graph, runner.context, run_id, by, on_event)
                return await runner.stop_of(run_id)
            except RunTakenOverError:
                raise  # the run is another process's now: record nothing over its records
            except ModelUnavailableError as err:
                runs.update_run(run_id, status="paused", error=str(err))
                return Stop(run_id, "paused", error=str(err))
            except Exception as err:
                if not database_outage(err):
                    runs.update_run(run_id, status="failed", error=f"{type(err).__name__}: {err}")
                    raise
                lost_at = await outlast_outage(runner.database_url, run_id, on_event, lost_at)


async def _rejoin(runner: Runner, lease: RunLease) -> RunnableConfig:
    """After an outage: take the lease back and pin the workspace to the checkpoint."""
    await lease.acquire()
    config: RunnableConfig = {"configurable": {"thread_id": lease.run_id}, "recursion_limit": 500}
    pin_workspace((await runner.graph.aget_state(config)).values)
    return config


async def _stream(
    runner: Runner,
    run_id: str,
    graph_input: Any,
    config: RunnableConfig,
    on_event: OnEvent | None,
    new_epoch: str | None,
) -> None:
    with invocation(), inflight.driving(run_id):
        if new_epoch is not None:
            new_timeline(run_id, new_epoch)
        async for mode, chunk in runner.graph.astream(
            graph_input,
            config,
            context=runner.context,
            stream_mode=["updates", "custom", "tasks"],
            durability="sync",
        ):
            if on_event is None:
                continue
            if mode in ("custom", "tasks"):
                on_event(mode, chunk)
                continue
            for node, update in cast(dict[str, Any], chunk).items():
                on_event(node, update)
