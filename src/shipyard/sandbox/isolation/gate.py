"""Holding bubblewrap's sandbox before it runs the command, to confine it from outside.

This is the fast path of the bubblewrap level: no ``preexec_fn``, so CPython starts bwrap
with ``vfork`` instead of ``fork``. On cgroup v1 bwrap is started by a shell that first moves
itself into the command's pids cgroup (``PidsCgroup.join_then_exec``: a self-move skips the
kernel's threadgroup lock), so the gate only lowers rlimits; on cgroup v2 the gate also does
the (slow) move, overlapping bwrap's own setup instead of preceding it.

bwrap writes the pid of its sandbox process (the one it creates in the new namespaces) to
``--info-fd`` right after creating it; that process builds the sandbox and then waits at
``--block-fd`` — before it starts the command — until a byte arrives. Meanwhile the
launcher lowers the sandbox process's rlimits (``prlimit``) and moves it into the command's
pids cgroup. The command and everything it starts descend from that process and inherit
both, so nothing of the command ever runs unconfined. If confining fails, bwrap and the
sandbox process are killed before the gate opens (closing the pipe without a byte would
let bwrap go on).
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Protocol

from shipyard.errors import SandboxError
from shipyard.sandbox.isolation.process import limit_process

_CHILD_PID = re.compile(rb'"child-pid"\s*:\s*(\d+)\s*[,}\n]')


class _Cgroup(Protocol):
    def add(self, pid: int) -> None: ...


class _Network(Protocol):
    def attach(self, pid: int, deadline: float) -> None: ...


class Gate:
    """The info and block pipes of one bwrap launch. Pass ``child_fds`` to bwrap (as
    ``--info-fd`` and ``--block-fd``), call ``spawned`` once bwrap runs, then ``open``;
    ``close`` (always, once bwrap has ended) releases whatever is left."""

    def __init__(self) -> None:
        self._info_read, self.info_fd = os.pipe()
        self.block_fd, self._block_write = os.pipe()
        self._open = {self._info_read, self.info_fd, self.block_fd, self._block_write}

    @property
    def child_fds(self) -> tuple[int, int]:
        return self.info_fd, self.block_fd

    def spawned(self) -> None:
        """Close bwrap's ends here, so a bwrap that dies early shows as end of file."""
        self._close(self.info_fd, self.block_fd)

    def open(
        self,
        proc: subprocess.Popen[bytes],
        *,
        rlimits: Sequence[tuple[int, tuple[int, int]]],
        cgroup: _Cgroup | None,
        timeout_s: float,
        network: _Network | None = None,
    ) -> None:
        """Confine bwrap's sandbox process (and give it ``network``), then let it start the
        command.

        A sandbox process that is already gone (bwrap failed; its stderr says why) is not
        an error here. Raises ``SandboxError`` after killing bwrap when the sandbox process
        cannot be found in time, cannot be confined or cannot get its network.
        """
        pid = None
        deadline = time.monotonic() + timeout_s
        try:
            pid = self._sandbox_pid(deadline)
            if pid is not None:
                limit_process(pid, rlimits)
                if cgroup is not None:
                    cgroup.add(pid)
                if network is not None:
                    network.attach(pid, deadline)
        except ProcessLookupError:
            pass  # bwrap's sandbox process died before the command could start
        except SandboxError:
            _kill(proc, pid)
            raise
        except (OSError, TimeoutError) as exc:
            _kill(proc, pid)
            raise SandboxError(f"cannot confine the bubblewrap sandbox: {exc}") from exc
        with contextlib.suppress(BrokenPipeError):
            os.write(self._block_write, b"1")
        self._close(self._block_write)

    def close(self) -> None:
        """Close what is left; call only after bwrap has ended (bwrap writes the rest of
        its info after the pid, and a closed pipe would kill it with SIGPIPE)."""
        self._close(*self._open)

    def _close(self, *fds: int) -> None:
        for fd in fds:
            if fd in self._open:
                self._open.discard(fd)
                os.close(fd)

    def _sandbox_pid(self, deadline: float) -> int | None:
        """The sandbox process's pid from bwrap's info JSON; ``None`` if bwrap ended first."""
        seen = b""
        while (found := _CHILD_PID.search(seen)) is None:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._info_read], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError("bubblewrap did not create the sandbox in time")
            chunk = os.read(self._info_read, 4096)
            if not chunk:
                return None
            seen += chunk
        return int(found.group(1))


def _kill(proc: subprocess.Popen[bytes], sandbox_pid: int | None) -> None:
    """Kill bwrap's group and its sandbox process (in its own session), then reap bwrap."""
    for kill, target in ((os.killpg, proc.pid), (os.kill, sandbox_pid)):
        if target is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(target, signal.SIGKILL)
    with proc:  # waits, closes the pipes
        pass
