"""The ``postmaster.pid`` file: which server runs from a data directory, and whether a file
left behind by a crash names a live one.

A ``postmaster.pid`` whose process is gone — or whose pid now belongs to some other program —
is stale; ``remove_stale_pidfile`` removes it (and the socket lock naming the dead pid)
before a start, because Postgres would otherwise take the reused pid for a running server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from shipyard.store.embedded_auth import SUPERUSER, passfile_path
from shipyard.store.embedded_programs import remove_socket_dir


@dataclass(frozen=True)
class Postmaster:
    """The parts of ``postmaster.pid`` we use (see Postgres' ``miscinit.c`` for the format),
    and the password file that lets us in."""

    pid: int
    socket_dir: str
    port: int
    status: str
    passfile: str

    def url(self, database: str) -> str:
        """A libpq URL for ``database`` on this server; it names the password file rather
        than holding the password."""
        host = quote(self.socket_dir, safe="")
        passfile = quote(self.passfile, safe="")
        return (
            f"postgresql://{SUPERUSER}@/{database}?host={host}&port={self.port}&passfile={passfile}"
        )


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """What ``pgdata/postmaster.pid`` says, once it is complete; ``None`` before."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    # The file is written in stages while the server starts; a short one is "not ready".
    if len(lines) < 8 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None
    socket_dir = lines[4].strip()
    if not socket_dir:
        return None
    return Postmaster(
        int(lines[0]), socket_dir, int(lines[3]), lines[7].strip(), str(passfile_path(pgdata))
    )


def live_postmaster_pid(pgdata: Path) -> int | None:
    """The pid in ``postmaster.pid`` if it is a live ``postgres`` process for this pgdata."""
    postmaster = read_postmaster(pgdata)
    pid = postmaster.pid if postmaster else _first_line_pid(pgdata)
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        is_postgres = process.name() == "postgres" and str(pgdata) in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return pid if alive and is_postgres else None


def _first_line_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def remove_stale_pidfile(pgdata: Path) -> None:
    """After a crash: drop ``postmaster.pid`` and the socket lock files naming the dead
    postmaster. Postgres itself would refuse the lock while the dead pid still exists as an
    unreaped zombie (seen on machines whose init reaps late)."""
    if live_postmaster_pid(pgdata) is not None:
        return
    postmaster = read_postmaster(pgdata)
    dead = postmaster.pid if postmaster else _first_line_pid(pgdata)
    socket_dirs = {pgdata} | ({Path(postmaster.socket_dir)} if postmaster else set())
    for lock in (lock for d in socket_dirs for lock in d.glob(".s.PGSQL.*.lock")):
        if dead is not None and _first_line_of(lock) == str(dead):
            lock.unlink(missing_ok=True)
            lock.with_suffix("").unlink(missing_ok=True)  # the socket itself
    if postmaster is not None:
        remove_socket_dir(Path(postmaster.socket_dir))
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _first_line_of(path: Path) -> str:
    try:
        return path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return ""
