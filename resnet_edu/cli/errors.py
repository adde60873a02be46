"""The one error type of the command line, and its exit codes.

A command raises :class:`CommandError` for anything the user can fix; the
dispatcher in :mod:`resnet_edu.cli` is the one place that catches it, prints
``error: <message>`` on one line to stderr and exits with its code.
"""
from __future__ import annotations

EXIT_OK = 0          # the command did what was asked and found nothing wrong
EXIT_FINDINGS = 1    # findings (check: a bug in the block; grade: ...) or a failed run
EXIT_USAGE = 2       # usage or bad input: unknown option, bad value, unusable path or data
                     # (argparse's own usage errors exit 2 as well)


class CommandError(Exception):
    """A one-line message for the user and the exit code that goes with it.

    ``every_rank``: under torchrun, print the message in every process. Checks of the
    user's input give every process the same answer, so by default only the first
    process of each machine (``LOCAL_RANK`` 0) prints it; an error that differs between
    processes (a failed rendezvous or collective, which names its rank) sets it.
    """

    def __init__(self, message: str, code: int = EXIT_USAGE, every_rank: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.every_rank = every_rank
