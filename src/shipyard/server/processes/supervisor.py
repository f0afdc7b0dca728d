"""Worker processes started by ``shipyard serve`` (``--worker-processes N``).

One Python process runs one thread of Python at a time, and a run's graph steps and
database driver cost far more than answering its HTTP requests. By default ``serve`` runs
its workers in its own process; with ``--worker-processes N`` it answers HTTP in its own
process and runs graphs in ``N`` worker processes it starts (``spawn``) and supervises —
the deployment of ``shipyard serve --workers 0`` plus ``N`` ``shipyard worker`` processes,
under one command, for a machine with cores to spare. Runs reach the workers through the queue
in Postgres (``FOR UPDATE SKIP LOCKED``: whichever worker is free takes the next run), as
they reach workers on other machines. A worker process that dies is replaced (its runs
continue elsewhere once their leases expire, as always); one that cannot start stops the
server with its error; SIGTERM/SIGINT drain every worker process and the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from pathlib import Path
from types import FrameType

from shipyard.errors import UserInputError
from shipyard.server.app import ServerOptions
from shipyard.settings import Settings

PROCESSES_ENV = "SHIPYARD_WORKER_PROCESSES"
"""Default for ``--worker-processes``."""

WORKER_POOL = 10
"""Checkpointer pool size of one worker process."""

START_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0
"""How long stopping waits for a process beyond its drain time before killing it."""

PR_SET_PDEATHSIG = 1
"""``prctl`` option: the signal a process gets when its parent dies (Linux)."""

Started = tuple[BaseProcess, Event]


def default_processes() -> int:
    """``SHIPYARD_WORKER_PROCESSES``, else 0 (the workers run in the server process)."""
    given = os.environ.get(PROCESSES_ENV)
    return parse_processes(given, PROCESSES_ENV) if given else 0


def parse_processes(text: str, source: str = "--worker-processes") -> int:
    """A process count from the command line or the environment (``UserInputError`` if bad)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UserInputError(f"{source} must be a whole number (0 or more), not {text!r}")
    return value


class WorkerProcesses:
    """``count`` supervised worker processes, each with ``options.workers`` worker loops."""

    def __init__(self, count: int, options: ServerOptions) -> None:
        self.count = count
        self.options = replace(options, pool_size=WORKER_POOL)
        self._encoded = json.dumps(_encode(self.options))
        self._context = multiprocessing.get_context("spawn")
        self.children: list[Started] = []

    def _start(self) -> Started:
        ready = self._context.Event()
        child = self._context.Process(
            target=_worker_child, args=(self._encoded, ready), name="shipyard-worker"
        )
        child.start()
        return child, ready

    async def start(self) -> None:
        """Start every process; return once all are running (``UserInputError`` if one
        cannot start: the database is unreachable, a graph does not load, ...)."""
        self.children = [self._start() for _ in range(self.count)]
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(ready.is_set() for _, ready in self.children):
            self._check_started(deadline)
            await asyncio.sleep(0.1)

    def _check_started(self, deadline: float) -> None:
        for child, ready in self.children:
            if not ready.is_set() and not child.is_alive():
                raise UserInputError(
                    f"a worker process could not start (exit code {child.exitcode}); "
                    "its error is above"
                )
        if time.monotonic() > deadline:
            raise UserInputError(f"a worker process did not start in {START_TIMEOUT_S:.0f} s")

    async def supervise(self, poll_s: float = 0.5, retry_s: float = 5.0) -> None:
        """Replace processes that exit (runs until cancelled). A replacement that exits
        before it started is tried again every ``retry_s`` (the database may be down)."""
        while True:
            await asyncio.sleep(poll_s)
            for i, (child, ready) in enumerate(self.children):
                if child.is_alive():
                    continue
                started = ready.is_set()
                if not started:
                    await asyncio.sleep(retry_s)
                print(
                    f"shipyard serve: worker process {child.pid} exited (code "
                    f"{child.exitcode}{'' if started else ', before it started'}); "
                    "starting another",
                    file=sys.stderr,
                    flush=True,
                )
                self.children[i] = self._start()

    def stop(self) -> None:
        """SIGTERM every process (each drains its runs), wait, kill what is left (blocks)."""
        for child, _ in self.children:
            if child.is_alive() and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.drain_s + STOP_GRACE_S
        for child, _ in self.children:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                child.kill()
                child.join()


async def serve_with_worker_processes(
    serve: Callable[[ServerOptions], Awaitable[None]],
    count: int,
    options: ServerOptions,
) -> None:
    """Start ``count`` worker processes, then ``await serve(options with no workers)`` (the
    HTTP server) while supervising them; stop them when it returns."""
    workers = WorkerProcesses(count, options)
    try:
        await workers.start()
        supervisor = asyncio.create_task(workers.supervise())
        # uvicorn raises the signal it stopped on again once stopped, to die of it: let it
        # land here instead, so the worker processes are stopped first.
        previous = signal.signal(signal.SIGTERM, _stopped)
        try:
            await serve(replace(options, workers=0))
        finally:
            signal.signal(signal.SIGTERM, previous)
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
    finally:
        await asyncio.to_thread(workers.stop)


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM after the HTTP server stopped: nothing left to do here."""


def _worker_child(encoded: str, ready: Event) -> None:
    """One worker process (``shipyard worker`` with the server's options)."""
    from shipyard.server.processes.worker_process import run_worker_process  # noqa: PLC0415

    _stop_with_parent()
    options = _decode(json.loads(encoded))
    asyncio.run(
        run_worker_process(
            Settings.from_env(),
            options.workers,
            drain_s=options.drain_s,
            graphs=options.graphs,
            graphs_base=options.graphs_base,
            pool_size=options.pool_size,
            started=ready.set,
        )
    )


def _stop_with_parent() -> None:
    """On Linux, get SIGTERM (drain and exit) if the server process dies without stopping
    this one (SIGKILL, OOM); elsewhere the worker keeps working like ``shipyard worker``."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _encode(options: ServerOptions) -> dict[str, object]:
    return {
        "workers": options.workers,
        "drain_s": options.drain_s,
        "graphs": options.graphs,
        "graphs_base": str(options.graphs_base) if options.graphs_base else None,
        "pool_size": options.pool_size,
    }


def _decode(data: dict[str, object]) -> ServerOptions:
    base = data.get("graphs_base")
    return ServerOptions(
        workers=int(str(data["workers"])),
        drain_s=float(str(data["drain_s"])),
        graphs=data["graphs"],  # type: ignore[arg-type]
        graphs_base=Path(str(base)) if base else None,
        pool_size=int(str(data["pool_size"])),
    )
