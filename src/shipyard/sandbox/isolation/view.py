"""The filesystem view of a sandboxed command: the host directories it may read.

The view is the system (``/usr``, ``/bin`` … ``/libx32``, ``/opt``), ``/etc`` minus every
entry that is not world-readable (``shadow``, ``sudoers``, ssh host keys, ``ssl/private``:
inside the sandbox the caller's files, root's included, count as the command's own), and
the toolchain: this Python's installation and the directories on the command's ``PATH``
(a pyenv root as a whole, since its shims need it). Never in it: ``/home``, ``/root``, the
host's ``/tmp``, ``/var``, ``/run``, ``/srv``, ``/mnt``, ``/media`` — so no Unix socket of
the host — nor ``SHIPYARD_HOME`` beyond the run's own workspace. A toolchain directory
that is, or contains, one of those places is left out rather than mounted whole.

``bubblewrap`` mounts this view; ``landlock`` turns it into read rules when bubblewrap is
missing. What is static is computed once per process, so a command pays only for its
workspace.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from shipyard.errors import CommandRefusedError
from shipyard.policy.syntax import glob_regex
from shipyard.sandbox.isolation import landlock
from shipyard.sandbox.isolation.gitdirs import git_dirs

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
ETC = "/etc"
NEVER_WHOLE = frozenset(
    {"/", "/home", "/root", "/tmp", "/var", "/var/tmp", "/run", "/var/run", "/srv", "/mnt",
     "/media", "/dev", "/dev/shm", "/proc", "/sys", "/boot", ETC}
)  # fmt: skip
"""Directories never mounted whole as toolchain, whatever ``PATH`` says."""

MAX_HIDDEN = 256
"""Most workspace paths one command can have masked; more is a clear error."""

_UNWALKED = frozenset({".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".nox"})


@dataclass(frozen=True)
class Masks:
    """Entries of ``/etc`` that are not world-readable: files to cover, dirs to empty."""

    files: tuple[str, ...]
    dirs: tuple[str, ...]


@dataclass(frozen=True)
class System:
    """The system part of the view: top-level symlinks (``/bin -> usr/bin``) to recreate,
    real directories to mount read-only, and the ``/etc`` masks."""

    links: tuple[tuple[str, str], ...]
    dirs: tuple[str, ...]
    masks: Masks


@functools.cache
def system() -> System:
    """The system part, computed once per process."""
    links: list[tuple[str, str]] = []
    dirs: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            links.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            dirs.append(path)
    return System(tuple(links), tuple(dirs), etc_masks())


@functools.cache
def etc_masks(root: str = ETC) -> Masks:
    """Every entry under ``root`` another user could not read (or, for a special file,
    use) but the caller can: non-empty regular files without ``o+r``, directories without
    ``o+rx``, sockets, fifos and devices. Symlinks are left alone: their targets are judged
    where they lie."""
    files: list[str] = []
    dirs: list[str] = []
    for top, subdirs, names in os.walk(root):
        for name in sorted(subdirs):
            path = os.path.join(top, name)
            if _mode(path) & 0o005 != 0o005 and os.access(path, os.R_OK | os.X_OK):
                dirs.append(path)
        subdirs[:] = sorted(d for d in subdirs if os.path.join(top, d) not in dirs)
        for name in sorted(names):
            path = os.path.join(top, name)
            if _needs_mask(path):
                files.append(path)
    return Masks(tuple(files), tuple(dirs))


def _needs_mask(path: str) -> bool:
    """A file others may not read that the caller can: each mask costs a mount, so an
    empty one (a lock file) or one the caller cannot open anyway (the command runs as the
    caller) is left alone."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False
    if stat.S_ISREG(info.st_mode) and (info.st_mode & stat.S_IROTH or info.st_size == 0):
        return False
    return os.access(path, os.R_OK, follow_symlinks=False)


def _mode(path: str) -> int:
    """``lstat`` mode; a symlink's for an entry that vanished (it is then left alone)."""
    try:
        return os.lstat(path).st_mode
    except OSError:
        return stat.S_IFLNK | 0o777


