"""argparse ``type=`` functions shared by the commands: a bad value is a usage error (exit 2)."""
from __future__ import annotations

import argparse
import math
from typing import Callable, TypeVar

Number = TypeVar("Number", int, float)


def _number(text: str, convert: Callable[[str], Number], allowed: Callable[[Number], bool],
            what: str) -> Number:
    """``convert(text)`` when that works and ``allowed`` accepts it; else a usage error that
    says ``what`` was expected."""
    try:
        value = convert(text)
    except ValueError:
        value = math.nan
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")
