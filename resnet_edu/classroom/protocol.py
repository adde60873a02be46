"""What the grader says about one exercise: one status vocabulary and one verdict record.

Every row of the grade sheet carries a :class:`Status`; every stage that can decide an
exercise (the intake, the static rules, the answering process, the probe) returns a
:class:`Verdict`. The statuses are strings on the sheet (``passed``, ``timeout``, ...), as
teachers read them (book/teachers.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    """The status column of the grade sheet (book/teachers.md, "What the status column
    means", lists the same words: a test keeps them equal)."""

    PASSED = "passed"              # the check accepts the student's code
    FAILED = "failed"              # the check (or the grader's probe) found a mistake
    UNSOLVED = "unsolved"          # the stub still raises NotImplementedError
    MISSING = "missing"            # the answer or check cell is gone, or a required name
    ALTERED = "altered"            # the check cell was changed
    RULE = "rule"                  # the answer uses what the exercise forbids
    ERROR = "error"                # the answer cell raised, or its reply was unreadable
    TIMEOUT = "timeout"            # the exercise ran past its limit
    CRASHED = "crashed"            # the answering process died
    UNREADABLE = "unreadable"      # not a notebook file             (the notebook's rows)
    MALFORMED = "malformed"        # a notebook the grader cannot use
    UNKNOWN_CHAPTER = "unknown-chapter"   # no chapter of this file name
    GRADER_ERROR = "grader-error"  # the grader's own failure: the teacher looks by hand

    def __str__(self) -> str:          # the sheet's word, in CSVs, tables and f-strings
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def graded(self) -> bool:
        """False when the notebook could not be graded at all (the run exits 1)."""
        return self not in NOT_GRADED


NOT_GRADED = frozenset({Status.UNREADABLE, Status.MALFORMED, Status.UNKNOWN_CHAPTER,
                        Status.GRADER_ERROR})


@dataclass(frozen=True)
class Verdict:
    """One exercise decided: its status, the fraction of its points, the feedback."""

    status: Status
    fraction: float
    feedback: str

    @classmethod
    def zero(cls, status: Status, feedback: str) -> Verdict:
        return cls(status, 0.0, feedback)

    @classmethod
    def from_feedback(cls, passed: bool, solved: bool, score: float, message: str) -> Verdict:
        """A check's :class:`~resnet_edu.exercises.Feedback`, as a verdict."""
        status = Status.PASSED if passed else (Status.UNSOLVED if not solved else Status.FAILED)
        return cls(status, min(1.0, max(0.0, float(score))), message)
