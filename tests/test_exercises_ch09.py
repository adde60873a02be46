"""The checks of chapter 9's coding exercises: the solution passes, typical mistakes fail
with a helpful message, and an unsolved stub reads "not solved yet"."""
from __future__ import annotations

import torch

from resnet_edu.exercises import check


# ---------------------------------------------------------------- ch09-confusion-matrix
def confusion_matrix(y_true, y_pred, num_classes):        # the book's solution
    counts = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    counts.index_put_((y_true, y_pred), torch.ones_like(y_true), accumulate=True)
    return counts


def transposed(y_true, y_pred, num_classes):
    return confusion_matrix(y_true, y_pred, num_classes).T


def sized_by_labels(y_true, y_pred, num_classes):
    k = int(max(y_true.max(), y_pred.max())) + 1
    return confusion_matrix(y_true, y_pred, k)


def last_write_wins(y_true, y_pred, num_classes):
    counts = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    counts[y_true, y_pred] += 1            # duplicates are counted once
    return counts


def normalised(y_true, y_pred, num_classes):
    counts = confusion_matrix(y_true, y_pred, num_classes).float()
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1)


def stub(y_true, y_pred, num_classes):
    raise NotImplementedError("write confusion_matrix")


def test_confusion_matrix_solution_passes(book_solution):
    ours = book_solution("09_training_cifar_resnet.ipynb", "confusion_matrix",
                         exercise="ch09-confusion-matrix")
    feedback = check("ch09-confusion-matrix", ours)
    assert feedback.passed and "scikit-learn" in feedback.message


def test_confusion_matrix_accepts_numpy_output():
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


def test_confusion_matrix_stub_is_not_solved_yet():
    feedback = check("ch09-confusion-matrix", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in feedback.message


# ---------------------------------------------------------------- ch09-paper-lr
def paper_lr(iteration):                                  # the book's solution
    lr = 0.1
    for milestone in (32_000, 48_000):
        if iteration >= milestone:
            lr /= 10
    return lr


def test_paper_lr_solution_passes(book_solution):
    ours = book_solution("09_training_cifar_resnet.ipynb", "paper_lr", exercise="ch09-paper-lr")
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


def test_paper_lr_stub_is_not_solved_yet():
    def unsolved(iteration):
        raise NotImplementedError

    feedback = check("ch09-paper-lr", unsolved)
    assert not feedback.solved and "not solved yet" in feedback.message
