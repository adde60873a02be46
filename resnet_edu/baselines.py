"""The classical baseline the book's ResNets are measured against on the digits.

An RBF support-vector machine on the 64 raw pixels of each 8x8 digit (scaled to
[0, 1]): its ``C`` and ``gamma`` are chosen by 5-fold cross-validation on the
*training* part of a split only (``GridSearchCV`` refits the best pair on the whole
training part), so the validation and test parts never influence it, exactly as
for the ResNet. Chapter 9 runs it on one split; ``benchmarks/digits_vs_svm.py``
runs it and ``python -m resnet_edu train --seed S`` on three and writes
``book/results/digits_vs_svm.json``.

    >>> from resnet_edu.data import digits_loaders
    >>> search = tuned_svm(digits_loaders(seed=0).train)          # doctest: +SKIP
    >>> svm_accuracy(search, digits_loaders(seed=0).test)          # doctest: +SKIP
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

# C and gamma (gamma on pixels in [0, 1]; scikit-learn's "scale" would be about 0.1 here):
# 4 x 6 pairs on a rough log scale around where cross-validation lands on the book's three
# splits (C 1-10, gamma 0.03-0.3); 120 fits of about 0.05 s each with 5 folds.
SVM_GRID: Dict[str, Sequence[float]] = {"C": (1.0, 3.0, 10.0, 30.0),
                                        "gamma": (0.01, 0.03, 0.1, 0.2, 0.3, 0.5)}
FOLDS = 5


def features(loader) -> Tuple[np.ndarray, np.ndarray]:
    """``(N, 64)`` raw pixels in [0, 1] (no augmentation, no normalisation) and ``(N,)`` labels."""
    x = loader.images.reshape(len(loader.images), -1).numpy().astype(np.float64)
    return x * loader.scale, loader.labels.numpy()


def tuned_svm(train_loader, *, grid: Dict[str, Sequence[float]] = SVM_GRID, folds: int = FOLDS,
              seed: int = 0):
    """An RBF SVM with C and gamma chosen by stratified ``folds``-fold cross-validation on
    ``train_loader``'s images; the fitted ``GridSearchCV`` (``best_params_``, ``predict``)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    x, y = features(train_loader)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return GridSearchCV(SVC(kernel="rbf"), {k: list(v) for k, v in grid.items()}, cv=cv).fit(x, y)


def svm_accuracy(search, loader) -> float:
    """The fraction of ``loader``'s images the fitted SVM classifies correctly."""
    x, y = features(loader)
    return float((search.predict(x) == y).mean())
