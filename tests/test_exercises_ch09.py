"""The checks of chapter 9's coding exercises (ch09-confusion-matrix, ch09-paper-lr): the
book's solutions (its notebook's `solution` cells) pass, typical mistakes fail with a helpful
message, and an unsolved stub reads "not solved yet"."""
from __future__ import annotations

import pytest
import torch

from resnet_edu.exercises import check

NOTEBOOK = "09_training_cifar_resnet.ipynb"


@pytest.fixture
def confusion_matrix(book_solution):
    return book_solution(NOTEBOOK, "confusion_matrix", exercise="ch09-confusion-matrix")


# ---------------------------------------------------------------- ch09-confusion-matrix
def _counts(y_true, y_pred, num_classes):   # right (not the book's way): wrong answers' base
    counts = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    counts.index_put_((y_true, y_pred), torch.ones_like(y_true), accumulate=True)
    return counts


def transposed(y_true, y_pred, num_classes):
    return _counts(y_true, y_pred, num_classes).T


def sized_by_labels(y_true, y_pred, num_classes):
    k = int(max(y_true.max(), y_pred.max())) + 1
    return _counts(y_true, y_pred, k)


def last_write_wins(y_true, y_pred, num_classes):
    counts = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    counts[y_true, y_pred] += 1            # duplicates are counted once
    return counts


def normalised(y_true, y_pred, num_classes):
    counts = _counts(y_true, y_pred, num_classes).float()
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1)


def test_confusion_matrix_solution_passes(confusion_matrix):
    feedback = check("ch09-confusion-matrix", confusion_matrix)
    assert feedback.passed and "scikit-learn" in feedback.message


def test_confusion_matrix_accepts_numpy_output(confusion_matrix):
    feedback = check("ch09-confusion-matrix",
                     lambda t, p, k: confusion_matrix(t, p, k).numpy())
    assert feedback.passed


def test_confusion_matrix_mistakes_are_explained():
    cases = {transposed: "transposed", sized_by_labels: "never appears",
             last_write_wins: "exactly once", normalised: "whole counts"}
    for wrong, words in cases.items():
        feedback = check("ch09-confusion-matrix", wrong)
        assert not feedback.passed and feedback.solved, wrong.__name__
        assert words in feedback.message, (wrong.__name__, feedback.message)


def test_confusion_matrix_stub_is_not_solved_yet(stub):
    feedback = check("ch09-confusion-matrix", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


# ---------------------------------------------------------------- ch09-paper-lr
def test_paper_lr_solution_passes(book_solution):
    ours = book_solution(NOTEBOOK, "paper_lr", exercise="ch09-paper-lr")
    assert check("ch09-paper-lr", ours).passed


def test_paper_lr_mistakes_are_explained():
    def off_by_one(it):
        return 0.1 * 0.1 ** ((it > 32_000) + (it > 48_000))

    def divides_once(it):
        return 0.1 if it < 32_000 else 0.01

    def in_epochs(it):                      # confuses iterations with epochs
        return 0.1 * 0.1 ** ((it >= 91) + (it >= 136))

    for wrong, words in ((off_by_one, "off by one"), (divides_once, "second time"),
                         (in_epochs, "expected 0.1")):
        feedback = check("ch09-paper-lr", wrong)
        assert not feedback.passed and words in feedback.message, feedback.message


def test_paper_lr_stub_is_not_solved_yet(stub):
    feedback = check("ch09-paper-lr", stub)
    assert not feedback.solved and "not solved yet" in feedback.message