@functools.cache
def etc_cover(root: str = ETC) -> tuple[tuple[str, bool], ...]:
    """``(path, is_dir)`` pairs whose subtrees together are ``root`` minus its masks —
    what a path-based allowlist (Landlock) grants to read. A directory holding a masked
    entry is listed itself (``is_dir``, but its rule grants listing only: see
    ``landlock``) and then split into its children."""
    masks = etc_masks(root)
    masked = set(masks.files) | set(masks.dirs)
    cover: list[tuple[str, bool]] = []

    def split(directory: str) -> None:
        cover.append((directory + "/", True))  # trailing slash: listing only
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            mode = _mode(path)
            if path in masked or stat.S_ISLNK(mode):
                continue
            if not stat.S_ISDIR(mode):
                cover.append((path, False))
            elif any(m.startswith(path + "/") for m in masked):
                split(path)
            else:
                cover.append((path, True))

    split(root)
    return tuple(cover)


def private_roots(workspace: Path) -> tuple[Path, ...]:
    """Places no toolchain mount may contain: the workspace (its parents hold other runs),
    ``SHIPYARD_HOME`` (database, artifacts, other workspaces) and the caller's home."""
    home = os.environ.get("SHIPYARD_HOME") or platformdirs.user_data_dir("shipyard")
    return (workspace, _resolved(home), _resolved(str(Path.home())))


def toolchain_dirs(path_var: str, workspace: Path) -> list[Path]:
    """Read-only toolchain directories for a command whose ``PATH`` is ``path_var``:
    ``sys.prefix``, ``sys.base_prefix``, the interpreter's directory and each ``PATH``
    entry — minus what the system part already shows, what lies in the workspace, and
    anything that is or contains a :func:`private_roots` place or a :data:`NEVER_WHOLE`
    directory."""
    shipyard_home = os.environ.get("SHIPYARD_HOME", "")
    return list(_toolchain_for(path_var, workspace, shipyard_home, os.environ.get("HOME", "")))


@functools.lru_cache(maxsize=64)
def _toolchain_for(
    path_var: str, workspace: Path, _shipyard_home: str, _home: str
) -> tuple[Path, ...]:
    """``toolchain_dirs``, cached per ``PATH``, workspace and the variables behind
    :func:`private_roots`."""
    private = private_roots(workspace)
    chosen: list[Path] = []
    for path in _toolchain_candidates(path_var):
        if str(path) in NEVER_WHOLE or path.is_relative_to(workspace):
            continue
        if any(p.is_relative_to(path) for p in private) or path.is_relative_to(private[1]):
            continue
        chosen.append(path)
    return tuple(chosen)


