"""The shared kit of the exercise checks: seeds, rules, cases and known mistakes.

- **Seeds.** A check draws its inputs from :func:`generator` (or reseeds with
  :func:`manual_seed`), with the ``salt`` argument ``check`` passes it. In a notebook the
  salt is 0, so a check prints the same sentence every time; the grader passes a seed
  drawn at grading time (``check(..., seed=...)``, the salt :func:`salt_of` it), so a
  submission cannot know the inputs in advance. No hidden state: the salt is an argument.
  :func:`isolated_random_state` keeps a check from changing the student's global
  random state (torch, Python, NumPy).
- **Rules.** :class:`Rules` says what an answer may not use (calls, imports, base
  classes, building modules); the grader enforces them on the answer's source
  (``resnet_edu.classroom.rules``) and, for ``forbidden`` callables and ``no_modules``,
  while the student's function runs.
- **Cases and mistakes.** :func:`first_mistake` runs a catalogue of known mistakes, each
  a reference computed another way, and names the first one the student's output matches.
- **Function exercises, declared.** A new function exercise is one :class:`FunctionCheck`
  plus its known mistakes (:class:`Mistake`): the cases, ``make_inputs(case,
  generator) -> args``, ``reference(*args)``, ``read`` (type and shape,
  :class:`WrongForm` when wrong), ``same``, the mistakes, ``differs`` (the hint when no known mistake matches),
  ``describe`` and the success sentence. :func:`run_function_check` is the one runner:
  it draws each case's inputs from :func:`generator`, calls the student's function (with
  copies of the arguments it may change; those it may not change are watched), reads the
  answer, compares it with the reference and, on a mismatch, names the first matching
  known mistake. It only calls the function with tensors and numbers and reads the
  answer back, so it runs unchanged on the grader's stand-in (``observe=True``). The
  exercise is then one declaration (``resnet_edu.exercises.declare_function``)::

      declare_function("ch01-conv2d-by-hand", CONV2D_BY_HAND, "conv2d_by_hand",
                       "Conv2d by hand", rules=Rules(...))
- **Block exercises** are declared the same way, with a ``ModuleCheck`` and its runner
  (``._modules``); :func:`randomise_` draws their weights and BatchNorm statistics.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn


def salt_of(seed: Optional[int]) -> int:
    """The salt a check gets for a grading run's ``seed`` (None, in a notebook: 0)."""
    return 0 if seed is None else int(seed) % (2 ** 31)


def mixed(seed: int, salt: int = 0) -> int:
    """``seed`` combined with the check's ``salt`` (0 in a notebook: the book's inputs)."""
    return (int(seed) * 1_000_003 + int(salt)) % (2 ** 63 - 1)


