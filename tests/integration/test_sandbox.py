"""The launcher against real attacks, at every isolation level this machine offers.

Each attack asserts the recorded outcome (exit code, ``limit``, isolation report) and that
nothing outside the workspace changed. Fork bombs are bounded (300 forks against a limit of
64) so a broken limit cannot take the shared machine down.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.errors import SandboxError
from shipyard.sandbox.launcher import Limits, SandboxLauncher, level_at_least, make_launcher

PY = sys.executable
LEVELS = ["process", "namespace", "bubblewrap"]
SMALL = Limits(timeout_s=30, processes=64, memory_bytes=1 << 30, file_size_bytes=8 << 20)


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with one commit (``.git`` is a directory)."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "mod.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "test_mod.py").write_text(
        "from mod import add\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "init")
    return root


@pytest.fixture
def worktree(repo: Path, tmp_path: Path) -> Path:
    """A git worktree of ``repo`` (``.git`` is a file pointing into ``repo/.git``)."""
    path = tmp_path / "wt"
    _git(repo, "worktree", "add", "-q", "-b", "run-1", str(path))
    return path


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside the workspace and outside /tmp (visible inside bubblewrap)."""
    path = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="shipyard-outside-"))
    yield path
    shutil.rmtree(path)


@pytest.fixture(params=LEVELS)
def launcher(request: pytest.FixtureRequest) -> SandboxLauncher:
    made = make_launcher(prefer=request.param, limits=SMALL)
    assert made.level == request.param, made.report()
    return made


def _procs_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_best_level_here_is_bubblewrap_and_every_result_carries_the_report(repo: Path) -> None:
    launcher = make_launcher(min_level="bubblewrap")
    result = launcher.run(["true"], workspace=repo)
    assert result.exit_code == 0
    assert result.isolation == launcher.report()
    assert result.isolation.level == "bubblewrap"
    for layer in ("read-only-root", "filesystem-view", "etc-masked", "no-host-unix-sockets",
                  "git-hooks-readonly", "network-namespace", "seccomp"):  # fmt: skip
        assert layer in result.isolation.held
    assert not {"filesystem-view", "host-sockets"} & set(result.isolation.missing)
    assert "under bubblewrap" in result.isolation.missing["landlock"]


def test_fallback_without_bubblewrap_is_reported_with_the_reason(repo: Path) -> None:
    launcher = make_launcher(disable=["bubblewrap"])
    report = launcher.run(["true"], workspace=repo).isolation
    assert report.level == "namespace"
    assert report.missing["bubblewrap"] == "disabled by configuration"
    assert "git-hooks-readonly" in report.missing
    assert "landlock-fs-read(abi" in " ".join(report.held)
    assert "Unix sockets" in report.missing["host-sockets"]
    bare = make_launcher(disable=["bubblewrap", "namespace", "landlock", "seccomp"])
    report = bare.report()
    assert report.level == "process"
    assert report.missing["network-namespace"] == "disabled by configuration"
    assert report.missing["landlock"] == "disabled by configuration"
    assert report.missing["seccomp"] == "disabled by configuration"
    assert "can read every file" in report.missing["filesystem-view"]


def test_without_a_pids_cgroup_the_report_says_why_and_commands_still_run(repo: Path) -> None:
    launcher = make_launcher(limits=SMALL, disable=["pids-cgroup"])
    result = launcher.run(["sh", "-c", "echo ran"], workspace=repo)
    assert (result.exit_code, result.stdout) == (0, "ran\n"), result
    assert "pids-cgroup" not in result.isolation.held
    assert result.isolation.missing["pids-cgroup"] == "disabled by configuration"
    if os.geteuid() == 0:  # root is not bound by RLIMIT_NPROC: the gap is named too
        assert "disabled by configuration" in result.isolation.missing["process-limit"]


def test_min_level_above_what_is_available_raises_naming_the_missing_layer() -> None:
    with pytest.raises(SandboxError, match=r"'bubblewrap' required.*bubblewrap: disabled"):
        make_launcher(min_level="bubblewrap", disable=["bubblewrap"])
    with pytest.raises(SandboxError, match="unknown isolation layers"):
        make_launcher(disable=["docker"])
    with pytest.raises(SandboxError, match="unknown isolation level"):
        make_launcher(min_level="vm")  # type: ignore[arg-type]
    assert level_at_least("bubblewrap", "namespace")
    assert not level_at_least("process", "namespace")


