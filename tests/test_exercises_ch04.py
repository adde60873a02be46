"""The check of chapter 4's coding exercise (ch04-stack-jacobian): the book's solution (its
notebook's `solution` cell) passes, typical mistakes fail with the sentence that explains
them, an unsolved stub reads "not solved yet", and the check's reference is autograd's
Jacobian of each whole stack of blocks it draws."""
from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from resnet_edu.exercises import check
from resnet_edu.exercises._kit import generator
from resnet_edu.exercises.ch04 import _CASES, STACK_JACOBIAN, random_stack, stack_reference

EXERCISE = "ch04-stack-jacobian"


@pytest.fixture
def solution(book_solution):
    return book_solution("04_residual_block.ipynb", "stack_jacobian", exercise=EXERCISE)


def test_reference_is_autograds_jacobian_of_the_whole_stack():
    draws, stacks = generator(STACK_JACOBIAN.seed), generator(STACK_JACOBIAN.seed)
    for case in _CASES:                       # the same draws, in the same order, as the check
        J_F, g = STACK_JACOBIAN.make_inputs(case, draws)
        blocks, x = random_stack(case, stacks)
        whole = jacobian(torch.nn.Sequential(*blocks), x).reshape(x.numel(), x.numel())
        assert torch.allclose(stack_reference(J_F, g), whole, rtol=1e-10, atol=1e-12), case
        assert ((g > 0).any(dim=1) & (g <= 0).any(dim=1)).all(), case   # every mask is mixed
        assert not torch.allclose(whole, torch.eye(x.numel(), dtype=whole.dtype)), case


def test_book_solution_passes(solution):
    feedback = check(EXERCISE, solution)
    assert feedback.passed, feedback.message


def _stack(factor, reverse=False):
    """A wrong answer: the product of ``factor(J, mask, I)`` over the blocks."""
    def stack_jacobian(J_F, g):
        eye = torch.eye(g.shape[1], dtype=J_F.dtype)
        total = eye
        for J, s in zip(J_F, g):
            block = factor(J, (s > 0).to(J_F.dtype), eye)
            total = total @ block if reverse else block @ total
        return total
    return stack_jacobian


@pytest.mark.parametrize("wrong, words", [
    (_stack(lambda J, m, eye: m[:, None] * (eye + J), reverse=True), "wrong order"),
    (_stack(lambda J, m, eye: m[:, None] * J), "plain stack"),
    (_stack(lambda J, m, eye: eye + J), "ReLU after each addition is missing"),
    (_stack(lambda J, m, eye: (eye + J) @ torch.diag(m)), "scales the columns"),
    (_stack(lambda J, m, eye: eye + m[:, None] * J), "not even along the shortcut"),
    (_stack(lambda J, m, eye: torch.diag(m) + J), "only the identity is masked"),
    (_stack(lambda J, m, eye: (1 - m)[:, None] * (eye + J)), "inverted"),
    (_stack(lambda J, m, eye: m[:, None] * (eye + J.T)), "transposed"),
    (lambda J_F, g: J_F.sum(dim=0), "differs from the Jacobian of the stack"),
    (lambda J_F, g: J_F[0].tolist(), "return a torch.Tensor"),
    (lambda J_F, g: J_F, "n x n matrix"),
])
def test_mistakes_are_explained(wrong, words, assert_fails):
    assert_fails(check(EXERCISE, wrong), words)


def test_an_answer_in_single_precision_passes(solution):
    feedback = check(EXERCISE, lambda J_F, g: solution(J_F.float(), g.float()))
    assert feedback.passed, feedback.message


def test_changing_the_inputs_in_place_fails(solution):
    def in_place(J_F, g):
        J_F += torch.eye(g.shape[1], dtype=J_F.dtype)
        return solution(J_F - torch.eye(g.shape[1], dtype=J_F.dtype), g)
    feedback = check(EXERCISE, in_place)
    assert not feedback.passed and "in place" in feedback.message


def test_stub_is_not_solved_yet(stub):
    feedback = check(EXERCISE, stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


def test_check_leaves_the_global_rng_alone(assert_keeps_random_stream, solution):
    assert_keeps_random_stream(EXERCISE, solution)
