"""Checks for chapter 2, "Conv -> BatchNorm -> ReLU".

- ``ch02-batchnorm-by-hand``: ``batchnorm_by_hand(x, gamma, beta, running_mean,
  running_var, training=True, momentum=0.1, eps=1e-5)`` returns
  ``(y, new_running_mean, new_running_var)`` exactly as ``nn.BatchNorm2d`` would
  compute them (reference: ``F.batch_norm``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from . import Feedback, register
from ._kit import Rules, generator

# (N, C, H, W, training, momentum, eps, channel scales)
_BN_CASES = [
    (4, 3, 5, 5, True, 0.1, 1e-5, (1.0, 2.0, 0.5)),
    (2, 2, 3, 4, True, 0.3, 1e-5, (3.0, 1.0)),
    (3, 2, 4, 4, True, 0.1, 1e-2, (0.05, 1.0)),   # eps comparable to a channel's variance
    (4, 3, 5, 5, False, 0.1, 1e-5, (1.0, 2.0, 0.5)),
]


def _close(a, b) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and torch.allclose(a.to(b.dtype), b, rtol=1e-4, atol=1e-5))


def _affine(x_hat, gamma, beta):
    return x_hat * gamma.reshape(1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)


def _wrong_outputs(x, gamma, beta, running_mean, running_var, training, eps):
    """Realistic mistakes and what each one computes, for a targeted hint."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    var_unbiased = x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)
    per_sample_mean = x.mean(dim=(2, 3), keepdim=True)
    per_sample_var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    mistakes = [
        (_affine((x - mean) / torch.sqrt(var_unbiased + eps), gamma, beta),
         "you normalised with the unbiased variance (divided by n - 1). BatchNorm normalises "
         "with the biased batch variance (divide by n = N*H*W); the unbiased one is only used "
         "for the running estimate."),
        (_affine((x - mean) / (torch.sqrt(var) + eps), gamma, beta),
         "eps is added outside the square root. It belongs inside: "
         "(x - mean) / sqrt(var + eps)."),
        (_affine((x - per_sample_mean) / torch.sqrt(per_sample_var + eps), gamma, beta),
         "you computed the statistics per sample and channel (over H and W only); that is "
         "InstanceNorm. BatchNorm averages over the batch too: dims (0, 2, 3)."),
        (_affine((x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps), gamma, beta),
         "you computed one mean and variance for the whole tensor. BatchNorm keeps one pair "
         "per channel: reduce over dims (0, 2, 3)."),
        ((x - mean) / torch.sqrt(var + eps),
         "gamma and beta are not applied: after normalising, multiply by gamma[c] and add "
         "beta[c] in channel c."),
    ]
    if training:
        normalised = ((x - running_mean.reshape(1, -1, 1, 1))
                      / torch.sqrt(running_var.reshape(1, -1, 1, 1) + eps))
        mistakes.insert(0, (_affine(normalised, gamma, beta),
                            "in training mode you normalised with the running statistics. "
                            "Training mode uses the current batch's mean and variance."))
    else:
        mistakes.insert(0, (_affine((x - mean) / torch.sqrt(var + eps), gamma, beta),
                            "in evaluation mode (training=False) you used the batch "
                            "statistics. Evaluation mode normalises with running_mean and "
                            "running_var, so an image's output does not depend on the rest "
                            "of the batch."))
    # the mode mistake goes first: with a tiny eps, "batch statistics in evaluation mode"
    # would otherwise be reported as "eps outside the square root"
    return mistakes


def _running_stats_mistake(x, before, returned, reference, training: bool,
                           momentum: float) -> Optional[str]:
    """What is wrong with the returned running statistics, or None when both match."""
    c = x.shape[1]
    names = ("running_mean", "running_var")
    for name, old, got, want in zip(names, before, returned, reference):
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return (f"the returned {name} has shape "
                    f"{shape}; it should have one value per channel, shape ({c},).")
        if _close(got, want):
            continue
        if not training:
            return (f"{name} changed in evaluation mode. "
                    "With training=False the running statistics are only read, "
                    "never updated.")
        batch = (x.mean(dim=(0, 2, 3)) if name == "running_mean"
                 else x.var(dim=(0, 2, 3), unbiased=True))
        if _close(got, momentum * old + (1 - momentum) * batch):
            return (f"{name} uses momentum the other way "
                    "round. In PyTorch, momentum is the weight of the NEW batch: "
                    "running = (1 - momentum) * running + momentum * batch_value.")
        if name == "running_var" and _close(
                got, (1 - momentum) * old + momentum * x.var(dim=(0, 2, 3), unbiased=False)):
            return ("running_var was updated with the "
                    "biased batch variance. PyTorch stores the unbiased one "
                    "(divide by n - 1, n = N*H*W) in the running estimate, even "
                    "though it normalises with the biased one.")
        if _close(got, old):
            return (f"{name} was not updated. In "
                    "training mode, blend in the batch's value with `momentum`.")
        return (f"{name} differs from nn.BatchNorm2d's "
                "(running = (1 - momentum) * running + momentum * batch_value, "
                "with the unbiased batch variance for running_var).")
    return None


