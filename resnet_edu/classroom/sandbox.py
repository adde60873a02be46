"""Confinement of an answering process: what a student's answer can reach on the grader's
machine.

:func:`confine` runs first thing in every answering process (``kernel.serve``), in its one
thread, before any request and so before any student code. Before it, the process closes
every descriptor but its pipe to the grader (multiprocessing leaves pipes open that lead to
unconfined processes) and keeps a minimal environment (no tokens or proxies of the
teacher's). Every layer is applied by the process to itself, is inherited by every thread
it starts, and cannot be undone from inside (``no_new_privs``; Landlock and seccomp only
ever add restrictions):

1. **Resource limits** (``setrlimit``): address space (a huge tensor fails with an
   allocation error), CPU seconds, the size of any file written, open files, no core
   dumps. Limits can only be lowered from inside: layer 4 forbids changing them even to
   root.
2. **Capabilities dropped** (when the grader runs as root, as CI does): root's overrides
   of file permissions and of resource limits are gone; the bounding set is emptied.
3. **Landlock** (Linux 5.13+, unprivileged; the ABI is read at run time), the kernel's
   own access control for a process and its descendants:

   - files: read, never write or execute, beneath the directories the code comes from
     (the interpreter's standard library, the ``site-packages`` folders, each top-level
     package the answering process has imported, the system library folders) and a few
     device and CPU-description files; read and write beneath the process's scratch
     folder only. Everything else, the home folder, the master, the submissions, the
     grader's folder, ``--out``, ``/proc`` and the rest of ``/tmp``, is neither readable
     nor listable nor writable (ABI 1 covers reading, writing, creating and removing;
     ABI 2 renaming and linking across folders; ABI 3 truncation; ABI 5 device ioctls);
   - network (ABI 4): no TCP bind or connect;
   - scopes (ABI 6): no signal to a process outside the sandbox, no connection to an
     abstract Unix socket outside it. Landlock also refuses ``ptrace`` of any process
     outside the sandbox.

4. **seccomp** (a small BPF filter, ``seccomp.py``, for what Landlock does not cover or
   covers only from a later ABI): no new socket of any family, not even a socket pair (so
   no UDP, no Unix socket, no datagram to a socket path, no way to ask the fork server for
   an unconfined sibling: the only socket is the pipe the process was handed); no new
   process (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``, ``execve``: threads
   only, so a fork bomb fails at its first fork); signals to itself only, and no way to
   make the kernel signal another process for it (``F_SETOWN``, ``F_SETSIG`` and their
   ``ioctl`` forms), so signals are confined on kernels before Landlock ABI 6 too; no
   ``ptrace``; no scheduling or priority changes to other processes; no changes to file
   metadata (``chmod``, ``chown``, extended attributes, times) and no ``truncate`` by
   path, which Landlock does not control (or only from ABI 3); no watching of other
   folders (``inotify``, ``fanotify``); no memory outside the address-space limit
   (``memfd_create``); limits read, never set; no ``io_uring`` (it can open sockets behind
   seccomp's back); none of the administrator's calls (mounts, namespaces, modules,
   clocks, reboot, keys, BPF, performance counters, handles that bypass paths).

Together: the answer computes on what the grader sends and answers on its pipe; it can
read the code of Python, PyTorch and ``resnet_edu`` (all public), and nothing of the
teacher's. Left open, on purpose or for want of an unprivileged mechanism: reading
world-readable files beneath the library folders; the metadata of paths outside
(``stat``, ``readlink``: names and sizes, not contents); threads (bounded by the address
space) and the CPU until the grader's per-exercise deadline kills the process; and disk in
the scratch folder, each file at most ``Limits.file_bytes`` but not their number (a cgroup
would bound both; it needs privileges a teacher's laptop does not give). The scratch
folder is removed with the process.

Where the mechanism is missing (not Linux, Landlock disabled or older than ABI 1, seccomp
unavailable, an unknown CPU architecture), :func:`availability` says why; the grader then
refuses to grade unless told ``--no-sandbox``. Landlock's kernel documentation and its
sample sandboxer are the model; the constants below are those of the kernel's UAPI headers
(``linux/landlock.h``, ``linux/seccomp.h``, ``linux/filter.h``, ``linux/audit.h``).
"""
from __future__ import annotations

