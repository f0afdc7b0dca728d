"""Running one child process: session, rlimits, bounded output, kill on timeout.

This is the part of the launcher every isolation level shares. It never uses a shell,
never buffers more than twice the output cap per stream, and always leaves no process
of the command's group behind when it returns.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from shipyard.sandbox.isolation import inflight

_CHUNK = 64 << 10
_DRAIN_S = 2.0
"""How long pipes still held open by stragglers are read after the leader is gone."""


class TailBuffer:
    """Keeps the last ``cap`` bytes fed to it; memory stays under ``2 * cap + chunk``."""

    def __init__(self, cap: int) -> None:
        self._cap = max(cap, 0)
        self._buf = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buf += chunk
        # Trim only when well over the cap so long streams cost O(n), not O(n * cap).
        if len(self._buf) > 2 * self._cap:
            del self._buf[: len(self._buf) - self._cap]

    @property
    def truncated(self) -> bool:
        return self.total > self._cap

    def text(self) -> str:
        """The tail as text, prefixed by a marker saying how much was dropped."""
        tail = bytes(self._buf[len(self._buf) - self._cap :] if self._cap else b"")
        body = tail.decode("utf-8", errors="replace")
        if self.truncated:
            return f"[... {self.total - len(tail)} bytes truncated ...]\n{body}"
        return body


@dataclass
class Outcome:
    """What happened to the child, before any interpretation."""

    returncode: int | None
    stdout: TailBuffer
    stderr: TailBuffer
    duration_s: float
    timed_out: bool = False
    cpu_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def rlimit_pairs(
    *, cpu_s: int, memory_bytes: int, file_size_bytes: int, processes: int
) -> list[tuple[int, tuple[int, int]]]:
    """The rlimits to apply in the child; the CPU hard limit is one second above the soft
    one so the child first gets SIGXCPU (recognisable) before SIGKILL."""
    return [
        (resource.RLIMIT_CPU, (cpu_s, cpu_s + 1)),
        (resource.RLIMIT_AS, (memory_bytes, memory_bytes)),
        (resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes)),
        (resource.RLIMIT_NPROC, (processes, processes)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]


def apply_rlimits(pairs: Sequence[tuple[int, tuple[int, int]]]) -> None:
    """Lower (never raise) each limit; runs in the child between fork and exec."""
    for which, (want_soft, want_hard) in pairs:
        cur_hard = resource.getrlimit(which)[1]
        hard = want_hard if cur_hard == resource.RLIM_INFINITY else min(want_hard, cur_hard)
        resource.setrlimit(which, (min(want_soft, hard), hard))


def limit_process(pid: int, pairs: Sequence[tuple[int, tuple[int, int]]]) -> None:
    """Lower (never raise) each limit of the running process ``pid`` from outside, as
    ``apply_rlimits`` does in the child; children it creates afterwards inherit them."""
    for which, (want_soft, want_hard) in pairs:
        cur_hard = resource.prlimit(pid, which)[1]
        hard = want_hard if cur_hard == resource.RLIM_INFINITY else min(want_hard, cur_hard)
        resource.prlimit(pid, which, (min(want_soft, hard), hard))


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def spawn(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    preexec: Callable[[], None] | None,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (so its process group is its own) with no stdin."""
    inflight.check_allowed()  # a cancelled run starts nothing more
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
        preexec_fn=preexec,  # noqa: PLW1509 - rlimits/landlock/seccomp must be set pre-exec
        pass_fds=tuple(pass_fds),
        close_fds=True,
    )
    inflight.started(proc.pid)  # so cancelling the run can kill it
    return proc


def collect(
    proc: subprocess.Popen[bytes],
    *,
    timeout_s: float,
    output_bytes: int,
    cleanup: Callable[[], object] | None = None,
) -> Outcome:
    """Read both pipes incrementally until the command ends or its deadline passes.

    On timeout the whole process group gets SIGKILL. When the leader exits, stragglers in
    its group are killed too, and ``cleanup`` (e.g. emptying a cgroup) runs before returning.
    """
    start = time.monotonic()
    pgid = proc.pid  # start_new_session makes the child its own group leader
    out, err = TailBuffer(output_bytes), TailBuffer(output_bytes)
    assert proc.stdout is not None and proc.stderr is not None
    timed_out = _pump(proc, {proc.stdout: out, proc.stderr: err}, start + timeout_s)
    if timed_out:
        _kill_group(pgid)
    returncode, cpu = _reap(proc)
    _kill_group(pgid)
    inflight.ended(pgid)
    if cleanup is not None:
        cleanup()
    _drain({proc.stdout: out, proc.stderr: err}, time.monotonic() + _DRAIN_S)
    return Outcome(
        returncode=returncode,
        stdout=out,
        stderr=err,
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        cpu_s=cpu,
    )


def _exited(pid: int) -> bool:
    """Whether the leader has exited, without reaping it (``wait4`` needs it later)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for the leader and return its exit code and the CPU seconds it (and its waited
    children) used — per child, so concurrent launches do not blur each other."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def _pump(
    proc: subprocess.Popen[bytes], streams: dict[IO[bytes], TailBuffer], deadline: float
) -> bool:
    """Feed pipe output into the buffers; True when the deadline passed first."""
    with selectors.DefaultSelector() as sel:
        for pipe in streams:
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            # Wake up now and then to notice a leader that exited while a straggler
            # still holds the pipes open.
            for key, _ in sel.select(min(remaining, 0.2)):
                if not _read_into(key.fileobj, streams):  # type: ignore[arg-type]
                    sel.unregister(key.fileobj)
            if _exited(proc.pid):
                return False
    return False


def _read_into(pipe: IO[bytes], streams: dict[IO[bytes], TailBuffer]) -> bool:
    """Read what is available; False at end of file."""
    try:
        chunk = os.read(pipe.fileno(), _CHUNK)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    streams[pipe].feed(chunk)
    return True


def _drain(streams: dict[IO[bytes], TailBuffer], deadline: float) -> None:
    """Read what is left after the group is dead, then close the pipes."""
    with selectors.DefaultSelector() as sel:
        for pipe in streams:
            if not pipe.closed:
                sel.register(pipe, selectors.EVENT_READ)
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(max(deadline - time.monotonic(), 0)):
                if not _read_into(key.fileobj, streams):  # type: ignore[arg-type]
                    sel.unregister(key.fileobj)
    for pipe in streams:
        pipe.close()
