"""One switch for the package's own tracebacks: ``--debug`` or ``RESNET_EDU_DEBUG=1``.

Where the tooling turns a failure into one plain sentence (the checker's "could not
finish", a notebook the runner could not execute, a command line ``error:``), the switch
adds the traceback that the sentence stands for, for whoever maintains the tool. The
command line's ``--debug`` (any command, anywhere on the line) sets the variable, so the
processes it starts see it too.
"""
from __future__ import annotations

import os
import sys
import traceback

#: set this environment variable to 1 for the tracebacks (``--debug`` sets it)
DEBUG_VARIABLE = "RESNET_EDU_DEBUG"


def debugging() -> bool:
    """Whether tracebacks are asked for."""
    return os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def enable() -> None:
    """Ask for tracebacks in this process and in the processes it starts."""
    os.environ[DEBUG_VARIABLE] = "1"


def print_traceback(exc: BaseException) -> None:
    """``exc``'s traceback (with its causes) on stderr, when tracebacks are asked for."""
    if debugging():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
