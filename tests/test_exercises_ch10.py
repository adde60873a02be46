"""The check of chapter 10's coding exercise (ch10-relu-only-preact).

The book's own solution cell passes; realistic wrong answers fail with a message that names
the mistake; the unsolved stub reads "not solved yet".
"""
from __future__ import annotations

import pytest
from torch import nn

from resnet_edu.blocks import BasicBlock, PreActBlock, ResidualBlock, conv3x3, make_shortcut
from resnet_edu.exercises import check

NOTEBOOK = "10_identity_mappings.ipynb"
EXERCISE = "ch10-relu-only-preact"


@pytest.fixture
def solution(book_solution):
    return book_solution(NOTEBOOK, "ReLUOnlyPreActBlock", exercise=EXERCISE)


def test_the_books_solution_passes(solution):
    feedback = check(EXERCISE, solution)
    assert feedback.passed, feedback.message


def _variant(forward_fn, last="bn2", protocol=True):
    """A block with the exercise's layers and a given forward (a realistic mistake)."""
    base = ResidualBlock if protocol else nn.Module

    class Wrong(base):
        expansion = 1

        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.relu = nn.ReLU()
            self.conv1 = conv3x3(in_channels, out_channels, stride)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.conv2 = conv3x3(out_channels, out_channels)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.downsample = make_shortcut("A", in_channels, out_channels, stride)

        forward_ = forward_fn

        def forward(self, x):
            return self.forward_(x)

        if protocol:
            @property
            def last_bn(self):
                return getattr(self, last)

    return Wrong


@pytest.mark.parametrize("forward,fragment", [
    # a ReLU after the addition: the original block's habit
    (lambda self, x: self.relu(self.downsample(x) + self.bn2(self.conv2(
        self.relu(self.bn1(self.conv1(self.relu(x))))))), "nothing after the addition"),
    # no ReLU in front: the branch starts with a convolution of x
    (lambda self, x: self.downsample(x) + self.bn2(self.conv2(
        self.relu(self.bn1(self.conv1(x))))), "ReLU first"),
])
def test_a_wrong_order_fails_with_a_hint(forward, fragment):
    feedback = check(EXERCISE, _variant(forward))
    assert not feedback.passed and fragment in feedback.message


def test_zeroing_the_wrong_bn_is_not_the_identity():
    right = (lambda self, x: self.downsample(x) + self.bn2(self.conv2(
        self.relu(self.bn1(self.conv1(self.relu(x)))))))
    feedback = check(EXERCISE, _variant(right, last="bn1"))
    assert not feedback.passed and "not exactly the identity" in feedback.message


def test_a_block_without_the_protocol_is_told_what_it_lacks():
    right = (lambda self, x: self.downsample(x) + self.bn2(self.conv2(
        self.relu(self.bn1(self.conv1(self.relu(x)))))))
    feedback = check(EXERCISE, _variant(right, protocol=False))
    assert not feedback.passed and "last_bn" in feedback.message


@pytest.mark.parametrize("cls", [BasicBlock, PreActBlock])
def test_the_packages_other_blocks_are_not_this_one(cls):
    assert not check(EXERCISE, cls).passed


def test_the_stub_reads_not_solved_yet(stub_class):
    # what the student notebook hands out: the class with its method bodies replaced
    feedback = check(EXERCISE, stub_class(ResidualBlock, expansion=1))
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message
