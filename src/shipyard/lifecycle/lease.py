"""The lease a process holds on a run while it drives it, and the heartbeat that keeps it.

``RunLease.hold`` takes the run's lease (``store/run_leases.py``) or refuses, naming who
holds it; while the block runs a heartbeat renews it every ``beat_s`` seconds and reads the
run's cancel request. ``guard`` runs the drive of the graph as a task the heartbeat can
stop: on a cancel request the run's commands are killed (``isolation.inflight``), the task
is cancelled and ``RunCancelledError`` is raised; when another process took the lease over
(this one stalled past its expiry) the drive stops with ``RunTakenOverError``.

A lease of a process on this host that no longer exists is taken over at once instead of
waiting for its expiry (a crashed ``shipyard run`` followed by ``shipyard resume``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from shipyard.errors import NotWaitingError
from shipyard.sandbox.isolation import inflight
from shipyard.store.run_holders import dead_here
from shipyard.store.run_leases import RunLeases, new_owner

T = TypeVar("T")
log = logging.getLogger(__name__)

LEASE_ENV = "SHIPYARD_LEASE_S"
"""Seconds a lease lasts without renewal (default 30): how long a run whose process died
still shows ``running`` before it shows ``interrupted``."""


class RunCancelledError(Exception):
    """The run's drive was stopped because someone asked to cancel it."""


class RunTakenOverError(NotWaitingError):
    """Another process took the run's lease over: it drives the run now."""


def lease_seconds() -> float:
    """The lease duration from ``SHIPYARD_LEASE_S`` (at least one second)."""
    try:
        return max(1.0, float(os.environ.get(LEASE_ENV, "30")))
    except ValueError:
        return 30.0


class RunLease:
    """One process's lease on one run (see the module docstring)."""

    def __init__(self, leases: RunLeases, run_id: str, ttl_s: float) -> None:
        self.leases = leases
        self.run_id = run_id
        self.ttl_s = ttl_s
        self.beat_s = min(ttl_s / 3, 2.0)
        self.owner = new_owner()
        self.cancel_requested = False
        self.lost = False
        self._task: asyncio.Task[Any] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def hold(
        cls, leases: RunLeases, run_id: str, ttl_s: float | None = None
    ) -> AsyncIterator[RunLease]:
        """Hold the run's lease for the block; ``NotWaitingError`` when another live process
        (or a server worker) drives the run."""
        lease = cls(leases, run_id, ttl_s or lease_seconds())
        await lease.acquire()
        beat = asyncio.create_task(lease._beat())
        try:
            yield lease
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            with contextlib.suppress(Exception):  # the database may be gone: it expires
                await asyncio.wait_for(asyncio.to_thread(lease.release), lease.beat_s + 3)

    async def acquire(self) -> None:
        """Take (or take back) the lease; refuse politely when a live holder has it."""
        holder = await asyncio.to_thread(self.leases.acquire, self.run_id, self.owner, self.ttl_s)
        if holder is not None and dead_here(holder):
            holder = await asyncio.to_thread(
                self.leases.take_over, self.run_id, self.owner, holder, self.ttl_s
            )
        if holder is not None:
            raise NotWaitingError(
                f"run {self.run_id} is being driven by {holder}; wait for it to stop, or "
                f"stop it with `shipyard cancel {self.run_id}`"
            )
        self.lost = False

    def release(self) -> None:
        """Give the lease up."""
        self.leases.release(self.run_id, self.owner)

    async def guard(self, drive: Coroutine[Any, Any, T]) -> T:
        """Run ``drive`` as a task the heartbeat can stop (see the module docstring)."""
        if self.cancel_requested:  # asked while no drive was under way
            drive.close()
            raise RunCancelledError(self.run_id)
        self._task = asyncio.ensure_future(drive)
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.cancelled() or not (self.cancel_requested or self.lost):
                self._task.cancel()  # our caller was cancelled (Ctrl-C): stop the drive too
                raise
        finally:
            self._task = None
        if self.cancel_requested:
            raise RunCancelledError(self.run_id)
        raise RunTakenOverError(
            f"run {self.run_id} was taken over by another process while this one could not "
            "renew its lease; it continues there"
        )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.beat_s)
            try:
                renewal = await asyncio.to_thread(
                    self.leases.renew, self.run_id, self.owner, self.ttl_s
                )
            except Exception as err:  # the database is away: the drive notices it too
                log.debug("lease of run %s not renewed: %s", self.run_id, err)
                continue
            if renewal.cancel_requested and not self.cancel_requested:
                self.cancel_requested = True
                self._stop()
            elif not renewal.ours and not self.lost:
                self.lost = True
                self._stop()

    def _stop(self) -> None:
        inflight.stop(self.run_id)  # kill its commands now: the node's thread ends sooner
        if self._task is not None:
            self._task.cancel()
