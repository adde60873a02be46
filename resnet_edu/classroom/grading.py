"""Grading: the master's exercises, judged by the grader from what the answers do.

A submission goes down one pipeline, a stage a module with one entry, and every stage
that decides an exercise returns a :class:`~.protocol.Verdict`:

1. **take in** (``intake.take_in``): read (all submissions are read before any student code
   runs), validate, tell the chapter;
2. **match** (``intake.match``): each exercise's answer and check cells, by id, against the
   master (``master``);
3. **static rules** (``rules.screen``): keep the answer's definitions, apply the house
   policy and the exercise's rules;
4. **answer** and 5. **judge** (``judge.Judge.verdict``): the kept code runs in the
   notebook's confined answering process (``session``, ``kernel``, ``sandbox``); the
   verdict is computed in the grader's process (``remote``, ``probe``, the checks);
6. **report** (``report``): one row per exercise, written to the sheet.

Every outcome, the grader's own failure included, becomes that notebook's rows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from . import hygiene
from .intake import Submission, chapter_by_name, match, read_submission, take_in
from .judge import Judge, Options
from .master import ChapterMaster, MasterExercise, load_masters
from .protocol import Status, Verdict
from .report import GradeRow
from .rules import screen
from .session import start_server

__all__ = ["NotebookResult", "Options", "expand", "grade_notebooks", "grade_submission",
           "student_names"]


@dataclass
class NotebookResult:
    path: Path
    student: str
    rows: List[GradeRow]
    seconds: float
    issues: List[str] = field(default_factory=list)


def _decide(nb, ex: MasterExercise, registered, judge: Judge) -> Verdict:
    """One exercise down stages 2 to 5: the first stage that decides it gives the verdict."""
    if registered is None:
        return Verdict.zero(Status.GRADER_ERROR, "this exercise has no check in the "
                            "installed resnet_edu; ask your teacher")
    code, (source, verdict) = "", match(nb, ex)
    if verdict is None:
        code, verdict = screen(source, registered, ex)
    return verdict or judge.verdict(ex, registered, code)


def _rows(sub: Submission, exercises, status: Status, feedback: str) -> List[GradeRow]:
    if not exercises:
        return [GradeRow(sub.student, str(sub.path), "", 0.0, 0.0, status, feedback)]
    return [GradeRow(sub.student, str(sub.path), ex.id, 0.0, ex.points, status, feedback)
            for ex in exercises]


def _grade_chapter(sub: Submission, nb, chapter: ChapterMaster, options: Options,
                   reaper: hygiene.Reaper):
    from ..exercises import exercises

    registry = exercises()
    rows, judge = [], Judge(options, reaper)
    try:
        for ex in chapter.exercises:
            verdict = _decide(nb, ex, registry.get(ex.id), judge)
            rows.append(GradeRow(sub.student, str(sub.path), ex.id,
                                 verdict.fraction * ex.points, ex.points, verdict.status,
                                 verdict.feedback, options.confinement.name))
    finally:
        judge.close()
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
        intake = take_in(sub, masters)                             # stage 1
        chapter = intake.chapter
        if intake.problem or chapter is None:
            rows = _rows(sub, chapter.exercises if chapter else (), intake.status,
                         intake.problem)
        else:
            rows = _grade_chapter(sub, intake.nb, chapter, options, reaper)   # 2 to 6
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
