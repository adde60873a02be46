"""The check of chapter 6's coding exercise (ch06-shortcut-a): the book's solution (its
notebook's `solution` cell) passes, typical mistakes fail with a helpful message, and an
unsolved stub reads "not solved yet"."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from resnet_edu.blocks import make_shortcut
from resnet_edu.exercises import check

EXERCISE = "ch06-shortcut-a"


# ---------------------------------------------------------------- ch06-shortcut-a
def zeros_first(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, out_channels - x.shape[1], 0))


def zeros_both_ends(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


def averaged(x, out_channels, stride):
    x = F.avg_pool2d(x, stride) if stride > 1 else x
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def offset_one(x, out_channels, stride):
    start = 1 if stride > 1 else 0
    x = x[:, :, start::stride, start::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def not_subsampled(x, out_channels, stride):
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def floor_size(x, out_channels, stride):             # crops an odd last row away
    h, w = x.shape[2] // stride * stride, x.shape[3] // stride * stride
    x = x[:, :, :h:stride, :w:stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def max_pooled(x, out_channels, stride):
    x = F.max_pool2d(x, stride) if stride > 1 else x
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def ones_padding(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]), value=1.0)


def detached(x, out_channels, stride):
    out = x.new_zeros(x.shape[0], out_channels, *x[:, :, ::stride, ::stride].shape[2:])
    out[:, :x.shape[1]] = x.detach()[:, :, ::stride, ::stride]
    return out


def in_place(x, out_channels, stride):              # right values (the package's option A)
    with torch.no_grad():
        x.mul_(1.0)
        x[0, 0, 0, 0] += 1.0
    return make_shortcut("A", x.shape[1], out_channels, stride)(x)


def test_shortcut_a_solution_passes(book_solution):
    feedback = check(EXERCISE, book_solution("06_shortcuts.ipynb", "shortcut_a"))
    assert feedback.passed, feedback
    assert str(feedback).startswith(f"✓ {EXERCISE}")


@pytest.mark.parametrize("wrong, phrases", [
    (zeros_first, ["zero channels come first"]),
    (zeros_both_ends, ["both ends"]),
    (averaged, ["averaged"]),
    (offset_one, ["start at 0"]),
    (not_subsampled, ["subsample", "still"]),
    (floor_size, ["round up"]),
    (max_pooled, ["maximum"]),
    (ones_padding, ["not all zero"]),
    (detached, ["gradient"]),
    (in_place, ["in place"]),
])
def test_shortcut_a_mistakes_are_explained(assert_fails, wrong, phrases):
    assert_fails(check(EXERCISE, wrong), *phrases)


def test_shortcut_a_stub_is_not_solved_yet(stub):
    feedback = check(EXERCISE, stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in str(feedback)
