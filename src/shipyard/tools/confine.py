"""Opening paths inside one directory without ever leaving it.

Confinement does not trust path strings. A path is split into names (``..``, absolute
paths outside the root and any ``.git`` component are refused up front), then opened one
directory at a time from a file descriptor of the root with ``O_NOFOLLOW | O_DIRECTORY``,
and the last name with ``O_NOFOLLOW``. A symlink anywhere on the way — planted before the
call or swapped in during it — makes the open fail instead of leading outside. Files with
more than one hard link are refused (the other link may be outside the root), as are FIFOs,
devices and sockets. Every refusal is a :class:`ToolError` whose message is meant for the
model.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path

from shipyard.tools.errors import ToolError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class ConfinedRoot:
    """Descriptor-based opens of paths below ``root``; the file tools build on it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve(strict=True)
        if not self.root.is_dir():
            raise NotADirectoryError(f"workspace root {self.root} is not a directory")

    def _parts(self, path: str) -> list[str]:
        """Split a model-supplied path into names below the root, refusing escapes."""
        if "\0" in path:
            raise ToolError("path contains a NUL byte")
        text = path.strip()
        if text.startswith("/"):
            root = str(self.root)
            if text != root and not text.startswith(root + "/"):
                raise ToolError(
                    f"{path!r} is outside the workspace; use a path relative to its root"
                )
            text = text[len(root) :]
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise ToolError(f"{path!r}: '..' is not allowed; use a path from the workspace root")
        if any(part.casefold() == ".git" for part in parts):
            raise ToolError(f"{path!r}: .git is git's internal data and is off limits")
        return parts

    def _file_parts(self, path: str) -> list[str]:
        parts = self._parts(path)
        if not parts:
            raise ToolError(f"{path!r} is the workspace root, not a file")
        return parts

    def _open_root(self) -> int:
        return os.open(self.root, DIR_FLAGS)

    def _open_component(self, dir_fd: int, name: str, shown: str) -> int:
        """Open directory ``name`` inside ``dir_fd`` without following a symlink."""
        try:
            return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise ToolError(f"{shown}: no such directory") from None
        except OSError as err:
            raise ToolError(f"{shown}: {why_not(dir_fd, name, err, 'directory')}") from None

    @contextmanager
    def _open_dir(self, parts: list[str], *, create: bool = False) -> Iterator[int]:
        """A descriptor of directory ``parts`` (the root for ``[]``), opened name by name."""
        fd = self._open_root()
        try:
            for index, name in enumerate(parts):
                if create:
                    mkdir_at(fd, name)
                child = self._open_component(fd, name, "/".join(parts[: index + 1]))
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _open_parent(
        self, parts: list[str], *, create: bool = False
    ) -> AbstractContextManager[int]:
        return self._open_dir(parts[:-1], create=create)

    def _lstat(self, parts: list[str]) -> os.stat_result:
        with self._open_parent(parts) as parent:
            try:
                return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise ToolError(f"{show(parts)}: no such file or directory") from None

    def _open_for_read(self, parent: int, parts: list[str]) -> int:
        try:
            fd = os.open(parts[-1], READ_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            raise ToolError(f"{show(parts)}: no such file") from None
        except OSError as err:
            raise ToolError(f"{show(parts)}: {why_not(parent, parts[-1], err, 'file')}") from None
        return checked_regular(fd, parts)

    def _open_for_write(self, parent: int, parts: list[str]) -> int:
        """Create the file exclusively, or open the existing one and truncate it only after
        checking it is a regular file with a single link (truncating first would damage
        the file a hard link aliases)."""
        name = parts[-1]
        try:
            return os.open(name, WRITE_FLAGS | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as err:
            raise ToolError(f"{show(parts)}: cannot create ({err.strerror})") from None
        try:
            fd = os.open(name, WRITE_FLAGS, dir_fd=parent)
        except OSError as err:
            raise ToolError(f"{show(parts)}: {why_not(parent, name, err, 'file')}") from None
        fd = checked_regular(fd, parts)
        os.ftruncate(fd, 0)
        return fd


def checked_regular(fd: int, parts: list[str]) -> int:
    """Return ``fd`` if it is a regular file with one link; otherwise close it and refuse."""
    info = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(info.st_mode):
        problem = "is a directory (use list_files)"
    elif not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_nlink > 1:
        problem = (f"has {info.st_nlink} hard links; a hard-linked file may alias one outside "
                   "the workspace, so it is refused")  # fmt: skip
    if problem is None:
        return fd
    os.close(fd)
    raise ToolError(f"{show(parts)} {problem}")


def why_not(dir_fd: int, name: str, err: OSError, wanted: str) -> str:
    """Explain a failed no-follow open of ``name`` (symlink, wrong kind, other)."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return f"cannot open ({err.strerror})"
    if stat.S_ISLNK(mode):
        return "is a symlink; symlinks are not followed, use the path it points to"
    if err.errno == errno.ENOTDIR or (wanted == "directory" and not stat.S_ISDIR(mode)):
        return "is not a directory"
    if err.errno == errno.EISDIR or stat.S_ISDIR(mode):
        return "is a directory (use list_files)"
    if err.errno == errno.ENXIO or not stat.S_ISREG(mode):
        return "is not a regular file"
    return f"cannot open ({err.strerror})"


def mkdir_at(dir_fd: int, name: str) -> None:
    # An existing entry is fine here: the no-follow open that follows checks what it is.
    with suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=dir_fd)


def prefix(parts: list[str]) -> str:
    return "/".join(parts) + "/" if parts else ""


def show(parts: list[str]) -> str:
    return "/".join(parts) or "."
