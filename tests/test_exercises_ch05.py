"""The checks of chapter 5's coding exercises (they reuse check_block).

The book's solutions (read from the notebook's `solution` cells) pass; realistic wrong answers
fail with a message that names the mistake; unsolved stubs read "not solved yet".
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_edu.blocks import conv3x3
from resnet_edu.exercises import check
from resnet_edu.original import ResidualBlockListing1, ResidualBlockListing2


@pytest.fixture
def ch05_solution(book_solution):
    """The chapter's own solution cells, executed (the conftest helper)."""
    return lambda name: book_solution("05_original_post_debugged.ipynb", name)


# ----------------------------------------------------------------------------- ch05-fix-the-post
class NoProjection(nn.Module):
    """Right data flow, but x is added even when the shape changes."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2, self.bn2 = conv3x3(out_channels, out_channels), nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + x)


class MissingMiddleReLU(NoProjection):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride,
                                                    bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.bn1(self.conv1(x))                      # the ReLU is missing
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class PostFixedWithoutStride(ResidualBlockListing2):
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


def test_fix_the_post_book_solution_passes(ch05_solution):
    feedback = check("ch05-fix-the-post", ch05_solution("FixedResidualBlock"))
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong,words", [
    (ResidualBlockListing2, "relu(x)"),
    (PostFixedWithoutStride, "stride"),
    (NoProjection, "shortcut"),
    (MissingMiddleReLU, "does not compute"),
])
def test_fix_the_post_wrong_answers_fail_helpfully(assert_fails, wrong, words):
    assert_fails(check("ch05-fix-the-post", wrong), words)


def test_fix_the_post_names_missing_layers():
    class Renamed(NoProjection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.norm1 = self.bn1
            del self.bn1

    feedback = check("ch05-fix-the-post", Renamed)
    assert not feedback.passed and "bn1" in feedback.message


# ----------------------------------------------------------------------------- ch05-gradient-test
def checks_zero_instead_of_none(block, input_shape):   # the classic mistake: zero, not None
    block(torch.randn(input_shape, requires_grad=True)).sum().backward()
    bad = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.any()]
    assert not bad, f"no learning: {bad}"


def no_requires_grad(block, input_shape):        # backward() raises on the post's blocks
    block(torch.randn(input_shape)).sum().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None]
    assert not missing, ", ".join(missing)


def names_only_the_first(block, input_shape):
    block(torch.randn(input_shape, requires_grad=True)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None, name


def never_fails(block, input_shape):
    block(torch.randn(input_shape))


def test_gradient_test_book_solution_passes(ch05_solution):
    feedback = check("ch05-gradient-test", ch05_solution("assert_all_parameters_learn"))
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong,words", [
    (checks_zero_instead_of_none, "is None"),
    (no_requires_grad, "requires_grad=True"),
    (names_only_the_first, "does not name"),
    (never_fails, "does not fail"),
])
def test_gradient_test_wrong_answers_fail_helpfully(assert_fails, wrong, words):
    assert_fails(check("ch05-gradient-test", wrong), words)


def test_the_gradient_check_really_fails_on_the_listings(ch05_solution):
    """The check's premise, independently: the listings have no gradients at all."""
    for cls in (ResidualBlockListing1, ResidualBlockListing2):
        with pytest.raises(AssertionError):
            ch05_solution("assert_all_parameters_learn")(cls(4, 4), (2, 4, 5, 5))


# ----------------------------------------------------------------------------- ch05-find-the-bug
class Buggy(nn.Module):
    """The exercise's block (as printed in the chapter)."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        self.relu(out)
        out = self.bn1(self.conv2(out))
        x += out
        return self.relu(x)


class OneBugLeft(Buggy):
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn1(self.conv2(out))            # still bn1
        return self.relu(out + x)


class NoFinalReLU(Buggy):
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out)) + x


class ExtraBias(Buggy):
    def __init__(self, channels):
        super().__init__(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


def test_find_the_bug_book_solution_passes(ch05_solution):
    feedback = check("ch05-find-the-bug", ch05_solution("DebuggedBlock"))
    assert feedback.passed, feedback.message


@pytest.mark.parametrize("wrong,words", [
    (Buggy, "not yet"),
    (OneBugLeft, "bn2 is created in __init__ but never called"),
    (NoFinalReLU, "something else"),
    (ExtraBias, "bias=False"),
])
def test_find_the_bug_wrong_answers_fail_helpfully(assert_fails, wrong, words):
    assert_fails(check("ch05-find-the-bug", wrong), words)


# ----------------------------------------------------------------------------- stubs
class StubForward(nn.Module):                  # the layers written, the forward not yet
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(8, 8), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = conv3x3(8, 8), nn.BatchNorm2d(8)

    def forward(self, x):
        raise NotImplementedError("write your solution here")


@pytest.mark.parametrize("exercise,unsolved", [
    ("ch05-fix-the-post", "class"), ("ch05-fix-the-post", "forward"),
    ("ch05-gradient-test", "function"),
    ("ch05-find-the-bug", "class"), ("ch05-find-the-bug", "forward"),
])
def test_stubs_read_not_solved_yet(exercise, unsolved, stub, stub_class):
    feedback = check(exercise, {"class": stub_class(), "forward": StubForward,
                                "function": stub}[unsolved])
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message
