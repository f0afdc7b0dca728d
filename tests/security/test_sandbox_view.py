"""Hostile cases against the sandbox's filesystem view: what a command can read or connect to.

Categories (in each test's name): ``view_model_*`` — a hostile model's allowed commands
through a whole run; ``view_repo_*`` — a hostile repository's code run as a check at
validation; ``view_launcher_*`` — one attack straight at the launcher; ``view_fallback_*``
— the Landlock fallback without bubblewrap, whose report must say what did not hold;
``seccomp_*`` — system calls with known filter bypasses.

Every secret is a random string planted outside the workspace (another run's workspace and
the artifacts under ``SHIPYARD_HOME``, the caller's home, the host's ``/tmp``) or in a
forbidden path inside it. A case passes only when the secret appears nowhere a run records
it — tool results, events, journal, database rows, artifacts — and the attempt is seen to
have been made.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.sandbox.launcher import Limits, SandboxLauncher, make_launcher
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo
from tests.integration.conftest import MakeRepo, WriteScript, make_repo, write_script
from tests.support import PASSING_TEST, call, finish, git, plan_reply

__all__ = ["make_repo", "write_script"]  # fixtures re-exported for this module

PY = sys.executable
SYSTEM_PG = "/var/run/postgresql/.s.PGSQL.5432"
SMALL = Limits(timeout_s=60, processes=128, memory_bytes=2 << 30, file_size_bytes=64 << 20)
TABLES = ("journal", "run_events", "approvals", "runs", "check_cache", "checkpoints",
          "checkpoint_blobs", "checkpoint_writes")  # fmt: skip


def _secret(tag: str) -> str:
    return f"shipyard-view-{tag}-{uuid.uuid4().hex}"


@dataclasses.dataclass
class Planted:
    """Secrets planted outside (and one inside) the workspace of the coming run."""

    other_run: Path
    artifact: Path
    home_file: Path
    host_tmp: Path
    values: dict[str, str]


@pytest.fixture
def home_settings(settings: Settings) -> Iterator[Settings]:
    """``settings`` with ``SHIPYARD_HOME`` outside ``/tmp``, as in production (a private
    ``/tmp`` alone must not be what hides it)."""
    home = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="shipyard-view-home-"))
    try:
        yield dataclasses.replace(settings, home=home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def planted(home_settings: Settings) -> Iterator[Planted]:
    settings = home_settings
    values = {k: _secret(k) for k in ("other", "artifact", "home", "tmp", "forbidden")}
    other = settings.workspaces / "other-run" / "secret.txt"
    artifact = settings.artifacts / "other-run" / "checks" / "log.txt"
    for path, key in ((other, "other"), (artifact, "artifact")):
        path.parent.mkdir(parents=True)
        path.write_text(values[key] + "\n")
        path.chmod(0o600)
    home_file = Path.home() / f".shipyard-view-{uuid.uuid4().hex[:12]}"
    fd = os.open(home_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, values["home"].encode() + b"\n")
    os.close(fd)
    host_tmp = Path(tempfile.mkdtemp(prefix="shipyard-view-", dir="/tmp")) / "marker.txt"
    host_tmp.write_text(values["tmp"] + "\n")
    try:
        yield Planted(other, artifact, home_file, host_tmp, values)
    finally:
        home_file.unlink(missing_ok=True)
        host_tmp.unlink(missing_ok=True)
        host_tmp.parent.rmdir()


def _recorded_text(settings: Settings, run_id: str, runner: Runner) -> str:
    """Everything the run recorded: events, journal, every database row, every artifact."""
    parts = [repr(e.payload) for e in runner.context.runs.events(run_id)]
    parts += [repr(e.outcome) for e in runner.context.journal.entries(run_id)]
    with psycopg.connect(psycopg_conninfo(settings.database_url or "")) as conn:
        for table in TABLES:
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()
            parts.append(repr(rows))
            parts += [
                bytes(v).decode(errors="replace")
                for row in rows
                for v in row
                if isinstance(v, bytes | memoryview)
            ]
    run_artifacts = settings.artifacts / run_id
    parts += [p.read_text(errors="replace") for p in run_artifacts.rglob("*") if p.is_file()]
    return "\n".join(parts)


def _assert_no_secret(text: str, planted: Planted) -> None:
    for key, value in planted.values.items():
        assert value not in text, f"the {key} secret leaked"


def _listener(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    server.setblocking(False)
    return server


def _accepted_nothing(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


FORBIDDEN_POLICY = {
    "approvals": {"plan": "never"},
    "paths": {"forbidden": ["secrets/**"]},
}


async def test_view_model_allowed_commands_read_nothing_outside_the_workspace(
    home_settings: Settings, make_repo: MakeRepo, write_script: WriteScript, planted: Planted
) -> None:
    settings = home_settings
    repo = make_repo(
        {
            "tests/test_ok.py": PASSING_TEST,
            "mod.py": "x = 1\n",
            "secrets/key.txt": planted.values["forbidden"] + "\n",
        }
    )
    attempts = {
        "shadow": "cat /etc/shadow",
        "other-run": f"cat {planted.other_run}",
        "grep-home": f"grep -r shipyard-view {settings.home}",
        "diff-no-index": f"git diff --no-index /dev/null {planted.home_file}",
        "blame-contents": f"git blame --contents {planted.artifact} mod.py",
        "list": "ls -a /home /root /tmp /var/run",
        "host-tmp": f"cat {planted.host_tmp}",
        "forbidden-cat": "cat secrets/key.txt",
        "forbidden-grep": "grep -r shipyard-view .",
    }
    calls = [call("run_command", command=c) for c in attempts.values()]
    calls.append(call("read_file", path="secrets/key.txt"))
    script = {"planner": [plan_reply(("s1", "look"))], "developer": {"s1/1": [*calls, finish()]}}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="look", repo=str(repo), policy=FORBIDDEN_POLICY))
        recorded = _recorded_text(settings, stop.run_id, runner)
        entries = runner.context.journal.entries(stop.run_id)

    assert stop.status == "completed", stop
    results = [e.outcome["content"] for e in entries if e.call_id.startswith("tool.") and e.outcome]
    by_name = dict(zip([*attempts, "read_file"], results, strict=False))
    assert len(by_name) == len(attempts) + 1, results
    for name, result in by_name.items():
        _assert_no_secret(result, planted)
        assert "exit code 0" not in result or name == "list", (name, result)
    assert "root:" not in by_name["shadow"]
    listing = by_name["list"]
    assert planted.home_file.name not in listing and planted.host_tmp.parent.name not in listing
    in_tmp = listing.split("/tmp:\n", 1)[1].split("\n\n")[0].split("\n---")[0].split()
    # Only HOME, the way to the repository's git dir (a worktree needs it) and the way to a
    # toolchain under /tmp (a CI checkout's venv) are in /tmp.
    assert set(in_tmp) <= {".", "..", *_allowed_in_tmp(repo)}, in_tmp
    assert ".s.PGSQL" not in listing and "postgresql" not in listing
    assert by_name["read_file"].startswith("error:") and "forbidden" in by_name["read_file"]
    _assert_no_secret(recorded, planted)
    assert (repo / "secrets" / "key.txt").read_text() == planted.values["forbidden"] + "\n"


HOSTILE_TEST = """
import os, socket