def test_fork_bomb_hits_the_process_limit_and_leaves_nothing(
    launcher: SandboxLauncher, repo: Path
) -> None:
    marker = f"bomb-{uuid.uuid4().hex}"
    code = (
        "import os, sys, time\nn = 0\ntry:\n    for _ in range(300):\n"
        "        if os.fork() == 0:\n            time.sleep(60); os._exit(0)\n        n += 1\n"
        "except OSError as e:\n    print('forks', n, e); sys.exit(1)\n"
    )
    result = launcher.run([PY, "-c", code, marker], workspace=repo)
    assert result.limit == "processes", result
    assert result.exit_code == 1
    # The command itself is one of its processes; the sandbox's own (bwrap, its pid-1)
    # are not charged to it.
    assert int(result.stdout.split()[1]) == SMALL.processes - 1, result.stdout
    assert _procs_with(marker) == []


def test_huge_allocation_hits_the_memory_limit(launcher: SandboxLauncher, repo: Path) -> None:
    result = launcher.run([PY, "-c", "x = bytearray(50 * 1024**3)"], workspace=repo)
    assert result.exit_code == 1
    assert result.limit == "memory"
    assert "MemoryError" in result.stderr


@pytest.mark.parametrize("writer", ["python", "dd"])
def test_huge_file_hits_the_file_size_limit(
    launcher: SandboxLauncher, repo: Path, writer: str
) -> None:
    argv = (
        [PY, "-c", "open('big', 'wb').write(b'x' * (64 << 20))"]
        if writer == "python"
        else ["dd", "if=/dev/zero", "of=big", "bs=1M", "count=64"]
    )
    result = launcher.run(argv, workspace=repo)
    assert result.exit_code != 0
    assert result.limit == "file_size"
    assert (repo / "big").stat().st_size <= SMALL.file_size_bytes


def test_infinite_loop_times_out_and_the_whole_group_is_gone(
    launcher: SandboxLauncher, repo: Path
) -> None:
    marker = f"loop-{uuid.uuid4().hex}"
    script = (
        f"{PY} -c 'import time; time.sleep(300)' {marker} & exec {PY} -c 'while 1: pass' {marker}"
    )
    result = launcher.run(["/bin/sh", "-c", script], workspace=repo, limits=Limits(timeout_s=1.0))
    assert result.timed_out and result.limit == "timeout"
    assert 1.0 <= result.duration_s < 10
    assert _procs_with(marker) == []


def test_cpu_limit_is_named(launcher: SandboxLauncher, repo: Path) -> None:
    result = launcher.run([PY, "-c", "while 1: pass"], workspace=repo, limits=Limits(cpu_s=1))
    assert result.limit == "cpu"
    assert not result.timed_out


def test_network_to_a_listening_host_socket_fails(launcher: SandboxLauncher, repo: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "print('CONNECTED')"
        )
        result = launcher.run([PY, "-c", code], workspace=repo)
        assert result.exit_code == 1
        assert "CONNECTED" not in result.stdout
        assert "Error" in result.stderr
        with pytest.raises(TimeoutError):
            server.accept()


