"""Checks for chapter 13, "Scaling out".

- ``ch13-combine-batch-stats``: a function ``combine_batch_stats(means, variances,
  counts)`` that turns each process's BatchNorm statistics into those of the
  whole global batch, which is what ``SyncBatchNorm`` computes (by all-reducing
  each process's count, sum and sum of squares). ``means`` and ``variances`` are
  ``(P, C)`` tensors (one row per process: per-channel mean and *biased*
  variance of its micro-batch), ``counts`` is ``(P,)``, the number of values per
  channel on each process (``N_p * H * W``). It returns ``(mean, variance)`` of
  shape ``(C,)``. The check compares the result with the statistics of the
  whole batch (by the law of total variance, which the tests compare with torch on
  the concatenated micro-batches), on micro-batches of unequal size drawn from
  different distributions (so the between-process spread matters), and names the
  usual mistakes.
"""
from __future__ import annotations

import torch

from . import declare_function
from ._kit import FunctionCheck, Mistake, WrongForm

EXERCISE = "ch13-combine-batch-stats"
# (images per process) for each case: equal shards, unequal shards, one big and one tiny
_CASES = ((4, 4), (3, 7, 2), (16, 1))
_CHANNELS = 5


def _shards(sizes, generator: torch.Generator):
    """Micro-batches (N_p, C, 3, 3) with their own per-channel offsets and scales."""
    shards = []
    for n in sizes:
        offset = 2 * torch.randn(1, _CHANNELS, 1, 1, generator=generator, dtype=torch.float64)
        scale = 0.5 + torch.rand(1, _CHANNELS, 1, 1, generator=generator, dtype=torch.float64)
        shards.append(offset + scale * torch.randn(n, _CHANNELS, 3, 3, generator=generator,
                                                   dtype=torch.float64))
    return shards


def _draw(sizes, generator: torch.Generator) -> tuple:
    """Each process's ``(means, variances, counts)`` of micro-batches of ``sizes`` images."""
    shards = _shards(sizes, generator)
    means = torch.stack([s.mean(dim=(0, 2, 3)) for s in shards])                 # (P, C)
    variances = torch.stack([s.var(dim=(0, 2, 3), unbiased=False) for s in shards])
    counts = torch.tensor([s[:, 0].numel() for s in shards], dtype=torch.float64)  # (P,)
    return means, variances, counts


def _global(means, variances, counts):
    """The whole batch's mean and biased variance by the law of total variance: the
    weighted mean of the processes' variances plus the weighted spread of their means.
    (The tests compare it with torch on the concatenated micro-batches.)"""
    w = (counts / counts.sum())[:, None]
    mean = (w * means).sum(dim=0)
    return mean, (w * variances).sum(dim=0) + (w * (means - mean) ** 2).sum(dim=0)


def _read(result, expected, sizes):
    pair = None
    if isinstance(result, (tuple, list)) and len(result) == 2:
        try:
            pair = tuple(torch.as_tensor(r, dtype=torch.float64) for r in result)
        except (TypeError, ValueError, RuntimeError):
            pair = None
    if pair is None or any(t.shape != (_CHANNELS,) for t in pair):
        raise WrongForm(f"return a pair (mean, variance), each a tensor of shape "
                        f"({_CHANNELS},), one value per channel.")
    return pair


def _close(a, b) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-9)


def _same(got, expected) -> bool:
    return _close(got[0], expected[0]) and _close(got[1], expected[1])


def _with_variance(variance):
    """A mistake in the variance only: the right mean, ``variance(*args)`` beside it."""
    return lambda *args: (_global(*args)[0], variance(*args))


def _unbiased(means, variances, counts):
    n = counts.sum()
    return _global(means, variances, counts)[1] * n / (n - 1)


_MISTAKES = (    # the variance mistakes first: they need the right mean
    Mistake(_with_variance(lambda m, v, c: ((c / c.sum())[:, None] * v).sum(dim=0)),
            "the variance is the (weighted) average of the processes' variances, which "
            "misses how far the processes' means lie from the global mean. Add the weighted "
            "mean of (mean_p - mean)**2, or go through E[x^2] - E[x]^2."),
    Mistake(_with_variance(lambda m, v, c: v.mean(dim=0)),
            "the variance averages the processes' variances and ignores both the counts and "
            "the spread of the means; go through sums: E[x^2] = sum_p n_p (var_p + "
            "mean_p**2) / n."),
    Mistake(_with_variance(_unbiased),
            "this is the unbiased variance (divided by n - 1). BatchNorm normalises with the "
            "biased one (divided by n), and so do the inputs here."),
    Mistake(_with_variance(lambda *args: _global(*args)[1].sqrt()),
            "this is the standard deviation; return the (biased) variance."),
    Mistake(lambda *args: (args[0].mean(dim=0), _global(*args)[0]),   # (wrong, right) mean
            "the mean is the plain average of the processes' means. Processes with more "
            "images must count more: weight each mean by its count.",
            same=lambda got, means: _close(got[0], means[0]) and not _close(got[0], means[1])),
)


def _differs(got, expected, args) -> str:
    if not _close(got[0], expected[0]):
        return "the mean differs from the mean of all the processes' values together."
    return (f"the variance differs from that of all {int(args[2].sum())} values per channel "
            f"together; E[x^2] - E[x]^2 over the whole batch is the target.")


COMBINE_BATCH_STATS = FunctionCheck(
    cases=_CASES, make_inputs=_draw, seed=13, reference=_global, read=_read, same=_same,
    mistakes=_MISTAKES, differs=_differs,
    describe=lambda sizes, args: (f"with {len(sizes)} processes of "
                                  f"{', '.join(map(str, sizes))} images"),
    success="for equal and unequal micro-batches your mean and variance are exactly those "
            "of the whole global batch: what SyncBatchNorm normalises with, computed from "
            "one all-gather of a few numbers per channel.")


declare_function(EXERCISE, COMBINE_BATCH_STATS, "combine_batch_stats",
                 "SyncBatchNorm's statistics from each process's")
