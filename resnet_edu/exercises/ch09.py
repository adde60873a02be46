"""Checks for chapter 9, "Training a CIFAR-style ResNet".

- ``ch09-confusion-matrix``: ``confusion_matrix(y_true, y_pred, num_classes)`` returns a
  ``(num_classes, num_classes)`` tensor whose entry ``[i, j]`` counts the images of true
  class ``i`` predicted as class ``j`` (scikit-learn's convention).
- ``ch09-paper-lr``: ``paper_lr(iteration)`` returns the learning rate of He et al.'s
  CIFAR-10 schedule at a 0-based iteration: 0.1, divided by 10 at 32k and again at 48k.
"""
from __future__ import annotations

import math

import torch

from . import Feedback, declare_function, register
from ._kit import FunctionCheck, Mistake, Rules, WrongForm


def _reference_confusion(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int):
    from sklearn.metrics import confusion_matrix

    return torch.as_tensor(confusion_matrix(y_true.numpy(), y_pred.numpy(),
                                            labels=list(range(num_classes))))


# (y_true, y_pred, num_classes) as given, or (images, num_classes) drawn at random with
# 60% right predictions; the last case has a class that never occurs, as truth or prediction
_CONFUSION_CASES = (([0, 1, 2, 2], [0, 2, 2, 1], 3), (50, 4), (200, 10), (30, 6),
                    ([0, 1, 1, 0, 2], [1, 1, 0, 0, 2], 5))


def _labels(case, g: torch.Generator) -> tuple:
    if len(case) == 3:
        return torch.tensor(case[0]), torch.tensor(case[1]), case[2]
    n, k = case
    y_true = torch.randint(0, k, (n,), generator=g)
    y_pred = torch.where(torch.rand(n, generator=g) < 0.6, y_true,
                         torch.randint(0, k, (n,), generator=g))
    return y_true, y_pred, k


def _describe(case, args) -> str:
    y_true, _, k = args
    more = "..." if len(y_true) > 8 else ""
    return f"For y_true={y_true.tolist()[:8]}{more}, num_classes={k}"


def _counts(got, expected: torch.Tensor, case) -> torch.Tensor:
    k = expected.shape[0]
    try:
        matrix = torch.as_tensor(got)
    except (TypeError, ValueError, RuntimeError):
        raise WrongForm(f"expected a tensor, got {type(got).__name__}. Return a (num_classes, "
                        "num_classes) tensor.") from None
    if matrix.shape != expected.shape:
        hint = ""
        if matrix.dim() == 2 and matrix.shape[0] == matrix.shape[1] < k:
            hint = (" A class that never appears still needs its row and column: size the "
                    "matrix by num_classes, not by the largest label seen.")
        raise WrongForm(f"the matrix has shape {tuple(matrix.shape)}, expected ({k}, "
                        f"{k}).{hint}")
    if matrix.is_floating_point() and not torch.equal(matrix, matrix.round()):
        raise WrongForm("entries should be whole counts, got fractions. Count images; do not "
                        "normalise.")
    return matrix.to(expected.dtype)


def _confusion_differs(got: torch.Tensor, expected: torch.Tensor, args) -> str:
    n = len(args[0])
    if int(got.sum()) != n:
        return (f"the entries add up to {int(got.sum())}, but there are {n} images. Count "
                "every image exactly once, in cell [y_true, y_pred].")
    if torch.equal(got.diagonal(), expected.diagonal()):
        return ("the diagonal (correct predictions) is right but some off-diagonal cells are "
                "not. Check which index is the row (true class) and which the column.")
    return f"expected {expected.tolist()}, got {got.tolist()}."


CONFUSION_MATRIX = FunctionCheck(
    cases=_CONFUSION_CASES, make_inputs=_labels, seed=9, reference=_reference_confusion,
    read=_counts, same=torch.equal, describe=_describe, differs=_confusion_differs,
    mistakes=(Mistake(lambda *args: _reference_confusion(*args).T, "your matrix is "
                      "transposed. Row i should hold the images whose *true* class is i, "
                      "column j those *predicted* as j."),),
    success="matches scikit-learn's confusion_matrix on "
            f"{len(_CONFUSION_CASES)} cases, including a class that never occurs.")


declare_function("ch09-confusion-matrix", CONFUSION_MATRIX, "confusion_matrix", "A confusion matrix",
                 rules=Rules(forbidden=("sklearn", "torchmetrics"),
                             forbidden_imports=("sklearn", "torchmetrics"),
                             why="Count the pairs yourself (no scikit-learn)."))


def _reference_lr(iteration: int) -> float:
    from ..train import TrainConfig, learning_rate

    config = TrainConfig(lr=0.1, schedule="step", milestones=(0.5, 0.75))
    return learning_rate(config, iteration, 64_000)   # milestones at 32,000 and 48,000


_LR_ITERATIONS = (0, 1, 1000, 31_999, 32_000, 32_001, 40_000, 47_999, 48_000, 48_001,
                  60_000, 63_999)


@register("ch09-paper-lr", names=["paper_lr"], title="The paper's learning-rate schedule",
          observe=True)
def _check_paper_lr(paper_lr, *, salt: int = 0) -> Feedback:   # no random inputs
    exercise = "ch09-paper-lr"
    for it in _LR_ITERATIONS:
        expected = _reference_lr(it)
        got = paper_lr(it)
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Feedback(exercise, False, f"paper_lr({it}) returned "
                            f"{type(got).__name__}; return a number.")
        if math.isclose(got, expected, rel_tol=1e-9):
            continue
        if it in (32_000, 48_000) and math.isclose(got, _reference_lr(it - 1), rel_tol=1e-9) \
                and math.isclose(float(paper_lr(it + 1)), _reference_lr(it + 1), rel_tol=1e-9):
            return Feedback(exercise, False, f"paper_lr({it}) is {got:g}, expected "
                            f"{expected:g}: off by one at the milestone. Iterations count "
                            f"from 0, so iteration {it} is the first one after {it // 1000}k "
                            f"steps and already uses the lower rate (use >=, not >).")
        if it >= 48_000 and math.isclose(got, 0.01, rel_tol=1e-9):
            return Feedback(exercise, False, f"paper_lr({it}) is {got:g}, expected "
                            f"{expected:g}: the rate is divided by 10 a second time at 48k.")
        return Feedback(exercise, False, f"paper_lr({it}) is {got:g}, expected {expected:g}. "
                        f"The paper starts at 0.1 and divides by 10 at 32k and at 48k "
                        f"iterations.")
    return Feedback(exercise, True, "0.1, then 0.01 from iteration 32,000 and 0.001 from "
                    "48,000: the schedule of He et al. (2015), section 4.2.")
