"""Small helpers for writing the report's sentences."""
from __future__ import annotations

from typing import Sequence


def join(names: Sequence[str], limit: int = 8) -> str:
    """'a', 'a and b', 'a, b and c'; long lists end with 'and N more'."""
    names = list(dict.fromkeys(names))
    if len(names) > limit:
        shown, rest = names[:limit - 1], len(names) - (limit - 1)
        return ", ".join(shown) + f" and {rest} more"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def plural(count: int, one: str, many: str) -> str:
    """``one`` for a single thing, ``many`` otherwise: plural(2, "is", "are") == "are"."""
    return one if count == 1 else many
