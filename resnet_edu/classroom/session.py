"""The grader's end of one answering process: start it, ask it, time it, kill it.

The process (``kernel.serve``), forked from a fork server, starts in a fresh temporary
folder and a session of its own;
:meth:`Worker.close` kills its whole tree (``hygiene.kill_tree``). Replies are read with
``torch.load(weights_only=True)`` and must echo the request's nonce. When the process
hangs, dies or sends something unreadable, :class:`WorkerGone` carries the sentence the
student reads (what happened, in words, never a grader-internal name).
"""
from __future__ import annotations

import io
import secrets
import shutil
import signal
import tempfile
from dataclasses import replace
from typing import Optional

from . import hygiene
from .protocol import REPLIES, Request, Status, read_reply, to_wire

STARTUP_TIMEOUT = 180.0       # seconds to start Python and import torch on a busy machine
MAX_REPLY = 256 * 1024 * 1024  # bytes: a larger reply is refused


class WorkerGone(BaseException):
    """The answering process hung, died or broke the protocol. A ``BaseException``, so
    that a check's ``except Exception`` cannot turn it into ordinary feedback."""

    def __init__(self, status: Status, feedback: str):
        super().__init__(feedback)
        self.status, self.feedback = status, feedback


def timeout_feedback(limit: float) -> str:
    return (f"the grader stopped your code after {limit:.0f} s, the time allowed for one "
            "exercise. It may be slow rather than stuck in a loop: try it on a small input "
            "and make it faster, or look for a loop that never ends.")


# why a signal ended the answering process, after "the process running your code ..."
_SIGNALS = {
    signal.SIGKILL: "was killed ({}): usually it ran out of memory (a tensor far too large?) "
                    "or your code killed it",
    signal.SIGXCPU: "was stopped ({}): it used up the CPU time the grader's sandbox allows",
    signal.SIGXFSZ: "was stopped ({}): it wrote a file larger than the grader's sandbox allows",
    signal.SIGSYS: "was stopped ({}): it made a system call the grader's sandbox does not allow",
    signal.SIGSEGV: "crashed ({}, a segmentation fault)",
}


def explain_exit(code: Optional[int]) -> str:
    """Why the answering process ended, for a student."""
    if code is None:
        return "the process running your code stopped answering"
    if code < 0:
        known = -code in signal.Signals._value2member_map_
        name = signal.Signals(-code).name if known else f"signal {-code}"
        how = _SIGNALS.get(signal.Signals(-code), "was stopped by {}") if known \
            else "was stopped by {}"
        return "the process running your code " + how.format(name)
    return (f"your code ended the Python process that runs it (exit status {code}): "
            "`sys.exit`, `exit()`, `os._exit` or `raise SystemExit` stop the whole process; "
            "return a value or raise an exception instead")


_CONTEXT = None


def context():
    """The multiprocessing context of the answering processes: a fork server that has
    imported torch and the checks once (``_preload``), so a fresh process per notebook
    costs milliseconds. Where there is no fork server (Windows), plain spawn."""
    global _CONTEXT
    if _CONTEXT is None:
        import multiprocessing

        if "forkserver" in multiprocessing.get_all_start_methods():
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(["resnet_edu.classroom._preload"])
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def start_server() -> None:
    """Start the fork server now (before the grader notes which children it already has),
    with a minimal environment: the answering processes it forks inherit its memory, so
    the grader's tokens and proxies must never be there."""
    import os

    ctx = context()
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        from .sandbox import minimal_environment

        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(minimal_environment(saved), **{k: saved[k] for k in ("HOME",)
                                                         if k in saved})
        try:
            forkserver.ensure_running()
        finally:
            os.environ.clear()
            os.environ.update(saved)


class Worker:
    """One answering process."""

    def __init__(self, threads: Optional[int] = None, confinement=None,
                 reaper: Optional[hygiene.Reaper] = None):
        from .kernel import serve
        from .sandbox import Confinement

        self.reaper = reaper or hygiene.Reaper()   # the grading run's (its own outside one)
        self.cwd = tempfile.mkdtemp(prefix="resnet_edu-answer-")
        ctx = context()
        self.conn, theirs = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=serve, args=(theirs, self.cwd, threads or 1,
                                                     confinement or Confinement()),
                                daemon=True)
        self.proc.start()
        theirs.close()
        self.reaper.register(self.proc.pid)
        self.first = True

    def request(self, request: Request, timeout: float):
        """Send one request (a ``protocol`` record) and wait for its reply record;
        :class:`WorkerGone` otherwise."""
        import torch

        nonce = secrets.token_hex(8)
        buffer = io.BytesIO()
        torch.save(to_wire(replace(request, nonce=nonce)), buffer)
        if self.first:                     # a spawned (not forked) process imports torch
            timeout, self.first = timeout + STARTUP_TIMEOUT, False
        try:
            self.conn.send_bytes(buffer.getvalue())
            ready = self.conn.poll(timeout)
        except (BrokenPipeError, EOFError, OSError):
            raise self._gone() from None
        if not ready:
            self.close()
            raise WorkerGone(Status.TIMEOUT, timeout_feedback(timeout))
        try:
            payload = self.conn.recv_bytes(MAX_REPLY)
        except (EOFError, OSError):
            raise self._gone() from None
        try:
            reply = torch.load(io.BytesIO(payload), weights_only=True)
        except Exception:  # noqa: BLE001 - anything unreadable is the answer's doing
            reply = None
        if not isinstance(reply, dict) or reply.get("nonce") != nonce:
            self.close()
            raise WorkerGone(Status.ERROR, "the process running your code sent the grader a "
                                           "reply it cannot read (does your code write to "
                                           "streams it does not own?)")
        if reply.get("unconfined") is not None:
            self.close()
            raise WorkerGone(Status.GRADER_ERROR, "the grader could not confine the process "
                             f"that runs answers ({str(reply['unconfined'])[:200]}), so it ran "
                             "none; your teacher will look at it")
        return read_reply(REPLIES[request.OP], reply)

    def _gone(self) -> WorkerGone:
        self.proc.join(5)
        code = self.proc.exitcode
        self.close()
        return WorkerGone(Status.CRASHED, explain_exit(code) + ".")

    def close(self) -> None:
        """Kill the process and everything it started; remove its folder."""
        self.reaper.kill_tree(self.proc.pid)
        self.proc.join(10)
        self.conn.close()
        shutil.rmtree(self.cwd, ignore_errors=True)
