"""The one door into the user's code.

Everything the checker runs that was written by the user (the block's ``forward``, its
backward pass, its ``__deepcopy__``, a block file being imported, a constructor) goes
through :func:`call_user`. Whatever that code raises comes back as a :class:`UserCodeError`,
which the checker turns into a sentence about the block. Nothing else is caught: an
exception of any other type is a bug in the checker itself and must be loud
(``check_block`` reports it as "could not finish", or re-raises it when the environment
variable ``RESNET_EDU_DEBUG=1`` is set).
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Callable, TypeVar

T = TypeVar("T")


class UserCodeError(Exception):
    """The user's code raised ``original`` (kept as ``__cause__`` too)."""

    def __init__(self, original: BaseException):
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


def call_user(fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)``, with any exception it raises wrapped in UserCodeError.

    KeyboardInterrupt and SystemExit are not ``Exception``s and still stop the run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the user's code may raise anything: that is the point
        raise UserCodeError(exc) from exc


@contextlib.contextmanager
def quiet():
    """Keep the block's own prints and warnings out of the student's output."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
