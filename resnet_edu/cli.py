"""The command line: ``python -m resnet_edu COMMAND [options]``.

Each command lives in the module that owns its idea; this file only
dispatches, so adding a command is one line in ``COMMANDS``. Every command is a
function ``main(argv: list[str], prog: str) -> int`` that parses its own
arguments (so ``python -m resnet_edu summary --help`` is that command's help).
"""
from __future__ import annotations

import importlib
import sys

# name -> (module, function, one-line description)
COMMANDS = {
    "summary": ("resnet_edu.stats", "cli_summary",
                "print a per-stage table (output shape, parameters, MACs) of a model"),
    "check": ("resnet_edu.diagnostics", "cli_check",
              "check a residual block from a .py file for the usual bugs"),
    "train": ("resnet_edu.train", "cli_train",
              "train a CIFAR-style ResNet (embedded digits by default) and save a checkpoint"),
    "student-notebooks": ("resnet_edu.classroom", "cli_student_notebooks",
                          "write student versions of the chapters with solutions removed"),
    "grade": ("resnet_edu.classroom", "cli_grade",
              "execute submitted notebooks and grade their exercises into a CSV"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: python -m resnet_edu COMMAND [options]", "", "commands:"]
    for name, (_, _, text) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {text}")
    lines += ["", "Run 'python -m resnet_edu COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; supported commands: "
              f"{', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest, prog=f"python -m resnet_edu {name}") or 0)
