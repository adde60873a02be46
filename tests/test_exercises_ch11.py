"""The checks of chapter 11's coding exercises (ch11-path-counts, ch11-filter-normalise).

The book's own solution cells pass; realistic wrong answers fail with a message that names
the mistake; the unsolved stub reads "not solved yet".
"""
from __future__ import annotations

import math

import pytest
import torch

from resnet_edu.analysis import filter_normalised_direction
from resnet_edu.exercises import check
from resnet_edu.models import cifar_resnet

NOTEBOOK = "11_why_residuals_train.ipynb"


@pytest.fixture
def paths_by_length(book_solution):
    return book_solution(NOTEBOOK, "paths_by_length", exercise="ch11-path-counts")


@pytest.fixture
def filter_normalise(book_solution):
    return book_solution(NOTEBOOK, "filter_normalise", exercise="ch11-filter-normalise")


def test_book_solution_for_path_counts_passes(paths_by_length):
    feedback = check("ch11-path-counts", paths_by_length)
    assert feedback.passed, feedback.message
    assert paths_by_length(4) == [math.comb(4, k) for k in range(5)]


@pytest.mark.parametrize("wrong, words", [
    (lambda n: [math.comb(n, k) for k in range(1, n + 1)], "length 0"),
    (lambda n: [math.comb(n, k) for k in range(n)], "through every branch"),
    (lambda n: [math.comb(n, k) for k in range(n + 2)], "return"),
    (lambda n: [1] * (n + 1), "2**"),
    (lambda n: [2 ** n] + [0] * n, "expected"),
    (lambda n: "many", "whole numbers"),
])
def test_wrong_path_counts_fail_with_a_reason(wrong, words):
    feedback = check("ch11-path-counts", wrong)
    assert not feedback.passed
    assert words in feedback.message


def test_book_solution_for_filter_normalise_passes(filter_normalise):
    feedback = check("ch11-filter-normalise", filter_normalise)
    assert feedback.passed, feedback.message


def test_book_solution_agrees_with_the_package(filter_normalise):
    # the same rule as resnet_edu.analysis, applied parameter by parameter to a real network
    torch.manual_seed(0)
    model = cifar_resnet(8, in_channels=1)
    generator = torch.Generator().manual_seed(3)
    package = filter_normalised_direction(model, generator)
    generator = torch.Generator().manual_seed(3)
    for name, p in model.named_parameters():
        if p.dim() <= 1:
            assert torch.count_nonzero(filter_normalise(torch.randn(p.shape), p)) == 0
            continue
        d = torch.randn(p.shape, generator=generator)
        assert torch.allclose(filter_normalise(d, p.detach()), package[name], atol=1e-6)


def _whole_tensor(direction, weight):
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    return direction * weight.norm() / direction.norm()


def _unit_filters(direction, weight):
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return direction / direction.flatten(1).norm(dim=1).view(shape)


def _moves_biases(direction, weight):
    if weight.dim() <= 1:
        return direction
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return direction / direction.flatten(1).norm(dim=1).view(shape) \
        * weight.flatten(1).norm(dim=1).view(shape)


@pytest.mark.parametrize("wrong, words", [
    (_whole_tensor, "whole tensor"),
    (_unit_filters, "norm 1"),
    (_moves_biases, "return zeros"),
    (lambda d, w: d.flatten(), "same shape"),
])
def test_wrong_filter_normalise_fails_with_a_reason(wrong, words):
    feedback = check("ch11-filter-normalise", wrong)
    assert not feedback.passed
    assert words in feedback.message


def test_stubs_read_not_solved_yet(stub):
    for exercise in ("ch11-path-counts", "ch11-filter-normalise"):
        feedback = check(exercise, stub)
        assert not feedback.passed and not feedback.solved
