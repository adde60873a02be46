"""Checks for chapter 13, "Scaling out".

- ``ch13-combine-batch-stats``: a function ``combine_batch_stats(means, variances,
  counts)`` that turns each process's BatchNorm statistics into those of the
  whole global batch, which is what ``SyncBatchNorm`` computes (by all-reducing
  each process's count, sum and sum of squares). ``means`` and ``variances`` are
  ``(P, C)`` tensors (one row per process: per-channel mean and *biased*
  variance of its micro-batch), ``counts`` is ``(P,)``, the number of values per
  channel on each process (``N_p * H * W``). It returns ``(mean, variance)`` of
  shape ``(C,)``. The check compares the result with the statistics of the
  concatenated micro-batches computed by torch, on micro-batches of unequal size
  drawn from different distributions (so the between-process spread matters),
  and names the usual mistakes.
"""
from __future__ import annotations

import torch

from . import Feedback, register

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


def _stats(shards):
    means = torch.stack([s.mean(dim=(0, 2, 3)) for s in shards])                 # (P, C)
    variances = torch.stack([s.var(dim=(0, 2, 3), unbiased=False) for s in shards])
    counts = torch.tensor([s[:, 0].numel() for s in shards], dtype=torch.float64)  # (P,)
    return means, variances, counts


def _as_pair(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return None
    try:
        return tuple(torch.as_tensor(r, dtype=torch.float64) for r in result)
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a, b) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-6, atol=1e-9)


def _diagnose(mean, var, means, variances, counts, whole) -> str:
    """Name the mistake that (mean, var) matches, if a known one."""
    w = counts / counts.sum()
    true_mean = whole.mean(dim=(0, 2, 3))
    if not _close(mean, true_mean):
        if _close(mean, means.mean(dim=0)):
            return ("the mean is the plain average of the processes' means. Processes with "
                    "more images must count more: weight each mean by its count")
        return "the mean differs from the mean of all the processes' values together"
    n = counts.sum()
    if _close(var, (w[:, None] * variances).sum(dim=0)):
        return ("the variance is the (weighted) average of the processes' variances, which "
                "misses how far the processes' means lie from the global mean. Add the "
                "weighted mean of (mean_p - mean)**2, or go through E[x^2] - E[x]^2")
    if _close(var, variances.mean(dim=0)):
        return ("the variance averages the processes' variances and ignores both the counts "
                "and the spread of the means; go through sums: E[x^2] = sum_p n_p (var_p + "
                "mean_p**2) / n")
    if _close(var, whole.var(dim=(0, 2, 3), unbiased=True)):
        return ("this is the unbiased variance (divided by n - 1). BatchNorm normalises with "
                "the biased one (divided by n), and so do the inputs here")
    if _close(var, whole.var(dim=(0, 2, 3), unbiased=False).sqrt()):
        return "this is the standard deviation; return the (biased) variance"
    return (f"the variance differs from that of all {int(n)} values per channel together; "
            f"E[x^2] - E[x]^2 over the whole batch is the target")


@register(EXERCISE, names=["combine_batch_stats"],
          title="SyncBatchNorm's statistics from each process's", observe=True)
def _check_combine_batch_stats(combine_batch_stats) -> Feedback:
    g = torch.Generator().manual_seed(13)
    for sizes in _CASES:
        shards = _shards(sizes, g)
        whole = torch.cat(shards)                              # the global batch
        means, variances, counts = _stats(shards)
        where = f"with {len(sizes)} processes of {', '.join(map(str, sizes))} images"
        got = _as_pair(combine_batch_stats(means.clone(), variances.clone(), counts.clone()))
        if got is None or got[0].shape != (_CHANNELS,) or got[1].shape != (_CHANNELS,):
            return Feedback(EXERCISE, False, f"{where}: return a pair (mean, variance), each "
                            f"a tensor of shape ({_CHANNELS},), one value per channel.")
        mean, var = got
        if not (_close(mean, whole.mean(dim=(0, 2, 3)))
                and _close(var, whole.var(dim=(0, 2, 3), unbiased=False))):
            return Feedback(EXERCISE, False, f"{where}: "
                            f"{_diagnose(mean, var, means, variances, counts, whole)}.")
    return Feedback(EXERCISE, True, "for equal and unequal micro-batches your mean and "
                    "variance are exactly those of the whole global batch: what SyncBatchNorm "
                    "normalises with, computed from one all-reduce of a few numbers per channel.")