def attempt(name, action):
    try:
        print(f"ATTEMPT {name}: got {action()!r}")
    except OSError as exc:
        print(f"ATTEMPT {name}: denied {type(exc).__name__}")

def read(path):
    return lambda: open(path).read()

def connect(path):
    def go():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b"hello")
        return "connected"
    return go

def listing(path):
    return lambda: sorted(os.listdir(path))

def test_reach_outside():
    attempt("shadow", read("/etc/shadow"))
    attempt("gshadow", read("/etc/gshadow"))
    attempt("other-run", read(OTHER))
    attempt("artifact", read(ARTIFACT))
    attempt("home-file", read(HOME_FILE))
    attempt("host-tmp", read(HOST_TMP))
    attempt("forbidden", read("secrets/key.txt"))
    attempt("system-postgres", connect(SYSTEM_PG))
    attempt("home-socket", connect(LISTENER))
    attempt("list-home", listing("/home"))
    attempt("list-root", listing("/root"))
    attempt("list-tmp", listing("/tmp"))
    attempt("list-shipyard-home", listing(SHIPYARD_HOME))
"""


async def test_view_repo_tests_at_validation_reach_nothing_outside(
    home_settings: Settings, make_repo: MakeRepo, write_script: WriteScript, planted: Planted
) -> None:
    settings = home_settings
    sock_path = settings.home / "db.sock"
    server = _listener(sock_path)
    consts = {
        "OTHER": planted.other_run, "ARTIFACT": planted.artifact,
        "HOME_FILE": planted.home_file, "HOST_TMP": planted.host_tmp, "SYSTEM_PG": SYSTEM_PG,
        "LISTENER": sock_path, "SHIPYARD_HOME": settings.home,
    }  # fmt: skip
    header = "".join(f"{k} = {str(v)!r}\n" for k, v in consts.items())
    repo = make_repo(
        {
            "tests/test_reach.py": header + HOSTILE_TEST,
            "secrets/key.txt": planted.values["forbidden"] + "\n",
        }
    )
    check = {"name": "probe", "command": [PY, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]}
    policy = {**FORBIDDEN_POLICY, "checks": {"run": [check]}}
    script = {"planner": [plan_reply(("s1", "x"))], "developer": {"s1/1": [finish()]}}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    try:
        async with Runner.open(scripted) as runner:
            stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=policy))
            recorded = _recorded_text(settings, stop.run_id, runner)
        assert _accepted_nothing(server), "a sandboxed test connected to a host socket"
    finally:
        server.close()

    assert stop.status == "completed", stop
    lines = {
        line.split(":", 1)[0].removeprefix("ATTEMPT "): line.split(":", 1)[1]
        for line in recorded.splitlines()
        if line.startswith("ATTEMPT ")
    }
    assert len(lines) == 13, lines
    for name in ("shadow", "gshadow", "other-run", "artifact", "home-file", "host-tmp",
                 "forbidden", "system-postgres", "home-socket", "list-home"):  # fmt: skip
        assert lines[name].startswith(" denied") or lines[name] in (" got ''", " got []"), (
            name,
            lines[name],
        )
    assert set(eval(lines["list-tmp"].removeprefix(" got "))) <= _allowed_in_tmp(repo)
    assert lines["list-shipyard-home"].startswith(" got ")  # the way to the workspace only:
    assert set(eval(lines["list-shipyard-home"].removeprefix(" got "))) == {"workspaces"}
    assert planted.home_file.name not in lines["list-root"]
    _assert_no_secret(recorded, planted)


# ----- straight at the launcher -----------------------------------------------------------


@pytest.fixture(scope="module")
def bwrap_launcher() -> SandboxLauncher:
    return make_launcher(min_level="bubblewrap", limits=SMALL)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "secrets").mkdir(parents=True)
    (root / "secrets" / "key.txt").write_text("forbidden-value\n")
    (root / "app.pem").write_text("pem-value\n")
    (root / "mod.py").write_text("x = 1\n")
    git(root.parent, "init", "-q", "-b", "main", str(root))
    return root


def test_view_launcher_etc_keeps_what_builds_need_and_masks_the_rest(
    bwrap_launcher: SandboxLauncher, repo: Path
) -> None:
    unreadable = sorted(
        str(p)
        for p in Path("/etc").rglob("*")
        if not p.is_symlink() and p.is_file() and not p.stat().st_mode & stat.S_IROTH
    )[:20]
    assert unreadable, "this machine has no non-world-readable file in /etc to test with"
    code = (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    try: data = open(p, 'rb').read()\n"
        "    except OSError as e: data = b''\n"
        "    print(p, len(data))\n"
    )
    result = bwrap_launcher.run([PY, "-c", code, *unreadable], workspace=repo)
    assert result.exit_code == 0, result.stderr
    sizes = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    assert sizes == {p: "0" for p in unreadable}
    ok = bwrap_launcher.run(
        ["sh", "-c", "head -1 /etc/passwd; cat /etc/os-release"], workspace=repo
    )
    assert ok.exit_code == 0 and ok.stdout.startswith("root:"), ok.stderr


def test_view_launcher_root_shows_only_system_toolchain_and_workspace(
    bwrap_launcher: SandboxLauncher, repo: Path
) -> None:
    result = bwrap_launcher.run(["ls", "-A", "/", "/tmp", "/home", "/var", "/run"], workspace=repo)
    top = result.stdout.split("\n\n")[0].splitlines()[1:]
    system = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "opt", "etc", "dev"}
    tools = [sys.base_prefix, sys.prefix, *os.environ["PATH"].split(os.pathsep)]
    # The way to the toolchain and to the workspace, nothing else of the host's top level.
    ways = {Path(t).resolve().parts[1] for t in tools if Path(t).is_dir()} | {repo.parts[1]}
    assert set(top) <= system | {"proc", "tmp"} | ways, top
    assert not {"var", "run", "srv", "mnt", "media", "sys", "boot"} & set(top), top
    in_tmp = result.stdout.split("/tmp:\n", 1)[1].split("\n\n")[0].split()
    assert set(in_tmp) <= _allowed_in_tmp(repo), in_tmp  # HOME, the workspace's path
    assert "No such file or directory" in result.stderr


def test_view_launcher_unix_socket_outside_the_workspace_is_unreachable(
    bwrap_launcher: SandboxLauncher, repo: Path, tmp_path: Path
) -> None:
    outside = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="shipyard-sock-"))
    paths = [tmp_path / "l.sock", outside / "l.sock"]
    servers = [_listener(p) for p in paths]
    code = (
        "import socket, sys\n"
        "for p in sys.argv[1:]:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    try: s.connect(p); print('connected', p)\n"
        "    except OSError as e: print('refused', p, type(e).__name__)\n"
    )
    try:
        result = bwrap_launcher.run([PY, "-c", code, *map(str, paths), SYSTEM_PG], workspace=repo)
        assert all(_accepted_nothing(s) for s in servers)
    finally:
        for s in servers:
            s.close()
        for p in paths:
            p.unlink(missing_ok=True)
        outside.rmdir()
    assert result.exit_code == 0, result.stderr
    assert "connected" not in result.stdout and result.stdout.count("refused") == 3
    assert {"filesystem-view", "no-host-unix-sockets"} <= set(result.isolation.held)


def test_view_launcher_forbidden_workspace_paths_are_masked(
    bwrap_launcher: SandboxLauncher, repo: Path
) -> None:
    hidden = ["secrets/**", "*.pem"]
    script = (
        "cat secrets/key.txt app.pem; ls secrets; rm -f app.pem; mv secrets s2; "
        "echo evil > app.pem; cat mod.py"
    )
    result = bwrap_launcher.run(["sh", "-c", script], workspace=repo, hidden=hidden)
    assert "forbidden-value" not in result.stdout and "pem-value" not in result.stdout
    assert "key.txt" not in result.stdout
    assert result.stdout.endswith("x = 1\n"), result.stdout
    assert (repo / "secrets" / "key.txt").read_text() == "forbidden-value\n"
    assert (repo / "app.pem").read_text() == "pem-value\n"
    assert "forbidden-paths-masked" in result.isolation.held
    plain = bwrap_launcher.run(["cat", "app.pem"], workspace=repo)
    assert plain.stdout == "pem-value\n" and "forbidden-paths-masked" not in plain.isolation.held


def test_view_launcher_path_entries_holding_the_workspace_or_shipyard_home_stay_out(
    bwrap_launcher: SandboxLauncher, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="shipyard-view-path-"))
    try:
        (home / "shipyard").mkdir()
        (home / "shipyard" / "secret.txt").write_text("home-secret\n")
        (repo.parent / "sibling.txt").write_text("sibling-secret\n")
        monkeypatch.setenv("SHIPYARD_HOME", str(home / "shipyard"))
        path = f"{home}:{repo.parent}:{os.environ['PATH']}"
        targets = [home / "shipyard" / "secret.txt", repo.parent / "sibling.txt"]
        result = bwrap_launcher.run(["cat", *map(str, targets)], workspace=repo, env={"PATH": path})
    finally:
        shutil.rmtree(home)
    assert "secret" not in result.stdout
    assert result.stderr.count("No such file or directory") == 2, result.stderr


def test_view_launcher_another_runs_worktree_metadata_is_not_visible(
    bwrap_launcher: SandboxLauncher, tmp_path: Path
) -> None:
    main = tmp_path / "main"
    main.mkdir()
    (main / "a.py").write_text("a = 1\n")
    git(main, "init", "-q", "-b", "main")
    git(main, "add", ".")
    git(main, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "i")
    for run in ("run-a", "run-b"):
        git(main, "worktree", "add", "-q", "-b", run, str(tmp_path / run))
    worktrees = main / ".git" / "worktrees"
    result = bwrap_launcher.run(
        ["sh", "-c", f"ls {worktrees}; cat {worktrees}/run-b/HEAD; git status --short"],
        workspace=tmp_path / "run-a",
    )
    assert result.stdout.split() == ["run-a"], result
    assert "run-b/HEAD: No such file or directory" in result.stderr
    assert "ref: refs/heads/run-b" in (worktrees / "run-b" / "HEAD").read_text()


def test_view_launcher_toolchain_still_runs_tests_and_git(
    bwrap_launcher: SandboxLauncher, repo: Path
) -> None:
    (repo / "test_mod.py").write_text("from mod import x\n\ndef test_x():\n    assert x == 1\n")
    tests = bwrap_launcher.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"], workspace=repo)
    assert tests.exit_code == 0 and "1 passed" in tests.stdout, tests.stdout + tests.stderr
    status = bwrap_launcher.run(["git", "status", "--porcelain"], workspace=repo)
    assert status.exit_code == 0 and "mod.py" in status.stdout, status.stderr


def _allowed_in_tmp(repo: Path) -> set[str]:
    """What the sandbox's private ``/tmp`` may show: its ``HOME``, the way to the workspace
    (here under the host's ``/tmp``) and the way to a toolchain that lives under ``/tmp``."""
    tools = [sys.base_prefix, sys.prefix, *os.environ["PATH"].split(os.pathsep)]
    under = [Path(t).resolve() for t in tools if t and Path(t).is_dir()]
    tops = {p.parts[2] for p in under if p.is_relative_to("/tmp") and len(p.parts) > 2}
    return {"home", repo.parts[2], *tops}


def _readable_environ(pid: int, secret: str) -> bool:
    """The control: outside any sandbox the caller can read the environment (a freshly
    started child may show it a moment late)."""
    for _ in range(50):
        if secret.encode() in Path(f"/proc/{pid}/environ").read_bytes():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("disable", [(), ("bubblewrap",)], ids=["bubblewrap", "fallback"])
def test_view_launcher_the_callers_process_environments_are_not_readable_through_proc(
    repo: Path, disable: tuple[str, ...]
) -> None:
    secret = _secret("proc")
    holder = subprocess.Popen(["sleep", "60"], env={"SHIPYARD_VIEW_TEST_TOKEN": secret})
    try:
        if not _readable_environ(holder.pid, secret):
            pytest.skip("this user cannot read its own child's environment even outside a sandbox")
        launcher = make_launcher(disable=disable, limits=SMALL)
        targets = [f"/proc/{holder.pid}/environ", f"/proc/{os.getpid()}/environ"]
        result = launcher.run(["cat", *targets], workspace=repo)
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code != 0 and result.stdout == "", result
    assert secret not in result.stderr


# ----- the fallback without bubblewrap: confined reads, honest report ---------------------


@pytest.fixture(scope="module")
def fallback() -> SandboxLauncher:
    return make_launcher(disable=["bubblewrap"], limits=SMALL)


def test_view_fallback_landlock_confines_reads_to_the_view(
    fallback: SandboxLauncher, repo: Path, planted: Planted
) -> None:
    outside = [planted.other_run, planted.artifact, planted.home_file, planted.host_tmp]
    result = fallback.run(["cat", *map(str, outside)], workspace=repo)
    assert result.exit_code != 0 and result.stdout == ""
    _assert_no_secret(result.stdout + result.stderr, planted)
    assert result.stderr.count("Permission denied") == len(outside), result.stderr
    shadow = fallback.run(["cat", "/etc/shadow"], workspace=repo)
    assert shadow.exit_code != 0 and "root:" not in shadow.stdout
    tools = fallback.run(
        [PY, "-c", "import pytest, sys; print(open('mod.py').read())"], workspace=repo
    )
    assert tools.exit_code == 0 and tools.stdout == "x = 1\n\n", tools.stderr
    assert any(h.startswith("landlock-fs-read") for h in result.isolation.held)
    assert "filesystem-view" not in result.isolation.missing


def test_view_fallback_reports_host_sockets_reachable_and_it_is_true(
    fallback: SandboxLauncher, repo: Path
) -> None:
    outside = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="shipyard-sock-"))
    server = _listener(outside / "l.sock")
    code = "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"
    try:
        result = fallback.run([PY, "-c", code, str(outside / "l.sock")], workspace=repo)
        reached = not _accepted_nothing(server)
    finally:
        server.close()
        (outside / "l.sock").unlink()
        outside.rmdir()
    # Landlock does not cover pathname Unix sockets: the report must say so, and it holds.
    assert "Unix sockets" in result.isolation.missing["host-sockets"]
    assert "no-host-unix-sockets" not in result.isolation.held
    assert reached == (result.exit_code == 0)


