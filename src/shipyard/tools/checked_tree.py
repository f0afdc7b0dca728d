"""The developer's tree, kept apart from whatever the checks write into the workspace.

Checks run the repository's own code with the workspace writable, so they may leave files
behind: caches, reports, a 1 GiB file, a symlink to ``/root``, a rewritten ``.gitignore``
or ``.git`` file. None of that may reach a commit or the next attempt. :func:`checked_tree`
snapshots the worktree's tree before the checks (that tree is what the check cache keys on
and what a passing step commits, never the files after the checks), and afterwards, pass or
fail, puts the workspace back:

* the worktree's ``.git`` file is rewritten as it was, before any git command runs;
* tracked and untracked files become exactly the snapshot (files the checks created or
  changed are removed or restored, symlinks included);
* ignored entries that appeared during the checks are removed; ignored entries that were
  there before (a virtualenv, a build cache the developer made) are kept as they are, since
  they never reach a commit and rebuilding them would be slow.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.tools import git


@contextmanager
def checked_tree(worktree: Path) -> Iterator[str]:
    """Yield the worktree's tree id now; on exit restore the worktree to it (see above)."""
    gitfile = _read_gitfile(worktree)
    tree = git.snapshot_tree(worktree)
    ignored = git.ignored_entries(worktree)
    try:
        yield tree
    finally:
        _put_back_gitfile(worktree, gitfile)
        _restore(worktree, tree)
        for entry in sorted(git.ignored_entries(worktree) - ignored):
            _remove(worktree, entry.rstrip("/"))


def _read_gitfile(worktree: Path) -> bytes | None:
    """A linked worktree's ``.git`` file (``gitdir: …``); ``None`` for a main checkout."""
    path = worktree / ".git"
    return path.read_bytes() if path.is_file() and not path.is_symlink() else None


def _put_back_gitfile(worktree: Path, gitfile: bytes | None) -> None:
    if gitfile is None:
        return
    path = worktree / ".git"
    if path.is_file() and not path.is_symlink() and path.read_bytes() == gitfile:
        return
    _remove(worktree, ".git")
    path.write_bytes(gitfile)


def _restore(worktree: Path, tree: str) -> None:
    """``git.restore`` to ``tree``; once more after making every directory writable when
    the checks left one git cannot clean (e.g. mode 000)."""
    try:
        git.restore(worktree, tree)
    except git.GitError:
        _make_writable(worktree)
        git.restore(worktree, tree)


def _make_writable(top_dir: Path) -> None:
    """Give the owner full rights on every directory below ``top_dir`` (not ``.git``)."""
    top_dir.chmod(top_dir.lstat().st_mode | stat.S_IRWXU)
    for top, dirs, _files in os.walk(top_dir, followlinks=False):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in dirs:
            path = Path(top) / name
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & stat.S_IRWXU != stat.S_IRWXU:
                path.chmod(mode | stat.S_IRWXU)


def _remove(worktree: Path, entry: str) -> None:
    """Remove ``entry`` (relative) if it is inside the worktree; never follows a symlink."""
    path = worktree / entry
    if not path.parent.resolve().is_relative_to(worktree.resolve()):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():  # a directory the checks made unreadable
        _make_writable(path)
        shutil.rmtree(path)
