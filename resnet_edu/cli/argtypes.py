"""argparse ``type=`` functions shared by the commands: a bad value is a usage error (exit 2).

Every number a user types is bounded here, before any work, by what the code behind it
supports: a seed must fit the generators (0 .. 2**32 - 1, NumPy's limit and a safe one for
``torch.manual_seed``), a timeout the event loop of the grader (a day at most). An
unbounded value would otherwise surface later as an ``OverflowError`` deep in a library.
"""
from __future__ import annotations

import argparse
import math
import re
from typing import Callable, Sequence, Tuple, TypeVar

from .errors import EXIT_USAGE, CommandError

Number = TypeVar("Number", int, float)

MAX_SEED = 2 ** 32 - 1        # numpy.random.seed's limit; torch accepts it too
MAX_INPUT_VALUES = 2 ** 24   # values in one input tensor (64 MiB of float32): an image batch
                              # that big already needs gigabytes of activations
MAX_CLASSES = 100_000         # outputs of a classifier (ImageNet-21k has about 21,800)
MAX_TIMEOUT_S = 24 * 3600.0   # one day: far beyond any exercise, far below the event loop's
                              # overflow (poll timeouts in milliseconds must fit 32 bits)


def _number(text: str, convert: Callable[[str], Number], allowed: Callable[[Number], bool],
            what: str) -> Number:
    """``convert(text)`` when that works and ``allowed`` accepts it; else a usage error that
    says ``what`` was expected."""
    try:
        value = convert(text)
    except (ValueError, OverflowError):
        value = math.nan
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def int_at_most(limit: int, what: str = "a positive integer") -> Callable[[str], int]:
    """A positive integer up to ``limit``; the message names the limit."""
    def convert(text: str) -> int:
        return _number(text, int, lambda v: 1 <= v <= limit, f"{what} from 1 to {limit:,}")
    convert.__name__ = "int_at_most"
    return convert


def seed(text: str) -> int:
    """A seed for torch, NumPy and Python's ``random``: an integer in 0 .. 2**32 - 1."""
    return _number(text, int, lambda v: 0 <= v <= MAX_SEED,
                   f"a seed from 0 to {MAX_SEED} (2**32 - 1)")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def timeout_seconds(text: str) -> float:
    """A positive number of seconds up to :data:`MAX_TIMEOUT_S` (one day)."""
    return _number(text, float, lambda v: math.isfinite(v) and 0 < v <= MAX_TIMEOUT_S,
                   f"a number of seconds above 0 and at most {MAX_TIMEOUT_S:.0f} (one day)")


def check_input_values(shape: Sequence[int], option: str) -> None:
    """Refuse an input ``shape`` with more than :data:`MAX_INPUT_VALUES` values (a usage
    error that names ``option``), before a tensor of that size is ever allocated."""
    values = math.prod(shape)
    if values > MAX_INPUT_VALUES:
        raise CommandError(f"{option} {','.join(map(str, shape))} has {values:,} values; at "
                           f"most {MAX_INPUT_VALUES:,} (64 MiB as float32) are supported: use "
                           f"a smaller batch or image", EXIT_USAGE)


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def parse_shape(text: str) -> Tuple[int, ...]:
    """``'2,16,8,8'``, ``'2x16x8x8'`` or ``'(2, 16, 8, 8)'`` -> ``(2, 16, 8, 8)``: the one
    grammar of a tensor shape on the command line; a ``ValueError`` if a part is not an
    integer or there is none (what a shape must be besides is the caller's to say)."""
    parts = [p for p in re.split(r"[,x\s]+", text.strip().strip("()[]")) if p]
    if not parts:
        raise ValueError(f"no shape in {text!r}")
    return tuple(int(p) for p in parts)


def image_batch_shape(text: str) -> Tuple[int, ...]:
    """An N,C,H,W shape (:func:`parse_shape`'s grammar): four positive integers."""
    try:
        size = parse_shape(text)
    except ValueError:
        size = ()
    if len(size) != 4 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"expected four integers N,C,H,W (all positive), "
                                         f"got {text!r}")
    return size
