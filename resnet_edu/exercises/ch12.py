"""Checks for chapter 12, "Training fast".

- ``ch12-block-flops``: a function ``block_training_flops(in_channels,
  out_channels, stride, batch, height, width)`` returning the FLOPs of one
  training step (forward and backward) of
  ``resnet_edu.blocks.BasicBlock(in_channels, out_channels, stride)`` on an
  input of shape ``(batch, in_channels, height, width)`` that requires a
  gradient (as inside a network), counted as
  ``torch.utils.flop_counter.FlopCounterMode`` counts them: convolutions only,
  2 FLOPs per multiply-add, the backward pass of each convolution computing
  the gradients of its input and of its weights. The check compares the
  student's numbers with ``FlopCounterMode`` run on the real block for blocks
  with and without a projection shortcut and odd image sizes, and names the
  usual mistakes (MACs for FLOPs, the backward pass forgotten or half
  counted, the projection forgotten, output sizes rounded the wrong way).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import declare_function
from ._kit import FunctionCheck, Mistake, WrongForm

EXERCISE = "ch12-block-flops"

# (in_channels, out_channels, stride, batch, height, width): identity shortcut, projection
# shortcut, and odd sizes where halving must round up (7 -> 4, 9 -> 5).
_CASES = (
    (8, 8, 1, 2, 6, 6),
    (8, 16, 2, 4, 8, 8),
    (4, 8, 2, 3, 7, 9),
    (16, 16, 1, 1, 5, 9),
)


def measured_flops(in_channels, out_channels, stride, batch, height, width) -> int:
    """What ``FlopCounterMode`` counts for one forward and backward pass of the block."""
    from ..blocks import BasicBlock

    with torch.random.fork_rng(devices=[]):       # checking never moves the global RNG
        torch.manual_seed(0)
        block = BasicBlock(in_channels, out_channels, stride)
        x = torch.randn(batch, in_channels, height, width, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        block(x).sum().backward()
    return int(counter.get_total_flops())


def _forward_parts(in_channels, out_channels, stride, batch, height, width):
    """Forward FLOPs of the two 3x3 convolutions and of the projection (0 if none)."""
    out_h, out_w = (height - 1) // stride + 1, (width - 1) // stride + 1
    positions = batch * out_h * out_w
    convs = 2 * positions * out_channels * 9 * (in_channels + out_channels)
    projection = (2 * positions * out_channels * in_channels
                  if stride != 1 or in_channels != out_channels else 0)
    return convs, projection


def _floored(in_channels, out_channels, stride, batch, height, width) -> int:
    """Training FLOPs with the output sizes rounded down (H // stride)."""
    projection = in_channels if stride != 1 or in_channels != out_channels else 0
    positions = batch * (height // stride) * (width // stride)
    return 3 * 2 * positions * out_channels * (9 * (in_channels + out_channels) + projection)


def _forward(*case) -> int:
    return sum(_forward_parts(*case))


_MISTAKES = (
    Mistake(lambda *case: _forward(*case) // 2 * 3, "you counted multiply-adds (MACs). One "
            "multiply-add is 2 FLOPs (a multiplication and an addition), which is how "
            "flop_counter counts"),
    Mistake(_forward, "this is the forward pass only. Training also runs the backward pass, "
            "in which each convolution computes the gradient of its input and the gradient "
            "of its weights, each as many FLOPs as its forward pass: about 3x in all"),
    Mistake(lambda *case: 2 * _forward(*case), "the backward pass counts once per "
            "convolution; it computes two gradients (input and weights), each as costly as "
            "the forward pass"),
    Mistake(lambda *case: 3 * _forward_parts(*case)[0], "the 1x1 projection shortcut is "
            "missing: when the stride is 2 or the channels change, BasicBlock's shortcut is "
            "a 1x1 convolution (option B)"),
    Mistake(_floored, "the output size is rounded down. With padding 1 and a 3x3 kernel the "
            "output has (H - 1) // stride + 1 rows: 7 rows at stride 2 give 4, not 3"),
)


def _read(got, expected: int, case):
    if isinstance(got, bool) or not isinstance(got, (int, float)) or got != got:
        raise WrongForm(f"returned {got!r}; return a number (the FLOPs as an int).")
    return got


BLOCK_FLOPS = FunctionCheck(
    cases=_CASES, make_inputs=lambda case, generator: case, reference=measured_flops,
    read=_read, same=lambda got, expected: got == expected, mistakes=_MISTAKES,
    describe=lambda case, args: "block_training_flops({}, {}, {}, {}, {}, {})".format(*args),
    say=lambda where, got, expected, hint: (f"{where} = {got:,}, but flop_counter counts "
                                            f"{expected:,}: {hint}."),
    differs=lambda got, expected, case: (
        "it differs from what flop_counter counts. Per convolution: 2 x batch x H_out x "
        "W_out x C_out x C_in x k x k for the forward pass, twice that for the backward"),
    success=f"your counts equal flop_counter's on {len(_CASES)} blocks (identity and "
            f"projection shortcuts, odd image sizes): three times the forward FLOPs of the "
            f"convolutions.")


declare_function(EXERCISE, BLOCK_FLOPS, "block_training_flops", "A block's training FLOPs by hand")
