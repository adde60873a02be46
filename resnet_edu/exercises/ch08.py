"""Checks for chapter 8, "The full ResNet".

- ``ch08-param-count``: ``resnet_param_count(block, layers, num_classes=1000)``
  must return the number of parameters of ``ResNet(block, layers, num_classes)``
  without building it (the check compares with the real model).
- ``ch08-stage-shapes``: ``stage_output_shapes(block, height, width)`` must
  return the ``(C, H, W)`` after the stem and after each of the four stages,
  for an input image of ``height x width`` pixels.

The references are real models built on PyTorch's ``meta`` device: shapes
and parameter counts without memory or arithmetic.
"""
from __future__ import annotations

import operator
from typing import List, Tuple

import torch

from ..blocks import BasicBlock, Bottleneck
from ..models import ResNet
from ..stats import count_parameters
from . import declare_function
from ._kit import FunctionCheck, Mistake, Rules, WrongForm

_BLOCKS = (BasicBlock, Bottleneck)


def _name(block) -> str:
    return getattr(block, "__name__", repr(block))


def _meta_resnet(block, layers, num_classes=1000) -> ResNet:
    with torch.device("meta"):
        return ResNet(block, list(layers), num_classes=num_classes)


# ------------------------------------------------------------------ ch08-param-count
def formula_param_count(block, layers, num_classes=1000, bn_per_channel=2, fc_bias=True,
                        projections="where-needed", projection_bn=True) -> int:
    """Parameters of ``ResNet(block, layers, num_classes)`` by formula.

    The keyword arguments reproduce typical mistakes (for the check's hints):
    ``bn_per_channel=0`` forgets BatchNorm, ``4`` counts its running statistics;
    ``projections="strided"`` projects only where the stride is 2 (forgets the
    first bottleneck stage), ``"never"`` forgets projections.
    """
    expansion = block.expansion
    total = 3 * 64 * 7 * 7 + bn_per_channel * 64                       # stem conv + bn1
    channels = 64
    for stage, num_blocks in enumerate(layers):
        width = 64 * 2 ** stage
        out = width * expansion
        for i in range(num_blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            if block is Bottleneck:
                total += channels * width + 9 * width * width + width * out
                total += bn_per_channel * (width + width + out)
            else:
                total += 9 * channels * width + 9 * width * width
                total += bn_per_channel * (width + width)
            needed = stride != 1 or channels != out
            if (projections == "where-needed" and needed) or (
                    projections == "strided" and stride != 1):
                total += channels * out + (bn_per_channel * out if projection_bn else 0)
            channels = out
    return total + channels * num_classes + (num_classes if fc_bias else 0)


_PARAM_CASES = [
    (BasicBlock, [2, 2, 2, 2], 1000),
    (BasicBlock, [3, 4, 6, 3], 1000),
    (Bottleneck, [3, 4, 6, 3], 1000),
    (Bottleneck, [3, 4, 23, 3], 1000),
    (Bottleneck, [3, 8, 36, 3], 1000),
    (BasicBlock, [1, 1, 1, 1], 10),
    (Bottleneck, [1, 2, 1, 1], 10),
    (BasicBlock, [2, 3, 1, 2], 7),
]

_PARAM_MISTAKES = [
    (dict(bn_per_channel=0), "BatchNorm layers are missing: each BN has 2 parameters per "
     "channel (gamma and beta)."),
    (dict(bn_per_channel=4), "BatchNorm has 2 parameters per channel, not 4: running_mean and "
     "running_var are buffers, which count_parameters (and model.parameters()) leave out."),
    (dict(fc_bias=False), "the fully connected layer's bias (num_classes numbers) is missing."),
    (dict(projections="strided"), "the first block of a bottleneck network changes the channels "
     "(64 -> 256) without a stride, and also needs a projection shortcut there."),
    (dict(projections="never"), "the projection shortcuts are missing: every first block whose "
     "shape changes has a 1x1 convolution plus BatchNorm on its shortcut."),
    (dict(projection_bn=False), "each projection shortcut has a BatchNorm after its 1x1 "
     "convolution (2 parameters per output channel)."),
    (dict(projections="where-needed", bn_per_channel=0, fc_bias=False),
     "only the convolution weights are counted: add BatchNorm (2 per channel) and the fc bias."),
]


def _whole_number(got, expected: int, case) -> int:
    try:
        whole = not isinstance(got, bool) and int(got) == got
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise WrongForm(f"expected a whole number, got {got!r}.")
    return int(got)


def _count_differs(got: int, expected: int, args) -> str:
    block, _, num_classes = args
    stem = 3 * 64 * 49 + 2 * 64
    fc = 512 * block.expansion * num_classes + num_classes
    return (f"off by {got - expected:+,}. Of those, the stem has {stem:,} and the fc layer "
            f"{fc:,}; the rest sits in the four stages. Count one stage of ResNet-18 by hand "
            "and compare with count_parameters(model.layer2).")


def _counted_with(variant: dict):
    return lambda block, layers, num_classes: formula_param_count(block, layers, num_classes,
                                                                  **variant)


PARAM_COUNT = FunctionCheck(
    cases=tuple(_PARAM_CASES), make_inputs=lambda case, g: (case[0], list(case[1]), case[2]),
    reference=lambda block, layers, num_classes: count_parameters(
        _meta_resnet(block, layers, num_classes)),
    names=("block", "layers", "num_classes"), by_name=("num_classes",),
    read=_whole_number, same=operator.eq, differs=_count_differs,
    mistakes=tuple(Mistake(_counted_with(variant), hint) for variant, hint in _PARAM_MISTAKES),
    describe=lambda case, args: (f"For resnet_param_count({_name(args[0])}, {args[1]}, "
                                 f"num_classes={args[2]})"),
    say=lambda where, got, expected, hint: (f"{where}: you return {got:,}, the model has "
                                            f"{expected:,}: {hint}"),
    success=f"matches the real models on all {len(_PARAM_CASES)} configurations "
            "(ResNet-18 to -152 and a few made-up ones).")


declare_function("ch08-param-count", PARAM_COUNT, "resnet_param_count", "ResNet parameters by formula",
                 rules=Rules(forbidden=("resnet_edu", "torchvision", "torch.nn", "torch.empty",
                                        "torch.device", "torch.zeros", "torch.ones", "torch.randn"),
                             forbidden_imports=("resnet_edu", "torchvision"), no_modules=True,
                             why="Count the parameters without building any model (not even on "
                                 "the meta device): use the architecture, not `parameters()`."))


# ------------------------------------------------------------------ ch08-stage-shapes
def _reference_shapes(block, height, width) -> List[Tuple[int, int, int]]:
    model = _meta_resnet(block, [1, 1, 1, 1])
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, i, out: shapes.append(tuple(out.shape[1:])))
             for m in (model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4)]
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, height, width, device="meta"))
    for h in hooks:
        h.remove()
    return shapes


