"""Answer and judge, stages 4 and 5 of grading (``grading.py`` lists them all): the kept
code of one exercise runs in the notebook's confined answering process (``session``,
``kernel``), and the verdict is computed here, in the grader's process:

- ``observe`` exercises: the check runs here with stand-ins (``remote``) for the student's
  functions: inputs from a seed drawn now, references and verdict computed here;
- the others (checks that need the student's module in the same process, like
  ``check_block``'s hooks): the check runs in the answering process, which holds nothing
  but the answer's definitions, and gives the feedback; for a class exercise the verdict
  also needs the grader's own test of the class (``probe``: outputs, gradients and
  running statistics on weights and inputs drawn here, compared here with a reference
  built here). book/teachers.md describes what is left to trust.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Optional

from . import hygiene
from .master import MasterExercise
from .probe import probe_class
from .protocol import Load, RunCheck, Status, Verdict
from .remote import MissingName, RemoteFunction, RuleBroken
from .sandbox import Confinement
from .session import Worker, WorkerGone, timeout_feedback


@dataclass
class Options:
    timeout: float = 120.0          # seconds one exercise may take (its check included)
    threads: Optional[int] = None   # OpenMP threads of each answering process
    seed: Optional[int] = None      # None: drawn at grading time (tests may fix it)
    confinement: Confinement = field(default_factory=Confinement)   # the answering processes' sandbox



class Deadline:
    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def left(self) -> float:
        return max(1.0, self.end - time.monotonic())


class Judge:
    """Stages 4 and 5 of one notebook: its answers run in an answering process (started on
    first use, replaced after it dies, killed with everything it started by :meth:`close`)
    and the grader judges what they do. One entry: :meth:`verdict`."""

    def __init__(self, options: Options, reaper: hygiene.Reaper):
        self.options, self.reaper = options, reaper
        self.worker: Optional[Worker] = None

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def verdict(self, ex: MasterExercise, registered, code: str) -> Verdict:
        from ..exercises import check

        seed = self.options.seed if self.options.seed is not None else secrets.randbelow(2**31)
        try:
            if self.worker is None:        # (the first one waits for the fork server)
                self.worker = Worker(self.options.threads, self.options.confinement,
                                     self.reaper)
            worker = self.worker
            deadline = Deadline(self.options.timeout)
            reply = worker.request(Load(ex.id, code), deadline.left())
            if reply.error is not None:
                return _load_failed(reply.error)
            if registered.observe:
                stand_ins = [RemoteFunction(worker, ex.id, name, registered.rules,
                                            deadline) for name in ex.names]
                fb = check(ex.id, *stand_ins, seed=seed)
                return Verdict.from_feedback(fb.passed, fb.solved, fb.score, fb.message)
            reply = worker.request(RunCheck(ex.id, ex.id, list(ex.names), seed),
                                   deadline.left())
            if reply.missing is not None:
                raise MissingName(str(reply.missing))
            verdict = Verdict.from_feedback(bool(reply.passed), bool(reply.solved),
                                            float(reply.score), str(reply.message))
            if registered.probe is None or verdict.status != Status.PASSED:
                return verdict
            problem = self.probe(worker, ex, registered, seed, deadline)
            return Verdict.zero(Status.FAILED, problem) if problem else verdict
        except WorkerGone as gone:
            self.worker = None               # closed already: the next exercise starts anew
            if gone.status == Status.TIMEOUT:   # the exercise's limit, not what was left of it
                return Verdict.zero(Status.TIMEOUT, timeout_feedback(self.options.timeout))
            return Verdict.zero(gone.status, gone.feedback)
        except MissingName as missing:
            return Verdict.zero(Status.MISSING, f"your answer does not define `{missing.name}`: "
                                "define it in the exercise's code cell, with the name the "
                                "exercise asks for.")
        except RuleBroken as broken:
            why = registered.rules.why
            return Verdict.zero(Status.RULE, f"while it ran, your code "
                                f"{' and '.join(broken.what)}, which this exercise does not "
                                f"allow." + (f" Rule: {why}" if why else ""))

    @staticmethod
    def probe(worker: Worker, ex: MasterExercise, registered, seed: int,
              deadline: Deadline) -> str:
        """The grader's own test of the class (``probe``): "" when it agrees."""
        name = ex.names[0]

        def ask(kind, **fields):
            request = kind(space=ex.id, name=name, forbidden=tuple(registered.rules.forbidden),
                           no_modules=bool(registered.rules.no_modules), **fields)
            return worker.request(request, deadline.left())

        return probe_class(registered.probe, ask, name, seed)


def _load_failed(error: dict) -> Verdict:
    if error.get("not_implemented"):
        return Verdict.zero(Status.UNSOLVED, "not solved yet: replace the `raise "
                            "NotImplementedError` in the exercise cell with your code.")
    where = f" ({error['where']})" if error.get("where") else ""
    sandbox = f" ({error['sandbox']})" if error.get("sandbox") else ""
    return Verdict.zero(Status.ERROR, f"running your answer cell failed with "
                        f"{error.get('type')}: {str(error.get('message'))[:300]}{where}"
                        f"{sandbox}. Run the cell in the notebook and fix it.")
