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

from . import Feedback, register
from ._kit import Rules, generator


def _reference_confusion(y_true: torch.Tensor, y_pred: torch.Tensor, num_classes: int):
    from sklearn.metrics import confusion_matrix

    return torch.as_tensor(confusion_matrix(y_true.numpy(), y_pred.numpy(),
                                            labels=list(range(num_classes))))


def _confusion_cases():
    g = generator(9)
    cases = [(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 1]), 3)]
    for n, k in ((50, 4), (200, 10), (30, 6)):
        y_true = torch.randint(0, k, (n,), generator=g)
        y_pred = torch.where(torch.rand(n, generator=g) < 0.6, y_true,
                             torch.randint(0, k, (n,), generator=g))
        cases.append((y_true, y_pred, k))
    # the last class never occurs, neither as truth nor as prediction
    cases.append((torch.tensor([0, 1, 1, 0, 2]), torch.tensor([1, 1, 0, 0, 2]), 5))
    return cases


@register("ch09-confusion-matrix", names=["confusion_matrix"], title="A confusion matrix",
          observe=True,
          rules=Rules(forbidden=("sklearn", "torchmetrics"),
                      forbidden_imports=("sklearn", "torchmetrics"),
                      why="Count the pairs yourself (no scikit-learn)."))
def _check_confusion_matrix(confusion_matrix) -> Feedback:
    exercise = "ch09-confusion-matrix"
    for y_true, y_pred, k in _confusion_cases():
        expected = _reference_confusion(y_true, y_pred, k)
        got = confusion_matrix(y_true.clone(), y_pred.clone(), k)
        where = f"For y_true={y_true.tolist()[:8]}{'...' if len(y_true) > 8 else ''}, " \
                f"num_classes={k}"
        try:
            got = torch.as_tensor(got)
        except Exception:
            return Feedback(exercise, False, f"{where}: expected a tensor, got "
                            f"{type(got).__name__}. Return a (num_classes, num_classes) tensor.")
        if got.shape != expected.shape:
            hint = ""
            if got.dim() == 2 and got.shape[0] == got.shape[1] < k:
                hint = (" A class that never appears still needs its row and column: size "
                        "the matrix by num_classes, not by the largest label seen.")
            return Feedback(exercise, False, f"{where}: the matrix has shape "
                            f"{tuple(got.shape)}, expected ({k}, {k}).{hint}")
        if got.is_floating_point() and not torch.equal(got, got.round()):
            return Feedback(exercise, False, f"{where}: entries should be whole counts, "
                            f"got fractions. Count images; do not normalise.")
        got = got.to(expected.dtype)
        if torch.equal(got, expected):
            continue
        if torch.equal(got, expected.T):
            return Feedback(exercise, False, f"{where}: your matrix is transposed. Row i "
                            f"should hold the images whose *true* class is i, column j those "
                            f"*predicted* as j.")
        if int(got.sum()) != len(y_true):
            return Feedback(exercise, False, f"{where}: the entries add up to "
                            f"{int(got.sum())}, but there are {len(y_true)} images. Count "
                            f"every image exactly once, in cell [y_true, y_pred].")
        if torch.equal(got.diagonal(), expected.diagonal()):
            return Feedback(exercise, False, f"{where}: the diagonal (correct predictions) "
                            f"is right but some off-diagonal cells are not. Check which "
                            f"index is the row (true class) and which the column.")
        return Feedback(exercise, False, f"{where}: expected {expected.tolist()}, got "
                        f"{got.tolist()}.")
    return Feedback(exercise, True, "matches scikit-learn's confusion_matrix on "
                    f"{len(_confusion_cases())} cases, including a class that never occurs.")


def _reference_lr(iteration: int) -> float:
    from ..train import TrainConfig, learning_rate

    config = TrainConfig(lr=0.1, schedule="step", milestones=(0.5, 0.75))
    return learning_rate(config, iteration, 64_000)   # milestones at 32,000 and 48,000


_LR_ITERATIONS = (0, 1, 1000, 31_999, 32_000, 32_001, 40_000, 47_999, 48_000, 48_001,
                  60_000, 63_999)


@register("ch09-paper-lr", names=["paper_lr"], title="The paper's learning-rate schedule",
          observe=True)
def _check_paper_lr(paper_lr) -> Feedback:
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
