"""Helpers shared by the test files, as pytest fixtures (ask for them by name).

``stub``
    stands for an exercise nobody solved yet: calling it raises ``NotImplementedError``,
    as the student notebook's stubs do.
``stub_class(base=nn.Module, **attributes)``
    the same for an exercise that asks for a class: a subclass of ``base`` (with
    ``attributes``, e.g. ``expansion=1``) whose ``__init__`` and ``forward`` raise
    ``NotImplementedError``, as the student notebook hands the class out.
``book_solution(notebook, *names, exercise=None)``
    executes the notebook's own cells tagged ``solution`` (those of one exercise when
    ``exercise`` names it) and returns the objects called ``names`` (one object for one
    name, else a tuple): the tests check exactly the code readers see, not a hand copy.
``with_mistake(solution, mixin)``
    the book's ``solution`` class with one mistake: a subclass with ``mixin`` first, so the
    mixin's methods replace the book's (and may call them with ``super()``).
``assert_fails(feedback, *phrases)``
    asserts that a check's feedback is a failure of a solved exercise (a mistake, not a
    stub) whose text names every phrase (case-insensitive).
``assert_keeps_random_stream(exercise_id, *objects)``
    asserts that ``check(exercise_id, *objects)`` leaves torch's global random stream where
    it was (a check draws its inputs from its own generator, never from the student's).
``make_cifar``
    the module ``tests/make_cifar.py`` (a tiny CIFAR-10 archive in the real format).
``run_module(*args, timeout=...)``
    ``python -m resnet_edu ARGS`` in a subprocess, from the repository root, in the
    notebooks' kernel environment; returns the ``subprocess.CompletedProcess`` (text).

The root ``conftest.py`` (nbval defaults, kernel environment) applies to every test too.
"""
from __future__ import annotations

import functools
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional, Tuple

import nbformat
import pytest

from resnet_edu import conventions

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / conventions.BOOK_FOLDER


def _unsolved(*args, **kwargs):
    raise NotImplementedError("Exercise: write your solution here (see the exercise above)")


def _unsolved_class(base: Optional[type] = None, **attributes) -> type:
    if base is None:
        from torch import nn

        base = nn.Module
    return type("Unsolved", (base,), {"__init__": _unsolved, "forward": _unsolved,
                                      **attributes})


def _with_mistake(solution: type, mixin: type) -> type:
    return type(mixin.__name__, (mixin, solution), {})


def _assert_fails(feedback, *phrases: str) -> None:
    assert not feedback.passed, feedback
    assert feedback.solved, feedback
    text = str(feedback).lower()
    for phrase in phrases:
        assert phrase.lower() in text, f"{phrase!r} not in: {feedback}"


def _assert_keeps_random_stream(exercise_id: str, *objects) -> None:
    import torch

    from resnet_edu.exercises import check

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check(exercise_id, *objects)
    assert torch.equal(torch.rand(3), expected)


@functools.cache
def solution_sources(notebook: str, exercise: Optional[str] = None) -> Tuple[str, ...]:
    """Sources of ``notebook``'s code cells tagged ``solution``, in order; with ``exercise``,
    only those between its ``{solution-start}`` and ``{solution-end}`` (read once a run:
    the notebooks do not change while the tests run)."""
    nb = nbformat.read(BOOK / notebook, as_version=4)
    return tuple(cell.source for _, cell, where in conventions.walk_exercises(nb.cells)
                 if conventions.is_solution_cell(cell)
                 and (exercise is None or where.gate == exercise))


def run_solution(notebook: str, *names: str, exercise: Optional[str] = None):
    sources = solution_sources(notebook, exercise)
    assert sources, (f"{notebook} has no cell tagged 'solution'"
                     + (f" for {exercise}" if exercise else ""))
    namespace: dict = {}
    for source in sources:
        exec(compile(source, f"{notebook}:solution", "exec"), namespace)
    missing = [n for n in names if n not in namespace]
    assert not missing, f"{notebook}'s solution cells define no {missing}"
    found = tuple(namespace[n] for n in names)
    return found[0] if len(found) == 1 else found


@pytest.fixture
def stub() -> Callable:
    return _unsolved


@pytest.fixture
def stub_class() -> Callable[..., type]:
    return _unsolved_class


@pytest.fixture
def book_solution() -> Callable:
    return run_solution


@pytest.fixture
def with_mistake() -> Callable[[type, type], type]:
    return _with_mistake


@pytest.fixture
def assert_fails() -> Callable[..., None]:
    return _assert_fails


@pytest.fixture
def assert_keeps_random_stream() -> Callable[..., None]:
    return _assert_keeps_random_stream


@pytest.fixture(scope="session")
def make_cifar():
    # tests/ is on sys.path here: pytest's default "prepend" import mode puts a rootless
    # conftest's folder there before importing it
    return importlib.import_module("make_cifar")


def _run_module(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resnet_edu", *map(str, args)], cwd=ROOT,
                          env=conventions.kernel_environment(ROOT), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def run_module() -> Callable[..., subprocess.CompletedProcess]:
    return _run_module