import ctypes
import os
import platform
import resource
import struct
import sys
import sysconfig
from dataclasses import dataclass
from typing import List, Tuple

from . import syscalls


class SandboxError(RuntimeError):
    """Confinement could not be applied; the answering process must not run code."""


@dataclass(frozen=True)
class Limits:
    """What one answering process may use (each default with its reason)."""

    address_space: int = 6 * 2**30   # bytes of virtual memory: torch maps ~1.5 GB of code
    cpu_seconds: int = 3600          # CPU time of the whole notebook; --timeout cuts sooner
    file_bytes: int = 64 * 2**20     # largest file written in scratch: answers need none
    open_files: int = 256            # descriptors: the libraries are loaded already


@dataclass(frozen=True)
class Confinement:
    """How the answering processes of a grading run are confined (``name`` goes on every
    row of the sheet)."""

    enabled: bool = True
    limits: Limits = Limits()

    @property
    def name(self) -> str:
        if not self.enabled:
            return "none (--no-sandbox)"
        return f"landlock-abi{landlock_abi()}+seccomp+rlimits"


NONE = Confinement(enabled=False)

# ----------------------------------------------------------------------------- Landlock
_LANDLOCK_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1,
              5: (1 << 16) - 1}          # every access right the ABI knows (bit 13: refer,
_FS_ABI_MAX = 5                          # 14: truncate, 15: ioctl on devices)
_NET_TCP = (1 << 0) | (1 << 1)           # bind and connect (ABI 4)
_SCOPES = (1 << 0) | (1 << 1)            # abstract Unix sockets and signals (ABI 6)
_READ = _FS_READ_FILE | _FS_READ_DIR


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where there is none."""
    if not sys.platform.startswith("linux") or syscalls.table() is None:
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(ctypes.c_long(syscalls.number("landlock_create_ruleset")), None,
                       ctypes.c_size_t(0), ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    return max(0, int(abi))


def availability() -> Tuple[bool, str]:
    """(available, why not) for this machine, without confining anything."""
    if not sys.platform.startswith("linux"):
        return False, f"it needs Linux (this is {platform.system() or sys.platform})"
    if syscalls.table() is None:
        return False, f"it knows no system call numbers for the {platform.machine()} CPU"
    if landlock_abi() < 1:
        return False, ("the kernel offers no Landlock (Linux 5.13 or newer, with "
                       "`landlock` among the security modules)")
    if _libc().prctl(21, 0, 0, 0, 0) < 0:            # PR_GET_SECCOMP
        return False, "the kernel offers no seccomp filters"
    return True, ""


def _syscall(name: str, *args) -> int:
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(syscalls.number(name)), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{name} failed: {os.strerror(err)}")
    return int(result)


_PREPARED: List[str] = []


def prepare() -> None:
    """Work out the readable folders once, in the fork server (``_preload``): confinement
    then costs each answering process a few milliseconds."""
    _PREPARED[:] = readable_roots()


def readable_roots() -> List[str]:
    """The folders whose files the answering process may read: where its code comes from
    (not even its own ``/proc`` entry: it would show the machine's sockets and mounts)."""
    if _PREPARED:
        return list(_PREPARED)
    roots = {"/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo",
             "/etc/ld.so.cache", "/etc/localtime", "/sys/devices/system/cpu",
             "/dev/urandom", "/dev/random", "/dev/zero", "/proc/cpuinfo"}
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars) if scheme_vars else sysconfig.get_paths()
        roots.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))
    for name, module in list(sys.modules.items()):
        if "." not in name and getattr(module, "__path__", None) and \
                getattr(module, "__file__", None):
            roots.add(os.path.dirname(os.path.abspath(module.__file__)))
    roots = {os.path.realpath(r) for r in roots if os.path.exists(r)}
    return sorted(r for r in roots            # a folder inside another adds nothing
                  if not any(r.startswith(o.rstrip("/") + "/") for o in roots if o != r))


def _add_path(ruleset: int, path: str, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):      # files take file rights only
            access &= _FS_READ_FILE | _FS_WRITE_FILE | (1 << 14) | (1 << 15)
        attr = struct.pack("=Qi", access & handled, fd)     # landlock_path_beneath_attr
        buf = ctypes.create_string_buffer(attr, len(attr))
        _syscall("landlock_add_rule", ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                 buf, ctypes.c_uint32(0))
    finally:
        os.close(fd)


