"""Checks for chapter 10, "Identity mappings: pre-activation".

- ``ch10-relu-only-preact``: a class ``ReLUOnlyPreActBlock(in_channels, out_channels,
  stride=1)``, the "ReLU-only pre-activation" unit of He et al. (2016), Fig. 4(d):
  ``x + bn2(conv2(relu(bn1(conv1(relu(x))))))`` with nothing after the addition, layers named
  ``conv1``, ``bn1``, ``conv2``, ``bn2`` (3x3 convolutions, padding 1, no bias, the stride
  on ``conv1``) and an option-A shortcut ``downsample`` of ``x`` where the shape changes
  (``resnet_edu.blocks.make_shortcut("A", ...)``). It must follow the block protocol, so
  that ``CifarResNet(block=...)`` can stack it, and ``zero_init_residual_()`` must make a
  same-shape block exactly the identity. It is compared with a functional reference written
  here from its ``state_dict``, in training and in evaluation mode.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from . import Feedback, register
from ._kit import ModuleProbe

EXERCISE = "ch10-relu-only-preact"
_KEYS = {f"{layer}.{name}" for layer in ("bn1", "bn2")
         for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
_KEYS |= {"conv1.weight", "conv2.weight"}
_SHAPES = ((8, 8, 1), (8, 16, 2))          # (in_channels, out_channels, stride)


def _fig_4d(x: torch.Tensor, conv1, bn1, conv2, bn2, stride: int,
            out_channels: int) -> torch.Tensor:
    """Fig. 4(d) from its four layers (callables): x + bn2(conv2(relu(bn1(conv1(relu(x)))))),
    the shortcut of option A (every stride-th pixel, zero channels appended)."""
    out = bn2(conv2(torch.relu(bn1(conv1(torch.relu(x))))))
    shortcut = x[:, :, ::stride, ::stride]
    shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out_channels - x.shape[1]))
    return out + shortcut


def _reference(sd: dict, x: torch.Tensor, stride: int, out_channels: int,
               training: bool) -> torch.Tensor:
    """Fig. 4(d) from the state_dict: x + BN(conv(ReLU(BN(conv(ReLU(x))))))."""
    def bn(p):
        mean, var = (None, None) if training else (sd[p + "running_mean"], sd[p + "running_var"])
        return lambda t: F.batch_norm(t, mean, var, sd[p + "weight"], sd[p + "bias"],
                                      training=training)

    def conv(key, step):
        return lambda t: F.conv2d(t, sd[key], stride=step, padding=1)

    return _fig_4d(x, conv("conv1.weight", stride), bn("bn1."), conv("conv2.weight", 1),
                   bn("bn2."), stride, out_channels)


class ReLUOnlyPreActReference(nn.Module):
    """Fig. 4(d) with real layers: the grader's reference (its ``ModuleProbe``), whose
    gradients and running statistics are those of ``nn.Conv2d`` and ``nn.BatchNorm2d``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        from ..blocks import conv3x3

        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.out_channels = stride, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fig_4d(x, self.conv1, self.bn1, self.conv2, self.bn2, self.stride,
                       self.out_channels)


def _randomise_(block: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, t in list(block.named_parameters()) + list(block.named_buffers()):
            if t.is_floating_point():
                v = torch.randn(t.shape, generator=generator)
                t.copy_(v.abs() + 0.5 if name.endswith(("running_var", "bn1.weight",
                                                        "bn2.weight")) else v * 0.3)


def _compare(cls, in_channels: int, out_channels: int, stride: int) -> str:
    block = cls(in_channels, out_channels, stride)
    keys = set(block.state_dict())
    if keys != _KEYS:
        return (f"{cls.__name__}({in_channels}, {out_channels}, {stride}) has the parameters "
                f"{sorted(keys - _KEYS) or '-'} too many and {sorted(_KEYS - keys) or '-'} "
                f"missing: name the layers conv1, bn1, conv2, bn2 (convolutions without bias) "
                f"and use option A (no parameters) for the shortcut.")
    _randomise_(block, torch.Generator().manual_seed(in_channels + stride))
    x = torch.randn(4, in_channels, 6, 6, generator=torch.Generator().manual_seed(1))
    for training in (True, False):
        work = copy.deepcopy(block).train(training)
        sd = {k: v.clone() for k, v in work.state_dict().items()}
        with torch.no_grad():
            got = work(x.clone())
            expected = _reference(sd, x, stride, out_channels, training)
        if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-4):
            mode = "training" if training else "evaluation"
            shapes = ("" if got.shape == expected.shape else
                      f" (output shape {tuple(got.shape)}, expected {tuple(expected.shape)})")
            return (f"in {mode} mode {cls.__name__}({in_channels}, {out_channels}, {stride}) "
                    f"does not compute x + bn2(conv2(relu(bn1(conv1(relu(x))))))" + shapes
                    + ". Check the order: ReLU first, BN after each conv, nothing after the "
                    "addition, and the stride on conv1.")
    return ""


def _zero_initialised(cls) -> nn.Module:
    """A same-shape block with random weights and statistics, then ``zero_init_residual_()``;
    a BatchNorm it zeroed gets beta = 0 as at initialisation. Only the BN that ends the
    branch makes the block the identity then (zeroing bn1 leaves bn2's statistics at work)."""
    block = cls(8, 8)
    _randomise_(block, torch.Generator().manual_seed(3))
    block.zero_init_residual_()
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d) and not module.weight.any():
                module.bias.zero_()
    return block.eval()


@register(EXERCISE, names=["ReLUOnlyPreActBlock"], title="ReLU-only pre-activation",
          probe=ModuleProbe(ReLUOnlyPreActReference, tuple((shape, (4, 8, 6, 6)) for shape in
                                                           _SHAPES),
                            "a reference block of Fig. 4(d)", atol=1e-4,
                            rtol=1e-5))
def _check_relu_only_preact(cls) -> Feedback:
    from ..blocks import check_block_class
    from ..models import CifarResNet
    try:
        check_block_class(cls)
    except TypeError as error:
        return Feedback(EXERCISE, False, str(error))
    for shape in _SHAPES:
        problem = _compare(cls, *shape)
        if problem:
            return Feedback(EXERCISE, False, problem)
    block = _zero_initialised(cls)
    x = torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        if not torch.equal(block(x), x):
            return Feedback(EXERCISE, False, "after zero_init_residual_() the block is not "
                            "exactly the identity: zero the gamma of the BN that ends the branch "
                            "(last_bn should be bn2), and put nothing after the addition.")
        logits = CifarResNet(8, in_channels=1, block=cls)(torch.randn(2, 1, 8, 8))
    if logits.shape != (2, 10):
        return Feedback(EXERCISE, False, f"CifarResNet(8, block=...) gave logits of shape "
                        f"{tuple(logits.shape)}, expected (2, 10).")
    return Feedback(EXERCISE, True, "your block computes Fig. 4(d) of He et al. (2016) in "
                    "training and evaluation mode, starts as the exact identity after "
                    "zero_init_residual_(), and CifarResNet stacks it.")
