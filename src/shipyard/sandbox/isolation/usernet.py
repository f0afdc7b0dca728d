"""Outbound network for one command: user-mode networking into its own network namespace.

A command never shares this machine's network namespace: that would put the database, the
API server and every other loopback service within its reach. When a command is given the
network (an environment setup a person approved), bubblewrap still makes it a fresh network
namespace, and ``slirp4netns`` — started from here while bwrap's sandbox process waits at its
gate — plugs a tap device into it whose traffic leaves through ordinary sockets of this
process's namespace. ``--disable-host-loopback`` refuses connections to this machine's
``127.0.0.0/8`` (the gateway ``10.0.2.2`` is unreachable); names resolve through slirp's
resolver at ``10.0.2.3``, which the command sees in its ``/etc/resolv.conf``. What stays
reachable is what any outbound connection reaches, this machine's other addresses included:
an approval request says so.

The namespaces are opened as soon as bwrap names its sandbox process, before that process
can enter the nested user namespace ``--disable-userns`` makes (whose rights do not cover the
network namespace). slirp4netns waits until bwrap has brought the sandbox's loopback up:
both configure it over netlink, and at once they collide.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from shipyard.errors import SandboxError
from shipyard.sandbox.isolation.layers import Layers

RESOLVER = "10.0.2.3"
"""slirp4netns's DNS forwarder inside the command's namespace."""


@functools.cache
def slirp4netns() -> str | None:
    """The slirp4netns program, or ``None`` when this machine has none."""
    return shutil.which("slirp4netns")


@functools.cache
def resolv_conf() -> Path:
    """A ``resolv.conf`` naming slirp's resolver, mounted over the command's own."""
    directory = Path(tempfile.mkdtemp(prefix="shipyard-usernet-"))
    path = directory / "resolv.conf"
    path.write_text(f"nameserver {RESOLVER}\n")
    path.chmod(0o644)
    directory.chmod(0o755)
    return path


def program_for(layers: Layers) -> str:
    """slirp4netns, for a launcher whose commands get the network; ``SandboxError`` when
    they cannot get it without sharing this machine's network namespace."""
    if not layers.bwrap:
        why = layers.report.missing.get("bubblewrap", "")
        raise SandboxError(
            "a command can be given the network only at the bubblewrap level, in a network "
            f"namespace of its own; bubblewrap is not available here ({why})"
        )
    program = slirp4netns()
    if program is None:
        raise SandboxError(
            "a command can be given the network only through slirp4netns, which is not "
            "installed (apt-get install slirp4netns)"
        )
    return program


class UserNetwork:
    """The slirp4netns process of one command; ``attach`` it to bwrap's sandbox process
    before the gate opens, ``close`` it once the command ended."""

    def __init__(self, program: str) -> None:
        self._program = program
        self._proc: subprocess.Popen[bytes] | None = None

    def attach(self, pid: int, deadline: float) -> None:
        """Give the network namespace of ``pid`` an outbound route; raises ``SandboxError``
        when slirp4netns cannot (the command must then not start at all)."""
        net = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        user = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
        ready_read, ready_write = os.pipe()
        try:
            _wait_for_loopback(pid, deadline)
            argv = [
                self._program, "--configure", "--mtu=65520", "--disable-host-loopback",
                "--ready-fd", str(ready_write), "--netns-type=path",
                "--userns-path", f"/proc/self/fd/{user}", f"/proc/self/fd/{net}", "tap0",
            ]  # fmt: skip
            self._proc = subprocess.Popen(
                argv,
                pass_fds=(ready_write, net, user),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            os.close(ready_write)
            ready_write = -1
            self._wait_ready(ready_read, deadline)
        finally:
            for fd in (net, user, ready_read, ready_write):
                if fd >= 0:
                    os.close(fd)

    def _wait_ready(self, ready: int, deadline: float) -> None:
        readable, _, _ = select.select([ready], [], [], max(deadline - time.monotonic(), 0))
        if readable and os.read(ready, 1) == b"1":
            return
        why = self._stop() or "it did not become ready in time"
        raise SandboxError(f"cannot give the command the network: slirp4netns failed: {why}")

    def close(self) -> None:
        self._stop()

    def _stop(self) -> str:
        """End slirp4netns; the last line of what it said."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        _, err = proc.communicate(timeout=10)
        lines = err.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""


def _wait_for_loopback(pid: int, deadline: float) -> None:
    """Until bwrap gave the sandbox's ``lo`` its address (the namespace's routing table
    lists ``127.0.0.1``)."""
    table = Path(f"/proc/{pid}/net/fib_trie")
    while "127.0.0.1" not in table.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError("bubblewrap did not bring the sandbox's loopback up in time")
        time.sleep(0.001)


__all__ = ["RESOLVER", "UserNetwork", "program_for", "resolv_conf", "slirp4netns"]
