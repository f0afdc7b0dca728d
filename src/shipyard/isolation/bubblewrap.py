"""The bubblewrap command line: a read-only system, a writable workspace, nothing else.

Inside: ``/`` read-only, the workspace bind-mounted read-write, the repository's hooks and
config (and, in a git worktree, the ``.git`` pointer file) read-only on top, a private
``/tmp`` and ``/dev/shm``, new user/pid/net/ipc/uts/cgroup namespaces, uid and gid 65534
with every capability dropped, no further user namespaces, its own session, and death
with its parent. The user namespace maps 65534 to the caller, so files the command writes
belong to whoever runs Shipyard.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from pathlib import Path

SANDBOX_UID = 65534
SANDBOX_HOME = "/tmp/home"

_HOOKS_PATH = re.compile(r"^\s*hookspath\s*=\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def git_dirs(workspace: Path) -> tuple[Path | None, Path | None]:
    """The workspace's git dir and common dir: ``.git`` itself for a plain repository; for
    a worktree (``.git`` is a file saying ``gitdir: …``), the dir it points at and the
    ``commondir`` recorded there."""
    dot_git = workspace / ".git"
    if dot_git.is_dir() and not dot_git.is_symlink():
        return dot_git, dot_git
    if not dot_git.is_file():
        return None, None
    text = dot_git.read_text(errors="replace").strip()
    if not text.startswith("gitdir:"):
        return None, None
    gitdir = (workspace / text.removeprefix("gitdir:").strip()).resolve()
    common_file = gitdir / "commondir"
    if common_file.is_file():
        return gitdir, (gitdir / common_file.read_text().strip()).resolve()
    return gitdir, gitdir


def protected_paths(workspace: Path) -> list[Path]:
    """Paths under the workspace that must be read-only inside: hooks, config, a ``.git``
    pointer file, and a ``core.hooksPath`` directory that lies in the workspace.

    A missing hooks directory inside the workspace is created (empty) so it can be mounted
    read-only; otherwise a command could create it and plant a hook.
    """
    root = workspace.resolve()
    gitdir, common = git_dirs(root)
    found: list[Path] = []
    if (root / ".git").is_file():
        found.append(root / ".git")
    hook_dirs: list[Path] = []
    files: list[Path] = []
    for base in dict.fromkeys(d for d in (gitdir, common) if d is not None):
        hook_dirs.append(base / "hooks")
        hook_dirs += [_resolve_hooks_path(root, hp) for hp in _hooks_paths(base / "config")]
        files += [base / "config", base / "config.worktree"]
    for path in [*hook_dirs, *files]:
        if not path.is_relative_to(root) or path in found:
            continue  # outside the workspace: already read-only with the rest of the system
        if path in hook_dirs:
            path.mkdir(parents=True, exist_ok=True)
        if path.exists():
            found.append(path)
    return found


def _outside_git_dirs(root: Path) -> list[Path]:
    """The git dir and common dir when they lie outside the workspace (worktrees)."""
    found: list[Path] = []
    for path in sorted({d for d in git_dirs(root) if d is not None}, key=lambda p: len(p.parts)):
        if not path.is_relative_to(root) and not any(path.is_relative_to(f) for f in found):
            found.append(path)
    return found


def _hooks_paths(config: Path) -> list[str]:
    try:
        return _HOOKS_PATH.findall(config.read_text(errors="replace"))
    except OSError:
        return []


def _resolve_hooks_path(root: Path, value: str) -> Path:
    value = value.strip().strip('"')
    path = Path(value).expanduser()
    return (path if path.is_absolute() else root / path).resolve()


def command(
    bwrap: str,
    *,
    workspace: Path,
    cwd: Path,
    tmp_size: int,
    network: bool = False,
    seccomp_fd: int | None = None,
    gate_fds: tuple[int, int] | None = None,
) -> list[str]:
    """The ``bwrap`` argv prefix; append ``--`` and the command. ``gate_fds`` are the
    ``--info-fd`` and ``--block-fd`` of a ``gate.Gate``."""
    ws = str(workspace.resolve())
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns"]
    if network:
        argv.append("--share-net")
    argv += [
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "shipyard",
        "--cap-drop", "ALL", "--die-with-parent", "--new-session",
        "--ro-bind", "/", "/",
        "--dev", "/dev", "--proc", "/proc",
        "--size", str(tmp_size), "--tmpfs", "/tmp",
        "--size", str(tmp_size), "--tmpfs", "/dev/shm",
        "--dir", SANDBOX_HOME,
        "--bind", ws, ws,
    ]  # fmt: skip
    for path in _outside_git_dirs(workspace.resolve()):
        # A worktree's git dirs may sit under /tmp, which the private /tmp would hide.
        argv += ["--ro-bind", str(path), str(path)]
    for path in hidden_tool_dirs(workspace.resolve()):
        argv += ["--ro-bind-try", str(path), str(path)]
    for path in protected_paths(workspace):
        argv += ["--ro-bind", str(path), str(path)]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if gate_fds is not None:
        argv += ["--info-fd", str(gate_fds[0]), "--block-fd", str(gate_fds[1])]
    argv += ["--chdir", str(cwd)]
    return argv


_PRIVATE_MOUNTS = (Path("/tmp"), Path("/dev/shm"))


def hidden_tool_dirs(workspace: Path) -> list[Path]:
    """Directories the private ``/tmp`` and ``/dev/shm`` would hide although commands need
    them: this Python's installation (a virtualenv created under /tmp, as in a CI checkout)
    and the directories on PATH. They are mounted back read-only."""
    candidates = {sys.prefix, sys.base_prefix, str(_resolved(sys.executable).parent)}
    candidates |= {p for p in os.environ.get("PATH", "").split(os.pathsep) if p}
    hidden: list[Path] = []
    for path in sorted(candidates):
        real = _resolved(path)
        if not real.is_absolute() or real.is_relative_to(workspace):
            continue
        if any(real.is_relative_to(m) for m in _PRIVATE_MOUNTS) and real.is_dir():
            hidden.append(real)
    return hidden


@functools.lru_cache(maxsize=256)
def _resolved(path: str) -> Path:
    """``Path(path).resolve()``, cached per process: resolving every PATH entry for every
    command cost about a millisecond, and the symlinks along them do not change under a
    running Shipyard (whether the result is a directory is still checked each time)."""
    return Path(path).resolve()
