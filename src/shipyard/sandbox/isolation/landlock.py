"""Landlock through raw system calls (444-446) with ctypes: reads and writes confined to a view.

The ruleset is built in the parent (opening each allowed path); the child between fork and
exec only sets no-new-privileges and calls ``landlock_restrict_self``. Rules name trees
(``WRITE``: everything but making device nodes; ``READ``: list, read, execute) or single
entries (``LIST``: a directory's names; ``FILE``: read and execute one file; ``DEVICE``:
read and write one device). Everything else can be neither opened nor listed — though
``stat`` still sees it and a pathname Unix socket can still be connected to: Landlock does
not cover those. Depending on the kernel's ABI the same ruleset also refuses TCP
bind/connect (ABI 4) and signals to or abstract-socket connections with processes outside
the sandbox (ABI 6).
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

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE_CHAR, _MAKE_BLOCK = 1 << 6, 1 << 11
_MAKE_ALL = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14

WRITE, READ, LIST, FILE, DEVICE = "write", "read", "list", "file", "device"
"""Kinds of rule (see the module docstring)."""
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom")
"""Devices a command may always open."""


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
    held = ["landlock-fs-write", "landlock-fs-read"]
    if abi >= 4:
        held.append("landlock-net-tcp")
    if abi >= 6:
        held.append("landlock-scope-signal")
    return held


class Ruleset:
    """A ready ruleset granting only ``rules`` (``(path, kind)`` pairs); close it when
    done.

    ``reads_only`` makes a ruleset that handles nothing but reading, listing and execution
    (no network, no scoping): a static mask built once and restricted ``under`` the
    per-command rulesets — Landlock layers add up, each must allow an access — so a long
    allowlist costs nothing per command.
    """

    def __init__(
        self,
        abi: int,
        rules: Iterable[tuple[str, str]],
        *,
        deny_tcp: bool = True,
        reads_only: bool = False,
        under: Ruleset | None = None,
    ) -> None:
        libc = _libc()
        self._syscall = libc.syscall
        self._prctl = libc.prctl
        self._under = under
        look = _EXECUTE | _READ_FILE | _READ_DIR
        change = 0 if reads_only else _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_ALL
        change |= _REFER if abi >= 2 and not reads_only else 0
        change |= _TRUNCATE if abi >= 3 and not reads_only else 0
        attr = _RulesetAttr(change | look, 0, 0)
        size = 8
        if abi >= 4 and deny_tcp and not reads_only:
            attr.handled_access_net, size = _NET_BIND_TCP | _NET_CONNECT_TCP, 16
        if abi >= 6 and not reads_only:
            attr.scoped, size = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL, 24
        fd = self._syscall(_SYS_CREATE, ctypes.byref(attr), size, 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
        self.fd = int(fd)
        file_change = change & (_WRITE_FILE | _TRUNCATE)
        rights = {
            WRITE: (change | look) & ~(_MAKE_CHAR | _MAKE_BLOCK),
            READ: look,
            LIST: _READ_DIR,
            FILE: _EXECUTE | _READ_FILE,
            DEVICE: file_change | _READ_FILE,
        }
        try:
            for path, kind in rules:
                self._allow(path, rights[kind], strict=kind == WRITE)
            for dev in () if reads_only else _DEVICES:
                self._allow(dev, rights[DEVICE], strict=False)
        except BaseException:
            os.close(self.fd)
            raise

    def _allow(self, path: str, rights: int, *, strict: bool) -> None:
        """Add one rule; a path that is gone is skipped unless ``strict``."""
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            if strict:
                raise
            return
        try:
            rule = _PathBeneath(rights, pfd)
            failed = self._syscall(
                _SYS_ADD_RULE, self.fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0
            )
            if failed and strict:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
        finally:
            os.close(pfd)

    def restrict_self(self) -> None:
        """Confine the calling process (the child, before exec)."""
        if self._prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        for fd in (self._under.fd if self._under else None, self.fd):
            if fd is not None and self._syscall(_SYS_RESTRICT, fd, 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock_restrict_self")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
