"""Reading a report a check wrote, without trusting what is at its path.

The report path is inside the workspace, which the checked code may write: it may have made
the path a FIFO (a blocking open would hang the validator), a directory, a device, a symlink
out of the workspace, a hard link, or a file too large to parse. :func:`read_report` opens it
one name at a time from a descriptor of the workspace with ``O_NOFOLLOW`` (``O_DIRECTORY``
for the directories on the way, ``O_NONBLOCK`` for the file), then checks with ``fstat``
that it is a regular file with one link and at most ``cap`` bytes. It never blocks and never
raises: what is not a readable report comes back as :class:`ReportProblem` saying why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shipyard.tools.confine import DIR_FLAGS, READ_FLAGS, checked_regular, why_not
from shipyard.tools.errors import ToolError

REPORT_CAP = 32 << 20
"""Largest report parsed, in bytes; a bigger one is refused, not truncated."""


@dataclass(frozen=True)
class ReportProblem:
    """Why there is no report to parse (missing, not a regular file, too large...)."""

    why: str

    @property
    def message(self) -> str:
        """The evidence message: ``report missing or invalid: <why>``."""
        return f"report missing or invalid: {self.why}"


def read_report(workspace: Path, name: str, cap: int = REPORT_CAP) -> bytes | ReportProblem:
    """The bytes of the report at ``name`` (relative to ``workspace``), or why not."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return ReportProblem(f"{name!r} is not a path inside the workspace")
    try:
        fd = os.open(workspace, DIR_FLAGS)
    except OSError as err:
        return ReportProblem(f"cannot open the workspace ({err.strerror})")
    try:
        for index, part in enumerate(parts[:-1]):
            fd = _step(fd, part, "/".join(parts[: index + 1]))
        return _read_file(fd, parts, cap)
    except _Refused as refused:
        return ReportProblem(refused.why)
    finally:
        os.close(fd)


class _Refused(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _step(dir_fd: int, part: str, shown: str) -> int:
    """Open directory ``part`` below ``dir_fd`` (closing ``dir_fd``) without following."""
    try:
        child = os.open(part, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _Refused(f"{shown}: no such directory") from None
    except OSError as err:
        raise _Refused(f"{shown} {_plain(why_not(dir_fd, part, err, 'directory'))}") from None
    os.close(dir_fd)
    return child


def _read_file(dir_fd: int, parts: list[str], cap: int) -> bytes:
    shown = "/".join(parts)
    try:
        fd = os.open(parts[-1], READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise _Refused(f"{shown}: the check wrote no report") from None
    except OSError as err:
        raise _Refused(f"{shown} {_plain(why_not(dir_fd, parts[-1], err, 'file'))}") from None
    try:
        fd = checked_regular(fd, parts)
    except ToolError as err:  # checked_regular closed it
        raise _Refused(_plain(str(err))) from None
    try:
        size = os.fstat(fd).st_size
        if size > cap:
            raise _Refused(f"{shown} is {size} bytes, over the {cap}-byte cap")
        data = _read_upto(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:  # it grew after the fstat
        raise _Refused(f"{shown} is over the {cap}-byte cap")
    return data


def _plain(why: str) -> str:
    """A refusal worded for evidence: the advice meant for the model's tools dropped."""
    return why.split(";", maxsplit=1)[0].replace(" (use list_files)", "")


def _read_upto(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        try:
            chunk = os.read(fd, min(1 << 20, limit - total))
        except BlockingIOError:  # a regular file never blocks; be safe anyway
            break
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
