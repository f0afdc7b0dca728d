"""Where a workspace's git metadata lives, and which of it a command must not change.

A plain repository has ``.git`` as a directory; a worktree has a ``.git`` file pointing at
its own git dir, whose ``commondir`` names the shared one. Hooks and config decide what git
runs, so the sandbox mounts them read-only (``bubblewrap``).
"""

from __future__ import annotations

import re
from pathlib import Path

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


def outside_git_dirs(root: Path) -> list[Path]:
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
