"""The bubblewrap command line: the command sees the filesystem view, its workspace, nothing else.

Inside: a fresh root holding only the view of ``view`` read-only (system directories,
``/etc`` with its non-world-readable entries masked, the toolchain), ``/dev`` and ``/proc``
of the sandbox's own, a private ``/tmp`` and ``/dev/shm``, and the workspace bind-mounted
read-write with the repository's hooks and config (and, in a git worktree, the ``.git``
pointer file) read-only on top, plus a worktree's git dirs read-only. Paths the caller
names as hidden (the policy's forbidden globs) are masked inside the workspace. New
user/pid/net/ipc/uts/cgroup namespaces, uid and gid 65534 with every capability dropped, no
further user namespaces, its own session, and death with its parent. The user namespace
maps 65534 to the caller, so files the command writes belong to whoever runs Shipyard —
and the caller's files count as the command's own, which is why the view is an allowlist.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from shipyard.sandbox.isolation import view
from shipyard.sandbox.isolation.gitdirs import git_dirs, outside_git_dirs, protected_paths

SANDBOX_UID = 65534
SANDBOX_HOME = "/tmp/home"


def command(
    bwrap: str,
    *,
    workspace: Path,
    cwd: Path,
    tmp_size: int,
    resolv_conf: Path | None = None,
    seccomp_fd: int | None = None,
    gate_fds: tuple[int, int] | None = None,
    path_var: str | None = None,
    hidden: Sequence[Path] = (),
) -> list[str]:
    """The ``bwrap`` argv prefix; append ``--`` and the command. ``gate_fds`` are the
    ``--info-fd`` and ``--block-fd`` of a ``gate.Gate``. ``path_var`` is the command's
    ``PATH`` (default: this process's), whose directories are mounted read-only;
    ``hidden`` are workspace paths masked inside (an empty file or directory);
    ``resolv_conf`` replaces ``/etc/resolv.conf`` (a command given the network by
    ``usernet`` resolves names through slirp4netns)."""
    root = workspace.resolve()
    ws = str(root)
    # Always a network namespace of its own: a command given the network gets it there
    # (``usernet``), never by sharing this machine's, whose loopback holds the database.
    argv = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns"]
    argv += [
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "shipyard",
        "--cap-drop", "ALL", "--die-with-parent", "--new-session",
        *_system_args(),
        "--size", str(tmp_size), "--tmpfs", "/tmp",
        "--size", str(tmp_size), "--tmpfs", "/dev/shm",
        "--dir", SANDBOX_HOME,
    ]  # fmt: skip
    path_var = os.environ.get("PATH", "") if path_var is None else path_var
    for path in view.toolchain_dirs(path_var, root):
        # After the private /tmp: a checkout's virtualenv may live under the host's /tmp.
        argv += ["--ro-bind-try", str(path), str(path)]
    if resolv_conf is not None:
        argv += _resolver_args(resolv_conf)
    argv += ["--bind", ws, ws]
    argv += _git_dir_args(root)
    for path in protected_paths(workspace):
        argv += ["--ro-bind", str(path), str(path)]
    for path in hidden:
        argv += _mask(str(path), path.is_dir() and not path.is_symlink())
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if gate_fds is not None:
        argv += ["--info-fd", str(gate_fds[0]), "--block-fd", str(gate_fds[1])]
    argv += ["--chdir", str(cwd)]
    return argv


@functools.cache
def _system_args() -> tuple[str, ...]:
    """The system part of the view (see ``view``), built once per process."""
    sys_view = view.system()
    args: list[str] = []
    for path in sys_view.dirs:
        args += ["--ro-bind", path, path]
    for link, target in sys_view.links:
        args += ["--symlink", target, link]
    args += ["--ro-bind", view.ETC, view.ETC]
    for path in sys_view.masks.files:
        args += _mask(path, is_dir=False)
    for path in sys_view.masks.dirs:
        args += _mask(path, is_dir=True)
    return (*args, "--dev", "/dev", "--proc", "/proc")


def _resolver_args(resolv_conf: Path) -> list[str]:
    """``resolv_conf`` where the command reads ``/etc/resolv.conf``. Where that is a symlink
    (``/run/systemd/resolve/stub-resolv.conf``), its target: outside ``/etc`` a directory
    the view does not mount, made on the sandbox's own root first."""
    target = Path(os.path.realpath(f"{view.ETC}/resolv.conf"))
    made = [] if target.parent.is_relative_to(view.ETC) else ["--dir", str(target.parent)]
    return [*made, "--ro-bind", str(resolv_conf), str(target)]


def _mask(path: str, is_dir: bool) -> list[str]:
    """Cover ``path``: a file by ``/dev/null`` (mounted ``nodev``: opening it fails), a
    directory by an empty one-page tmpfs (private to the sandbox, so left writable: a
    remount would cost another mount per command)."""
    if is_dir:
        return ["--size", "4096", "--tmpfs", path]
    return ["--ro-bind", "/dev/null", path]


def _git_dir_args(root: Path) -> list[str]:
    """Read-only mounts of the git dirs outside the workspace (a worktree's). Of the common
    dir's ``worktrees/``, only this worktree's own entry stays visible: the others belong
    to other runs."""
    args: list[str] = []
    for path in outside_git_dirs(root):
        args += ["--ro-bind", str(path), str(path)]
    gitdir, common = git_dirs(root)
    if gitdir is None or common is None or gitdir == common or gitdir.is_relative_to(root):
        return args
    worktrees = common / "worktrees"
    if gitdir.parent == worktrees and common in outside_git_dirs(root):
        wt = str(worktrees)
        args += ["--size", "4096", "--tmpfs", wt, "--ro-bind", str(gitdir), str(gitdir)]
        args += ["--remount-ro", wt]
    return args
