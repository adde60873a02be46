"""``python -m resnet_edu check FILE.py:ClassName --args ... --input-shape N,C,H,W``.

Loads a block class from a student's file (or a module), builds it with the given
arguments and prints :func:`resnet_edu.diagnostics.check_block`'s report. Everything
the user gave is checked before any work, each problem in one line with exit status 2:
the file, the class name, the argument syntax, the constructor call, the input shape
(also against the block's layers: a Conv2d block needs N,C,H,W, four numbers).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator, List, Optional, Sequence, Tuple

from torch import nn

from ..diagnostics import check_block
from ..diagnostics.check import validate
from ..diagnostics.usercode import UserCodeError, call_user, quiet
from ..diagnostics.words import first_line
from .argtypes import MAX_SEED, check_input_values, parse_shape, seed
from .errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, CommandError
from .paths import input_file

DESCRIPTION = "Check a residual block for the usual bugs (see resnet_edu.diagnostics)."
EPILOG = """example: python -m resnet_edu check my_block.py:MyBlock --args 16 32 stride=2 \
--input-shape 2,16,8,8

exit codes: 0 no problem found, 1 the block has problems (the report says which),
2 usage or bad input (file, class, arguments, input shape)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("target", help="FILE.py:ClassName (or package.module:ClassName)")
    parser.add_argument("--args", nargs="*", default=[], metavar="ARG",
                        help="constructor arguments as Python literals, e.g. 16 32 stride=2")
    parser.add_argument("--input-shape", required=True, metavar="N,C,H,W",
                        help="the full input shape, e.g. 2,16,8,8")
    parser.add_argument("--seed", type=seed, default=0,
                        help=f"seed of the random inputs, 0 to {MAX_SEED} (default: 0)")


def parse_call_args(tokens: Sequence[str]) -> Tuple[list, dict]:
    """'16 32 stride=2' or '16, 32, stride=2' -> ([16, 32], {'stride': 2}).

    Values are Python literals; a bare word (shortcut=B) is taken as a string."""
    text = ", ".join(t.strip().strip(",") for t in tokens if t.strip().strip(","))
    if not text:
        return [], {}
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise CommandError(f"cannot read --args {text!r}: write e.g. --args 16 32 stride=2",
                           EXIT_USAGE) from None

    def value(node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            if isinstance(node, ast.Name):
                return node.id
            raise CommandError(f"--args: {ast.unparse(node)!r} is not a literal value",
                               EXIT_USAGE) from None

    return [value(a) for a in call.args], {k.arg: value(k.value) for k in call.keywords}


def input_shape(text: str) -> Tuple[int, ...]:
    """The ``--input-shape`` (any rank: ``validate`` checks it against the block's layers)."""
    try:
        return parse_shape(text)
    except ValueError:
        raise CommandError(f"--input-shape must be integers like 2,16,8,8; got {text!r}",
                           EXIT_USAGE) from None


class _NextToFile(importlib.abc.MetaPathFinder):
    """Finds top-level modules in one folder: the student's file can import its
    neighbours (``from helpers import BN``), as it could when run as a script, without
    adding the folder to ``sys.path``. Consulted after every other finder."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def find_spec(self, name, path=None, target=None):
        if path is not None:  # a submodule: its package knows where it lives
            return None
        return importlib.machinery.PathFinder.find_spec(name, [self.folder])


@contextlib.contextmanager
def _imports_next_to(folder: Path) -> Iterator[None]:
    finder = _NextToFile(folder)
    sys.meta_path.append(finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _split(target: str) -> Tuple[str, str, bool]:
    """(file or module, class name or '', is a file)."""
    where, _, name = target.rpartition(":")
    if not where or "/" in name or "\\" in name or name.endswith(".py"):
        where, name = target, ""  # no class name (a colon in a Windows path is not one)
    is_file = where.endswith(".py") or "/" in where or "\\" in where or Path(where).is_file()
    return where, name, is_file


@contextlib.contextmanager
def _no_exit(doing: str) -> Iterator[None]:
    """The user's code may call ``sys.exit()`` (a script's habit): that ends its part, not
    the check, and is reported like any other error of the user's code (exit 2)."""
    try:
        yield
    except SystemExit as exc:
        raise CommandError(f"{doing} called sys.exit({exc.code!r}); a block file must not "
                           f"exit (put script code under if __name__ == '__main__':)",
                           EXIT_USAGE) from None


def _load_module(where: str, path: Optional[Path]) -> ModuleType:
    """Import the block's file (``path``) or module; its errors are the user's, exit 2."""
    try:
        if path is None:
            return call_user(pkgutil.resolve_name, where)
        spec = importlib.util.spec_from_file_location(f"_checked_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        with _imports_next_to(path.parent):
            call_user(spec.loader.exec_module, module)
        return module
    except UserCodeError as err:
        raise CommandError(f"cannot import {where}: {type(err.original).__name__}: "
                           f"{first_line(err.original)}", EXIT_USAGE) from None


def _module_classes(module: ModuleType, own: bool) -> List[type]:
    return [v for v in vars(module).values() if isinstance(v, type) and
            issubclass(v, nn.Module) and (not own or v.__module__ == module.__name__)]


def load_class(target: str) -> type:
    """'path/to/file.py:ClassName', 'file.py' (its only block) or 'package.module:ClassName'."""
    where, name, is_file = _split(target)
    if Path(where).is_dir():
        raise CommandError(f"{where!r} is a folder; give a Python file and the class in it, "
                           f"as FILE.py:ClassName", EXIT_USAGE)
    path = input_file(where, suffixes=(".py",), what="block file").resolve() \
        if is_file else None  # checked before any work
    with _no_exit(f"importing {where}"), quiet():
        module = _load_module(where, path)
    if not name:
        blocks = _module_classes(module, own=True)
        if len(blocks) != 1:
            names = ", ".join(b.__name__ for b in blocks) or "none"
            raise CommandError(f"name the class to check as FILE.py:ClassName "
                               f"(nn.Module classes in {where}: {names})", EXIT_USAGE)
        return blocks[0]
    cls = functools.reduce(lambda obj, attr: getattr(obj, attr, None), name.split("."), module)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        names = ", ".join(sorted(c.__name__ for c in _module_classes(module, own=False)))
        raise CommandError(f"{where} has no nn.Module class named {name!r} "
                           f"(found: {names or 'none'})", EXIT_USAGE)
    return cls


def _build(cls: type, args: list, kwargs: dict) -> nn.Module:
    try:
        with _no_exit(f"building {cls.__name__}"), quiet():
            return call_user(cls, *args, **kwargs)
    except UserCodeError as err:
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        raise CommandError(f"{cls.__name__}({shown}) failed: {type(err.original).__name__}: "
                           f"{first_line(err.original)}", EXIT_USAGE) from None


def run(args: argparse.Namespace) -> int:
    shape = input_shape(args.input_shape)
    check_input_values(shape, "--input-shape")
    call_args, call_kwargs = parse_call_args(args.args)
    block = _build(load_class(args.target), call_args, call_kwargs)
    try:
        validate(block, shape)
    except ValueError as exc:  # our own check of the shape against the block's layers
        raise CommandError(str(exc), EXIT_USAGE) from None
    with _no_exit(f"running {type(block).__name__}"):
        report = check_block(block, shape, seed=args.seed)
    print(report)
    return EXIT_OK if report.ok else EXIT_FINDINGS
