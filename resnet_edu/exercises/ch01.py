"""Checks for chapter 1, "A single convolution".

- ``ch01-conv2d-by-hand``: ``conv2d_by_hand(x, weight, bias=None, stride=1, padding=0)``
  must compute what ``F.conv2d`` computes (groups=1, dilation=1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import Feedback, register
from ._kit import Rules, generator

# (N, C_in, H, W, C_out, kH, kW, stride, padding, with_bias): small, then harder
_CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 0, False),
    (2, 3, 6, 7, 4, 3, 3, 1, 0, False),
    (2, 3, 6, 7, 4, 3, 3, 1, 0, True),
    (2, 2, 7, 7, 3, 3, 3, 1, 1, True),
    (1, 3, 9, 8, 2, 3, 3, 2, 0, False),
    (2, 2, 10, 9, 5, 3, 2, 2, 1, True),
    (1, 4, 11, 11, 3, 5, 5, 3, 2, True),
]


def _describe(case) -> str:
    n, c_in, h, w, c_out, kh, kw, stride, padding, with_bias = case
    return (f"x of shape ({n}, {c_in}, {h}, {w}), weight ({c_out}, {c_in}, {kh}, {kw}), "
            f"stride={stride}, padding={padding}, bias={'yes' if with_bias else 'None'}")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    # loose enough for a float32 accumulator, tight enough to catch any real mistake
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-4)


@register("ch01-conv2d-by-hand", names=["conv2d_by_hand"], title="Conv2d by hand",
          observe=True, rules=Rules(
              forbidden=("torch.nn.functional.conv", "torch.conv", "torch.nn.Conv",
                         "torch.nn.modules.conv", "torch.nn.functional.unfold",
                         "torch.nn.Unfold", "torch.nn.grad", "torch.nn.LazyConv"),
              why="Do not call `F.conv2d`, `nn.Conv2d` or another convolution of PyTorch: "
                  "compute the convolution yourself."))
def _check_conv2d_by_hand(conv2d_by_hand) -> Feedback:
    exercise = "ch01-conv2d-by-hand"
    g = generator(2024)
    for case in _CONV_CASES:
        n, c_in, h, w, c_out, kh, kw, stride, padding, with_bias = case
        x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
        weight = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=torch.float64)
        bias = torch.randn(c_out, generator=g, dtype=torch.float64) if with_bias else None
        inputs = [t.clone() for t in (x, weight) + ((bias,) if with_bias else ())]
        expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
        got = conv2d_by_hand(x, weight, bias, stride=stride, padding=padding)
        where = f"On {_describe(case)}"
        if not isinstance(got, torch.Tensor):
            return Feedback(exercise, False, f"{where}: expected a torch.Tensor, got "
                            f"{type(got).__name__}. Return the output tensor.")
        for name, before, now in zip(("x", "weight", "bias"), inputs,
                                     (x, weight, bias)):
            if not torch.equal(before, now):
                return Feedback(exercise, False, f"{where}: your function changed its input "
                                f"`{name}` in place. Work on new tensors (e.g. "
                                f"`F.pad(x, ...)` or `out = out + ...`) instead.")
        if got.shape != expected.shape:
            hint = ("Each output side is floor((H + 2*padding - kernel) / stride) + 1: "
                    "check that you pad both sides and step by `stride`.")
            if got.dim() == 4 and got.shape[1] != c_out:
                hint = ("The output has one channel per filter, i.e. weight.shape[0]; "
                        "sum over the input channels.")
            return Feedback(exercise, False, f"{where}: the output shape is "
                            f"{tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}")
        got = got.to(expected.dtype)
        if _close(got, expected):
            continue
        flipped = F.conv2d(x, weight.flip(-1, -2), bias, stride=stride, padding=padding)
        if _close(got, flipped):
            return Feedback(exercise, False, f"{where}: you computed the textbook convolution "
                            "with a flipped kernel. PyTorch's Conv2d does not flip it (it is a "
                            "cross-correlation): multiply each patch with the weight as it is.")
        if with_bias and _close(got, expected - bias.reshape(1, -1, 1, 1)):
            return Feedback(exercise, False, f"{where}: the values are right except that the "
                            "bias is missing. Add bias[c] to every pixel of output channel c "
                            "when bias is not None.")
        if with_bias and _close(got, expected + bias.reshape(1, -1, 1, 1)):
            return Feedback(exercise, False, f"{where}: the bias was added twice.")
        largest = float((got - expected).abs().max())
        return Feedback(exercise, False, f"{where}: the shape is right but the values differ "
                        f"from F.conv2d (largest difference {largest:.3g})."
                        " Check the window position of output pixel (i, j): rows "
                        "i*stride ... i*stride+kH-1 of the zero-padded input, and that you "
                        "sum over input channels and both kernel axes.")
    return Feedback(exercise, True, f"matches F.conv2d on all {len(_CONV_CASES)} test cases "
                    "(batches, several channels, bias, stride and padding).")
