"""The checks of chapter 10's coding exercises (ch10-relu-only-preact, ch10-preact-block).

The book's own solution cells pass; realistic wrong answers fail with a message that names
the mistake; the unsolved stub reads "not solved yet". Most wrong answers of
ch10-preact-block are the book's own class with one mistake (``with_mistake``): each mixin
below replaces a method of the book's ``PreActResidualBlock``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_edu.blocks import BasicBlock, PreActBlock, ResidualBlock, conv3x3, make_shortcut
from resnet_edu.exercises import check

NOTEBOOK = "10_identity_mappings.ipynb"
EXERCISE = "ch10-relu-only-preact"
PREACT_BLOCK = "ch10-preact-block"


@pytest.fixture
def solution(book_solution):
    return book_solution(NOTEBOOK, "ReLUOnlyPreActBlock", exercise=EXERCISE)


@pytest.fixture
def preact_solution(book_solution):
    return book_solution(NOTEBOOK, "PreActResidualBlock", exercise=PREACT_BLOCK)


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


# ---------------------------------------------------------------- ch10-preact-block
class FinalRelu:
    def forward(self, x):
        return torch.relu(super().forward(x))


class PostActivationOrder:
    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out)) + x


class SkipFromPreactivated:
    def forward(self, x):
        pre = torch.relu(self.bn1(x))
        return self.conv2(torch.relu(self.bn2(self.conv1(pre)))) + pre


class MissingSecondRelu:
    def forward(self, x):
        return self.conv2(self.bn2(self.conv1(torch.relu(self.bn1(x))))) + x


class NoSkip:
    def forward(self, x):
        return self.conv2(torch.relu(self.bn2(self.conv1(torch.relu(self.bn1(x))))))


class OriginalPostBug:  # every layer applied to x, as in the post
    def forward(self, x):
        out = self.bn1(x)
        out = torch.relu(x)
        out = self.conv1(x)
        out = self.bn2(x)
        out = self.conv2(x)
        return out + x


class WithBias:
    def __init__(self, channels):
        super().__init__(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)


class SharedBatchNorm:   # bn1 used twice (same channel count fits)
    def forward(self, x):
        out = self.conv1(torch.relu(self.bn1(x)))
        return x + self.conv2(torch.relu(self.bn1(out)))


class OtherNames(nn.Module):      # a whole answer of its own: right, but unchecked names
    def __init__(self, channels):
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False))

    def forward(self, x):
        return x + self.branch(x)


def test_preact_block_solution_passes(preact_solution):
    feedback = check(PREACT_BLOCK, preact_solution)
    assert feedback.passed, feedback.message


def test_preact_block_accepts_the_package_block():
    feedback = check(PREACT_BLOCK, lambda c: PreActBlock(c, c))
    assert feedback.passed, feedback.message


def test_preact_block_rejects_the_post_activation_basic_block():
    feedback = check(PREACT_BLOCK, lambda c: BasicBlock(c, c))
    assert not feedback.passed and "post-activation block (BasicBlock)" in feedback.message


@pytest.mark.parametrize("mistake, words", [
    (FinalRelu, "ReLU after the addition"),
    (PostActivationOrder, "post-activation"),
    (SkipFromPreactivated, "carries relu(bn1(x))"),
    (MissingSecondRelu, "between bn2 and conv2"),
    (NoSkip, "skip connection"),
    (OriginalPostBug, "gradient"),
    (WithBias, "bias=False"),
    (SharedBatchNorm, "bn1"),
])
def test_preact_block_mistakes_are_explained(preact_solution, with_mistake, assert_fails,
                                             mistake, words):
    assert_fails(check(PREACT_BLOCK, with_mistake(preact_solution, mistake)), words)


def test_preact_block_other_layer_names_are_named(assert_fails):
    assert_fails(check(PREACT_BLOCK, OtherNames), "bn1, conv1, bn2, conv2")


def test_preact_block_stub_is_not_solved_yet(stub_class):
    feedback = check(PREACT_BLOCK, stub_class())
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


def test_preact_block_not_a_module():
    feedback = check(PREACT_BLOCK, lambda c: (lambda x: x))
    assert not feedback.passed and "nn.Module" in feedback.message


def test_preact_block_check_leaves_the_global_rng_alone(assert_keeps_random_stream,
                                                        preact_solution):
    assert_keeps_random_stream(PREACT_BLOCK, preact_solution)