def test_view_fallback_forbidden_paths_not_hidden_is_reported(
    fallback: SandboxLauncher, repo: Path
) -> None:
    result = fallback.run(["cat", "app.pem"], workspace=repo, hidden=["*.pem"])
    assert "forbidden-paths-masked" in result.isolation.missing
    assert "forbidden-paths-masked" not in result.isolation.held


def test_view_fallback_without_landlock_reports_no_filesystem_view(repo: Path) -> None:
    launcher = make_launcher(disable=["bubblewrap", "landlock"], limits=SMALL)
    report = launcher.run(["true"], workspace=repo).isolation
    assert "filesystem-view" in report.missing and "host-sockets" in report.missing
    assert not any(h.startswith("landlock") for h in report.held)


# ----- seccomp --------------------------------------------------------------------------

IO_URING = (
    "import ctypes, errno\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "params = ctypes.create_string_buffer(120)\n"
    "for nr in (425, 426, 427):\n"
    "    rc = libc.syscall(nr, 1, params, 0, 0, 0, 0)\n"
    "    print(nr, rc, errno.errorcode.get(ctypes.get_errno()))\n"
    "char = ctypes.c_char(b'x')\n"
    "for cmd in (0x5412, 0x100005412):  # TIOCSTI, and with high bits the kernel drops\n"
    "    rc = libc.ioctl(0, ctypes.c_ulong(cmd), ctypes.byref(char))\n"
    "    print('ioctl', rc, errno.errorcode.get(ctypes.get_errno()))\n"
)


@pytest.mark.parametrize("disable", [(), ("bubblewrap",)], ids=["bubblewrap", "fallback"])
def test_seccomp_io_uring_and_terminal_injection_are_denied(
    repo: Path, disable: tuple[str, ...]
) -> None:
    launcher = make_launcher(disable=disable, limits=SMALL)
    result = launcher.run([PY, "-c", IO_URING], workspace=repo)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "425 -1 EPERM", "426 -1 EPERM", "427 -1 EPERM", "ioctl -1 EPERM", "ioctl -1 EPERM",
    ]  # fmt: skip
    assert "seccomp" in result.isolation.held
