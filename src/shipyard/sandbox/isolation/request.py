"""Checking a command request before anything starts, and starting it.

Every refusal here is a ``SandboxError`` with a message saying what was wrong, raised
before a process exists — the same at every isolation level.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from shipyard.errors import CommandRefusedError, SandboxError
from shipyard.sandbox.isolation.process import spawn


def checked_argv(argv: Sequence[str], shell: bool) -> list[str]:
    """``argv`` as a list; with ``shell`` (allowed by policy) wrapped in ``/bin/sh -c``."""
    if isinstance(argv, str):
        raise SandboxError("argv must be a list of strings, not one string")
    items = list(argv)
    if not items or not all(isinstance(a, str) for a in items):
        raise SandboxError(f"argv must be a non-empty list of strings, got {argv!r}")
    if any("\0" in a for a in items):
        raise CommandRefusedError("argv contains a NUL byte")
    if shell:
        return ["/bin/sh", "-c", " ".join(items)]
    return items


def checked_cwd(workspace: Path, cwd: Path | None) -> Path:
    """The resolved working directory; it must be a directory inside the workspace."""
    root = workspace.resolve()
    if not root.is_dir():
        raise SandboxError(f"workspace {workspace} is not a directory")
    where = (root / cwd).resolve() if cwd is not None else root
    if not where.is_relative_to(root) or not where.is_dir():
        raise SandboxError(f"cwd {cwd} is not a directory inside the workspace {root}")
    return where


def start(
    argv: list[str],
    workdir: Path,
    env: Mapping[str, str],
    preexec: Callable[[], None] | None,
    pass_fds: Sequence[int],
    program: str,
) -> subprocess.Popen[bytes]:
    """Start the (possibly wrapped) ``argv`` whose real program is ``program``."""
    # Checked here so a missing program is the same error at every level (inside
    # bubblewrap the exec would fail only after the sandbox was built).
    found = (
        (workdir / program).is_file()
        if "/" in program
        else shutil.which(program, path=env.get("PATH")) is not None
    )
    if not found:
        raise CommandRefusedError(f"cannot start {program!r}: program not found")
    try:
        return spawn(argv, cwd=str(workdir), env=env, preexec=preexec, pass_fds=pass_fds)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"cannot start {program!r}: {exc}") from exc
