"""What an answer's dotted names really reach, found in the grader without running the answer.

The static rules (``rules.py``) read names: ``import torch`` is allowed, ``import os`` is
not. But ``torch.os`` *is* the module ``os`` (``torch/__init__.py`` imports it), and
``typing.sys.modules`` holds every module the process has loaded, ``resnet_edu``'s blocks
included. So every attribute chain of an answer that starts at a module (``torch.os.system``,
``from torch import os``) is followed here through the grader's own, real modules, one
attribute at a time, and judged by what it reaches:

- a module outside the allow-list (or inside the denied list) ends the chain with a
  problem: the answer left the libraries it may use;
- a function or class defined in such a module, or one of the denied objects
  (``torch.load`` under another name), is a problem too;
- an object that the exercise forbids (``torch.conv2d`` *is* ``F.conv2d``; a block of
  ``resnet_edu``) breaks the exercise's rule, quoted.

Only module attributes are followed (what ``getattr`` on a module returns is the
library's, not the student's); a chain through a call, a subscript or a local variable is
not, and the sandbox and the grader's own tests bound what those can do.
"""
from __future__ import annotations

import importlib
import types
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

_MISSING = object()


def _under(name: str, prefixes: Sequence[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _allowed_module(name: str, allowed, denied) -> bool:
    name = name.lstrip("_")                  # C accelerators: _functools for functools
    return _under(name, allowed) and not _under(name, denied)


def _step(obj, part: str, load: bool):
    """``obj.part`` for a module (with ``load``, a submodule not imported yet is imported)."""
    value = getattr(obj, part, _MISSING)
    if value is _MISSING and load and isinstance(obj, types.ModuleType):
        try:
            value = importlib.import_module(f"{obj.__name__}.{part}")
        except Exception:  # noqa: BLE001 - any failure to import: the chain leads nowhere
            value = _MISSING
    return value


def walk(dotted: str, allowed, load: bool = True) -> Iterator[Tuple[str, object]]:
    """(prefix, object) for each step of ``dotted`` that starts at an allowed module and
    goes through modules; stops at the first object that is not a module."""
    parts = dotted.split(".")
    if not parts or not _under(parts[0], allowed):
        return
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:  # not importable here: nothing to follow
        return
    yield parts[0], obj
    for i, part in enumerate(parts[1:], start=2):
        if not isinstance(obj, types.ModuleType):
            return
        obj = _step(obj, part, load)
        if obj is _MISSING:
            return
        yield ".".join(parts[:i]), obj


def home(obj) -> Optional[str]:
    """The module a module, function or class belongs to ("" for other objects)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if isinstance(obj, type) or callable(obj):
        module = getattr(obj, "__module__", None)
        return module if isinstance(module, str) else ""
    return ""


def reach_problems(dotted: str, allowed, denied, denied_objects: Sequence[int]) -> List[str]:
    """Problems of the house policy with where ``dotted`` leads (see the docstring)."""
    for prefix, obj in walk(dotted, allowed):
        where = home(obj)
        if isinstance(obj, types.ModuleType) and not _allowed_module(where, allowed, denied):
            return [f"`{prefix}` is the module `{where}`, which an answer may not use (use "
                    "torch, math, numpy and the chapter's own modules)"]
        if where and where != "builtins" and not _allowed_module(where, allowed, denied):
            return [f"`{prefix}` comes from the module `{where}`, which an answer may not use"]
        if id(obj) in denied_objects:
            return [f"`{prefix}` is not allowed in an answer"]
    return []


def forbidden_hits(dotted: str, allowed, is_forbidden: Callable[[str, object], str]
                   ) -> List[str]:
    """The dotted names of the exercise's forbidden objects that ``dotted`` reaches."""
    hits = []
    for prefix, obj in walk(dotted, allowed):
        name = is_forbidden(prefix, obj)
        if name:
            hits.append(name)
    return hits[:1]
