"""The check of chapter 12's coding exercise (a block's training FLOPs): the book's own solution
passes, realistic wrong counts fail with a message that names the mistake, a stub reads
"not solved yet"."""
from __future__ import annotations

import pytest

from resnet_edu.exercises import check

EXERCISE = "ch12-block-flops"


@pytest.fixture
def solution(book_solution):                          # the book's solution cell, executed
    return book_solution("12_training_fast.ipynb", "block_training_flops", exercise=EXERCISE)


def _convs(cin, cout, stride, n, h, w):
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    return 2 * n * ho * wo * cout * 9 * (cin + cout), 2 * n * ho * wo * cout * cin


def forward_only(cin, cout, stride, n, h, w):
    convs, proj = _convs(cin, cout, stride, n, h, w)
    return convs + (proj if stride != 1 or cin != cout else 0)


def macs(cin, cout, stride, n, h, w):
    return 3 * forward_only(cin, cout, stride, n, h, w) // 2


def no_projection(cin, cout, stride, n, h, w):
    return 3 * _convs(cin, cout, stride, n, h, w)[0]


def rounded_down(cin, cout, stride, n, h, w):
    ho, wo = h // stride, w // stride
    proj = cin if stride != 1 or cin != cout else 0
    return 3 * 2 * n * ho * wo * cout * (9 * (cin + cout) + proj)


def test_book_solution_passes(solution):
    feedback = check(EXERCISE, solution)
    assert feedback.passed, feedback.message


def test_solution_matches_flop_counter_on_a_new_shape(solution):
    from resnet_edu.exercises.ch12 import measured_flops
    assert solution(32, 64, 2, 5, 9, 11) == measured_flops(32, 64, 2, 5, 9, 11)


@pytest.mark.parametrize("wrong, words", [
    (forward_only, "forward pass only"),
    (macs, "multiply-adds"),
    (no_projection, "projection"),
    (rounded_down, "rounded down"),
    (lambda *case: 2 * forward_only(*case), "backward pass counts once"),
    (lambda *case: 3 * forward_only(*case) + 1, "differs from what flop_counter counts"),
    (lambda *case: "many", "return a number"),
])
def test_wrong_counts_fail_with_the_reason(wrong, words):
    feedback = check(EXERCISE, wrong)
    assert not feedback.passed
    assert words in feedback.message, feedback.message


def test_stub_reads_not_solved_yet(stub):
    feedback = check(EXERCISE, stub)
    assert not feedback.passed and not feedback.solved
