"""Where this user's command cgroups go: its own parent, ``shipyard-<uid>``.

The parent goes directly under the pids hierarchy's root where this user may create it
(root; or a user root delegated it to with ``mkdir`` and ``chown -R``), else under the
highest cgroup of this process's own chain that the user can write (a delegated subtree:
systemd's ``user@<uid>.service``, a container's own cgroup). A parent of another user is
never used, and finding none is an answer with its reason, not an error: the probe
reports it and commands run without a pids cgroup.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipyard.sandbox.isolation.cgroup import PidsCgroup

_PARENT = "shipyard"
_TRUE = "/bin/true"


def parent_name(uid: int | None = None) -> str:
    """The name of the parent cgroup of ``uid`` (default: this process's effective uid)."""
    return f"{_PARENT}-{os.geteuid() if uid is None else uid}"


def find_root() -> tuple[Path | None, str]:
    """This user's parent for Shipyard's command cgroups, or ``None`` and why not.

    A parent is only returned once a command cgroup was made in it, limited, and entered
    by a ``true`` process: what the launcher does for every command."""
    reasons = []
    mountinfo, own = _read(Path("/proc/self/mountinfo")), _read(Path("/proc/self/cgroup"))
    for hierarchy in hierarchies(mountinfo, own):
        if hierarchy.v2 and "pids" not in _read(hierarchy.mount / "cgroup.controllers").split():
            reasons.append(f"{hierarchy.mount}: the pids controller is not on cgroup v2 here")
            continue
        for base in hierarchy.bases():
            parent, reason = _claim(base / parent_name(), v2=hierarchy.v2)
            if parent is not None:
                return parent, ""
            reasons.append(reason)
    if not reasons:
        reasons.append("no pids cgroup hierarchy is mounted (/proc/self/mountinfo)")
    return None, f"no pids cgroup for uid {os.geteuid()}: " + "; ".join(reasons)


@dataclass(frozen=True)
class Hierarchy:
    """A mounted pids hierarchy and this process's cgroup in it."""

    mount: Path
    v2: bool
    own: Path
    """This process's cgroup directory (``mount`` when it lies outside the mounted part)."""

    def bases(self) -> list[Path]:
        """Where a parent may go: the root, then the delegated part of the own chain
        (the cgroups of it this user can write), highest first."""
        chain: list[Path] = []
        here = self.own
        while here != self.mount and self.mount in here.parents and _writable(here):
            chain.append(here)
            here = here.parent
        return [self.mount, *reversed(chain)]


def hierarchies(mountinfo: str, own_cgroups: str) -> list[Hierarchy]:
    """The pids hierarchies in ``mountinfo`` (the text of ``/proc/self/mountinfo``), with
    this process's cgroup in each from ``own_cgroups`` (``/proc/self/cgroup``): v1 first
    (where both exist, pids is bound to v1 and the unified tree lacks it), then v2."""
    own = {}
    for line in own_cgroups.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else ["unified"]:
            own[name] = path
    found: dict[Path, Hierarchy] = {}
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        left, right = fields.split(), tail.split()
        if len(left) < 5 or len(right) < 3:
            continue
        v2 = right[0] == "cgroup2"
        if not v2 and not (right[0] == "cgroup" and "pids" in right[2].split(",")):
            continue
        mount, mounted = Path(_unescape(left[4])), _unescape(left[3])
        path = own.get("unified" if v2 else "pids", "/")
        inside = path.removeprefix(mounted) if path.startswith(mounted) else "/"
        found.setdefault(mount, Hierarchy(mount, v2, mount / inside.lstrip("/")))
    return sorted(found.values(), key=lambda h: h.v2)


def _unescape(field: str) -> str:
    """A mountinfo path: spaces and the like are written as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _writable(cgroup: Path) -> bool:
    return os.access(cgroup, os.W_OK | os.X_OK) and os.access(cgroup / "cgroup.procs", os.W_OK)


def _claim(parent: Path, *, v2: bool) -> tuple[Path | None, str]:
    """``parent`` created (or found) and tried, or ``None`` and why not."""
    try:
        parent.mkdir(exist_ok=True)
    except OSError as exc:
        hint = f" (root can delegate it: mkdir {parent} && chown -R {os.geteuid()} {parent})"
        return None, f"cannot create {parent}: {exc.strerror}{hint if os.geteuid() else ''}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return None, f"{parent} exists but belongs to uid {_owner(parent)}, not to this user"
    if not (parent / "cgroup.procs").exists():
        return None, f"{parent} is not a cgroup (no cgroup.procs)"
    if not _writable(parent):
        return None, f"{parent}/cgroup.procs is not writable by this user (chown -R it)"
    try:
        if v2:
            _delegate_pids(parent)
        _trial(parent)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{parent}: a trial command cgroup failed: {exc}"
    return parent, ""


def _owner(path: Path) -> int | str:
    try:
        return path.stat().st_uid
    except OSError:
        return "unknown"


def _delegate_pids(parent: Path) -> None:
    """Cgroup v2: let ``parent``'s children have ``pids.max``. Raises ``OSError``."""
    if "pids" not in _read(parent / "cgroup.controllers").split():
        raise OSError(f"the pids controller is not enabled for {parent.parent}'s children")
    if "pids" not in _read(parent / "cgroup.subtree_control").split():
        (parent / "cgroup.subtree_control").write_text("+pids")


def _trial(parent: Path) -> None:
    """Make a command cgroup, limit it, run ``true`` inside, remove it; raises on failure."""
    group = PidsCgroup(parent / f"probe-{os.getpid()}")
    try:
        group.prepare(8)
        done = subprocess.run(
            [_TRUE], preexec_fn=group.join, capture_output=True, timeout=10, check=False
        )
        if done.returncode != 0:
            raise OSError(f"true exited {done.returncode} inside it")
    finally:
        group.remove()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
