"""Entering a fresh network namespace from the child, before exec (``unshare -n``).

As root a plain ``unshare(CLONE_NEWNET)``; otherwise together with a user namespace that
maps the caller to itself, so nothing else changes. The loopback interface is brought up
so the command can still talk to itself on 127.0.0.1 — which is not the host's.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_IFF_UP, _IFF_RUNNING = 0x1, 0x40


class NetworkUnsharer:
    """Callable run in the child; prepared in the parent so the child does little."""

    def __init__(self) -> None:
        self._unshare = ctypes.CDLL(None, use_errno=True).unshare
        self._uid, self._gid = os.geteuid(), os.getegid()

    def __call__(self) -> None:
        """Leave the host's network; raises ``OSError`` if the kernel refuses."""
        flags = _CLONE_NEWNET if self._uid == 0 else _CLONE_NEWNET | _CLONE_NEWUSER
        if self._unshare(flags) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
        if self._uid != 0:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{self._uid} {self._uid} 1")
            _write("/proc/self/gid_map", f"{self._gid} {self._gid} 1")
        _loopback_up()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(
            sock.fileno(),
            _SIOCSIFFLAGS,
            struct.pack("16sH14x", b"lo", flags | _IFF_UP | _IFF_RUNNING),
        )
