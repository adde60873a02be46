"""Process hygiene: nothing a submission starts outlives the grading of its notebook.

Each answering process starts in a session of its own (``start_new_session``), so
``killpg`` reaches everything it forks. A child that escapes into yet another session
(``start_new_session=True``, a double fork) is still found: while the grader runs it is
a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``), so orphans are re-parented
to the grader instead of to init, and :meth:`Reaper.kill_tree` kills the session, the
process group, every descendant, and every orphan the grader did not start itself.

The state of one grading run (the answering processes, the children the grader had before,
whether it is the subreaper) is one :class:`Reaper`, made by :func:`reaping` and passed
to every answering process it owns; the process table is read with ``psutil``.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Dict, Iterable, Iterator, Set, Tuple

import psutil

PR_SET_CHILD_SUBREAPER = 36


def processes(zombies: bool = False) -> Dict[int, Tuple[int, int, int]]:
    """pid -> (ppid, process group, session) of every live process (or every zombie)."""
    found = {}
    for proc in psutil.process_iter(["ppid", "status"]):
        if (proc.info["status"] == psutil.STATUS_ZOMBIE) != zombies:
            continue
        try:
            found[proc.pid] = (proc.info["ppid"], os.getpgid(proc.pid), os.getsid(proc.pid))
        except OSError:                 # gone meanwhile (a zombie keeps its ppid only)
            if zombies:
                found[proc.pid] = (proc.info["ppid"], -1, -1)
    return found


def _set_subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Reaper:
    """The answering processes of one grading run and what else their end must take.

    ``adopting``: the grader is the subreaper (inside :func:`reaping`), so its children
    that are neither answering processes nor ``baseline`` (the children it had before)
    are a submission's orphans. Outside a grading run (a worker started on its own) a
    reaper kills only the process's session, group and descendants."""

    def __init__(self, baseline: Iterable[int] = (), adopting: bool = False):
        self._lock = threading.Lock()            # workers come and go on the pool's threads
        self.workers: Set[int] = set()
        self.baseline = set(baseline)
        self.adopting = adopting

    def register(self, pid: int) -> None:
        with self._lock:
            self.workers.add(pid)

    def _doomed(self, root: int, table) -> Set[int]:
        """The root's session and group, its descendants, and the grader's stray orphans."""
        me = os.getpid()
        with self._lock:
            keep = (self.workers - {root}) | self.baseline | {me}
        doomed = {pid for pid, (_, group, session) in table.items()
                  if root in (group, session)} | ({root} & set(table))
        if self.adopting:
            doomed |= {pid for pid, (ppid, _, _) in table.items()
                       if ppid == me and pid not in keep}
        grew = True
        while grew:
            more = {pid for pid, (ppid, _, _) in table.items() if ppid in doomed} - doomed
            doomed |= more
            grew = bool(more)
        return doomed - keep

    def kill_tree(self, root: int) -> None:
        """Kill the answering process ``root`` and everything it started; reap our children."""
        for _ in range(20):
            table = processes()
            doomed = self._doomed(root, table)
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
        with self._lock:
            self.workers.discard(root)
        self._reap_adopted()

    def _reap_adopted(self) -> None:
        """Reap the killed orphans that died as the grader's adopted children (zombies)."""
        if not self.adopting:
            return
        with self._lock:
            keep = self.workers | self.baseline
        for pid, (ppid, _, _) in processes(zombies=True).items():
            if ppid == os.getpid() and pid not in keep:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)

    def sweep(self) -> None:
        """Kill every stray orphan the grader adopted (called before the sheet is written)."""
        self.kill_tree(-1)

    def alive_strays(self) -> Set[int]:
        """Processes that :meth:`sweep` would kill now."""
        return self._doomed(-1, processes())


@contextlib.contextmanager
def reaping() -> Iterator[Reaper]:
    """A grading run's :class:`Reaper`: the grader adopts orphans while it lasts, and every
    stray is killed at its end."""
    baseline = {pid for pid, info in processes().items() if info[0] == os.getpid()}
    active = _set_subreaper(True)
    reaper = Reaper(baseline, adopting=True)
    try:
        yield reaper
    finally:
        reaper.sweep()
        reaper.adopting = False
        if active:
            _set_subreaper(False)


def strays_of(pid: int, keep: Iterable[int] = ()) -> Set[int]:
    """``pid``'s live children other than ``keep`` (its fork server, say) and every live
    descendant of its children (answering processes the fork server still runs): what a
    finished grading run must not leave behind (for the tests)."""
    table = processes()
    children = {p for p, (ppid, _, _) in table.items() if ppid == pid}
    found, below = children - set(keep), set(children)
    while True:
        more = {p for p, (ppid, _, _) in table.items() if ppid in below} - below
        if not more:
            return found
        found |= more
        below |= more
