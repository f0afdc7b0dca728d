"""The bubblewrap fast path: bwrap started without a ``preexec_fn`` and confined from outside
while its sandbox process waits at the gate (``shipyard.sandbox.isolation.gate``), with real
bwrap."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shipyard.errors import SandboxError
from shipyard.sandbox.isolation import bubblewrap
from shipyard.sandbox.isolation.cgroup import PidsCgroup
from shipyard.sandbox.isolation.environment import build_env
from shipyard.sandbox.isolation.gate import Gate
from shipyard.sandbox.isolation.process import rlimit_pairs, spawn
from shipyard.sandbox.launcher import Limits, make_launcher

LIMITS = Limits(timeout_s=30, cpu_s=50, processes=64, memory_bytes=1 << 30, file_size_bytes=8 << 20)
PAIRS = rlimit_pairs(cpu_s=50, memory_bytes=1 << 30, file_size_bytes=8 << 20, processes=64)


def _limits_of(text: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in text.splitlines()[1:]:
        parts = line[26:].split()
        if len(parts) >= 2:
            rows[line[:26].strip()] = (parts[0], parts[1])
    return rows


def test_the_command_is_confined_from_its_first_instruction(tmp_path: Path) -> None:
    launcher = make_launcher(min_level="bubblewrap", limits=LIMITS)
    assert {"rlimits", "pids-cgroup"} <= set(launcher.report().held)
    result = launcher.run(["cat", "/proc/self/limits"], workspace=tmp_path)
    assert result.exit_code == 0, result
    limits = _limits_of(result.stdout)
    assert limits["Max cpu time"] == ("50", "51")
    assert limits["Max processes"] == ("64", "64")
    assert limits["Max address space"] == (str(1 << 30), str(1 << 30))
    assert limits["Max file size"] == (str(8 << 20), str(8 << 20))
    assert limits["Max core file size"] == ("0", "0")
    # Membership is read from the host: inside, bwrap's cgroup namespace shows its root as /.
    marker = f"confined-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(1) as pool:
        command = ["sh", "-c", "sleep 30", marker]
        running = pool.submit(launcher.run, command, workspace=tmp_path)
        pid = _wait_for_process(command)
        cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        os.kill(pid, signal.SIGKILL)
        assert running.result(timeout=30).exit_code != 0
    pids = [line for line in cgroups.splitlines() if ":pids:" in line or line.startswith("0::")]
    assert any(f"/shipyard-{os.geteuid()}/cmd-" in line for line in pids), cgroups


def _wait_for_process(command: list[str]) -> int:
    """The host's pid of the process running ``command`` (not bwrap, whose argv holds it)."""
    cmdline = b"".join(arg.encode() + b"\0" for arg in command)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if (proc / "cmdline").read_bytes() == cmdline:
                        return int(proc.name)
        time.sleep(0.01)
    raise AssertionError(f"no process {command} appeared")


def _gone(pid: int) -> bool:
    """Dead (or a zombie) within a few seconds: SIGKILL is delivered asynchronously."""
    deadline = time.monotonic() + 5
    status = Path(f"/proc/{pid}/status")
    while time.monotonic() < deadline:
        try:
            if "zombie" in status.read_text():
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


class _RefusingCgroup:
    """A cgroup the kernel refuses to move the sandbox into (the protocol seam)."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def add(self, pid: int) -> None:
        self.asked.append(pid)
        raise PermissionError(errno.EACCES, "Permission denied", "cgroup.procs")


def _start_gated(
    workspace: Path, command: list[str], *, extra: tuple[str, ...] = ()
) -> tuple[Gate, subprocess.Popen[bytes]]:
    bwrap = shutil.which("bwrap")
    assert bwrap is not None
    gate = Gate()
    prefix = bubblewrap.command(
        bwrap, workspace=workspace, cwd=workspace, tmp_size=1 << 20, gate_fds=gate.child_fds
    )
    env = build_env({"PATH": "/usr/bin:/bin"}, home=bubblewrap.SANDBOX_HOME, tmpdir="/tmp")
    argv = [prefix[0], *extra, *prefix[1:], "--", *command]
    proc = spawn(argv, cwd=str(workspace), env=env, preexec=None, pass_fds=gate.child_fds)
    gate.spawned()
    return gate, proc


def test_a_sandbox_that_cannot_be_confined_is_killed_before_the_command_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / f"ran-{uuid.uuid4().hex}"
    gate, proc = _start_gated(tmp_path, ["touch", str(marker)])
    refusing = _RefusingCgroup()
    try:
        with pytest.raises(SandboxError, match="cannot confine the bubblewrap sandbox"):
            gate.open(proc, rlimits=PAIRS, cgroup=refusing, timeout_s=10)
    finally:
        gate.close()
    assert len(refusing.asked) == 1 and refusing.asked[0] != proc.pid
    assert proc.returncode == -9
    assert not marker.exists()
    assert _gone(refusing.asked[0])


def test_bwrap_failing_before_the_sandbox_exists_is_left_to_report_itself(
    tmp_path: Path,
) -> None:
    gate, proc = _start_gated(tmp_path, ["true"], extra=("--no-such-option",))
    try:
        gate.open(proc, rlimits=PAIRS, cgroup=_RefusingCgroup(), timeout_s=10)
        _, stderr = proc.communicate(timeout=10)
    finally:
        gate.close()
    assert proc.returncode == 1
    assert b"no-such-option" in stderr


def test_a_command_that_cannot_enter_its_pids_cgroup_never_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = make_launcher(min_level="bubblewrap", limits=LIMITS)
    # The shell that moves itself in before exec'ing bwrap finds a directory, not the file.
    blocked = tmp_path / "not-a-cgroup-file"
    blocked.mkdir()
    monkeypatch.setattr(PidsCgroup, "self_join_file", property(lambda _self: blocked))
    marker = tmp_path / "ran"
    with pytest.raises(SandboxError, match="cannot enter the pids cgroup"):
        launcher.run(["touch", str(marker)], workspace=tmp_path)
    assert not marker.exists()
