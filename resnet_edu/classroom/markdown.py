"""A markdown cell as the export and the master read it: its top-level MyST directives and
the plain runs between them.

The parsing is the book's own (:func:`resnet_edu.conventions.directives`, markdown-it-py as
MyST runs it); this module only cuts a cell along its top-level directives, drops the
``{solution}`` directives nested in another one and reads the ``:label:`` of ``{exercise}``
directives. A fence that is not a directive (a code listing) is plain text here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional

from .. import conventions
from ..conventions import EXERCISE_DIRECTIVES, Directive


@dataclass
class Block:
    """A top-level piece of a markdown cell: plain lines, or one directive fence."""

    lines: List[str]
    directive: str = ""      # "exercise", "solution", "solution-start", ... ("" if none)
    argument: str = ""       # what follows the directive name on the opening line
    node: Optional[Directive] = None   # the directive itself (for conventions.ExerciseWalk)


def blocks(text: str) -> List[Block]:
    """Split markdown into plain runs and its top-level directives (an unclosed fence runs
    to the end of the text, as in CommonMark): all their lines, in order, are ``text``'s."""
    lines = text.split("\n")
    found: List[Block] = []
    at = 0
    for d in conventions.directives(text):
        if d.depth == 0:
            if d.start > at:
                found.append(Block(lines[at:d.start]))
            found.append(Block(lines[d.start:d.end], d.name, d.argument, d))
            at = d.end
    if at < len(lines):
        found.append(Block(lines[at:]))
    return found


def join(blocks: Iterable[Block]) -> str:
    text = "\n".join("\n".join(b.lines) for b in blocks)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def without_solution_blocks(block: Block) -> Block:
    """Remove the ``{solution}`` directives nested inside a directive's content."""
    if not block.directive:
        return block
    text, _ = conventions.without_directives("\n".join(block.lines), ["solution"],
                                             min_depth=1)
    return Block(text.split("\n"), block.directive, block.argument)


def exercise_labels(markdown: str) -> List[str]:
    """The ``:label:`` of every top-level ``{exercise}`` (or ``{exercise-start}``)
    directive in a markdown text, in order."""
    return [d.label for d in conventions.directives(markdown)
            if d.depth == 0 and d.name in EXERCISE_DIRECTIVES and d.label]
