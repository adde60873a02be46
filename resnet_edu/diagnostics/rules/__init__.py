"""The rules: one function per problem kind, each judging the frozen Observation.

A rule never runs the block; it reads ``Observation`` (see ``observe.py``) and yields
the :class:`Problem` objects of its own kind (usually none, one for most kinds, one per
cause for ``no_gradient``). Rules are registered with ``@rule(ProblemKind.X)`` and run
in the order of :class:`ProblemKind`, which is the order reports list problems in.
Note rules (advice that does not make a block wrong) are registered with ``@note``.

Adding a rule: a new ``ProblemKind`` member (where it belongs in report order), one
function decorated with ``@rule`` in the module of its topic, and one faulty block in
``tests/block_zoo.py`` that only that rule catches.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Tuple

from ..observe import Observation
from ..report import Problem, ProblemKind

Rule = Callable[[Observation], Iterable[Problem]]
NoteRule = Callable[[Observation], Iterable[str]]

RULES: Dict[ProblemKind, Rule] = {}
NOTES: List[NoteRule] = []


def rule(kind: ProblemKind) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the rule that reports problems of ``kind``."""
    def register(fn: Rule) -> Rule:
        if kind in RULES:
            raise ValueError(f"two rules for {kind.value}: {RULES[kind].__name__} and "
                             f"{fn.__name__}")
        RULES[kind] = fn
        return fn
    return register


def note(fn: NoteRule) -> NoteRule:
    """Register ``fn`` as a source of notes (advice, not problems)."""
    NOTES.append(fn)
    return fn


def run_rules(obs: Observation) -> Tuple[List[Problem], List[str]]:
    """Every rule over ``obs``: the problems in report order and the notes (no repeats).

    An exception raised here is a bug in a rule: it is not caught."""
    problems: List[Problem] = []
    for kind in ProblemKind:
        for problem in RULES[kind](obs):
            if problem.kind is not kind:
                raise AssertionError(f"rule {RULES[kind].__name__} for {kind.value} "
                                     f"reported a {problem.kind.value}")
            problems.append(problem)
    notes = [text for fn in NOTES for text in fn(obs)]
    return problems, list(dict.fromkeys(notes))


# the rule modules register themselves on import (after the registry above exists)
from . import branch, gradients, layers, running  # noqa: E402,F401

_missing = [kind.value for kind in ProblemKind if kind not in RULES]
if _missing:  # a ProblemKind without a rule would never be reported
    raise ImportError(f"no rule registered for {', '.join(_missing)}")