def generator(seed: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for a check's inputs: ``seed`` fixes them in a notebook; the salt
    that ``check`` passes to the check (drawn per grading run) makes them fresh."""
    return torch.Generator().manual_seed(mixed(seed, salt))


def manual_seed(seed: int, salt: int = 0) -> None:
    """Reseed torch's global generator (inside a check, whose state is restored after)."""
    torch.manual_seed(mixed(seed, salt))


@contextlib.contextmanager
def isolated_random_state() -> Iterator[None]:
    """Restore torch's, Python's and NumPy's global random state after a check."""
    py_state = random.getstate()
    try:
        import numpy as np
        np_state = np.random.get_state()
    except ImportError:  # numpy is optional for the kit
        np, np_state = None, None
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(py_state)
        if np is not None:
            np.random.set_state(np_state)


@dataclass(frozen=True)
class Rules:
    """What the answer to an exercise may not use; each rule is quoted in the feedback.

    ``forbidden``: dotted names (prefixes) the answer may not refer to, e.g.
    ``"torch.nn.functional.conv2d"``; ``forbidden_imports``: module prefixes;
    ``forbidden_bases``: class names or dotted prefixes a class may not derive from;
    ``define``: how each required name must be defined (``"def"`` or ``"class"``;
    default: as the book's solution does); ``no_modules``: the student's function
    may not build any ``nn.Module`` (nor use the meta device); ``why``: the sentence
    of the exercise that the rules enforce.
    """

    forbidden: Tuple[str, ...] = ()
    forbidden_imports: Tuple[str, ...] = ()
    forbidden_bases: Tuple[str, ...] = ()
    define: Tuple[Tuple[str, str], ...] = ()
    no_modules: bool = False
    why: str = ""


NO_RULES = Rules()

_BOOK_BLOCKS = ("resnet_edu.blocks", "resnet_edu.models", "resnet_edu.original", "torchvision")
# the rules of every "write the block yourself" exercise (chapters 4, 5 and 7)
OWN_BLOCK = Rules(forbidden=_BOOK_BLOCKS, forbidden_imports=_BOOK_BLOCKS,
                  forbidden_bases=("resnet_edu", "torchvision"),
                  why="Write the block yourself: a class of your own derived from `nn.Module`, "
                      "not a block of `resnet_edu` or `torchvision`.")


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``expected(*case)`` computes it, ``hint`` explains it.

    ``hint`` is a sentence, or a function of the case that writes it (``hint(*case)``);
    ``same`` replaces the check's comparison for this mistake (e.g. a looser tolerance,
    or one that looks at one part of the answer only).
    """

    expected: Callable
    hint: Union[str, Callable[..., str]]
    same: Optional[Callable[[object, object], bool]] = None

    def explain(self, *case) -> str:
        return self.hint(*case) if callable(self.hint) else self.hint


def first_mistake(got, case: Sequence, mistakes: Sequence[Mistake],
                  same: Callable[[object, object], bool]) -> Optional[Mistake]:
    """The first mistake of the catalogue whose output ``got`` matches, or None."""
    for mistake in mistakes:
        try:
            if (mistake.same or same)(got, mistake.expected(*case)):
                return mistake
        except (ValueError, RuntimeError, TypeError):   # a mistake that does not apply
            continue
    return None


def randomise_(module: nn.Module, generator: torch.Generator) -> None:
    """Random weights and BatchNorm statistics, so that no layer is trivially the identity:
    variances and BN gammas in [0.5, ...), convolution weights He-sized, the rest N(0, 1)."""
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var") or (name.endswith("weight") and tensor.dim() == 1):
                values = values.abs() + 0.5                     # variances and BN gammas > 0
            elif tensor.dim() == 4:                              # conv weights: He-sized
                values = values * (2.0 / tensor[0].numel()) ** 0.5
            tensor.copy_(values)


class WrongForm(Exception):
    """Raised by a :class:`FunctionCheck`'s ``read`` when the answer has the wrong type or
    shape; its message, after the case's description, is the feedback."""


def _as_returned(got, expected, case):
    return got


def _after_colon(where: str, got, expected, hint: str) -> str:
    return f"{where}: {hint}"