@register("ch02-batchnorm-by-hand", names=["batchnorm_by_hand"], title="BatchNorm by hand",
          observe=True, rules=Rules(
              forbidden=("torch.nn.functional.batch_norm", "torch.batch_norm",
                         "torch.native_batch_norm", "torch.nn.BatchNorm", "torch.nn.LazyBatchNorm",
                         "torch.nn.modules.batchnorm", "torch.nn.SyncBatchNorm"),
              why="Do not call `F.batch_norm` or `nn.BatchNorm2d`."))
def _check_batchnorm_by_hand(batchnorm_by_hand) -> Feedback:
    exercise = "ch02-batchnorm-by-hand"
    g = generator(7)
    for n, c, h, w, training, momentum, eps, scales in _BN_CASES:
        scale = torch.tensor(scales, dtype=torch.float64).reshape(1, c, 1, 1)
        x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * scale + 0.5
        gamma = 1 + 0.5 * torch.randn(c, generator=g, dtype=torch.float64)
        beta = torch.randn(c, generator=g, dtype=torch.float64)
        running_mean = 0.2 * torch.randn(c, generator=g, dtype=torch.float64)
        running_var = 1 + torch.rand(c, generator=g, dtype=torch.float64)
        originals = {"x": x.clone(), "gamma": gamma.clone(), "beta": beta.clone()}

        ref_mean, ref_var = running_mean.clone(), running_var.clone()
        expected = F.batch_norm(x, ref_mean, ref_var, gamma, beta, training=training,
                                momentum=momentum, eps=eps)   # updates ref_mean/ref_var
        result = batchnorm_by_hand(x, gamma, beta, running_mean.clone(), running_var.clone(),
                                   training=training, momentum=momentum, eps=eps)
        where = (f"On x of shape ({n}, {c}, {h}, {w}) with training={training}, "
                 f"momentum={momentum}, eps={eps:g}")
        if not (isinstance(result, (tuple, list)) and len(result) == 3):
            return Feedback(exercise, False, f"{where}: expected a tuple (y, running_mean, "
                            f"running_var), got {type(result).__name__}"
                            + (f" of length {len(result)}" if isinstance(result, (tuple, list))
                               else "") + ".")
        y, new_mean, new_var = result
        for name, before in originals.items():
            now = {"x": x, "gamma": gamma, "beta": beta}[name]
            if not torch.equal(before, now):
                return Feedback(exercise, False, f"{where}: your function changed `{name}` in "
                                "place; compute new tensors instead.")
        if not isinstance(y, torch.Tensor) or y.shape != expected.shape:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            return Feedback(exercise, False, f"{where}: y has shape {shape}, expected "
                            f"{tuple(expected.shape)} (the same as x). Reshape the per-channel "
                            "tensors to (1, C, 1, 1) so they broadcast over N, H and W.")
        if not _close(y, expected):
            for wrong, hint in _wrong_outputs(x, gamma, beta, running_mean, running_var,
                                              training, eps):
                if _close(y, wrong):
                    return Feedback(exercise, False, f"{where}: {hint}")
            largest = float((y.to(expected.dtype) - expected).abs().max())
            return Feedback(exercise, False, f"{where}: y differs from nn.BatchNorm2d's output "
                            f"(largest difference {largest:.3g}). "
                            "Per channel: subtract the batch mean, divide by sqrt(biased "
                            "variance + eps), then scale by gamma and shift by beta.")
        problem = _running_stats_mistake(x, (running_mean, running_var), (new_mean, new_var),
                                         (ref_mean, ref_var), training, momentum)
        if problem:
            return Feedback(exercise, False, f"{where}: {problem}")
    return Feedback(exercise, True, f"matches nn.BatchNorm2d on all {len(_BN_CASES)} cases "
                    "(output and running statistics, training and evaluation mode).")
