"""The check of chapter 4's coding exercise (ch04-preact-block): the book's solution (its
notebook's `solution` cell) passes, typical mistakes fail with a helpful message, and an
unsolved stub reads "not solved yet".

Most wrong answers are the book's own class with one mistake (``with_mistake``): each mixin
below replaces a method of the book's ``PreActResidualBlock``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from resnet_edu.exercises import check

EXERCISE = "ch04-preact-block"


@pytest.fixture
def solution(book_solution):
    return book_solution("04_residual_block.ipynb", "PreActResidualBlock")


# ---------------------------------------------------------------- ch04-preact-block
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


def test_preact_block_solution_passes(solution):
    feedback = check(EXERCISE, solution)
    assert feedback.passed, feedback.message


def test_preact_block_accepts_the_package_block():
    from resnet_edu.blocks import PreActBlock

    feedback = check(EXERCISE, lambda c: PreActBlock(c, c))
    assert feedback.passed, feedback.message


def test_preact_block_rejects_the_post_activation_basic_block():
    from resnet_edu.blocks import BasicBlock

    feedback = check(EXERCISE, lambda c: BasicBlock(c, c))
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
def test_preact_block_mistakes_are_explained(solution, with_mistake, assert_fails, mistake,
                                             words):
    assert_fails(check(EXERCISE, with_mistake(solution, mistake)), words)


def test_preact_block_other_layer_names_are_named(assert_fails):
    assert_fails(check(EXERCISE, OtherNames), "bn1, conv1, bn2, conv2")


def test_preact_block_stub_is_not_solved_yet(stub_class):
    feedback = check(EXERCISE, stub_class())
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


def test_preact_block_not_a_module():
    feedback = check(EXERCISE, lambda c: (lambda x: x))
    assert not feedback.passed and "nn.Module" in feedback.message


def test_preact_block_check_leaves_the_global_rng_alone(assert_keeps_random_stream, solution):
    assert_keeps_random_stream(EXERCISE, solution)
