"""A small seccomp filter, written as classic BPF by hand (no compiled dependency).

It denies, with ``EPERM``, the system calls a command in a repository never needs and an
escape or an attack on neighbours would: tracing or comparing other processes, mounting,
loading kernel code, keyrings, BPF, namespace changes, ``io_uring`` (its operations run
without passing through this filter), page migration, the LDT, host names, and changing
the execution domain (``personality`` other than the query and the default). ``ioctl`` may
not push input into a terminal (``TIOCSTI``, ``TIOCLINUX``). ``clone3`` answers ``ENOSYS``
so libc falls back to ``clone``, whose namespace flags are checked. Other architectures'
syscall ABIs on this kernel (i386, x32) are refused outright. Only x86_64 is supported;
elsewhere the probe reports seccomp as missing.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import platform
import struct

# x86_64 system call numbers (asm/unistd_64.h).
_DENIED: dict[str, int] = {
    "ptrace": 101, "syslog": 103, "uselib": 134, "modify_ldt": 154, "vhangup": 153,
    "pivot_root": 155, "_sysctl": 156, "adjtimex": 159, "chroot": 161, "acct": 163,
    "settimeofday": 164, "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168,
    "reboot": 169, "sethostname": 170, "setdomainname": 171, "iopl": 172, "ioperm": 173,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "nfsservctl": 180,
    "lookup_dcookie": 212, "clock_settime": 227, "kexec_load": 246, "add_key": 248,
    "request_key": 249, "keyctl": 250, "migrate_pages": 256, "unshare": 272,
    "move_pages": 279, "perf_event_open": 298, "fanotify_init": 300,
    "open_by_handle_at": 304, "clock_adjtime": 305, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320,
    "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_getfd": 438,
    "mount_setattr": 442, "quotactl_fd": 443,
}  # fmt: skip
_NR_IOCTL = 16
_TTY_INJECTION = (0x5412, 0x541C)  # TIOCSTI, TIOCLINUX (the kernel reads cmd as 32 bits)
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
_OFF_NR, _OFF_ARCH, _OFF_ARG0, _OFF_ARG1 = 0, 4, 16, 24

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

DENIED_SYSCALLS: tuple[str, ...] = (
    *sorted(_DENIED),
    "personality",
    "clone(namespaces)",
    "ioctl(TIOCSTI, TIOCLINUX)",
)


def supported() -> str | None:
    """``None`` when a filter can be built for this machine, else why not."""
    if platform.machine() != "x86_64":
        return f"no syscall table for {platform.machine()} (only x86_64 is written)"
    return None


@functools.cache
def program() -> bytes:
    """The filter as an array of ``struct sock_filter`` (8 bytes each), ready for the
    kernel (``prctl``) or for ``bwrap --seccomp FD``; assembled once per process."""
    asm = _Assembler()
    asm.emit(_LD_W_ABS, _OFF_ARCH)
    asm.emit(_JEQ_K, _AUDIT_ARCH_X86_64, jf="kill")
    asm.emit(_LD_W_ABS, _OFF_NR)
    asm.emit(_JGE_K, _X32_BIT, jt="eperm")
    for nr in sorted(_DENIED.values()):
        asm.emit(_JEQ_K, nr, jt="eperm")
    asm.emit(_JEQ_K, _NR_PERSONALITY, jt="personality")
    asm.emit(_JEQ_K, _NR_CLONE, jt="clone")
    asm.emit(_JEQ_K, _NR_CLONE3, jt="enosys")
    asm.emit(_JEQ_K, _NR_IOCTL, jt="ioctl")
    asm.emit(_RET_K, _RET_ALLOW)
    asm.label("personality")  # only the default persona and the query value
    asm.emit(_LD_W_ABS, _OFF_ARG0)
    asm.emit(_JEQ_K, 0, jt="allow")
    asm.emit(_JEQ_K, 0xFFFFFFFF, jt="allow", jf="eperm")
    asm.label("clone")  # no new namespaces
    asm.emit(_LD_W_ABS, _OFF_ARG0)
    asm.emit(_JSET_K, _CLONE_NAMESPACE_FLAGS, jt="eperm", jf="allow")
    asm.label("ioctl")  # no typing into a terminal
    asm.emit(_LD_W_ABS, _OFF_ARG1)
    asm.emit(_JEQ_K, _TTY_INJECTION[0], jt="eperm")
    asm.emit(_JEQ_K, _TTY_INJECTION[1], jt="eperm", jf="allow")
    asm.label("eperm")
    asm.emit(_RET_K, _RET_ERRNO | errno.EPERM)
    asm.label("enosys")
    asm.emit(_RET_K, _RET_ERRNO | errno.ENOSYS)
    asm.label("kill")
    asm.emit(_RET_K, _RET_KILL_PROCESS)
    asm.label("allow")  # jumps go forward only: the argument checks' "allowed" lands here
    asm.emit(_RET_K, _RET_ALLOW)
    return asm.assemble()


class _Assembler:
    """Classic BPF with named forward jump targets (offsets count from the next
    instruction and must fit a byte)."""

    def __init__(self) -> None:
        self._code: list[tuple[int, int, str | None, str | None]] = []
        self._labels: dict[str, int] = {}

    def emit(self, code: int, k: int, *, jt: str | None = None, jf: str | None = None) -> None:
        self._code.append((code, k, jt, jf))

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def assemble(self) -> bytes:
        out = b""
        for index, (code, k, jt, jf) in enumerate(self._code):
            offsets = [self._labels[t] - index - 1 if t else 0 for t in (jt, jf)]
            assert all(0 <= o < 256 for o in offsets), (index, offsets)
            out += struct.pack("<HBBI", code, offsets[0], offsets[1], k)
        return out


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
