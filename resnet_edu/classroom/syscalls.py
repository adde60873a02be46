"""System call numbers for the sandbox (``sandbox.py``, ``seccomp.py``), per CPU
architecture, from the kernel's ``arch/x86/entry/syscalls/syscall_64.tbl`` and
``include/uapi/asm-generic/unistd.h`` (which arm64 uses). An architecture missing here has
no sandbox: the grader says so and asks for ``--no-sandbox``.

``AUDIT_ARCH`` is the value seccomp sees in ``seccomp_data.arch`` (``linux/audit.h``).
``None`` marks a call the architecture does not have (arm64 has only the ``*at`` forms).
"""
from __future__ import annotations

import platform
from typing import Dict, Optional

#        name                 x86_64  aarch64
_TABLE = """
landlock_create_ruleset      444     444
landlock_add_rule            445     445
landlock_restrict_self       446     446
socket                       41      198
ptrace                       101     117
process_vm_readv             310     270
process_vm_writev            311     271
kill                         62      129
tkill                        200     130
tgkill                       234     131
rt_sigqueueinfo              129     138
rt_tgsigqueueinfo            297     240
pidfd_open                   434     434
pidfd_send_signal            424     424
pidfd_getfd                  438     438
clone                        56      220
clone3                       435     435
fork                         57      -
vfork                        58      -
execve                       59      221
execveat                     322     281
setrlimit                    160     164
prlimit64                    302     261
chmod                        90      -
fchmod                       91      52
fchmodat                     268     53
fchmodat2                    452     452
chown                        92      -
fchown                       93      55
lchown                       94      -
fchownat                     260     54
setxattr                     188     5
lsetxattr                    189     6
fsetxattr                    190     7
removexattr                  197     14
lremovexattr                 198     15
fremovexattr                 199     16
setxattrat                   463     463
removexattrat                466     466
utime                        132     -
utimes                       235     -
futimesat                    261     -
utimensat                    280     88
io_uring_setup               425     425
io_uring_enter               426     426
io_uring_register            427     427
bpf                          321     280
perf_event_open              298     241
userfaultfd                  323     282
keyctl                       250     219
add_key                      248     217
request_key                  249     218
unshare                      272     97
setns                        308     268
mount                        165     40
umount2                      166     39
pivot_root                   155     41
chroot                       161     51
open_tree                    428     428
move_mount                   429     429
fsopen                       430     430
fsconfig                     431     431
fsmount                      432     432
fspick                       433     433
mount_setattr                442     442
reboot                       169     142
kexec_load                   246     104
kexec_file_load              320     294
init_module                  175     105
finit_module                 313     273
delete_module                176     106
swapon                       167     224
swapoff                      168     225
settimeofday                 164     170
clock_settime                227     112
clock_adjtime                305     266
adjtimex                     159     171
sethostname                  170     161
setdomainname                171     162
syslog                       103     116
acct                         163     89
quotactl                     179     60
name_to_handle_at            303     264
open_by_handle_at            304     265
iopl                         172     -
ioperm                       173     -
socketpair                   53      199
truncate                     76      45
memfd_create                 319     279
inotify_add_watch            254     27
fanotify_init                300     262
fanotify_mark                301     263
fcntl                        72      25
ioctl                        16      29
setpriority                  141     140
sched_setparam               142     118
sched_setscheduler           144     119
sched_setaffinity            203     122
sched_setattr                314     274
ioprio_set                   251     30
"""

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_COLUMNS = ("x86_64", "aarch64")
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def machine() -> str:
    m = platform.machine().lower()
    return _ALIASES.get(m, m)


def table(arch: Optional[str] = None) -> Optional[Dict[str, Optional[int]]]:
    """name -> number (None: not on this architecture); None for an unknown architecture."""
    arch = arch or machine()
    if arch not in _COLUMNS:
        return None
    column = _COLUMNS.index(arch) + 1
    found: Dict[str, Optional[int]] = {}
    for line in _TABLE.strip().splitlines():
        fields = line.split()
        found[fields[0]] = None if fields[column] == "-" else int(fields[column])
    return found


def number(name: str) -> int:
    value = (table() or {}).get(name)
    if value is None:
        raise KeyError(f"no system call {name} on {machine()}")
    return value
