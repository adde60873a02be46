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

from . import declare_function
from ._kit import FunctionCheck, Mistake, Rules, WrongForm

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


def _batch_normalised(x, eps, unbiased=False, dims=(0, 2, 3), eps_inside=True):
    """(x - mean) / sqrt(var + eps) with the statistics over ``dims`` (a mistake's way)."""
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=unbiased, keepdim=True)
    return (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)


def _in_mode(training: bool, wrong):
    """A mistake that only applies in training mode (or only in evaluation mode)."""
    def expected(x, gamma, beta, running_mean, running_var, mode, momentum, eps):
        if mode != training:
            raise ValueError("a mistake of the other mode")
        return wrong(x, gamma, beta, running_mean, running_var, eps)
    return expected


def _affine_of(normalise):
    """The mistake ``gamma * normalise(x, eps) + beta`` (the right affine step)."""
    return lambda x, gamma, beta, rm, rv, training, momentum, eps: _affine(
        normalise(x, eps), gamma, beta)


# realistic mistakes and what each one computes; the mode mistakes go first: with a tiny
# eps, "batch statistics in evaluation mode" would otherwise read "eps outside the root"
_MISTAKES = (
    Mistake(_in_mode(True, lambda x, g, b, rm, rv, eps: _affine(
        (x - rm.reshape(1, -1, 1, 1)) / torch.sqrt(rv.reshape(1, -1, 1, 1) + eps), g, b)),
        "in training mode you normalised with the running statistics. Training mode uses "
        "the current batch's mean and variance."),
    Mistake(_in_mode(False, lambda x, g, b, rm, rv, eps: _affine(
        _batch_normalised(x, eps), g, b)),
        "in evaluation mode (training=False) you used the batch statistics. Evaluation mode "
        "normalises with running_mean and running_var, so an image's output does not "
        "depend on the rest of the batch."),
    Mistake(_affine_of(lambda x, eps: _batch_normalised(x, eps, unbiased=True)),
            "you normalised with the unbiased variance (divided by n - 1). BatchNorm "
            "normalises with the biased batch variance (divide by n = N*H*W); the unbiased "
            "one is only used for the running estimate."),
    Mistake(_affine_of(lambda x, eps: _batch_normalised(x, eps, eps_inside=False)),
            "eps is added outside the square root. It belongs inside: "
            "(x - mean) / sqrt(var + eps)."),
    Mistake(_affine_of(lambda x, eps: _batch_normalised(x, eps, dims=(2, 3))),
            "you computed the statistics per sample and channel (over H and W only); that "
            "is InstanceNorm. BatchNorm averages over the batch too: dims (0, 2, 3)."),
    Mistake(_affine_of(lambda x, eps: _batch_normalised(x, eps, dims=(0, 1, 2, 3))),
            "you computed one mean and variance for the whole tensor. BatchNorm keeps one "
            "pair per channel: reduce over dims (0, 2, 3)."),
    Mistake(lambda x, gamma, beta, rm, rv, training, momentum, eps: _batch_normalised(x, eps),
            "gamma and beta are not applied: after normalising, multiply by gamma[c] and add "
            "beta[c] in channel c."),
)


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


def _draw(case, g: torch.Generator) -> tuple:
    """``(x, gamma, beta, running_mean, running_var, training, momentum, eps)``, float64,
    the channels of x at their own scales."""
    n, c, h, w, training, momentum, eps, scales = case
    scale = torch.tensor(scales, dtype=torch.float64).reshape(1, c, 1, 1)
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * scale + 0.5
    gamma = 1 + 0.5 * torch.randn(c, generator=g, dtype=torch.float64)
    beta = torch.randn(c, generator=g, dtype=torch.float64)
    running_mean = 0.2 * torch.randn(c, generator=g, dtype=torch.float64)
    running_var = 1 + torch.rand(c, generator=g, dtype=torch.float64)
    return x, gamma, beta, running_mean, running_var, training, momentum, eps


def _reference(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """``(y, new_running_mean, new_running_var)`` as nn.BatchNorm2d computes them."""
    new_mean, new_var = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, new_mean, new_var, gamma, beta, training=training,
                     momentum=momentum, eps=eps)           # updates new_mean and new_var
    return y, new_mean, new_var


def _output(result, expected: torch.Tensor, case) -> torch.Tensor:
    """The returned y (the running statistics are checked once y is right)."""
    if not (isinstance(result, (tuple, list)) and len(result) == 3):
        length = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
        raise WrongForm(f"expected a tuple (y, running_mean, running_var), got "
                        f"{type(result).__name__}{length}.")
    y = result[0]
    if not isinstance(y, torch.Tensor) or y.shape != expected.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise WrongForm(f"y has shape {shape}, expected {tuple(expected.shape)} (the same as "
                        "x). Reshape the per-channel tensors to (1, C, 1, 1) so they "
                        "broadcast over N, H and W.")
    return y


def _y_differs(y: torch.Tensor, expected: torch.Tensor, args) -> str:
    return (f"y differs from nn.BatchNorm2d's output (largest difference "
            f"{float((y.to(expected.dtype) - expected).abs().max()):.3g}). Per channel: "
            "subtract the batch mean, divide by sqrt(biased variance + eps), then scale by "
            "gamma and shift by beta.")


def _running_stats(result, args, case) -> Optional[str]:
    x, _, _, running_mean, running_var, training, momentum, _ = args
    _, new_mean, new_var = _reference(*args)
    return _running_stats_mistake(x, (running_mean, running_var), tuple(result[1:]),
                                  (new_mean, new_var), training, momentum)


BATCHNORM_BY_HAND = FunctionCheck(
    cases=tuple(_BN_CASES), make_inputs=_draw, seed=7,
    reference=lambda *args: _reference(*args)[0], read=_output, same=_close,
    mistakes=_MISTAKES, differs=_y_differs, then=_running_stats,
    names=("x", "gamma", "beta", "running_mean", "running_var", "training", "momentum",
           "eps"), by_name=("training", "momentum", "eps"),
    in_place="Compute new tensors instead.", may_change=("running_mean", "running_var"),
    describe=lambda case, args: (f"On x of shape {tuple(args[0].shape)} with "
                                 f"training={case[4]}, momentum={case[5]}, eps={case[6]:g}"),
    success=f"matches nn.BatchNorm2d on all {len(_BN_CASES)} cases "
            "(output and running statistics, training and evaluation mode).")


declare_function("ch02-batchnorm-by-hand", BATCHNORM_BY_HAND, "batchnorm_by_hand", "BatchNorm by hand",
                 rules=Rules(
                     forbidden=("torch.nn.functional.batch_norm", "torch.batch_norm",
                                "torch.native_batch_norm", "torch.nn.BatchNorm", "torch.nn.LazyBatchNorm",
                                "torch.nn.modules.batchnorm", "torch.nn.SyncBatchNorm",
                                # the other normalisations compute batch norm on a reshaped input
                                "torch.nn.functional.instance_norm", "torch.instance_norm",
                                "torch.nn.functional.group_norm", "torch.group_norm",
                                "torch.nn.functional.layer_norm", "torch.layer_norm",
                                "torch.native_layer_norm", "torch.native_group_norm",
                                "torch.cudnn_batch_norm", "torch.miopen_batch_norm",
                                "torch.nn.InstanceNorm", "torch.nn.GroupNorm", "torch.nn.LayerNorm",
                                "torch.nn.modules.normalization", "torch.nn.modules.instancenorm"),
                     why="Do not call `F.batch_norm`, `nn.BatchNorm2d` or another normalisation of "
                         "PyTorch."))
