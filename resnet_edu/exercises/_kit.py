"""The shared kit of the exercise checks: seeds, rules, cases and known mistakes.

- **Seeds.** A check draws its inputs from :func:`generator` (or reseeds with
  :func:`manual_seed`). In a notebook the seed is fixed, so a check prints the same
  sentence every time; the grader passes a seed drawn at grading time
  (``check(..., seed=...)``), so a submission cannot know the inputs in advance.
  :func:`isolated_random_state` keeps a check from changing the student's global
  random state (torch, Python, NumPy).
- **Rules.** :class:`Rules` says what an answer may not use (calls, imports, base
  classes, building modules); the grader enforces them on the answer's source
  (``resnet_edu.classroom.rules``) and, for ``forbidden`` callables and ``no_modules``,
  while the student's function runs.
- **Cases and mistakes.** :func:`first_mistake` runs a catalogue of known mistakes, each
  a reference computed another way, and names the first one the student's output matches.
"""
from __future__ import annotations

import contextlib
import random
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch

_state = threading.local()          # the salt of the check running on this thread


def _salt() -> int:
    return getattr(_state, "salt", 0)


def mixed(seed: int) -> int:
    """``seed`` combined with the current check's salt (0 outside the grader)."""
    return (int(seed) * 1_000_003 + _salt()) % (2 ** 63 - 1)


def generator(seed: int) -> torch.Generator:
    """A CPU generator for a check's inputs: fixed in a notebook, fresh at grading time."""
    return torch.Generator().manual_seed(mixed(seed))


def manual_seed(seed: int) -> None:
    """Reseed torch's global generator (inside a check, whose state is restored after)."""
    torch.manual_seed(mixed(seed))


@contextlib.contextmanager
def isolated_random_state(seed: Optional[int]) -> Iterator[None]:
    """Run a check with its own salt; restore torch's, Python's and NumPy's global state."""
    previous = _salt()
    py_state = random.getstate()
    try:
        import numpy as np
        np_state = np.random.get_state()
    except ImportError:  # numpy is optional for the kit
        np, np_state = None, None
    _state.salt = 0 if seed is None else int(seed) % (2 ** 31)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        _state.salt = previous
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
    """A known wrong answer: ``expected(*case)`` computes it, ``hint`` explains it."""

    expected: Callable
    hint: str


def first_mistake(got, case: Sequence, mistakes: Sequence[Mistake],
                  same: Callable[[object, object], bool]) -> Optional[Mistake]:
    """The first mistake of the catalogue whose output ``got`` matches, or None."""
    for mistake in mistakes:
        try:
            if same(got, mistake.expected(*case)):
                return mistake
        except (ValueError, RuntimeError, TypeError):   # a mistake that does not apply
            continue
    return None
