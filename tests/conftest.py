"""Helpers shared by the test files, as pytest fixtures (ask for them by name).

``stub``
    stands for an exercise nobody solved yet: calling it raises ``NotImplementedError``,
    as the student notebook's stubs do.
``book_solution(notebook, *names, exercise=None)``
    executes the notebook's own cells tagged ``solution`` (those of one exercise when
    ``exercise`` names it) and returns the objects called ``names`` (one object for one
    name, else a tuple): the tests check exactly the code readers see, not a hand copy.
``make_cifar``
    the module ``tests/make_cifar.py`` (a tiny CIFAR-10 archive in the real format).
``run_module(*args, timeout=...)``
    ``python -m resnet_edu ARGS`` in a subprocess, from the repository root, in the
    notebooks' kernel environment; returns the ``subprocess.CompletedProcess`` (text).

The root ``conftest.py`` (nbval defaults, kernel environment) applies to every test too.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional

import nbformat
import pytest

from resnet_edu import conventions

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / conventions.BOOK_FOLDER


def _unsolved(*args, **kwargs):
    raise NotImplementedError("Exercise: write your solution here (see the exercise above)")


def solution_sources(notebook: str, exercise: Optional[str] = None) -> List[str]:
    """Sources of ``notebook``'s code cells tagged ``solution``, in order; with ``exercise``,
    only those between its ``{solution-start}`` and ``{solution-end}``."""
    nb = nbformat.read(BOOK / notebook, as_version=4)
    sources, gate = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for d in conventions.directives(cell.source):
                if d.name == "solution-start":
                    gate = d.argument.split()[0] if d.argument else None
                elif d.name == "solution-end":
                    gate = None
        elif conventions.SOLUTION_TAG in conventions.cell_tags(cell):
            if exercise is None or gate == exercise:
                sources.append(cell.source)
    return sources


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
def book_solution() -> Callable:
    return run_solution


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
