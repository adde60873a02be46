"""Checks for chapter 10, "Identity mappings: pre-activation".

- ``ch10-preact-block``: a class ``PreActResidualBlock(channels)`` computing the
  pre-activation block of He et al. (2016),
  ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))`` with no ReLU after the
  addition, with layers named ``bn1``, ``conv1``, ``bn2``, ``conv2`` (3x3
  convolutions with padding 1 and no bias). It is checked by
  :func:`resnet_edu.diagnostics.check_block` (the bugs of the original post
  and their relatives, for the feedback), against :class:`resnet_edu.blocks.PreActBlock`
  loaded with the same weights, in training and in evaluation mode, and for the property
  the chapter is about: with ``conv2``'s weights at zero the block is exactly the identity.
- ``ch10-relu-only-preact``: a class ``ReLUOnlyPreActBlock(in_channels, out_channels,
  stride=1)``, the "ReLU-only pre-activation" unit of He et al. (2016), Fig. 4(d):
  ``x + bn2(conv2(relu(bn1(conv1(relu(x))))))`` with nothing after the addition, layers named
  ``conv1``, ``bn1``, ``conv2``, ``bn2`` (3x3 convolutions, padding 1, no bias, the stride
  on ``conv1``) and an option-A shortcut ``downsample`` of ``x`` where the shape changes
  (``resnet_edu.blocks.make_shortcut("A", ...)``). It must follow the block protocol, so
  that ``CifarResNet(block=...)`` can stack it, and ``zero_init_residual_()`` must make a
  same-shape block exactly the identity. It is compared with a reference block of Fig. 4(d)
  written here, in training and in evaluation mode (outputs, gradients, running statistics).

Both are declared with :class:`~._modules.ModuleCheck`, run by one runner in the notebook
and by the grader.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import declare_module
from ._kit import OWN_BLOCK, randomise_
from ._modules import Identity, ModuleCheck, OutputMistake

PREACT_BLOCK = "ch10-preact-block"
EXERCISE = "ch10-relu-only-preact"
_SHAPES = ((8, 8, 1), (8, 16, 2))          # (in_channels, out_channels, stride)


def _fig_4d(x: torch.Tensor, conv1, bn1, conv2, bn2, stride: int,
            out_channels: int, first=torch.relu) -> torch.Tensor:
    """Fig. 4(d) from its four layers (callables): x + bn2(conv2(relu(bn1(conv1(relu(x)))))),
    the shortcut of option A (every stride-th pixel, zero channels appended). ``first``
    replaced by the identity gives a known mistake (no ReLU in front)."""
    out = bn2(conv2(torch.relu(bn1(conv1(first(x))))))
    shortcut = x[:, :, ::stride, ::stride]
    shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, out_channels - x.shape[1]))
    return out + shortcut


class ReLUOnlyPreActReference(nn.Module):
    """Fig. 4(d) with real layers: the reference of its ``ModuleCheck``, whose
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


def _zero_initialised(cls) -> nn.Module:
    """A same-shape block with random weights and statistics, then ``zero_init_residual_()``;
    a BatchNorm it zeroed gets beta = 0 as at initialisation. Only the BN that ends the
    branch makes the block the identity then (zeroing bn1 leaves bn2's statistics at work)."""
    block = cls(8, 8)
    randomise_(block, torch.Generator().manual_seed(3))
    block.zero_init_residual_()
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d) and not module.weight.any():
                module.bias.zero_()
    return block.eval()


def _protocol_problem(cls) -> str:
    """The block protocol, tested in process: ``check_block_class``, ``zero_init_residual_()``
    giving the exact identity, ``CifarResNet(block=cls)`` stacking it."""
    from ..blocks import check_block_class
    from ..models import CifarResNet
    try:
        check_block_class(cls)
    except TypeError as error:
        return str(error)
    block = _zero_initialised(cls)
    x = torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        if not torch.equal(block(x), x):
            return ("after zero_init_residual_() the block is not exactly the identity: zero "
                    "the gamma of the BN that ends the branch (last_bn should be bn2), and put "
                    "nothing after the addition.")
        logits = CifarResNet(8, in_channels=1, block=cls)(torch.randn(2, 1, 8, 8))
    if logits.shape != (2, 10):
        return (f"CifarResNet(8, block=...) gave logits of shape {tuple(logits.shape)}, "
                f"expected (2, 10).")
    return ""


_ORDER = (". Check the order: ReLU first, BN after each conv, nothing after the addition, "
          "and the stride on conv1")
