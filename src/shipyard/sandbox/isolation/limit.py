"""Naming the limit that ended a command, from what the kernel left behind.

Exact where the kernel says so (the deadline, a pids cgroup's ``max`` event, SIGXCPU,
SIGXFSZ), inferred from the error text of the usual runtimes otherwise (Python raises
``MemoryError`` and ``OSError: File too large`` instead of dying by signal).
"""

from __future__ import annotations

import re
import signal

Limit = str
"""One of ``timeout``, ``cpu``, ``memory``, ``file_size``, ``processes``."""

_TEXT_HINTS: tuple[tuple[re.Pattern[str], Limit], ...] = (
    (
        re.compile(r"\bMemoryError\b|Cannot allocate memory|std::bad_alloc|out of memory", re.I),
        "memory",
    ),
    (re.compile(r"File too large|EFBIG"), "file_size"),
    (
        re.compile(
            r"fork: (retry|Resource temporarily unavailable)|BlockingIOError: \[Errno 11\]"
            r"|can't fork|Cannot fork|Resource temporarily unavailable",
            re.I,
        ),
        "processes",
    ),
)


def _signal_of(returncode: int) -> int | None:
    """The signal that killed the command: Popen gives ``-sig``; shells and bubblewrap
    report a child killed by a signal as ``128 + sig``."""
    if returncode < 0:
        return -returncode
    if 128 < returncode < 128 + 65:
        return returncode - 128
    return None


def infer_limit(
    *,
    returncode: int | None,
    timed_out: bool,
    cpu_used_s: float,
    cpu_limit_s: int,
    processes_hit: bool,
    stderr_tail: str,
) -> Limit | None:
    """The limit that most plausibly ended the command, or ``None`` if it ended on its own."""
    if timed_out:
        return "timeout"
    if processes_hit:
        return "processes"
    if returncode is None or returncode == 0:
        return None
    sig = _signal_of(returncode)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used_s >= cpu_limit_s):
        return "cpu"
    if sig == signal.SIGXFSZ:
        return "file_size"
    for pattern, limit in _TEXT_HINTS:
        if pattern.search(stderr_tail[-8192:]):
            return limit
    return None
