"""A small seccomp filter, written as classic BPF by hand (no compiled dependency).

It denies, with ``EPERM``, the system calls a command in a repository never needs and an
escape or an attack on neighbours would: tracing other processes, mounting, loading kernel
code, keyrings, BPF, namespace changes, and changing the execution domain (``personality``
other than the query and the default). ``clone3`` answers ``ENOSYS`` so libc falls back to
``clone``, whose namespace flags are checked. Other architectures' syscall ABIs on this
kernel (i386, x32) are refused outright. Only x86_64 is supported; elsewhere the probe
reports seccomp as missing.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# x86_64 system call numbers (asm/unistd_64.h).
_DENIED: dict[str, int] = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "vhangup": 153, "pivot_root": 155,
    "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165,
    "umount2": 166, "swapon": 167, "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "nfsservctl": 180,
    "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "unshare": 272, "perf_event_open": 298,
    "fanotify_init": 300, "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "pidfd_getfd": 438, "mount_setattr": 442, "quotactl_fd": 443,
}  # fmt: skip
_NR_PERSONALITY = 135
_NR_CLONE = 56
_NR_CLONE3 = 435
_CLONE_NAMESPACE_FLAGS = 0x7E020080  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_X32_BIT = 0x40000000
_AUDIT_ARCH_X86_64 = 0xC000003E

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

DENIED_SYSCALLS: tuple[str, ...] = (*sorted(_DENIED), "personality", "clone(namespaces)")


def supported() -> str | None:
    """``None`` when a filter can be built for this machine, else why not."""
    if platform.machine() != "x86_64":
        return f"no syscall table for {platform.machine()} (only x86_64 is written)"
    return None


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def program() -> bytes:
    """The filter as an array of ``struct sock_filter`` (8 bytes each), ready for the
    kernel (``prctl``) or for ``bwrap --seccomp FD``."""
    denied = sorted(_DENIED.values())
    # Layout: header, one JEQ per denied call, the personality and clone checks, ALLOW,
    # then the shared return blocks. Jumps are relative to the next instruction.
    ins: list[tuple[int, int, int, int]] = [
        _insn(_LD_W_ABS, _OFF_ARCH),
        _insn(_JEQ_K, _AUDIT_ARCH_X86_64, jt=1),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFF_NR),
    ]
    body_len = 1 + len(denied) + 3 + 1  # x32 check, denies, personality/clone/clone3, ALLOW
    tail = len(ins) + body_len + 6  # index of the shared "ret EPERM"
    enosys = tail + 1

    def to(target: int) -> int:
        return target - (len(ins) + 1)

    ins.append(_insn(_JGE_K, _X32_BIT, jt=to(tail)))
    for nr in denied:
        ins.append(_insn(_JEQ_K, nr, jt=to(tail)))
    personality_block = len(ins) + 4
    ins.append(_insn(_JEQ_K, _NR_PERSONALITY, jt=to(personality_block)))
    ins.append(_insn(_JEQ_K, _NR_CLONE, jt=to(personality_block + 3)))
    ins.append(_insn(_JEQ_K, _NR_CLONE3, jt=to(enosys)))
    ins.append(_insn(_RET_K, _RET_ALLOW))
    # personality(arg0): only the default persona and the query value are allowed.
    ins.append(_insn(_LD_W_ABS, _OFF_ARG0))
    ins.append(_insn(_JEQ_K, 0, jt=to(len(ins) + 4)))
    ins.append(_insn(_JEQ_K, 0xFFFFFFFF, jt=to(len(ins) + 3), jf=to(tail)))
    # clone(flags): no new namespaces.
    ins.append(_insn(_LD_W_ABS, _OFF_ARG0))
    ins.append(_insn(_JSET_K, _CLONE_NAMESPACE_FLAGS, jt=to(tail)))
    ins.append(_insn(_RET_K, _RET_ALLOW))
    assert len(ins) == tail, (len(ins), tail)
    ins.append(_insn(_RET_K, _RET_ERRNO | errno.EPERM))
    ins.append(_insn(_RET_K, _RET_ERRNO | errno.ENOSYS))
    return b"".join(struct.pack("<HBBI", *i) for i in ins)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class Loader:
    """Loads the filter into the calling process; built in the parent so the child (between
    fork and exec) only makes two ``prctl`` calls."""

    def __init__(self) -> None:
        self._code = ctypes.create_string_buffer(program())
        self._prog = _SockFprog(len(self._code.raw) // 8, ctypes.addressof(self._code))
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl

    def __call__(self) -> None:
        """Set no-new-privileges and install the filter; raises ``OSError`` on failure."""
        if self._prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if self._prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(self._prog), 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
