"""Grading: the master's exercises, judged by the grader from what the answers do.

For each submission: read it (all submissions are read before any student code runs),
validate it and tell its chapter (``intake``), find each exercise's answer and check
cells by id, keep the answer's definitions and apply the rules (``rules``), then, for
the exercises still standing, ask an answering process (``session``/``kernel``):

- ``observe`` exercises: the check runs *here*, in the grader's process, with stand-ins
  (``remote``) for the student's functions: inputs from a seed drawn now, references and
  verdict computed here;
- the others (checks that need the student's module in the same process, like
  ``check_block``'s hooks): the check runs in the answering process, which holds nothing
  but the answer's definitions, and gives the feedback; for a class exercise the verdict
  also needs the grader's own test of the class (``probe``: outputs, gradients and
  running statistics on weights and inputs drawn here, compared here with a reference
  built here). book/teachers.md describes what is left to trust.

Every outcome, the grader's own failure included, becomes that notebook's rows.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from . import hygiene
from .intake import Submission, chapter_by_name, find_answer, read_submission, take_in
from .master import ChapterMaster, MasterExercise, load_masters
from .probe import probe_class
from .protocol import Load, RunCheck, Status, Verdict
from .remote import MissingName, RemoteFunction, RuleBroken
from .report import GradeRow
from .rules import kept_code, policy_problems, rule_problems
from .sandbox import Confinement
from .session import Worker, WorkerGone, start_server, timeout_feedback


@dataclass
class Options:
    timeout: float = 120.0          # seconds one exercise may take (its check included)
    threads: Optional[int] = None   # OpenMP threads of each answering process
    seed: Optional[int] = None      # None: drawn at grading time (tests may fix it)
    confinement: Confinement = field(default_factory=Confinement)   # the answering processes' sandbox


@dataclass
class NotebookResult:
    path: Path
    student: str
    rows: List[GradeRow]
    seconds: float
    issues: List[str] = field(default_factory=list)


class Deadline:
    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, time.monotonic() + seconds

    def left(self) -> float:
        return max(1.0, self.end - time.monotonic())


class Runner:
    """The answering process of one notebook: started on first use, replaced after it
    dies, killed (with everything it started) when the notebook is done."""

    def __init__(self, options: Options, reaper: hygiene.Reaper):
        self.options, self.reaper, self.worker = options, reaper, None

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
            deadline = Deadline(self.options.timeout)
            reply = self.worker.request(Load(ex.id, code), deadline.left())
            if reply.error is not None:
                return _load_failed(reply.error)
            if registered.observe:
                stand_ins = [RemoteFunction(self.worker, ex.id, name, registered.rules,
                                            deadline) for name in ex.names]
                fb = check(ex.id, *stand_ins, seed=seed)
                return Verdict.from_feedback(fb.passed, fb.solved, fb.score, fb.message)
            reply = self.worker.request(RunCheck(ex.id, ex.id, list(ex.names), seed),
                                        deadline.left())
            if reply.missing is not None:
                raise MissingName(str(reply.missing))
            verdict = Verdict.from_feedback(bool(reply.passed), bool(reply.solved),
                                            float(reply.score), str(reply.message))
            if registered.probe is None or verdict.status != Status.PASSED:
                return verdict
            problem = self.probe(ex, registered, seed, deadline)
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


    def probe(self, ex: MasterExercise, registered, seed: int, deadline: Deadline) -> str:
        """The grader's own test of the class (``probe``): "" when it agrees."""
        name = ex.names[0]

        def ask(kind, **fields):
            request = kind(space=ex.id, name=name, forbidden=tuple(registered.rules.forbidden),
                           no_modules=bool(registered.rules.no_modules), **fields)
            return self.worker.request(request, deadline.left())

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


def _static(nb, ex: MasterExercise, registered) -> Tuple[str, Optional[Verdict]]:
    """(code to run, or the verdict that nothing runs) of one exercise."""
    answer = find_answer(nb, ex)
    if answer.problems:
        altered = any("changed" in p or "no longer" in p for p in answer.problems)
        return "", Verdict.zero(Status.ALTERED if altered else Status.MISSING,
                                "; ".join(answer.problems) + ".")
    code, problems = kept_code(answer.source)
    if problems:
        return "", Verdict.zero(Status.ERROR, "; ".join(problems) + ".")
    problems = policy_problems(code) + rule_problems(code, registered.rules, ex.names,
                                                     ex.kinds)
    return code, Verdict.zero(Status.RULE, "; ".join(problems) + ".") if problems else None


