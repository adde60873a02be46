"""The command line: ``python -m resnet_edu COMMAND [options]`` (also ``resnet-edu``).

One module per command in this package, each exposing ``DESCRIPTION``,
``add_arguments(parser)`` and ``run(args) -> int``. This file only dispatches:
it imports the command's module when that command runs (so ``--help`` stays
fast and one command's dependencies never slow another), builds its parser,
and is the one place that turns a :class:`~resnet_edu.cli.errors.CommandError`
into ``error: <message>`` on stderr and its exit code. A new command is one
module plus one line in ``COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from .. import debug
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, CommandError

# name -> (module, one-line description)
COMMANDS = {
    "summary": ("resnet_edu.cli.summary",
                "print a per-stage table (output shape, parameters, MACs) of a model"),
    "check": ("resnet_edu.cli.check",
              "check a residual block from a .py file for the usual bugs"),
    "train": ("resnet_edu.cli.train",
              "train a CIFAR-style ResNet (embedded digits by default) and save a checkpoint"),
    "student-notebooks": ("resnet_edu.cli.student_notebooks",
                          "write student versions of the chapters with solutions removed"),
    "grade": ("resnet_edu.cli.grade",
              "execute submitted notebooks and grade their exercises into a CSV"),
}

EXIT_CODES = f"""exit codes:
  {EXIT_OK}  ok
  {EXIT_FINDINGS}  findings (check: the block has a problem; grade: a submission could not be
     graded) or a failed run (train: the loss diverged)
  {EXIT_USAGE}  usage or bad input (unknown option, bad value, unusable path, missing data)"""


def _prints_here(error: Optional[CommandError] = None) -> bool:
    """Whether this process reports ``error``: always, except under torchrun, where the
    same bad input would print once per process; there only LOCAL_RANK 0 reports it
    (each machine checks its own files), unless the error is the process's own."""
    return (error is not None and error.every_rank) or os.environ.get("LOCAL_RANK", "0") == "0"


QUIET_RANK_WAIT = 30.0   # seconds a quiet rank waits for LOCAL_RANK 0 to report and exit


def _let_rank_zero_report() -> None:
    """A rank that does not print waits before it exits: torchrun stops every worker as
    soon as one ends, so a quiet rank that ended first would cut off rank 0's report of the
    same bad input. Rank 0 exits, torchrun ends this process; the wait is the bound."""
    import time

    time.sleep(QUIET_RANK_WAIT)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors reported like every other error (one prefix, exit 2)."""

    def error(self, message: str):
        if _prints_here():
            self.print_usage(sys.stderr)
        raise CommandError(message, EXIT_USAGE)


def usage() -> str:
    """The top-level help: the commands and the exit codes."""
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m resnet_edu COMMAND [options]", "", "commands:"]
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {text}")
    lines += ["", "Run 'python -m resnet_edu COMMAND --help' for a command's options.",
              f"--debug (any command; or {debug.DEBUG_VARIABLE}=1): print the traceback behind "
              "an error", "", EXIT_CODES]
    return "\n".join(lines)


def _run_command(name: str, argv: List[str]) -> int:
    module = importlib.import_module(COMMANDS[name][0])
    parser = _Parser(prog=f"python -m resnet_edu {name}", description=module.DESCRIPTION,
                     epilog=getattr(module, "EPILOG", None))
    module.add_arguments(parser)
    try:   # options may come between and after the positional arguments
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:                 # --help (argparse's errors raise CommandError)
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    return int(module.run(args) or EXIT_OK)


def _take_debug(argv: List[str]) -> List[str]:
    """``argv`` without ``--debug`` (before ``--``, anywhere), which turns tracebacks on."""
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" in argv[:end]:
        debug.enable()
    return [a for a in argv[:end] if a != "--debug"] + argv[end:]


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; return its exit code (0 ok, 1 findings or a failed run, 2 usage)."""
    argv = _take_debug(list(sys.argv[1:] if argv is None else argv))
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return EXIT_OK
    name, rest = argv[0], argv[1:]
    try:
        if name not in COMMANDS:
            raise CommandError(f"unknown command {name!r}; supported commands: "
                               f"{', '.join(COMMANDS)}", EXIT_USAGE)
        return _run_command(name, rest)
    except CommandError as exc:
        if _prints_here(exc):
            debug.print_traceback(exc)        # --debug: what the one line stands for
            print(f"error: {exc.message}", file=sys.stderr)
        else:
            _let_rank_zero_report()
        return exc.code


def cli_check(argv: List[str]) -> int:
    """``python -m resnet_edu check ARGV...`` from Python (chapter 5 calls it in a cell);
    returns the exit status (0 ok, 1 problems found, 2 usage or bad input)."""
    return main(["check", *argv])
