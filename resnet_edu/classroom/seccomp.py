"""The seccomp layer of the sandbox (see ``sandbox.py`` for what each layer covers): a
classic-BPF program over the system call number and, for a few calls, its first argument.

Denied calls fail with ``EPERM`` (``clone3`` with ``ENOSYS``, so the C library falls back
to ``clone``, whose flags the filter can read); a call from another architecture's ABI
kills the process. The program is built here, without a C compiler, from the kernel's
``linux/filter.h`` and ``linux/seccomp.h``.
"""
from __future__ import annotations

import ctypes
import errno
import struct
from typing import List, Sequence

from . import syscalls

# classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_KILL_PROCESS, _ERRNO, _ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_NR, _ARCH = 0, 4                         # offsets in struct seccomp_data


def _arg(index: int, high: bool = False) -> int:
    """The offset of an argument's low (or high) 32-bit word (little-endian)."""
    return 16 + 8 * index + (4 if high else 0)


_ARG0 = _arg(0)
_CLONE_THREAD = 0x00010000
_X32_BIT = 0x40000000

DENIED = (
    "socket", "socketpair",                              # no new socket of any family
    "fork", "vfork", "execve", "execveat",               # no new program or process
    "ptrace", "process_vm_readv", "process_vm_writev",   # no reaching into others
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "tkill",
    "setrlimit", "prlimit64",                            # limits only go down
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "setxattrat", "removexattrat", "utime", "utimes", "futimesat", "utimensat",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "sethostname", "setdomainname", "syslog", "acct", "quotactl",
    "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm",
    "truncate",                                          # by path (ftruncate stays)
    "memfd_create",                                      # memory outside RLIMIT_AS
    "inotify_add_watch", "fanotify_init", "fanotify_mark")   # names of others' files
SIGNALS_TO_SELF = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
# calls on another process, allowed on itself only: (name, index of the pid argument)
OTHERS_BY_PID = (("sched_setparam", 0), ("sched_setscheduler", 0), ("sched_setaffinity", 0),
                 ("sched_setattr", 0), ("setpriority", 1), ("ioprio_set", 1))
# commands that make the kernel signal a process chosen by the caller (SIGIO and friends)
SIGNAL_OWNER = (("fcntl", (8, 15, 10, 0x402)),          # F_SETOWN, F_SETOWN_EX, F_SETSIG,
                ("ioctl", (0x8901, 0x8902)))            # F_NOTIFY; FIOSETOWN, SIOCSPGRP


def _op(code: int, k: int = 0, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _deny(nr: int, err: int = errno.EPERM) -> List[bytes]:
    return [_op(_JEQ, nr, 0, 1), _op(_RET, _ERRNO | err)]


def _first_arg_in(nr: int, allowed: Sequence[int], index: int = 0) -> List[bytes]:
    """Allow ``nr`` only when an argument (low 32 bits) is one of ``allowed``."""
    n = len(allowed)
    body = [_op(_LD_ABS, _arg(index))]
    body += [_op(_JEQ, v, n - i, 0) for i, v in enumerate(allowed)]   # -> the ALLOW below
    body += [_op(_RET, _ERRNO | errno.EPERM), _op(_RET, _ALLOW)]
    return [_op(_JEQ, nr, 0, len(body))] + body


def _arg_not_in(nr: int, index: int, denied: Sequence[int]) -> List[bytes]:
    """Deny ``nr`` when an argument (low 32 bits) is one of ``denied``."""
    n = len(denied)
    body = [_op(_LD_ABS, _arg(index))]
    body += [_op(_JEQ, v, n - i, 0) for i, v in enumerate(denied)]   # -> the EPERM below
    body += [_op(_RET, _ALLOW), _op(_RET, _ERRNO | errno.EPERM)]
    return [_op(_JEQ, nr, 0, len(body))] + body


def _reading_limits_only(nr: int) -> List[bytes]:
    """``prlimit64(0, resource, NULL, old)`` (how the C library reads a limit) only."""
    body = [_op(_LD_ABS, _arg(0)), _op(_JEQ, 0, 0, 4),
            _op(_LD_ABS, _arg(2)), _op(_JEQ, 0, 0, 2),
            _op(_LD_ABS, _arg(2, high=True)), _op(_JEQ, 0, 1, 0),
            _op(_RET, _ERRNO | errno.EPERM), _op(_RET, _ALLOW)]
    return [_op(_JEQ, nr, 0, len(body))] + body


def _threads_only(nr: int) -> List[bytes]:
    """``clone`` only with ``CLONE_THREAD`` in its flags (the first argument)."""
    body = [_op(_LD_ABS, _ARG0), _op(_JSET, _CLONE_THREAD, 1, 0),
            _op(_RET, _ERRNO | errno.EPERM), _op(_RET, _ALLOW)]
    return [_op(_JEQ, nr, 0, len(body))] + body


def program(pid: int, arch: str) -> bytes:
    """The filter of process ``pid`` on ``arch`` (a key of ``syscalls.AUDIT_ARCH``)."""
    numbers = syscalls.table(arch)
    if numbers is None:
        raise KeyError(arch)
    code = [_op(_LD_ABS, _ARCH), _op(_JEQ, syscalls.AUDIT_ARCH[arch], 1, 0),
            _op(_RET, _KILL_PROCESS), _op(_LD_ABS, _NR)]
    if arch == "x86_64":                      # the x32 ABI's numbers carry this bit
        code += [_op(_JGE, _X32_BIT, 0, 1), _op(_RET, _ERRNO | errno.EPERM)]
    code += _reading_limits_only(numbers["prlimit64"])
    for name in DENIED:
        if numbers[name] is not None and name != "prlimit64":
            code += _deny(numbers[name])
    code += _deny(numbers["clone3"], errno.ENOSYS)
    code += _threads_only(numbers["clone"])
    self_ids = [pid, 0, -pid]                 # itself, its group, its group by number
    for name in SIGNALS_TO_SELF:
        code += _first_arg_in(numbers[name], self_ids)
    for name, index in OTHERS_BY_PID:
        code += _first_arg_in(numbers[name], [0, pid], index)
    for name, commands in SIGNAL_OWNER:
        code += _arg_not_in(numbers[name], 1, commands)
    code.append(_op(_RET, _ALLOW))
    return b"".join(code)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter(pid: int) -> None:
    """Install the filter on the calling thread (and so on every thread it starts); an
    ``OSError`` if the kernel refuses it (``sandbox.confine`` reports it)."""
    code = program(pid, syscalls.machine())
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:    # PR_SET_SECCOMP, MODE_FILTER
        number = ctypes.get_errno()
        raise OSError(number, errno.errorcode.get(number, "?"))