@functools.lru_cache(maxsize=32)
def _toolchain_candidates(path_var: str) -> tuple[Path, ...]:
    raw = [sys.prefix, sys.base_prefix, str(_resolved(sys.executable).parent)]
    raw += [p for p in path_var.split(os.pathsep) if p]
    found: list[Path] = []
    for entry in raw:
        path = _resolved(entry)
        if not path.is_absolute() or not path.is_dir():
            continue
        found.append(_pyenv_root(path) or path)
    found.sort(key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in found:
        if not any(path.is_relative_to(k) for k in kept) and not _in_system(path):
            kept.append(path)
    return tuple(kept)


def _pyenv_root(path: Path) -> Path | None:
    """The pyenv root above ``path`` (its shims run ``libexec/pyenv`` and read
    ``versions``), if ``path`` is one of its directories."""
    for candidate in [path, *list(path.parents)[:3]]:
        if (candidate / "libexec" / "pyenv").is_file():
            return candidate
    return None


def _in_system(path: Path) -> bool:
    return any(path.is_relative_to(d) for d in (*system().dirs, ETC))


@functools.lru_cache(maxsize=256)
def _resolved(path: str) -> Path:
    """``Path(path).resolve()``, cached per process: the symlinks along ``PATH`` do not
    change under a running Shipyard, and resolving them for every command is measurable."""
    return Path(path).resolve()


def landlock_rules(workspace: Path, private_tmp: str, path_var: str) -> list[tuple[str, str]]:
    """The view as Landlock rules (``landlock`` kinds), for when bubblewrap is missing: the
    workspace, the private tmp and the host's ``/dev/shm`` writable; the system, ``/etc``
    minus its masks, the toolchain and a worktree's git dirs readable; ``/dev`` listable.
    ``/proc`` is withheld: without a pid namespace it is the host's, and Landlock does not
    stop reading the ``environ`` of the caller's other processes — Shipyard's own, secrets
    included. No Unix socket is covered: Landlock cannot refuse ``connect()``."""
    rules = [(str(workspace), landlock.WRITE), (private_tmp, landlock.WRITE)]
    rules += [("/dev/shm", landlock.WRITE), ("/dev", landlock.LIST)]
    rules += [(d, landlock.READ) for d in system().dirs]
    rules += [(str(d), landlock.READ) for d in toolchain_dirs(path_var, workspace)]
    for git_dir in dict.fromkeys(git_dirs(workspace)):
        if git_dir is not None and not git_dir.is_relative_to(workspace):
            rules.append((str(git_dir), landlock.READ))
    rules.append((ETC, landlock.READ))  # minus its masks: see ``landlock_masks``
    return rules


@functools.cache
def landlock_masks() -> tuple[tuple[str, str], ...]:
    """The ``/etc`` masks as a static Landlock allowlist, for a ruleset restricted under
    the per-command one: every top-level entry of ``/`` but ``/etc``, which is covered
    entry by entry without its masks. Empty when there is nothing to mask (the caller
    cannot read any of ``/etc``'s private files anyway). Computed once per process: a
    top-level directory made later stays unreadable (a command there fails loudly)."""
    if not (etc_masks().files or etc_masks().dirs):
        return ()
    rules: list[tuple[str, str]] = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        mode = _mode(path)
        if path != ETC and not stat.S_ISLNK(mode):
            rules.append((path, landlock.READ if stat.S_ISDIR(mode) else landlock.FILE))
    for path, is_dir in etc_cover():
        kind = landlock.LIST if path.endswith("/") else landlock.READ if is_dir else landlock.FILE
        rules.append((path.rstrip("/"), kind))
    return tuple(rules)


@functools.cache
def landlock_mask_ruleset(abi: int) -> landlock.Ruleset | None:
    """The :func:`landlock_masks` ruleset, built once per process and kept open for its
    lifetime (one descriptor), or ``None`` when there is nothing to mask."""
    rules = landlock_masks()
    return landlock.Ruleset(abi, rules, reads_only=True) if rules else None


def hidden_paths(workspace: Path, globs: Sequence[str]) -> list[Path]:
    """Existing entries of ``workspace`` whose relative path matches one of ``globs`` (the
    policy's forbidden globs, same syntax): a matching directory as a whole, else matching
    files; symlinks are skipped (a target inside the workspace is matched under its own
    name, one outside is not in the view). ``.git`` and dependency directories are not
    walked. Raises ``CommandRefusedError``
    past :data:`MAX_HIDDEN` matches."""
    if not globs:
        return []
    regexes = [glob_regex(g) for g in globs]
    found = list(_matches(workspace, "", regexes))
    if len(found) > MAX_HIDDEN:
        raise CommandRefusedError(
            f"{len(found)} workspace paths match the forbidden globs {list(globs)}; at most "
            f"{MAX_HIDDEN} can be hidden from a command: narrow the globs"
        )
    return found


def _matches(directory: Path, prefix: str, regexes: list[re.Pattern[str]]) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_symlink():
            continue  # no content of its own; its target is judged where it lies
        if any(r.fullmatch(rel) for r in regexes):
            yield Path(entry.path)
        elif entry.is_dir(follow_symlinks=False) and entry.name not in _UNWALKED:
            yield from _matches(Path(entry.path), rel + "/", regexes)
