"""The developer model's file tools (docs/architecture.md §3), confined to one workspace directory.

Every path goes through :class:`~shipyard.tools.confine.ConfinedRoot`, which opens it name by
name from a descriptor of the root without following symlinks (see there). Reads and writes
are capped, and held to the workspace's disk budget when one is given (``tools.quota``);
binary files are described, not shown. Every refusal is a :class:`ToolError`
whose message is meant for the model.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Generator
from contextlib import closing
from pathlib import Path
from typing import IO, NamedTuple

from shipyard.tools.confine import (
    DIR_FLAGS,
    READ_FLAGS,
    ConfinedRoot,
    checked_regular,
    prefix,
    show,
)
from shipyard.tools.errors import ToolError
from shipyard.tools.quota import Quota

DEFAULT_MAX_FILE_BYTES = 512 * 1024
SKIPPED_DIRS = frozenset(
    {"node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
     ".ruff_cache", ".tox", ".nox"}
)  # fmt: skip
"""Listed but not descended into by ``list_files`` and ``search`` (unless named directly)."""

_MAX_DEPTH = 32
_MAX_LINE_CHARS = 300


class _Entry(NamedTuple):
    rel: str
    kind: str  # "file", "dir", "dir-skipped", "symlink", "other"
    dir_fd: int
    name: str


class Workspace(ConfinedRoot):
    """File access confined to ``root`` (the run's worktree). Not thread-safe by contract,
    though every call opens its own descriptors."""

    def __init__(
        self,
        root: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_entries: int = 1000,
        max_matches: int = 200,
        max_lines: int = 2000,
        quota: Quota | None = None,
    ) -> None:
        super().__init__(root)
        self.quota = quota
        """The workspace's disk budget writes are held to (``tools.quota``); none if unset."""
        self.max_file_bytes = max_file_bytes
        self.max_entries = max_entries
        self.max_matches = max_matches
        self.max_lines = max_lines

    # ----- the tools -------------------------------------------------------------------

    def list_files(self, path: str = ".") -> str:
        """List files and directories under ``path`` recursively, relative to the workspace
        root. Directories end with ``/``. ``.git`` is hidden; dependency and cache
        directories (``node_modules``, ``.venv``, ...) are shown but not expanded."""
        parts = self._parts(path)
        if parts and stat.S_ISREG(self._lstat(parts).st_mode):
            return "/".join(parts)
        lines: list[str] = []
        with self._open_dir(parts) as fd, closing(self._walk(fd, prefix(parts), 0)) as walk:
            for entry in walk:
                if len(lines) >= self.max_entries:
                    lines.append(f"... truncated after {self.max_entries} entries; "
                                 "list a subdirectory to see more")  # fmt: skip
                    break
                lines.append(_describe(entry))
        return "\n".join(lines) if lines else "(empty directory)"

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        """Read a text file; each line is prefixed by its number and a tab. ``start_line``
        and ``end_line`` (1-based, inclusive) select a range. Binary files are described,
        not shown. Files over the size cap can only be read by range."""
        parts = self._file_parts(path)
        first, last = _check_range(start_line, end_line)
        with self._open_parent(parts) as parent:
            fd = self._open_for_read(parent, parts)
        with os.fdopen(fd, "rb") as file:
            size = os.fstat(fd).st_size
            if size <= self.max_file_bytes:
                data = file.read(self.max_file_bytes + 1)
                text = _decode(data)
                if text is None:
                    return f"{show(parts)}: binary file, {len(data)} bytes (not shown)"
                return self._numbered(parts, text.splitlines(), first, last)
            if start_line is None and end_line is None:
                raise ToolError(
                    f"{show(parts)} is {size} bytes, over the {self.max_file_bytes}-byte read "
                    "cap; read a range with start_line/end_line, or use search"
                )
            return self._numbered_stream(parts, file, first, last or first + self.max_lines - 1)

    def search(self, pattern: str, path: str = ".") -> str:
        """Search text files under ``path`` for a Python regular expression. Returns
        ``path:line: text`` for each matching line, up to a cap. Binary, oversized and
        ``.git`` files are skipped; symlinks are not followed."""
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise ToolError(f"invalid regular expression {pattern!r}: {err}") from None
        parts = self._parts(path)
        hits: list[str] = []
        if parts and stat.S_ISREG(self._lstat(parts).st_mode):
            with self._open_parent(parts) as parent:
                self._search_file(regex, parent, parts[-1], "/".join(parts), hits)
        else:
            with self._open_dir(parts) as fd, closing(self._walk(fd, prefix(parts), 0)) as walk:
                for entry in walk:
                    if entry.kind == "file":
                        self._search_file(regex, entry.dir_fd, entry.name, entry.rel, hits)
                    if len(hits) >= self.max_matches:
                        break
        if len(hits) >= self.max_matches:
            hits = hits[: self.max_matches]
            hits.append(f"... stopped at {self.max_matches} matches; narrow the pattern or path")
        return "\n".join(hits) if hits else f"no matches for {pattern!r} under {show(parts)}"

    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a text file with ``content``. Missing parent directories are
        created. Files in ``.git`` and symlinked or hard-linked files cannot be written, nor
        a file that would take the workspace over its disk budget (shorter content, which
        frees space, is always accepted)."""
        parts = self._file_parts(path)
        data = content.encode("utf-8")
        self._write(parts, data)
        return f"wrote {len(data)} bytes to {show(parts)}"

    def edit_file(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of ``old`` in a text file with ``new``. ``old`` must
        match exactly once, character for character (copy it from read_file without the
        line numbers, with enough surrounding lines to be unique)."""
        parts = self._file_parts(path)
        if not old:
            raise ToolError("old must not be empty; use write_file to write a whole file")
        text = self._read_text(parts)
        count = text.count(old)
        if count == 0 and "\r\n" in text and "\r\n" not in old:
            # The model sees lines without their CR; match the file's line endings.
            old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
            count = text.count(old)
        if count != 1:
            found = "was not found" if count == 0 else f"matched {count} times"
            raise ToolError(
                f"old text {found} in {show(parts)}; it must match exactly once. Copy it "
                "exactly from read_file (without line numbers) with enough context to be unique"
            )
        self._write(parts, text.replace(old, new, 1).encode("utf-8"))
        return f"edited {show(parts)}: replaced 1 occurrence"

    # ----- reading ---------------------------------------------------------------------

    def _read_text(self, parts: list[str]) -> str:
        with self._open_parent(parts) as parent:
            fd = self._open_for_read(parent, parts)
        with os.fdopen(fd, "rb") as file:
            data = file.read(self.max_file_bytes + 1)
        if len(data) > self.max_file_bytes:
            raise ToolError(f"{show(parts)} is over the {self.max_file_bytes}-byte cap")
        text = _decode(data)
        if text is None:
            raise ToolError(f"{show(parts)}: binary file, {len(data)} bytes; cannot edit it")
        return text

    def _numbered(self, parts: list[str], lines: list[str], first: int, last: int | None) -> str:
        if not lines:
            return f"{show(parts)}: empty file"
        if first > len(lines):
            raise ToolError(f"start_line {first} is past the end: {show(parts)} has "
                            f"{len(lines)} lines")  # fmt: skip
        stop = min(len(lines), last or len(lines), first + self.max_lines - 1)
        body = "\n".join(f"{n:>6}\t{lines[n - 1]}" for n in range(first, stop + 1))
        if first == 1 and stop == len(lines):
            return body
        return f"{body}\n(showing lines {first}-{stop} of {len(lines)}; use start_line/end_line)"

    def _numbered_stream(self, parts: list[str], file: IO[bytes], first: int, last: int) -> str:
        """Lines ``first..last`` of an oversized file, read as a stream, output capped."""
        out: list[str] = []
        budget = self.max_file_bytes
        for number, raw in enumerate(file, start=1):
            if number > min(last, first + self.max_lines - 1) or budget <= 0:
                break
            if number >= first:
                text = _decode(raw)
                if text is None:
                    return f"{show(parts)}: binary file (not shown)"
                out.append(f"{number:>6}\t{text.rstrip(chr(10)).rstrip(chr(13))}")
                budget -= len(raw)
        if not out:
            raise ToolError(f"start_line {first} is past the end of {show(parts)}")
        return "\n".join(out) + f"\n(partial read of an oversized file: {show(parts)})"

    def _search_file(self, regex: re.Pattern[str], dir_fd: int, name: str, rel: str,
                     hits: list[str]) -> None:  # fmt: skip
        try:
            fd = checked_regular(os.open(name, READ_FLAGS, dir_fd=dir_fd), [rel])
        except (OSError, ToolError):
            return  # vanished, swapped for a symlink, hard-linked or special: not searched
        with os.fdopen(fd, "rb") as file:
            data = file.read(self.max_file_bytes + 1)
        text = _decode(data) if len(data) <= self.max_file_bytes else None
        for number, line in enumerate((text or "").splitlines(), start=1):
            if regex.search(line):
                hits.append(f"{rel}:{number}: {line[:_MAX_LINE_CHARS]}")
                if len(hits) >= self.max_matches:
                    return

    def _walk(self, dir_fd: int, prefix: str, depth: int) -> Generator[_Entry, None, None]:
        """Entries below ``dir_fd`` in name order, depth first, never through a symlink."""
        with os.scandir(dir_fd) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name.casefold() == ".git":
                continue
            rel = prefix + entry.name
            if entry.is_symlink():
                yield _Entry(rel, "symlink", dir_fd, entry.name)
            elif entry.is_dir(follow_symlinks=False):
                if entry.name in SKIPPED_DIRS or depth >= _MAX_DEPTH:
                    yield _Entry(rel, "dir-skipped", dir_fd, entry.name)
                    continue
                yield _Entry(rel, "dir", dir_fd, entry.name)
                try:
                    child = os.open(entry.name, DIR_FLAGS, dir_fd=dir_fd)
                except OSError:
                    continue  # swapped or removed since the scan: skip it
                try:
                    yield from self._walk(child, rel + "/", depth + 1)
                finally:
                    os.close(child)
            else:
                kind = "file" if entry.is_file(follow_symlinks=False) else "other"
                yield _Entry(rel, kind, dir_fd, entry.name)

    # ----- writing ---------------------------------------------------------------------

    def _write(self, parts: list[str], data: bytes) -> None:
        if len(data) > self.max_file_bytes:
            raise ToolError(f"content is {len(data)} bytes, over the {self.max_file_bytes}-byte "
                            "write cap; split the file")  # fmt: skip
        with self._open_parent(parts, create=True) as parent:
            if self.quota is not None:
                refusal = self.quota.admit(_allocated(parent, parts[-1]), len(data))
                if refusal is not None:
                    raise ToolError(refusal)
            fd = self._open_for_write(parent, parts)
        with os.fdopen(fd, "wb") as file:
            file.write(data)


def _allocated(dir_fd: int, name: str) -> int:
    """Space the file ``name`` takes on disk now (0 if it does not exist or is no file)."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return 0
    return info.st_blocks * 512 if stat.S_ISREG(info.st_mode) else 0


def _decode(data: bytes) -> str | None:
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_range(start: int | None, end: int | None) -> tuple[int, int | None]:
    first = 1 if start is None else start
    if first < 1 or (end is not None and end < first):
        raise ToolError(f"bad line range {start}-{end}: lines start at 1 and end >= start")
    return first, end


def _describe(entry: _Entry) -> str:
    if entry.kind == "dir":
        return entry.rel + "/"
    if entry.kind == "dir-skipped":
        return entry.rel + "/ (not expanded)"
    if entry.kind == "symlink":
        try:
            target = os.readlink(entry.name, dir_fd=entry.dir_fd)
        except OSError:
            target = "?"
        return f"{entry.rel} -> {target} (symlink, not followed)"
    return entry.rel if entry.kind == "file" else f"{entry.rel} (special file)"
