"""The check of chapter 13's coding exercise: the book's own solution cell passes, typical
mistakes fail with a message naming them, and an unsolved stub reads "not solved yet"."""
from __future__ import annotations

import torch

from resnet_edu.exercises import check

EXERCISE = "ch13-combine-batch-stats"


def test_book_solution_passes(book_solution):
    feedback = check(EXERCISE, book_solution("13_scaling_out.ipynb", "combine_batch_stats",
                                             exercise=EXERCISE))
    assert feedback.passed, feedback.message
    assert str(feedback).startswith(f"✓ {EXERCISE}")


def averages_variances(means, variances, counts):      # forgets the spread of the means
    w = counts / counts.sum()
    return (w[:, None] * means).sum(0), (w[:, None] * variances).sum(0)


def ignores_counts(means, variances, counts):          # right formula, unweighted
    mean = means.mean(0)
    return mean, (variances + means ** 2).mean(0) - mean ** 2


def unbiased(means, variances, counts):
    n = counts.sum()
    mean = (counts[:, None] * means).sum(0) / n
    var = (counts[:, None] * (variances + means ** 2)).sum(0) / n - mean ** 2
    return mean, var * n / (n - 1)


def returns_one_tensor(means, variances, counts):
    return torch.stack(averages_variances(means, variances, counts))


def test_mistakes_are_named():
    for wrong, words in ((averages_variances, "misses how far"),
                         (ignores_counts, "weight each mean by its count"),
                         (unbiased, "unbiased"),
                         (returns_one_tensor, "return a pair")):
        feedback = check(EXERCISE, wrong)
        assert not feedback.passed, wrong.__name__
        assert words in feedback.message, (wrong.__name__, feedback.message)


def test_stub_is_not_solved_yet(stub):
    feedback = check(EXERCISE, stub)
    assert not feedback.passed and not feedback.solved