def test_cannot_signal_or_trace_a_process_outside(launcher: SandboxLauncher, repo: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        killed = launcher.run(["kill", "-KILL", str(sleeper.pid)], workspace=repo)
        trace = (
            "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True)\n"
            f"rc = libc.ptrace(16, {sleeper.pid}, 0, 0)\n"
            "print(rc, ctypes.get_errno()); sys.exit(0 if rc == 0 else 1)"
        )
        traced = launcher.run([PY, "-c", trace], workspace=repo)
        assert killed.exit_code != 0
        assert traced.exit_code == 1, traced
        assert sleeper.poll() is None
        state = Path(f"/proc/{sleeper.pid}/stat").read_text().split()[2]
        assert state == "S"  # sleeping, not traced/stopped
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()


def test_writes_outside_the_workspace_fail(
    launcher: SandboxLauncher, repo: Path, outside: Path
) -> None:
    target = outside / "pwned"
    result = launcher.run(["sh", "-c", f"echo x > {target}; echo y > inside"], workspace=repo)
    assert "inside" not in result.stderr  # the write inside the workspace worked
    assert result.stderr  # and the one outside was refused, with a message
    assert not target.exists()
    assert list(outside.iterdir()) == []
    assert (repo / "inside").read_text() == "y\n"


def test_git_hooks_and_config_are_read_only_under_bubblewrap(repo: Path) -> None:
    launcher = make_launcher(min_level="bubblewrap")
    before = (repo / ".git" / "config").read_text()
    script = "echo evil > .git/hooks/pre-commit; echo '[core] hooksPath=x' >> .git/config"
    result = launcher.run(["sh", "-c", script], workspace=repo)
    assert result.exit_code != 0
    assert "Read-only file system" in result.stderr
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert (repo / ".git" / "config").read_text() == before


def test_worktree_pointer_and_common_hooks_are_protected(worktree: Path, repo: Path) -> None:
    launcher = make_launcher(min_level="bubblewrap")
    pointer = (worktree / ".git").read_text()
    script = "echo 'gitdir: /tmp/evil' > .git; echo evil > ../repo/.git/hooks/post-checkout"
    launcher.run(["sh", "-c", script], workspace=worktree)
    assert (worktree / ".git").read_text() == pointer
    assert not (repo / ".git" / "hooks" / "post-checkout").exists()


def test_below_bubblewrap_hooks_outside_a_worktree_stay_safe_and_the_gap_is_reported(
    worktree: Path, repo: Path
) -> None:
    launcher = make_launcher(prefer="process")
    result = launcher.run(
        ["sh", "-c", f"echo evil > {repo}/.git/hooks/post-checkout"], workspace=worktree
    )
    assert result.exit_code != 0
    assert not (repo / ".git" / "hooks" / "post-checkout").exists()
    assert "bubblewrap" in result.isolation.missing["git-hooks-readonly"]


def test_environment_has_no_secrets(
    launcher: SandboxLauncher, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghijklmnop")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-123")
    result = launcher.run(["env"], workspace=repo, env={"EXTRA_FLAG": "1"})
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names >= {"PATH", "HOME", "TMPDIR", "EXTRA_FLAG"}
    assert not names & {"OPENAI_API_KEY", "DATABASE_URL", "MY_SERVICE_TOKEN"}
    assert "sk-test" not in result.stdout
    with pytest.raises(SandboxError, match="looks like a credential"):
        launcher.run(["env"], workspace=repo, env={"OPENAI_API_KEY": "sk-x"})


def test_output_cap_keeps_the_tail(launcher: SandboxLauncher, repo: Path) -> None:
    code = "for i in range(200000): print(i)"
    result = launcher.run([PY, "-c", code], workspace=repo, limits=Limits(output_bytes=1000))
    assert result.exit_code == 0 and result.truncated
    assert result.stdout.endswith("199998\n199999\n")
    assert "bytes truncated" in result.stdout.splitlines()[0]
    assert len(result.stdout) < 1100


def test_shell_metacharacters_are_literal_without_a_shell(
    launcher: SandboxLauncher, repo: Path
) -> None:
    arg = "a; touch pwned && $(touch pwned2) | cat > pwned3"
    result = launcher.run(["echo", arg], workspace=repo)
    assert result.stdout == arg + "\n"
    assert not any((repo / name).exists() for name in ("pwned", "pwned2", "pwned3"))
    shelled = launcher.run(["echo hi && echo there"], workspace=repo, shell=True)
    assert shelled.stdout == "hi\nthere\n"
    assert "argv-no-shell" in shelled.isolation.missing


def test_real_tools_work_in_a_worktree_under_bubblewrap(worktree: Path) -> None:
    launcher = make_launcher(min_level="bubblewrap")
    tests = launcher.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"], workspace=worktree)
    assert tests.exit_code == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout
    status = launcher.run(["git", "status", "--porcelain"], workspace=worktree)
    assert status.exit_code == 0, status.stderr
    ruff = shutil.which("ruff", path=str(Path(PY).parent))
    assert ruff is not None
    lint = launcher.run(
        [ruff, "check", "--isolated", "--select", "F", "--no-cache", "."], workspace=worktree
    )
    assert lint.exit_code == 0, lint.stdout + lint.stderr
    made = launcher.run(["sh", "-c", "id -u; echo x > made.txt"], workspace=worktree)
    assert made.stdout.strip() == "65534"
    assert (worktree / "made.txt").stat().st_uid == os.getuid()


def test_programs_under_the_hosts_tmp_stay_visible_under_bubblewrap(
    worktree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout (and its virtualenv) under /tmp, as in CI: the sandbox's private /tmp must
    # not hide the tools on PATH. tmp_path is under /tmp here.
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "hello").write_text("#!/bin/sh\necho hello from $0\n")
    (tools / "hello").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    launcher = make_launcher(min_level="bubblewrap")
    result = launcher.run([str(tools / "hello")], workspace=worktree)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"hello from {tools / 'hello'}"
    scratch = launcher.run(["sh", "-c", f"echo x > {tools}/planted"], workspace=worktree)
    assert scratch.exit_code != 0 and not (tools / "planted").exists()


@pytest.mark.parametrize(
    ("argv", "cwd", "message"),
    [
        ("echo hi", None, "not one string"),
        ([], None, "non-empty"),
        (["echo", "a\0b"], None, "NUL"),
        (["true"], Path(".."), "inside the workspace"),
        (["/no/such/program"], None, "cannot start"),
    ],
)
def test_bad_input_is_a_clear_error(
    repo: Path, argv: object, cwd: Path | None, message: str
) -> None:
    launcher = make_launcher()
    with pytest.raises(SandboxError, match=message):
        launcher.run(argv, workspace=repo, cwd=cwd)  # type: ignore[arg-type]
    with pytest.raises(SandboxError, match="not a directory"):
        launcher.run(["true"], workspace=repo / "missing")
