"""What the grader says about one exercise: one status vocabulary and one verdict record.

Every row of the grade sheet carries a :class:`Status`; every stage that can decide an
exercise (the intake, the static rules, the answering process, the probe) returns a
:class:`Verdict`. The statuses are strings on the sheet (``passed``, ``timeout``, ...), as
teachers read them (book/teachers.md).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, ClassVar, Tuple, Union


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


# --------------------------------------------------------------------------------------
# The pipe to the answering process: one record per request and per reply. On the wire
# each is a plain dict (``to_wire``: its fields, plus ``op`` for a request), written with
# ``torch.save``; the grader reads replies with ``torch.load(weights_only=True)`` and
# ``read_reply``, which keeps the fields it knows and ignores the rest (a reply comes
# from the student's process: nothing in it is trusted, a field may be missing).
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """Run the answer's kept code (after the fixed prelude) in the exercise's namespace."""

    space: str
    code: str
    nonce: str = ""
    OP: ClassVar[str] = "load"


@dataclass(frozen=True)
class Call:
    """Call ``name`` with the grader's arguments, behind the exercise's tripwires."""

    space: str
    name: str
    args: list
    kwargs: dict
    forbidden: Tuple[str, ...] = ()
    no_modules: bool = False
    nonce: str = ""
    OP: ClassVar[str] = "call"


@dataclass(frozen=True)
class Vjp:
    """The gradients of call ``call``'s arguments, given the gradient ``grad`` of its result."""

    space: str
    name: str
    call: str
    grad: Any
    forbidden: Tuple[str, ...] = ()
    no_modules: bool = False
    nonce: str = ""
    OP: ClassVar[str] = "vjp"


@dataclass(frozen=True)
class RunCheck:
    """Run the whole check of ``exercise`` next to the answer (exercises not observed)."""

    space: str
    exercise: str
    names: list
    seed: int
    nonce: str = ""
    OP: ClassVar[str] = "check"


@dataclass(frozen=True)
class Build:
    """Construct the class ``name(*args, **kwargs)``; report its ``state_dict``."""

    space: str
    name: str
    args: list
    kwargs: dict
    forbidden: Tuple[str, ...] = ()
    no_modules: bool = False
    nonce: str = ""
    OP: ClassVar[str] = "build"


@dataclass(frozen=True)
class Run:
    """Construct the class afresh, load ``state``, run ``x`` forward and ``grad_output``
    backward in the given mode; report what came out (``exercises._modules.run_module``)."""

    space: str
    name: str
    args: list
    kwargs: dict
    state: dict
    training: bool
    x: Any
    grad_output: Any
    forbidden: Tuple[str, ...] = ()
    no_modules: bool = False
    nonce: str = ""
    OP: ClassVar[str] = "run"


Request = Union[Load, Call, Vjp, RunCheck, Build, Run]
REQUESTS = {cls.OP: cls for cls in (Load, Call, Vjp, RunCheck, Build, Run)}


@dataclass(frozen=True)
class Reply:
    """What any reply may say beyond its own fields."""

    nonce: str = ""
    error: Any = None           # the student's exception, as ``kernel.describe`` writes it
    missing: Any = None         # a name the answer does not define
    tripped: Any = ()           # the tripwires that fired while the student's code ran
    unconfined: Any = None      # why the process could not be confined (it ran nothing)


@dataclass(frozen=True)
class CallReply(Reply):
    value: Any = None
    after: Any = ()             # what the call left in each argument
    differentiable: bool = False


@dataclass(frozen=True)
class VjpReply(Reply):
    grads: Any = ()


@dataclass(frozen=True)
class CheckReply(Reply):
    passed: Any = False
    score: Any = 0.0
    solved: Any = True
    message: Any = ""


@dataclass(frozen=True)
class ModuleReply(Reply):       # build and run
    state: Any = None           # build: the state_dict
    seen: Any = None            # run: output, input gradient, gradients, state afterwards
    not_module: Any = None      # the class built something else (its type name)
    stage: str = "your code"    # what failed, with ``error``


REPLIES = {"load": Reply, "call": CallReply, "vjp": VjpReply, "check": CheckReply,
           "build": ModuleReply, "run": ModuleReply}


def to_wire(record) -> dict:
    """A request (with its ``op``) or a reply as the plain dict sent through the pipe; the
    values are not copied."""
    data = {f.name: getattr(record, f.name) for f in fields(record)}
    op = getattr(type(record), "OP", "")
    return {"op": op, **data} if op else data


def from_wire(data: dict) -> Request:
    """The request a dict written by :func:`to_wire` holds (the grader's: trusted)."""
    cls = REQUESTS[data["op"]]
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def read_reply(cls, data: dict):
    """The reply record of ``data``, from the student's process: the known fields only."""
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
