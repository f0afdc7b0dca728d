"""A command given the network (``isolation/usernet.py``): outbound connections leave through
slirp4netns from a network namespace of its own, and this machine's loopback — where the
database and the API server listen — stays out of reach. Real bwrap, real slirp4netns, real
sockets; run as root and as an unprivileged user (``test_unprivileged.py``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.errors import SandboxError
from shipyard.sandbox.isolation.usernet import RESOLVER, slirp4netns
from shipyard.sandbox.launcher import SandboxLauncher, make_launcher
from tests.support import HelloServer, outbound_address

PY = sys.executable

CONNECT = (
    "import socket, sys\n"
    "try:\n"
    "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
    "    print('GOT', s.recv(16).decode())\n"
    "except OSError as err:\n"
    "    print('REFUSED', type(err).__name__)\n"
)


@pytest.fixture
def networked() -> SandboxLauncher:
    if slirp4netns() is None:
        pytest.skip("slirp4netns is not installed (scripts/setup.sh installs it as root)")
    try:
        return make_launcher(min_level="bubblewrap", network=True)
    except SandboxError as err:
        pytest.skip(f"no bubblewrap level here: {err}")


@pytest.fixture
def servers() -> Iterator[tuple[HelloServer, HelloServer]]:
    address = outbound_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    with HelloServer(address) as outside, HelloServer("127.0.0.1") as loopback:
        yield outside, loopback


def _connect(launcher: SandboxLauncher, workspace: Path, host: str, port: int) -> str:
    result = launcher.run([PY, "-c", CONNECT, host, str(port)], workspace=workspace)
    assert result.exit_code == 0, result.stderr.text()
    return str(result.stdout).strip()


def test_a_networked_command_reaches_out_but_not_this_machines_loopback(
    networked: SandboxLauncher, servers: tuple[HelloServer, HelloServer], tmp_path: Path
) -> None:
    outside, loopback = servers
    assert _connect(networked, tmp_path, outside.host, outside.port) == "GOT hello"
    assert outside.accepted == 1
    # 127.0.0.1 inside is the sandbox's own loopback; slirp's gateway to this machine's
    # loopback is switched off.
    assert _connect(networked, tmp_path, "127.0.0.1", loopback.port).startswith("REFUSED")
    assert _connect(networked, tmp_path, "10.0.2.2", loopback.port).startswith("REFUSED")
    assert loopback.accepted == 0
    report = networked.report()
    assert "network-namespace" in report.held
    assert "slirp4netns" in report.missing["offline"]


def test_names_resolve_through_slirp_and_nothing_is_left_running(
    networked: SandboxLauncher, tmp_path: Path
) -> None:
    before = _slirps()
    result = networked.run(["cat", "/etc/resolv.conf"], workspace=tmp_path)
    assert str(result.stdout).strip() == f"nameserver {RESOLVER}"
    assert _slirps() - before == set(), "slirp4netns outlived its command"


def _slirps() -> set[str]:
    found = subprocess.run(
        ["pgrep", "-x", "slirp4netns"], check=False, capture_output=True, text=True
    )
    return set(found.stdout.split())


def test_a_command_without_the_network_reaches_nothing(
    servers: tuple[HelloServer, HelloServer], tmp_path: Path
) -> None:
    try:
        offline = make_launcher(min_level="bubblewrap")
    except SandboxError as err:
        pytest.skip(f"no bubblewrap level here: {err}")
    outside, loopback = servers
    for server in servers:
        assert _connect(offline, tmp_path, server.host, server.port).startswith("REFUSED")
    assert outside.accepted == loopback.accepted == 0


def test_below_bubblewrap_the_network_is_refused_not_shared() -> None:
    with pytest.raises(SandboxError, match="only at the bubblewrap level"):
        SandboxLauncher(prefer="namespace", network=True)
