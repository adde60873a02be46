"""MyST markdown as the book writes it: top-level fenced blocks and their directives.

Only what the export and the master need: split a markdown cell into plain runs and fenced
blocks (CommonMark's closing rule), drop ``{solution}`` blocks nested in another directive,
and read the ``:label:`` of ``{exercise}`` directives.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List

FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*)$")
LABEL_OPTION = re.compile(r"^\s*:label:\s*(\S+)\s*$", re.M)
CHECK_CALL = re.compile(r"""\bcheck\(\s*(['"])(?P<id>[\w.-]+)\1""")


@dataclass
class Block:
    """A top-level piece of a markdown cell: plain lines, or one fenced block."""

    lines: List[str]
    directive: str = ""      # "exercise", "solution", "solution-start", ... ("" if none)
    argument: str = ""       # what follows the directive name on the opening line
    fenced: bool = False

    @property
    def inner(self) -> List[str]:
        """The lines between the opening and the closing fence."""
        return self.lines[1:-1] if len(self.lines) >= 2 else []


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (len(line) - len(line.lstrip(" ")) <= 3 and len(stripped) >= len(fence)
            and set(stripped) == {fence[0]})


def blocks(text: str) -> List[Block]:
    """Split markdown into plain runs and top-level fenced blocks (CommonMark closing rule).

    An unclosed fence runs to the end of the text, as in CommonMark.
    """
    lines = text.split("\n")
    blocks: List[Block] = []
    plain: List[str] = []
    i = 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if m and not (m.group("fence")[0] == "`" and "`" in m.group("info")):
            fence = m.group("fence")
            j = i + 1
            while j < len(lines) and not _closes(lines[j], fence):
                j += 1
            if plain:
                blocks.append(Block(plain))
                plain = []
            d = DIRECTIVE.match(m.group("info").strip())
            blocks.append(Block(lines[i:j + 1], d.group("name") if d else "",
                                 d.group("arg").strip() if d else "", fenced=True))
            i = j + 1
        else:
            plain.append(lines[i])
            i += 1
    if plain:
        blocks.append(Block(plain))
    return blocks


def join(blocks: Iterable[Block]) -> str:
    text = "\n".join("\n".join(b.lines) for b in blocks)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def without_solution_blocks(block: Block) -> Block:
    """Remove ``{solution}`` directives nested inside another directive's content."""
    if not (block.fenced and block.directive) or len(block.lines) < 2:
        return block
    inner = [b for b in blocks("\n".join(block.inner)) if b.directive != "solution"]
    inner = [without_solution_blocks(b) for b in inner]
    lines = [block.lines[0]] + ("\n".join("\n".join(b.lines) for b in inner)).split("\n") \
        + [block.lines[-1]]
    return Block(lines, block.directive, block.argument, True)


def exercise_labels(markdown: str) -> List[str]:
    """The ``:label:`` of every ``{exercise}`` directive in a markdown text."""
    labels = []
    for block in blocks(markdown):
        if block.directive in ("exercise", "exercise-start"):
            m = LABEL_OPTION.search("\n".join(block.inner))
            if m:
                labels.append(m.group(1))
    return labels

