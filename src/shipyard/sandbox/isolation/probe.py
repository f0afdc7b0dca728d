"""What this machine offers, found by trying each layer once per process.

Each probe runs ``true`` under the layer for real (a layer that merely looks present, like a
``bwrap`` binary in a container without user namespaces, is reported missing with the
error it gave). Results are cached per process; ``disable`` removes layers on top, so a
test or a setting can force the fallback path without patching anything.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard.sandbox.isolation import bubblewrap, cgroup_parent, landlock, seccomp
from shipyard.sandbox.isolation.namespace import NetworkUnsharer

LAYERS = ("bubblewrap", "namespace", "landlock", "seccomp", "pids-cgroup")
"""Names accepted by ``disable``."""

_TRUE = "/bin/true"


@dataclass(frozen=True)
class Capabilities:
    """Available layers; for each missing one, ``why`` says why (layer -> reason)."""

    bwrap: str | None
    netns: bool
    landlock_abi: int
    seccomp: bool
    pids_root: Path | None
    is_root: bool
    why: dict[str, str]


def probe(*, bwrap: str | None = None, disable: Collection[str] = ()) -> Capabilities:
    """The capabilities of this process, minus the ``disable``-d layers.

    Raises ``ValueError`` on an unknown layer name in ``disable``.
    """
    unknown = set(disable) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown isolation layers {sorted(unknown)}; known: {list(LAYERS)}")
    caps = _probe_cached(bwrap or shutil.which("bwrap") or "")
    why = dict(caps.why)
    for layer in disable:
        why[layer] = "disabled by configuration"
    return replace(
        caps,
        bwrap=None if "bubblewrap" in disable else caps.bwrap,
        netns=caps.netns and "namespace" not in disable,
        landlock_abi=0 if "landlock" in disable else caps.landlock_abi,
        seccomp=caps.seccomp and "seccomp" not in disable,
        pids_root=None if "pids-cgroup" in disable else caps.pids_root,
        why=why,
    )


@functools.lru_cache(maxsize=4)
def _probe_cached(bwrap_path: str) -> Capabilities:
    why: dict[str, str] = {}
    bwrap = _probe_bwrap(bwrap_path, why)
    netns = _try("namespace", NetworkUnsharer(), why)
    abi, reason = landlock.abi_version()
    if reason:
        why["landlock"] = reason
    sec_reason = seccomp.supported()
    if sec_reason:
        why["seccomp"] = sec_reason
    sec = sec_reason is None and _try("seccomp", seccomp.Loader(), why)
    pids_root, pids_reason = cgroup_parent.find_root()
    if pids_root is None:
        why["pids-cgroup"] = pids_reason
    return Capabilities(bwrap, netns, abi, sec, pids_root, os.geteuid() == 0, why)


def _probe_bwrap(path: str, why: dict[str, str]) -> str | None:
    if not path or not os.access(path, os.X_OK):
        why["bubblewrap"] = "bwrap not installed (Debian package 'bubblewrap')"
        return None
    try:
        with tempfile.TemporaryDirectory(prefix="shipyard-probe-") as tmp:
            ws = Path(tmp)
            argv = bubblewrap.command(path, workspace=ws, cwd=ws, tmp_size=1 << 20)
            done = subprocess.run([*argv, _TRUE], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        why["bubblewrap"] = f"bwrap failed to start: {exc}"
        return None
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        why["bubblewrap"] = f"bwrap cannot create its sandbox here: {err or done.returncode}"
        return None
    return path


def _try(layer: str, preexec: Callable[[], None], why: dict[str, str]) -> bool:
    try:
        done = subprocess.run(
            [_TRUE],
            preexec_fn=preexec,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        why[layer] = f"the kernel refused it: {exc}"
        return False
    if done.returncode != 0:
        why[layer] = f"a probe command under it exited {done.returncode}"
        return False
    return True
