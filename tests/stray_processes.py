"""What a finished grading run left running (tests/test_classroom_sandbox.py, _zoo.py).

A test session runs other things beside the grader: tests/test_book.py's Chromium and its
driver are children of the pytest process for the whole session. A grading run's strays are
therefore the processes below this one that it started: the descendants alive before it
began are recorded first (`running_now()`) and set aside.
"""
from __future__ import annotations

import os

import psutil

from resnet_edu.classroom import hygiene


def running_now() -> set[int]:
    """This process's live descendants now."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _multiprocessing_helpers() -> set[int]:
    helpers = set()
    for child in psutil.Process().children():
        try:
            if "multiprocessing" in " ".join(child.cmdline()):
                helpers.add(child.pid)
        except psutil.Error:        # ended, or a zombie, since it was listed
            continue
    return helpers


def strays(before: set[int]) -> set[int]:
    """This process's children other than multiprocessing's own helpers (the fork server,
    the resource tracker), and every live descendant of any child (an answering process the
    fork server still runs), less what was running before the grading run (`before`)."""
    return hygiene.strays_of(os.getpid(), keep=_multiprocessing_helpers()) - before
