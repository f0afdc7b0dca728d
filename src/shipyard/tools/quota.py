"""The workspace's disk budget: ``[budgets] workspace_mb`` MiB for the whole worktree.

What counts is the space the files take on disk (``st_blocks``), each inode once, of
everything under the worktree, measured with an ``os.scandir`` walk that never follows a
symlink. The walk stops after ``MAX_ENTRIES`` files and directories, and a workspace that
holds more is over its budget too — so the measure costs at most that many ``lstat`` calls
(about 1 s at 2 µs each; a typical repository takes milliseconds), and no number of small
files hides a big one.

How the budget holds (``Quota``, one per attempt's toolbox):

* ``write_file`` / ``edit_file`` refuse a write that would take the workspace over it.
* A command runs with its per-file size limit (``RLIMIT_FSIZE``) no larger than what is left.
* After each command the workspace is measured. If the command took it over, the files the
  command created or changed (by their inode change time, which a command cannot set back)
  are removed, largest first, until it is under again, and the command's result tells the
  model ``workspace over its <N> MB budget (<M> MB used): delete files before continuing``
  and which files were removed. Tracked files removed this way show as deleted in the diff.
* While the workspace is over its budget every command and write is refused with that
  message; ``write_file`` with shorter content (which frees space) is still allowed.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

MAX_ENTRIES = 500_000
"""Files and directories one measure visits at most; more is over any budget."""

BLOCK = 4096
"""What a written byte count is rounded up to when estimating its space on disk."""

MIB = 1 << 20

_SLACK_NS = 1_000_000_000
"""Inode change times come from a coarse clock: a file changed up to this long before the
command started counts as changed by it."""


@dataclass(frozen=True)
class DiskUse:
    """What a walk of the workspace found."""

    bytes: int
    entries: int
    complete: bool
    """False when the walk stopped at ``MAX_ENTRIES``."""
    recent: tuple[tuple[str, int], ...] = ()
    """``(relative path, bytes)`` of the regular files changed since the time asked for."""


def measure(root: Path, *, since_ns: int | None = None, max_entries: int = MAX_ENTRIES) -> DiskUse:
    """The space the tree under ``root`` takes (``root`` itself excluded), and, when
    ``since_ns`` is given, the regular files outside ``.git`` changed since then."""
    total = entries = 0
    seen: set[tuple[int, int]] = set()
    recent: list[tuple[str, int]] = []
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        path, rel = stack.pop()
        try:
            scan = os.scandir(path)
        except OSError:
            continue  # vanished or unreadable: nothing to count
        with scan:
            for entry in scan:
                entries += 1
                if entries > max_entries:
                    return DiskUse(total, entries, False, tuple(recent))
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                    if (info.st_dev, info.st_ino) in seen:
                        continue
                    seen.add((info.st_dev, info.st_ino))
                size = info.st_blocks * 512
                total += size
                child = rel + entry.name
                if stat.S_ISDIR(info.st_mode):
                    stack.append((entry.path, child + "/"))
                elif (
                    since_ns is not None
                    and stat.S_ISREG(info.st_mode)
                    and info.st_ctime_ns >= since_ns
                    and not _in_git(child)
                ):
                    recent.append((child, size))
    return DiskUse(total, entries, True, tuple(recent))


def _in_git(rel: str) -> bool:
    return rel.split("/", 1)[0].casefold() == ".git"


def _mb(n: int) -> str:
    return f"{n / MIB:.1f}"


class Quota:
    """The budget of one workspace; measures lazily and keeps the last figure."""

    def __init__(self, root: Path, budget_mb: int) -> None:
        self.root = root
        self.budget_mb = budget_mb
        self.cap = budget_mb * MIB
        self._use: DiskUse | None = None

    def _current(self) -> DiskUse:
        if self._use is None:
            self._use = measure(self.root)
        return self._use

    def over(self, use: DiskUse | None = None) -> str | None:
        """The message for the model when the workspace is over its budget, else ``None``."""
        use = use or self._current()
        if not use.complete:
            return (
                f"workspace over its {self.budget_mb} MB budget (more than {MAX_ENTRIES} "
                "files and directories): delete files before continuing"
            )
        if use.bytes > self.cap:
            return (
                f"workspace over its {self.budget_mb} MB budget ({_mb(use.bytes)} MB used): "
                "delete files before continuing"
            )
        return None

    def remaining(self) -> int:
        """Bytes the workspace may still grow by (0 when over)."""
        use = self._current()
        return max(0, self.cap - use.bytes) if use.complete else 0

    def admit(self, old_bytes: int, new_bytes: int) -> str | None:
        """Why a write replacing a file of ``old_bytes`` on disk by ``new_bytes`` bytes is
        refused, or ``None`` (then the kept figure is updated as if it was written)."""
        use = self._current()
        grow = _allocated(new_bytes) - old_bytes
        if grow > 0 and (refusal := self.over()):
            return refusal
        after = use.bytes + grow
        if grow > 0 and after > self.cap:
            return (
                f"writing {new_bytes} bytes would take the workspace over its "
                f"{self.budget_mb} MB budget ({_mb(use.bytes)} MB used); "
                "delete or shrink files first"
            )
        self._use = DiskUse(max(0, after), use.entries + (old_bytes == 0), use.complete)
        return None

    def started(self) -> int:
        """A mark to pass to ``after_command`` (taken just before a command runs)."""
        return time.time_ns() - _SLACK_NS

    def after_command(self, started: int) -> str | None:
        """Measure after a command; if over, remove what it created or changed, largest
        first, until under the budget. The text for the model, or ``None`` when under."""
        use = measure(self.root, since_ns=started)
        message = self.over(use)
        if message is None:
            self._use = use
            return None
        removed: list[str] = []
        excess = use.bytes - self.cap
        for rel, size in sorted(use.recent, key=lambda item: -item[1]):
            if use.complete and excess < 0:
                break
            try:
                os.unlink(self.root / rel)
            except OSError:
                continue
            removed.append(f"{rel} ({_mb(size)} MB)")
            excess -= size
        self._use = measure(self.root)
        return message + self._after_removal(removed)

    def _after_removal(self, removed: list[str]) -> str:
        text = ""
        if removed:
            more = f" and {len(removed) - 20} more" if len(removed) > 20 else ""
            shown = ", ".join(removed[:20]) + more
            text = f"\nremoved the files this command created or changed, largest first: {shown}"
        still = self.over()
        if still is None:
            used = _mb(self._current().bytes)
            return text + f"\nthe workspace is under its budget again ({used} MB used)"
        return text + (
            f"\nstill {still}; commands and writes that add data are refused until it is "
            "under (write_file with shorter content frees space)"
        )


def _allocated(size: int) -> int:
    return -(-size // BLOCK) * BLOCK
