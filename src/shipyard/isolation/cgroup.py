"""A pids cgroup per command: a process limit that also binds root, and a complete kill.

``RLIMIT_NPROC`` is not enforced for uid 0 (nor for a user namespace whose ids map to 0),
so when the launcher runs as root a fork bomb is only stopped by the pids controller. The
cgroup also lists every process of the command, even ones that left its session, so the
launcher can kill them all. Works on cgroup v2 (``pids.max`` in the unified tree) and on
v1 (the ``pids`` hierarchy).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

_CANDIDATES = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
_PARENT = "shipyard"


def find_root() -> tuple[Path | None, str]:
    """A writable pids hierarchy for Shipyard's cgroups, or ``None`` and why not."""
    reasons = []
    for base in _CANDIDATES:
        if not (base / "cgroup.procs").exists():
            reasons.append(f"{base}: not a cgroup hierarchy")
            continue
        if base.name != "pids" and "pids" not in _read(base / "cgroup.controllers").split():
            reasons.append(f"{base}: pids controller not available")
            continue
        parent = base / _PARENT
        try:
            parent.mkdir(exist_ok=True)
            if base.name != "pids":  # v2: delegate pids to the children of our parent
                (parent / "cgroup.subtree_control").write_text("+pids")
        except OSError as exc:
            reasons.append(f"{parent}: {exc.strerror}")
            continue
        return parent, ""
    return None, "; ".join(reasons)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class PidsCgroup:
    """One command's cgroup: create, let the child join, then read events and destroy."""

    def __init__(self, root: Path, max_pids: int) -> None:
        self.path = root / f"cmd-{uuid.uuid4().hex[:16]}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(max_pids))
        self._procs = str(self.path / "cgroup.procs")

    def join(self) -> None:
        """Move the calling process (the child, before exec) into this cgroup."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def limit_hit(self) -> bool:
        """Whether a fork was refused because ``pids.max`` was reached."""
        for line in _read(self.path / "pids.events").splitlines():
            name, _, count = line.partition(" ")
            if name == "max" and count.strip() not in ("", "0"):
                return True
        return False

    def kill_all(self, attempts: int = 50) -> None:
        """SIGKILL every member until the cgroup is empty (a fork bomb may refill it)."""
        for _ in range(attempts):
            pids = [int(p) for p in _read(self.path / "cgroup.procs").split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def destroy(self) -> None:
        """Kill what is left and remove the cgroup (retrying while exits are reaped)."""
        self.kill_all()
        for _ in range(200):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.01)