def _landlock(scratch: str, abi: int) -> None:
    handled_fs = _FS_BY_ABI[min(abi, _FS_ABI_MAX)]
    fields = [handled_fs]
    if abi >= 4:
        fields.append(_NET_TCP)
    if abi >= 6:
        fields.append(_SCOPES)
    attr = struct.pack(f"={len(fields)}Q", *fields)          # landlock_ruleset_attr
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _syscall("landlock_create_ruleset", buf, ctypes.c_size_t(len(attr)),
                       ctypes.c_uint32(0))
    try:
        for root in readable_roots():
            _add_path(ruleset, root, _READ, handled_fs)
        _add_path(ruleset, "/dev/null", _FS_READ_FILE | _FS_WRITE_FILE, handled_fs)
        _add_path(ruleset, scratch, handled_fs & ~_FS_EXECUTE, handled_fs)
        _syscall("landlock_restrict_self", ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)


# ----------------------------------------------------------------------------- the rest
def _limits(limits: Limits) -> None:
    import signal

    for which, value in ((resource.RLIMIT_AS, limits.address_space),
                         (resource.RLIMIT_CPU, limits.cpu_seconds),
                         (resource.RLIMIT_FSIZE, limits.file_bytes),
                         (resource.RLIMIT_NOFILE, limits.open_files),
                         (resource.RLIMIT_CORE, 0)):
        _soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # too large a file: an error, not a death


def _drop_capabilities() -> None:
    libc = _libc()
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(24, cap, 0, 0, 0)                         # PR_CAPBSET_DROP (root only)
    libc.prctl(47, 4, 0, 0, 0)                               # PR_CAP_AMBIENT_CLEAR_ALL
    header = struct.pack("=Ii", 0x20080522, 0)               # _LINUX_CAPABILITY_VERSION_3
    data = bytes(24)                                         # no effective, permitted or
    if libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(data)) != 0:   # inheritable cap
        raise SandboxError(f"capset failed: {os.strerror(ctypes.get_errno())}")


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def confine(scratch: str, limits: Limits) -> None:
    """Confine this process for good (see the module's docstring). Raises
    :class:`SandboxError` if any layer cannot be applied: the caller must then exit."""
    ok, why = availability()
    if not ok:
        raise SandboxError(why)
    if _threads() != 1:     # Landlock and seccomp bind the calling thread and its children
        raise SandboxError("the answering process has more than one thread before "
                           "confinement")
    from .seccomp import install_filter

    _limits(limits)
    if _libc().prctl(38, 1, 0, 0, 0) != 0:                   # PR_SET_NO_NEW_PRIVS
        raise SandboxError("prctl(PR_SET_NO_NEW_PRIVS) failed")
    _drop_capabilities()
    _landlock(os.path.abspath(scratch), landlock_abi())
    try:
        install_filter(os.getpid())
    except OSError as exc:
        raise SandboxError(f"seccomp failed: {exc.strerror}") from None


_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def minimal_environment(environ) -> dict:
    """What an answering process keeps of the grader's environment: how to find Python
    and its libraries, the locale and thread settings; no tokens, proxies or paths of the
    teacher's (``LC_*`` kept too)."""
    return {k: v for k, v in environ.items() if k in _ENVIRONMENT or k.startswith("LC_")}


def describe_denial(exc: BaseException) -> str:
    """A sentence for an error that the sandbox caused, or "" for any other error."""
    errno = getattr(exc, "errno", None)
    if isinstance(exc, OSError) and errno in (1, 13):        # EPERM, EACCES
        return ("the grader runs answers in a sandbox: an answer may compute, but not read or "
                "write files outside its scratch folder, use the network, start processes or "
                "signal other processes")
    if isinstance(exc, OSError) and errno == 27:             # EFBIG
        return "the grader's sandbox limits the size of a file an answer writes"
    if isinstance(exc, (MemoryError,)) or "can't allocate memory" in str(exc)[:300]:
        return ("the grader's sandbox limits the memory of an answer: use smaller tensors")
    return ""


__all__ = ["Confinement", "Limits", "NONE", "SandboxError", "availability", "confine",
           "describe_denial", "landlock_abi", "minimal_environment", "prepare",
           "readable_roots"]
