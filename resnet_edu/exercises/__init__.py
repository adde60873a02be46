"""Checks for the book's coding exercises.

Every coding exercise in a chapter has an id (``"ch01-conv2d-by-hand"``), the
names the student's solution must define, and a check function registered here.
A chapter's checks live in their own module (``ch01.py``, ``ch05.py``, ...),
which this package imports on first use.

In a notebook::

    from resnet_edu.exercises import check
    check("ch01-conv2d-by-hand", conv2d_by_hand)

``check`` never raises because of the student's code: it returns a
:class:`Feedback` whose text says what is right or wrong and gives a hint.
An unsolved stub (a function that raises ``NotImplementedError``) is reported
as "not solved yet".

``check`` owns the exercise id (the feedback always names the exercise asked for) and
runs every check with its own random state (:func:`._kit.isolated_random_state`): a
check never reseeds the student's generators. ``register`` declares, beside the check,
how the grader runs it (``observe=True``: the student's objects are called from the
grader's process through ``resnet_edu.classroom.remote``, so the verdict is computed
by the grader; otherwise the whole check runs next to the answer in a fresh process),
the points it is worth, the :class:`~._kit.Rules` its answer must follow and, for a
class exercise, the :class:`~._modules.ModuleCheck` with which the grader tests the class
itself (the verdict needs the check *and* the grader's run of it). A function exercise is
one :func:`declare_function`, a block exercise one :func:`declare_module`.
"""
from __future__ import annotations

import functools
import importlib
import pkgutil
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

from ._kit import (
    NO_RULES,
    FunctionCheck,
    Rules,
    isolated_random_state,
    run_function_check,
    salt_of,
)
from ._modules import ModuleCheck, check_module


@dataclass
class Feedback:
    """The result of one check: a score in [0, 1] and a friendly message."""

    exercise: str
    passed: bool
    message: str
    score: float = field(default=None)  # defaults to 1.0 if passed else 0.0
    solved: bool = True                 # False when the student has not tried yet

    def __post_init__(self):
        if self.score is None:
            self.score = 1.0 if self.passed else 0.0

    def __str__(self) -> str:
        mark = "✓" if self.passed else ("…" if not self.solved else "✗")
        return f"{mark} {self.exercise}: {self.message}"

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle):  # IPython shows the plain sentence
        p.text(str(self))


@dataclass(frozen=True)
class Exercise:
    id: str
    names: Tuple[str, ...]          # what the student's solution cell defines
    func: Callable[..., Feedback]   # func(*objects) -> Feedback
    title: str = ""
    points: float = 1.0             # what the exercise is worth on the grade sheet
    observe: bool = False           # the grader calls the objects remotely (see above)
    rules: Rules = NO_RULES         # what the answer may not use
    probe: Optional[ModuleCheck] = None   # the grader's own test of a class (see above)
    spec: Optional[FunctionCheck] = None  # a declared function exercise (declare_function)


REGISTRY: Dict[str, Exercise] = {}
_LOADED = False


def register(exercise_id: str, names: Tuple[str, ...] | list, title: str = "", *,
             points: float = 1.0, observe: bool = False, rules: Rules = NO_RULES,
             probe: Optional[ModuleCheck] = None, spec: Optional[FunctionCheck] = None):
    """Decorator: register ``func(*objects)`` as the check of ``exercise_id``.

    The function returns a :class:`Feedback` (or a ``(passed, message)`` pair).
    ``observe=True`` is for checks that only *call* the student's objects with
    arguments and read back plain values (tensors, numbers, lists, exceptions).
    ``probe`` is for the other checks of a class: the grader also runs the class itself
    (:class:`~._modules.ModuleCheck`).
    """
    def decorate(func):
        if exercise_id in REGISTRY:
            raise ValueError(f"exercise id {exercise_id!r} is registered twice")
        if points <= 0:
            raise ValueError(f"exercise {exercise_id!r}: points must be positive")
        if observe and probe is not None:
            raise ValueError(f"exercise {exercise_id!r}: an observe check calls the objects "
                             f"from the grader already; a probe is for in-process checks")
        REGISTRY[exercise_id] = Exercise(exercise_id, tuple(names), func, title,
                                         float(points), bool(observe), rules, probe, spec)
        return func
    return decorate


def declare_function(exercise_id: str, spec: FunctionCheck, name: str, title: str, *,
                     points: float = 1.0, rules: Rules = NO_RULES) -> None:
    """A function exercise in one declaration: its :class:`~._kit.FunctionCheck`, run by
    :func:`~._kit.run_function_check` in the notebook and, through the grader's stand-in
    for the student's function, by the grader (``observe``). The tests find it here."""
    register(exercise_id, [name], title, points=points, observe=True, rules=rules,
             spec=spec)(functools.partial(run_function_check, spec))


def declare_module(exercise_id: str, spec: ModuleCheck, name: str, title: str, *,
                   points: float = 1.0, rules: Rules = NO_RULES) -> None:
    """A block exercise in one declaration: its :class:`~._modules.ModuleCheck`, run by
    :func:`~._modules.run_module_check` on the class built in the notebook and, through the
    answering process's ``build`` and ``run`` requests, by the grader (``probe``)."""
    register(exercise_id, [name], title, points=points, rules=rules,
             probe=spec)(functools.partial(check_module, spec, name))


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def exercises() -> Dict[str, Exercise]:
    """All registered exercises, by id."""
    _load_all()
    return dict(REGISTRY)


def _is_not_implemented(exc: BaseException) -> bool:
    return isinstance(exc, NotImplementedError) or isinstance(exc.__cause__,
                                                              NotImplementedError)


def _where(exc: BaseException) -> str:
    """Where the student's code failed: the ``where`` the grader's proxy attached, or
    the last frame of a traceback that lies in the student's own code (never a line of
    the checks or of the grader)."""
    where = getattr(exc, "student_where", None)
    if where is not None:
        return f" ({where})" if where else ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "resnet_edu" not in f.filename.replace("\\", "/").split("/")]
    if not frames:
        return ""
    last = frames[-1]
    return f" (in {last.name}, line {last.lineno})"


def check(exercise_id: str, *objects, seed: Optional[int] = None) -> Feedback:
    """Check the student's ``objects`` for ``exercise_id``; never raises for bad code.

    ``seed`` (the grader's, drawn at grading time) changes the check's inputs; without
    it a check is reproducible. The student's global random state is left as it was.
    """
    _load_all()
    if exercise_id not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "(none)"
        raise ValueError(f"unknown exercise id {exercise_id!r}; known ids: {known}")
    ex = REGISTRY[exercise_id]
    if len(objects) != len(ex.names):
        raise ValueError(f"check({exercise_id!r}, ...) expects {len(ex.names)} object(s): "
                         f"{', '.join(ex.names)}; got {len(objects)}")
    try:
        with isolated_random_state():
            result = ex.func(*objects, salt=salt_of(seed))
    except Exception as exc:  # noqa: BLE001 - the student's code may raise anything: feedback
        if _is_not_implemented(exc):
            return Feedback(exercise_id, False, "not solved yet: replace the "
                            "`raise NotImplementedError` in the exercise cell with your code.",
                            solved=False)
        return Feedback(exercise_id, False,
                        f"your code raised {type(exc).__name__}: {exc}{_where(exc)}. Run it "
                        f"on a small input and compare the shapes with the exercise text.")
    if not isinstance(result, Feedback):
        passed, message = result
        result = Feedback(exercise_id, bool(passed), message)
    result.exercise = exercise_id       # check() owns the id, whatever the function wrote
    result.score = min(1.0, max(0.0, float(result.score)))
    return result
