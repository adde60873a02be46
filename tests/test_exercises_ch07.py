"""The check of chapter 7's coding exercise (ch07-bottleneck-block): the book's solution (its
notebook's `solution` cell) passes, typical mistakes fail with a helpful message, and an
unsolved stub reads "not solved yet".

Each wrong answer is the book's own ``MyBottleneck`` with one mistake (``with_mistake``).
"""
from __future__ import annotations

import pytest
from torch import nn

from resnet_edu.exercises import check

EXERCISE = "ch07-bottleneck-block"


@pytest.fixture
def solution(book_solution):
    return book_solution("07_bottleneck.ipynb", "MyBottleneck")


# ---------------------------------------------------------------- ch07-bottleneck-block
def _mistake(forward=None, **init_changes):
    """A mixin for the book's class: its own ``forward``, and layers replaced after the
    book's ``__init__`` (``name=make(in_channels, width, stride)``)."""
    class Mistake:
        def __init__(self, in_channels, width, stride=1):
            super().__init__(in_channels, width, stride)
            for name, make in init_changes.items():
                setattr(self, name, make(in_channels, width, stride))

    if forward is not None:
        Mistake.forward = forward
    return Mistake


def _no_final_relu(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.bn3(self.conv3(out)) + self.downsample(x)


def _relu_before_add(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out))) + self.downsample(x)


def _no_shortcut(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out)))


def _bn2_twice(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.bn2(self.conv2(out))))
    return self.relu(self.bn3(self.conv3(out)) + self.downsample(x))


StrideOn1x1 = _mistake(
    conv1=lambda c, w, s: nn.Conv2d(c, w, 1, stride=s, bias=False),
    conv2=lambda c, w, s: nn.Conv2d(w, w, 3, padding=1, bias=False))
WithBias = _mistake(conv1=lambda c, w, s: nn.Conv2d(c, w, 1))
AlwaysIdentity = _mistake(downsample=lambda c, w, s: nn.Identity())
AlwaysProjection = _mistake(downsample=lambda c, w, s: nn.Sequential(
    nn.Conv2d(c, 4 * w, 1, stride=s, bias=False), nn.BatchNorm2d(4 * w)))
Expansion2 = _mistake(conv3=lambda c, w, s: nn.Conv2d(w, 2 * w, 1, bias=False))
NoPadding = _mistake(conv2=lambda c, w, s: nn.Conv2d(w, w, 3, stride=s, bias=False))


def test_bottleneck_solution_passes(solution):
    feedback = check(EXERCISE, solution)
    assert feedback.passed, feedback


@pytest.mark.parametrize("mistake, phrases", [
    (StrideOn1x1, ["first 1x1", "v1.5"]),
    (_mistake(_no_final_relu), ["no relu after the addition"]),
    (_mistake(_relu_before_add), ["before the addition"]),
    (_mistake(_no_shortcut), ["ignores the shortcut"]),
    (_mistake(_bn2_twice), ["bn2.running_mean", "exactly once"]),
    (WithBias, ["bias=false"]),
    (AlwaysIdentity, ["projection"]),
    (AlwaysProjection, ["nn.identity"]),
    (Expansion2, ["conv3", "4 * width"]),
    (NoPadding, ["padding 1"]),
])
def test_bottleneck_mistakes_are_explained(solution, with_mistake, assert_fails, mistake,
                                           phrases):
    assert_fails(check(EXERCISE, with_mistake(solution, mistake)), *phrases)


def test_bottleneck_stub_is_not_solved_yet(stub_class):
    feedback = check(EXERCISE, stub_class())
    assert not feedback.passed and not feedback.solved


def test_bottleneck_check_keeps_the_global_random_stream(assert_keeps_random_stream,
                                                         solution):
    assert_keeps_random_stream(EXERCISE, solution)
