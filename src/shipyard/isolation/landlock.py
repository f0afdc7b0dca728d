"""Landlock through raw system calls (444-446) with ctypes: writes confined to named trees.

The ruleset is built in the parent (opening each allowed path); the child between fork and
exec only sets no-new-privileges and calls ``landlock_restrict_self``. Depending on the
kernel's ABI the same ruleset also refuses TCP bind/connect (ABI 4) and signals to or
abstract-socket connections with processes outside the sandbox (ABI 6).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterable

_SYS_CREATE, _SYS_ADD_RULE, _SYS_RESTRICT = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights that change something (reads and execution stay unrestricted).
_WRITE_FILE = 1 << 1
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE_ALL = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty")
"""Devices a command may still open for writing."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> tuple[int, str]:
    """The kernel's Landlock ABI (0 when unavailable) and, if 0, why."""
    rc = _libc().syscall(_SYS_CREATE, None, 0, _CREATE_RULESET_VERSION)
    if rc < 0:
        err = ctypes.get_errno()
        return 0, f"landlock_create_ruleset failed: {os.strerror(err)} (kernel or LSM off)"
    return int(rc), ""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def held_features(abi: int) -> list[str]:
    """What a ruleset on this ABI enforces, as report layer names."""
    held = ["landlock-fs-write"]
    if abi >= 4:
        held.append("landlock-net-tcp")
    if abi >= 6:
        held.append("landlock-scope-signal")
    return held


class Ruleset:
    """A ready ruleset allowing writes only beneath ``writable``; close it when done."""

    def __init__(self, abi: int, writable: Iterable[str], *, deny_tcp: bool = True) -> None:
        libc = _libc()
        self._syscall = libc.syscall
        self._prctl = libc.prctl
        fs = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ALL
        fs |= _REFER if abi >= 2 else 0
        fs |= _TRUNCATE if abi >= 3 else 0
        attr = _RulesetAttr(fs, 0, 0)
        size = 8
        if abi >= 4 and deny_tcp:
            attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
        if abi >= 6:
            attr.scoped, size = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL, 24
        fd = self._syscall(_SYS_CREATE, ctypes.byref(attr), size, 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
        self.fd = int(fd)
        try:
            for path in writable:
                self._allow(path, fs)
            file_rights = _WRITE_FILE | (_TRUNCATE if abi >= 3 else 0)
            for dev in _DEVICES:
                with contextlib.suppress(OSError):
                    self._allow(dev, file_rights)
        except BaseException:
            os.close(self.fd)
            raise

    def _allow(self, path: str, rights: int) -> None:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            rule = _PathBeneath(rights, pfd)
            if self._syscall(_SYS_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
        finally:
            os.close(pfd)

    def restrict_self(self) -> None:
        """Confine the calling process (the child, before exec)."""
        if self._prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if self._syscall(_SYS_RESTRICT, self.fd, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
