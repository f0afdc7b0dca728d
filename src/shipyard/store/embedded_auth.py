"""Who may log in to the embedded Postgres: whoever holds its password file, nobody else.

The password is generated when the cluster is made (or migrated) and kept in a libpq password
file next to the data directory, ``<pgdata>.pgpass`` (one line ``*:*:*:postgres:<password>``),
mode 0600, owned by the user Shipyard runs as. URLs name the file (``passfile=…``) instead of
carrying the password, so the password itself appears in no URL, log line or process list.
``pg_hba.conf`` asks every connection, on the socket and on TCP alike, for that password
(``scram-sha-256``); it has no ``trust`` line.

Data directories made by older versions trust every local login. ``close_open_server`` turns
such a running server into a closed one: password file first (kept if one exists), then
``ALTER ROLE`` while the server still trusts us, then ``pg_hba.conf`` replaced atomically and
reloaded. Each step is idempotent, and until the last one lands the server still lets its
owner in, so a crash at any point leaves a server the next start finishes closing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from shipyard.errors import DatabaseUnavailableError

SUPERUSER = "postgres"
HBA = (
    "# Written by Shipyard: every login needs the password in the password file next to\n"
    "# this data directory (<data directory>.pgpass). No trust lines, on purpose.\n"
    "local all all scram-sha-256\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
    "host all all ::1/128 scram-sha-256\n"
)


def passfile_path(pgdata: Path) -> Path:
    """Where the password file of the cluster in ``pgdata`` lives."""
    return pgdata.with_name(pgdata.name + ".pgpass")


def read_password(pgdata: Path) -> str:
    """The password in ``pgdata``'s password file, after checking the file is private.

    Raises ``DatabaseUnavailableError`` naming the file and the fix when it is missing, not a
    regular file, not ours, readable by others, unreadable or not in the expected form.
    """
    path = passfile_path(pgdata)
    check_passfile(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _passfile_error(path, f"cannot be read ({exc})") from None
    fields = text.strip().split(":")
    if len(text.strip().splitlines()) != 1 or len(fields) != 5 or fields[3] != SUPERUSER:
        raise _passfile_error(path, f"is not in the form `*:*:*:{SUPERUSER}:PASSWORD`")
    if not fields[4]:
        raise _passfile_error(path, "holds an empty password")
    return fields[4]


def check_passfile(path: Path) -> None:
    """Refuse a password file that is missing, not a plain file of ours, or open to others.

    (libpq itself silently ignores a group- or world-readable one, which would surface as a
    puzzling "no password supplied".)
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise _missing_error(path) from None
    except OSError as exc:
        raise _passfile_error(path, f"cannot be read ({exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _passfile_error(path, "is not a regular file (a link, a directory …)")
    if info.st_uid != os.geteuid():
        raise _passfile_error(
            path,
            f"belongs to uid {info.st_uid}, not to the user Shipyard runs as "
            f"(uid {os.geteuid()}); fix: `chown {os.geteuid()} {path}`",
        )
    if info.st_mode & 0o077:
        raise _passfile_error(
            path,
            f"has mode {stat.S_IMODE(info.st_mode):04o}: other users may read the password; "
            f"fix: `chmod 600 {path}`",
        )
    if not os.access(path, os.R_OK):
        raise _passfile_error(path, f"cannot be read by its owner; fix: `chmod 600 {path}`")


def ensure_password(pgdata: Path) -> str:
    """The cluster's password: the one in the password file, or a new one written there.

    A new file is written to a temporary name and linked into place, so readers never see a
    half-written file and two writers end up agreeing on the first one linked.
    """
    path = passfile_path(pgdata)
    if path.exists() or path.is_symlink():
        return read_password(pgdata)
    password = secrets.token_urlsafe(32)  # [A-Za-z0-9_-]: no ':' or '\' to escape
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp made it 0600
            handle.write(f"*:*:*:{SUPERUSER}:{password}\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    _fsync_dir(path.parent)
    return read_password(pgdata)


@contextlib.contextmanager
def password_for_initdb(password: str, server_uid: int | None) -> Iterator[Path]:
    """A temporary file holding only ``password``, readable by the server's user (for
    ``initdb --pwfile``); removed afterwards."""
    fd, name = tempfile.mkstemp(prefix="shipyard-initdb-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        if server_uid is not None:
            os.chown(name, server_uid, -1)
        yield Path(name)
    finally:
        os.unlink(name)


def write_hba(pgdata: Path) -> None:
    """Replace ``pg_hba.conf`` by ``HBA`` atomically, owned by the data directory's owner."""
    target = pgdata / "pg_hba.conf"
    tmp = pgdata / "pg_hba.conf.shipyard-new"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(HBA)
        handle.flush()
        os.fsync(handle.fileno())
    owner = pgdata.stat()
    if os.geteuid() == 0:
        os.chown(tmp, owner.st_uid, owner.st_gid)
    os.replace(tmp, target)
    _fsync_dir(pgdata)


def hba_trusts(pgdata: Path) -> bool:
    """Whether ``pg_hba.conf`` has a rule that lets someone in without a password."""
    try:
        text = (pgdata / "pg_hba.conf").read_text(errors="replace")
    except OSError:
        return False
    rules = (line.split("#", 1)[0].split() for line in text.splitlines())
    return any(rule and rule[-1] in ("trust", "peer", "ident") for rule in rules)


def close_open_server(pgdata: Path, conninfo: str) -> None:
    """Give the superuser the file's password and make the server ask for it.

    ``conninfo`` reaches the running server, which still trusts local logins. Afterwards new
    connections need the password (already open ones are not affected).
    """
    password = ensure_password(pgdata)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            # Hashed here: the plain password never reaches the server or its logs.
            verifier = conn.pgconn.encrypt_password(
                password.encode(), SUPERUSER.encode(), b"scram-sha-256"
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(verifier.decode())
                )
            )
            write_hba(pgdata)
            conn.execute("SELECT pg_reload_conf()")
    except psycopg.Error as exc:
        raise DatabaseUnavailableError(
            f"could not set the password of the embedded Postgres in {pgdata}: {exc}\n"
            "Fix: look at its log in that directory; the server still lets its owner in, and "
            "the next Shipyard command tries again."
        ) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _passfile_error(path: Path, what: str) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(
        f"the embedded Postgres password file {path} {what}.\n"
        "Shipyard will not use it. Fix the file (it must be a regular file owned by the user "
        "running Shipyard, mode 0600), or set DATABASE_URL to use another Postgres."
    )


def _missing_error(path: Path) -> DatabaseUnavailableError:
    pgdata = path.with_name(path.name.removesuffix(".pgpass"))
    return DatabaseUnavailableError(
        f"the embedded Postgres password file {path} is missing, so nobody can log in to the "
        f"server in {pgdata}.\n"
        "Fix: restore the file from a backup. Or set a new password: `shipyard db stop`, then "
        f"in {pgdata / 'pg_hba.conf'} replace `scram-sha-256` by `trust` and run "
        "`shipyard db url`: Shipyard writes a new password file and closes the server again."
    )