def _rows(sub: Submission, exercises, status: Status, feedback: str) -> List[GradeRow]:
    if not exercises:
        return [GradeRow(sub.student, str(sub.path), "", 0.0, 0.0, status, feedback)]
    return [GradeRow(sub.student, str(sub.path), ex.id, 0.0, ex.points, status, feedback)
            for ex in exercises]


def _grade_chapter(sub: Submission, nb, chapter: ChapterMaster, options: Options,
                   reaper: hygiene.Reaper):
    from ..exercises import exercises

    registry = exercises()
    rows, runner = [], Runner(options, reaper)
    try:
        for ex in chapter.exercises:
            registered = registry.get(ex.id)
            if registered is None:
                rows += _rows(sub, [ex], Status.GRADER_ERROR, "this exercise has no check in "
                              "the installed resnet_edu; ask your teacher")
                continue
            code, verdict = _static(nb, ex, registered)
            if verdict is None:
                verdict = runner.verdict(ex, registered, code)
            rows.append(GradeRow(sub.student, str(sub.path), ex.id,
                                 verdict.fraction * ex.points, ex.points, verdict.status,
                                 verdict.feedback, options.confinement.name))
    finally:
        runner.close()
    return rows


def _log_internal_error(sub: Submission) -> None:
    """The grader's own bug is visible: its traceback goes to stderr (the row says only
    that it happened, for the student)."""
    import sys
    import traceback

    print(f"grader: internal error while grading {sub.path} (please report it):",
          file=sys.stderr)
    traceback.print_exc(file=sys.stderr)


def grade_submission(sub: Submission, masters: Dict[str, ChapterMaster],
                     options: Optional[Options] = None,
                     reaper: Optional[hygiene.Reaper] = None) -> NotebookResult:
    """Grade one submission; never raises: every problem becomes the notebook's rows.
    ``reaper``: the grading run's (:func:`hygiene.reaping`); alone, one of its own."""
    options, reaper = options or Options(), reaper or hygiene.Reaper()
    start = time.monotonic()
    chapter = chapter_by_name(sub, masters)
    try:
        intake = take_in(sub, masters)
        chapter = intake.chapter
        if intake.problem:
            rows = _rows(sub, chapter.exercises if chapter else (), intake.status,
                         intake.problem)
        else:
            rows = _grade_chapter(sub, intake.nb, chapter, options, reaper)
    except Exception as exc:  # noqa: BLE001 - the grader's own bug: this notebook's rows
        _log_internal_error(sub)
        rows = _rows(sub, chapter.exercises if chapter else (), Status.GRADER_ERROR,
                     f"the grader failed on this notebook (internal error "
                     f"{type(exc).__name__}); your teacher will look at it by hand")
    return NotebookResult(sub.path, sub.student, rows, time.monotonic() - start)


def expand(paths: Sequence[Path]) -> List[Path]:
    """Notebooks named, and the ``*.ipynb`` inside folders named, without duplicates."""
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def student_names(paths: Sequence[Path]) -> List[str]:
    """File stems when they tell the notebooks apart, else parent folder names
    (alice/01_convolution.ipynb, bob/01_convolution.ipynb), else paths."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    pairs = [(p.parent.name, p.stem) for p in paths]
    if len(set(pairs)) == len(pairs) and all(p.parent.name for p in paths):
        return [p.parent.name for p in paths]
    return [str(p.with_suffix("")) for p in paths]


def grade_notebooks(paths: Sequence[Path], master=None, options: Optional[Options] = None,
                    jobs: int = 1, log=None) -> List[NotebookResult]:
    """Grade every notebook (folders are searched for ``*.ipynb``) against the masters
    (a dict from :func:`load_masters`, a book folder or a manifest; default: the
    checkout's ``book/``). Every answering process and everything it started is gone
    when this returns."""
    from concurrent.futures import ThreadPoolExecutor

    from ..exercises import exercises

    masters = master if isinstance(master, dict) else load_masters(master)
    exercises()                      # every check is loaded before any student code runs
    paths = expand(paths)
    subs = [read_submission(p, n) for p, n in zip(paths, student_names(paths))]
    done = []

    def grade(sub: Submission, reaper: hygiene.Reaper) -> NotebookResult:
        result = grade_submission(sub, masters, options, reaper)
        done.append(result)
        if log is not None:
            got = sum(r.score for r in result.rows)
            out_of = sum(r.max_score for r in result.rows)
            log(f"[{len(done)}/{len(subs)}] {sub.path} ({sub.student}): {got:g}/{out_of:g} "
                f"in {result.seconds:.1f} s")
        return result

    start_server()                   # the fork server is the grader's, not a stray
    with hygiene.reaping() as reaper:
        if jobs <= 1:
            return [grade(s, reaper) for s in subs]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(lambda s: grade(s, reaper), subs))