RELU_ONLY = ModuleCheck(
    ReLUOnlyPreActReference, tuple((shape, (4, 8, 6, 6)) for shape in _SHAPES),
    "a reference block of Fig. 4(d)", atol=1e-4, rtol=1e-5,
    mistakes=(
        OutputMistake(lambda r, x: torch.relu(r(x)),
                      "Your block puts a ReLU after the addition; Fig. 4(d) has nothing after "
                      "the addition" + _ORDER),
        OutputMistake(lambda r, x: _fig_4d(x, r.conv1, r.bn1, r.conv2, r.bn2, r.stride,
                                           r.out_channels, first=lambda t: t),
                      "Your block has no ReLU in front of conv1" + _ORDER),
    ),
    requires=_protocol_problem,
    success="your block computes Fig. 4(d) of He et al. (2016) in training and evaluation "
            "mode (outputs, gradients and running statistics), starts as the exact identity "
            "after zero_init_residual_(), and CifarResNet stacks it.")

declare_module(EXERCISE, RELU_ONLY, "ReLUOnlyPreActBlock", "ReLU-only pre-activation")


# ------------------------------------------------------------ ch10-preact-block
_PREACT_CHANNELS = (4, 8)


def _mistakes() -> tuple:
    """The usual wrong blocks, from the reference's layers (``r``, in the mode under test)."""
    relu = torch.relu

    def branch(r, start):
        return r.conv2(relu(r.bn2(r.conv1(start))))

    return tuple(OutputMistake(expected, hint) for expected, hint in [
        (lambda r, x: relu(branch(r, relu(r.bn1(x))) + x),
         "there is a ReLU after the addition. A pre-activation block returns "
         "x + F(x) untouched; that is what lets it be an exact identity"),
        (lambda r, x: relu(r.bn2(r.conv2(relu(r.bn1(r.conv1(x))))) + x),
         "this is the original post-activation block (BasicBlock): conv -> BN -> ReLU and a "
         "ReLU after the addition. Pre-activation moves BN and ReLU in front of each "
         "convolution (bn1 -> relu -> conv1 -> bn2 -> relu -> conv2) and adds x at the end, "
         "with nothing after the addition"),
        (lambda r, x: r.bn2(r.conv2(relu(r.bn1(r.conv1(x))))) + x,
         "this is the original (post-activation) order conv -> BN -> ReLU. Pre-activation "
         "moves BN and ReLU in front of each convolution: bn1 -> relu -> conv1 -> bn2 -> "
         "relu -> conv2"),
        (lambda r, x: branch(r, relu(r.bn1(x))) + relu(r.bn1(x)),
         "the skip connection carries relu(bn1(x)) instead of x itself. Keep identity = x "
         "before bn1 and add that"),
        (lambda r, x: r.conv2(r.bn2(r.conv1(relu(r.bn1(x))))) + x,
         "the ReLU between bn2 and conv2 is missing"),
        (lambda r, x: r.conv2(relu(r.bn2(r.conv1(r.bn1(x))))) + x,
         "the ReLU between bn1 and conv1 is missing"),
    ])


def _package_block(channels: int) -> nn.Module:
    from ..blocks import PreActBlock

    return PreActBlock(channels, channels)


def _structural_finding(PreActResidualBlock) -> str:
    """check_block's findings on ``PreActResidualBlock(4)``, for the feedback only."""
    from ..diagnostics import check_block

    try:
        report = check_block(PreActResidualBlock(_PREACT_CHANNELS[0]),
                             (2, _PREACT_CHANNELS[0], 6, 6))
    except Exception:  # noqa: BLE001 - the runner's sentence reports a block that crashes
        return ""
    return "" if report.ok else (f"check_block found a problem in PreActResidualBlock"
                                 f"({_PREACT_CHANNELS[0]}): "
                                 + " ".join(str(p) for p in report.problems[:2]))


def _zero_conv2(state: dict) -> None:
    state["conv2.weight"].zero_()


PREACT = ModuleCheck(
    _package_block, tuple(((c,), (4, c, 5, 6)) for c in _PREACT_CHANNELS),
    "resnet_edu's PreActBlock", mistakes=_mistakes(),
    properties=(Identity(_zero_conv2, "with conv2's weights at zero",
                         "Make sure nothing (no ReLU, no BatchNorm) is applied after the "
                         "addition."),),
    explain=_structural_finding,
    success="check_block finds no problem; with the same weights your block computes what "
            "resnet_edu's PreActBlock computes (outputs, gradients and running statistics), "
            "in training and evaluation mode; and with conv2 at zero it is exactly the "
            "identity.")

declare_module(PREACT_BLOCK, PREACT, "PreActResidualBlock", "A pre-activation residual block",
               rules=OWN_BLOCK)