@dataclass(frozen=True)
class FunctionCheck:
    """A function exercise, declared: its cases, its reference and its known mistakes.

    For each case, ``make_inputs(case, generator)`` draws the arguments (one generator
    from ``generator(seed)`` serves all the cases, in order); the student's function is
    called with them, those named in ``by_name`` passed by keyword; ``reference(*args)``
    computes the right answer. Then, in this order:

    - ``in_place`` (a sentence): when set, a tensor argument the function changed in
      place fails the case (``names`` quotes the arguments), except those in
      ``may_change``; the function gets copies of the arguments it may change (all of
      them when ``in_place`` is empty);
    - ``read(got, expected, case)``: the answer in comparable form (e.g. as the
      reference's dtype), or :class:`WrongForm` with what is wrong with its type or shape;
    - ``same(value, expected)``: right or not. When wrong, the first of ``mistakes``
      (each computed from the same arguments) that ``value`` matches gives the hint,
      else ``differs(value, expected, args)`` does; ``say(where, value, expected, hint)``
      writes the feedback (by default ``"{where}: {hint}"``, ``where`` being
      ``describe(case, args)``, e.g. ``"On x of shape (2, 3, 8, 8)"``);
    - ``then(got, args, case)``: a last test once the values are right (e.g. gradients),
      returning what is wrong or None.

    The function is only called with tensors and numbers and its answer only read, so
    the check works unchanged on the grader's stand-in (``observe=True``).
    """

    cases: Tuple
    make_inputs: Callable[[object, torch.Generator], tuple]
    reference: Callable[..., object]
    same: Callable[[object, object], bool]
    describe: Callable[[object, tuple], str]
    differs: Callable[[object, object, tuple], str]
    success: str
    mistakes: Tuple[Mistake, ...] = ()      # none known: every mismatch gets ``differs``
    read: Callable[[object, object, object], object] = _as_returned    # the answer as is
    say: Callable[[str, object, object, str], str] = _after_colon      # "{where}: {hint}"
    names: Tuple[str, ...] = ()             # the arguments' names, for by_name and in_place
    by_name: Tuple[str, ...] = ()           # all arguments passed by position
    in_place: str = ""                      # in-place changes not checked (copies sent)
    may_change: Tuple[str, ...] = ()        # every named argument is watched
    then: Optional[Callable[[object, tuple, object], Optional[str]]] = None  # values suffice
    seed: int = 0                           # of the generator the inputs are drawn from


def _call(spec: FunctionCheck, function, args: tuple):
    """``function(*args)`` with the arguments named in ``spec.by_name`` passed by keyword."""
    positional = [a for n, a in zip(spec.names, args) if n not in spec.by_name]
    positional += list(args[len(spec.names):])
    named = {n: a for n, a in zip(spec.names, args) if n in spec.by_name}
    return function(*positional, **named)


def _watched(spec: FunctionCheck) -> List[bool]:
    """For each named argument: must the function leave it as it is?"""
    return [bool(spec.in_place) and name not in spec.may_change for name in spec.names]


def _changed(spec: FunctionCheck, args: tuple, before: list) -> Optional[str]:
    for name, watched, arg, old in zip(spec.names, _watched(spec), args, before):
        if watched and old is not None and not torch.equal(arg.detach(), old):
            return f"your function changed `{name}` in place. {spec.in_place}"
    return None


def _case_problem(spec: FunctionCheck, function, case, args: tuple) -> Optional[str]:
    """What is wrong with the function's answer on one case, or None."""
    where = spec.describe(case, args)
    expected = spec.reference(*args)
    before = [a.detach().clone() if isinstance(a, torch.Tensor) else None for a in args]
    # the watched arguments go as they are, the others as copies: either way the mistakes
    # below see the inputs as drawn
    watched = _watched(spec) + [False] * (len(args) - len(spec.names))
    got = _call(spec, function, tuple(a.clone() if isinstance(a, torch.Tensor) and not w
                                      else a for a, w in zip(args, watched)))
    changed = _changed(spec, args, before)
    if changed:
        return f"{where}: {changed}"
    try:
        value = spec.read(got, expected, case)
    except WrongForm as wrong:
        return f"{where}: {wrong}"
    if not spec.same(value, expected):
        mistake = first_mistake(value, args, spec.mistakes, spec.same)
        hint = mistake.explain(*args) if mistake else spec.differs(value, expected, args)
        return spec.say(where, value, expected, hint)
    problem = spec.then(got, args, case) if spec.then else None
    return f"{where}: {problem}" if problem else None


def run_function_check(spec: FunctionCheck, function, salt: int = 0) -> Tuple[bool, str]:
    """Run ``spec`` on the student's ``function`` (inputs drawn with the check's ``salt``):
    ``(passed, message)``, the first failing case's feedback or ``spec.success``.
    Exceptions of the function propagate to ``check()``, which reports them."""
    inputs = generator(spec.seed, salt)
    for case in spec.cases:
        problem = _case_problem(spec, function, case, tuple(spec.make_inputs(case, inputs)))
        if problem:
            return False, problem
    return True, spec.success
