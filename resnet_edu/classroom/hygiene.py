"""Process hygiene: nothing a submission starts outlives the grading of its notebook.

Each answering process starts in a session of its own (``start_new_session``), so
``killpg`` reaches everything it forks. A child that escapes into yet another session
(``start_new_session=True``, a double fork) is still found: while the grader runs it is
a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``), so orphans are re-parented
to the grader instead of to init, and :func:`kill_tree` kills the session, the process
group, every descendant, and every orphan the grader did not start itself.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Dict, Iterator, Set, Tuple

PR_SET_CHILD_SUBREAPER = 36
_LOCK = threading.Lock()
_WORKERS: Set[int] = set()         # live answering processes of this grader (any thread)
_BASELINE: Set[int] = set()        # children the grader had before grading began
_ACTIVE = [False]                  # inside subreaper(): the grader's stray children are orphans


def register_worker(pid: int) -> None:
    with _LOCK:
        _WORKERS.add(pid)


def _set_subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """Make the grader the reaper of orphans while grading; kill them all at the end."""
    _BASELINE.clear()
    _BASELINE.update(pid for pid, info in processes().items() if info[0] == os.getpid())
    active = _set_subreaper(True)
    _ACTIVE[0] = True
    try:
        yield
    finally:
        sweep()
        _ACTIVE[0] = False
        if active:
            _set_subreaper(False)


def processes(zombies: bool = False) -> Dict[int, Tuple[int, int, int]]:
    """pid -> (ppid, process group, session) of every live process (or every zombie)."""
    found = {}
    if not os.path.isdir("/proc"):
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().decode("ascii", "replace").rpartition(")")[2].split()
        except OSError:
            continue
        if fields and (fields[0] == "Z") == zombies:
            found[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return found


def _doomed(root: int, table) -> Set[int]:
    """The root's session and group, its descendants, and the grader's stray orphans."""
    me = os.getpid()
    with _LOCK:
        keep = (_WORKERS - {root}) | _BASELINE | {me}
    doomed = {pid for pid, (_, group, session) in table.items()
              if root in (group, session)} | ({root} & set(table))
    if _ACTIVE[0]:
        doomed |= {pid for pid, (ppid, _, _) in table.items() if ppid == me and pid not in keep}
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in doomed} - doomed
        doomed |= more
        grew = bool(more)
    return doomed - keep


def kill_tree(root: int) -> None:
    """Kill the answering process ``root`` and everything it started; reap our children."""
    for _ in range(20):
        table = processes()
        doomed = _doomed(root, table)
        if root > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(root, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in doomed - {root}:      # adopted orphans are ours to reap (not the root:
            if table[pid][0] == os.getpid():   # its Popen waits for it)
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, 0)      # SIGKILLed: it ends at once
        if not doomed:
            break
        time.sleep(0.05)
    with _LOCK:
        _WORKERS.discard(root)
    _reap_adopted()


def _reap_adopted() -> None:
    """Reap the killed orphans that died as the grader's adopted children (zombies)."""
    if not _ACTIVE[0]:
        return
    with _LOCK:
        keep = _WORKERS | _BASELINE
    for pid, (ppid, _, _) in processes(zombies=True).items():
        if ppid == os.getpid() and pid not in keep:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


def sweep() -> None:
    """Kill every stray orphan the grader adopted (called before the sheet is written)."""
    kill_tree(-1)


def alive_strays() -> Set[int]:
    """Processes that would be killed by :func:`sweep` now (for the tests)."""
    return _doomed(-1, processes())
