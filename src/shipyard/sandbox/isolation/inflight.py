"""The commands a run has in flight, so cancelling the run can kill them.

Whoever drives a run wraps it in ``driving(run_id)``; the launcher's executor threads
copy that context, so every command spawned for the run is recorded here by its process
group (``started`` / ``ended``, called by ``isolation.process``). ``stop(run_id)`` kills the
groups alive now and refuses new commands of the run until ``allow(run_id)``: a node still
at work in its thread when the run was cancelled cannot start another command.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from shipyard.errors import SandboxError

_RUN: ContextVar[str | None] = ContextVar("shipyard_commands_of", default=None)
_LOCK = threading.Lock()
_GROUPS: dict[str, set[int]] = {}
_STOPPED: set[str] = set()


@contextlib.contextmanager
def commands_of(run_id: str) -> Iterator[None]:
    """Record the commands spawned in this block (and the threads it starts) as ``run_id``'s."""
    token = _RUN.set(run_id)
    try:
        yield
    finally:
        _RUN.reset(token)


@contextlib.contextmanager
def driving(run_id: str) -> Iterator[None]:
    """A new drive of the run: it may start commands again (``allow``), recorded as its."""
    allow(run_id)
    with commands_of(run_id):
        yield


def check_allowed() -> None:
    """Raise ``SandboxError`` when the current run was stopped (called before a spawn)."""
    run_id = _RUN.get()
    if run_id is not None and run_id in _STOPPED:
        raise SandboxError(f"run {run_id} was cancelled: no further command is started")


def started(pgid: int) -> None:
    """A command of the current run started as process group ``pgid``."""
    run_id = _RUN.get()
    if run_id is None:
        return
    with _LOCK:
        _GROUPS.setdefault(run_id, set()).add(pgid)
        stopped = run_id in _STOPPED
    if stopped:  # stopped between the check and the spawn
        _kill(pgid)


def ended(pgid: int) -> None:
    """The command of process group ``pgid`` is over."""
    run_id = _RUN.get()
    if run_id is None:
        return
    with _LOCK:
        _GROUPS.get(run_id, set()).discard(pgid)


def stop(run_id: str) -> int:
    """Kill the run's commands in flight and refuse new ones; returns how many were killed."""
    with _LOCK:
        _STOPPED.add(run_id)
        groups = list(_GROUPS.pop(run_id, ()))
    for pgid in groups:
        _kill(pgid)
    return len(groups)


def allow(run_id: str) -> None:
    """Let the run start commands again (a new drive of it, after a stop)."""
    with _LOCK:
        _STOPPED.discard(run_id)


def _kill(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
