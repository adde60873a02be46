"""Checks for chapter 7, "Bottleneck blocks".

- ``ch07-bottleneck-block``: a class ``MyBottleneck(in_channels, width, stride=1)``
  that is torchvision's bottleneck ("v1.5": stride on the 3x3, option-B
  shortcut) with the attribute names of :class:`resnet_edu.blocks.Bottleneck`.
  One :class:`~._modules.ModuleCheck`: the runner loads the same random weights into the
  student's block and the package's and compares outputs, gradients and running statistics
  in training and evaluation mode; the known mistakes and the layer hints name what is
  wrong.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..blocks import Bottleneck
from ..stats import count_parameters
from . import declare_module
from ._kit import OWN_BLOCK
from ._modules import ModuleCheck, OutputMistake

# (in_channels, width, stride): identity shortcut, projections, a stride of 2
_BOTTLENECK_CASES = [
    (16, 4, 1),       # 16 -> 16: identity shortcut
    (8, 4, 1),        # 8 -> 16: projection without stride (as in the first stage of ResNet-50)
    (16, 8, 2),       # 16 -> 32 and half the size: projection with stride 2
    (32, 8, 1),       # 32 -> 32
]


def _branch(block, x: torch.Tensor) -> torch.Tensor:
    out = block.relu(block.bn1(block.conv1(x)))
    out = block.relu(block.bn2(block.conv2(out)))
    return block.bn3(block.conv3(out))


def _stride_on_1x1(reference, x: torch.Tensor) -> torch.Tensor:
    """The paper's placement of the stride (first 1x1), with the reference's weights."""
    stride = reference.conv2.stride[0]
    if stride == 1:
        raise ValueError("no stride to misplace")
    paper = Bottleneck(reference.conv1.in_channels, reference.conv1.out_channels, stride,
                       stride_on="1x1")
    paper.load_state_dict(reference.state_dict())
    return paper.train(reference.training)(x)


_MISTAKES = (
    OutputMistake(_stride_on_1x1,
                  "You put the stride on the first 1x1 convolution (the paper's original "
                  "placement). This exercise asks for torchvision's 'v1.5' placement: stride "
                  "1 in conv1, the stride in conv2 (the 3x3)"),
    OutputMistake(lambda r, x: _branch(r, x) + r.downsample(x),
                  "There is no ReLU after the addition: the block returns bn3(...) + "
                  "shortcut(x). The paper's block ends with relu(F(x) + shortcut(x))"),
    OutputMistake(lambda r, x: torch.relu(_branch(r, x)) + r.downsample(x),
                  "The last ReLU sits before the addition (relu(bn3(...)) + shortcut(x)). "
                  "Add first, then apply the ReLU"),
    OutputMistake(lambda r, x: torch.relu(_branch(r, x)),
                  "The output ignores the shortcut: add shortcut(x) (self.downsample(x)) to "
                  "the residual branch before the last ReLU"),
    OutputMistake(lambda r, x: torch.relu(r.downsample(x)),
                  "The output is only the shortcut: the residual branch conv1 -> conv2 -> "
                  "conv3 is not added"),
)


def _layer_hint(MyBottleneck) -> str:
    """For the feedback: how the block's layers differ from the package's, or how its
    forward pass fails, on the first case where they do."""
    for in_channels, width, stride in _BOTTLENECK_CASES:
        where = f"For MyBottleneck({in_channels}, {width}, stride={stride})"
        try:
            block = MyBottleneck(in_channels, width, stride)
            problem = _layer_mismatch(where, block, Bottleneck(in_channels, width, stride))
            if problem:
                return problem
            size = 9 if stride > 1 else 6      # an odd size at stride 2 checks the padding
            with torch.no_grad():
                block(torch.zeros(2, in_channels, size, size))
        except RuntimeError as exc:
            return (f"{where}: the forward pass failed: {exc}. If the two paths have "
                    "different sizes, check that conv2 (the 3x3) has padding 1 and that the "
                    "stride goes into conv2 and the shortcut.")
        except Exception:  # noqa: BLE001 - the runner's sentence reports it
            return ""
    return ""


BOTTLENECK = ModuleCheck(
    Bottleneck, tuple(((i, w, s), (2, i) + (9 if s > 1 else 6,) * 2)
                      for i, w, s in _BOTTLENECK_CASES),
    "resnet_edu's Bottleneck", mistakes=_MISTAKES, explain=_layer_hint,
    success=f"loads resnet_edu's Bottleneck weights strictly and gives the same outputs, "
            f"gradients and running statistics in train and eval mode on all "
            f"{len(_BOTTLENECK_CASES)} cases (identity and projection shortcuts, stride 2).")

declare_module("ch07-bottleneck-block", BOTTLENECK, "MyBottleneck", "A bottleneck block",
               rules=OWN_BLOCK)


def _layer_mismatch(where: str, block: nn.Module, reference: nn.Module) -> Optional[str]:
    """Why the block's layers differ from the reference's (names, shapes, count), or None."""
    # 1. the same layers: parameter names and shapes
    expected = {k: v.shape for k, v in reference.state_dict().items()}
    got = {k: v.shape for k, v in block.state_dict().items()}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    if missing or unexpected:
        hint = ""
        if any(k.endswith(".bias") and k.startswith("conv") for k in unexpected):
            hint = (" Your convolutions have a bias: pass bias=False, the BatchNorm after "
                    "each of them has its own shift.")
        elif any(k.startswith("downsample") for k in missing):
            hint = (" The shapes differ here, so the shortcut must be a projection: "
                    "self.downsample = nn.Sequential(1x1 conv with the stride, BatchNorm).")
        elif any(k.startswith("downsample") for k in unexpected):
            hint = (" Input and output have the same shape here, so the shortcut is the "
                    "identity: self.downsample = nn.Identity() (option B projects only "
                    "where the shape changes).")
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:4])}"
                         + (" ..." if len(missing) > 4 else ""))
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:4])}"
                         + (" ..." if len(unexpected) > 4 else ""))
        return (f"{where}: the state_dict keys differ from "
                f"resnet_edu's Bottleneck ({'; '.join(parts)}). Name the layers "
                "conv1, bn1, conv2, bn2, conv3, bn3 and downsample." + hint)
    wrong = [k for k in expected if got[k] != expected[k]]
    if wrong:
        k = wrong[0]
        return (f"{where}: {k} has shape {tuple(got[k])}, expected "
                f"{tuple(expected[k])}. conv1 reduces in_channels to width, conv2 "
                "is a 3x3 from width to width, conv3 expands to 4 * width.")
    if count_parameters(block) != count_parameters(reference):
        return (f"{where}: the block has "
                f"{count_parameters(block):,} parameters, expected "
                f"{count_parameters(reference):,}; remove the extra layers.")
    return None