def _floor_shapes(block, height, width):
    shapes, h, w = [], height // 4, width // 4
    shapes.append((64, h, w))
    for stage in range(4):
        if stage:
            h, w = h // 2, w // 2
        shapes.append((64 * 2 ** stage * block.expansion, h, w))
    return shapes


_SHAPE_CASES = [(BasicBlock, 224, 224), (Bottleneck, 224, 224), (Bottleneck, 225, 225),
                (BasicBlock, 97, 130), (Bottleneck, 33, 47), (BasicBlock, 64, 64)]


def _five_shapes(got, expected, case) -> List[Tuple[int, ...]]:
    try:
        got = [tuple(int(v) for v in shape) for shape in got]
    except (TypeError, ValueError):
        raise WrongForm(f"return a list of five (C, H, W) tuples of integers, got "
                        f"{got!r}.") from None
    if len(got) != 5:
        raise WrongForm(f"expected five shapes (after the stem, then after layer1 ... "
                        f"layer4), got {len(got)}.")
    if any(len(s) != 3 for s in got):
        raise WrongForm(f"each shape is (C, H, W), without the batch dimension; got {got}.")
    return got


def _shapes_differ(got, expected, args) -> str:
    channels, expected_channels = [s[0] for s in got], [s[0] for s in expected]
    if channels != expected_channels:
        return (f"the channels are {channels}, expected {expected_channels}. The stem gives "
                "64; stage k outputs 64 * 2**k * block.expansion (expansion is 1 for "
                "BasicBlock, 4 for Bottleneck).")
    if got[0][1] == 2 * expected[0][1] or got[0][1] == 2 * expected[0][1] - 1:
        return (f"after the stem the size should be {expected[0][1:]}, you have "
                f"{got[0][1:]}. The stem halves twice: the 7x7 convolution with stride 2 and "
                "the 3x3 max pool with stride 2.")
    return (f"you got {got}, expected {expected}. The first stage keeps the size, each later "
            "stage halves it (rounding up), and each output size is floor((H + 2p - k) / s) "
            "+ 1.")


STAGE_SHAPES = FunctionCheck(
    cases=tuple(_SHAPE_CASES), make_inputs=lambda case, g: case, reference=_reference_shapes,
    read=_five_shapes, same=operator.eq, differs=_shapes_differ,
    mistakes=(Mistake(_floor_shapes, lambda *args: (
        f"you got {_floor_shapes(*args)}, expected {_reference_shapes(*args)}. Halving an odd "
        "size rounds *up* here: a 3x3 window with stride 2 and padding 1 gives floor((H - 1) "
        "/ 2) + 1 outputs (the 7x7 stem conv with padding 3 and the max pool too).")),),
    describe=lambda case, args: f"For stage_output_shapes({_name(args[0])}, {args[1]}, "
                                f"{args[2]})",
    success=f"matches a forward pass through the real model for all {len(_SHAPE_CASES)} "
            "input sizes (odd sizes included).")


declare_function("ch08-stage-shapes", STAGE_SHAPES, "stage_output_shapes", "Shapes through the stages",
                 rules=Rules(forbidden=("resnet_edu", "torchvision", "torch.nn", "torch.device"),
                             forbidden_imports=("resnet_edu", "torchvision"), no_modules=True,
                             why="Compute the shapes without running the model: use the output-size "
                                 "formula."))
