"""Checks for chapter 1, "A single convolution".

- ``ch01-conv2d-by-hand``: ``conv2d_by_hand(x, weight, bias=None, stride=1, padding=0)``
  must compute what ``F.conv2d`` computes (groups=1, dilation=1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import declare_function
from ._kit import FunctionCheck, Mistake, Rules, WrongForm

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


def _draw(case, g: torch.Generator) -> tuple:
    """The arguments of one case: ``(x, weight, bias, stride, padding)`` in float64."""
    n, c_in, h, w, c_out, kh, kw, stride, padding, with_bias = case
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64) if with_bias else None
    return x, weight, bias, stride, padding


def _describe(case, args) -> str:
    n, c_in, h, w, c_out, kh, kw, stride, padding, with_bias = case
    return (f"On x of shape ({n}, {c_in}, {h}, {w}), weight ({c_out}, {c_in}, {kh}, {kw}), "
            f"stride={stride}, padding={padding}, bias={'yes' if with_bias else 'None'}")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    # loose enough for a float32 accumulator, tight enough to catch any real mistake
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def _read(got, expected: torch.Tensor, case) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise WrongForm(f"expected a torch.Tensor, got {type(got).__name__}. "
                        "Return the output tensor.")
    if got.shape != expected.shape:
        hint = ("Each output side is floor((H + 2*padding - kernel) / stride) + 1: "
                "check that you pad both sides and step by `stride`.")
        if got.dim() == 4 and got.shape[1] != expected.shape[1]:
            hint = ("The output has one channel per filter, i.e. weight.shape[0]; "
                    "sum over the input channels.")
        raise WrongForm(f"the output shape is {tuple(got.shape)}, expected "
                        f"{tuple(expected.shape)}. {hint}")
    return got.to(expected.dtype)


def _differs(got: torch.Tensor, expected: torch.Tensor, args) -> str:
    return (f"the shape is right but the values differ from F.conv2d (largest difference "
            f"{float((got - expected).abs().max()):.3g}). Check the window position of "
            "output pixel (i, j): rows i*stride ... i*stride+kH-1 of the zero-padded input, "
            "and that you sum over input channels and both kernel axes.")


def _twice(bias):
    return None if bias is None else 2 * bias


_MISTAKES = (
    Mistake(lambda x, w, b, s, p: F.conv2d(x, w.flip(-1, -2), b, s, p),
            "you computed the textbook convolution with a flipped kernel. PyTorch's Conv2d "
            "does not flip it (it is a cross-correlation): multiply each patch with the "
            "weight as it is."),
    Mistake(lambda x, w, b, s, p: F.conv2d(x, w, None, s, p),     # == F.conv2d without bias
            "the values are right except that the bias is missing. Add bias[c] to every "
            "pixel of output channel c when bias is not None."),
    Mistake(lambda x, w, b, s, p: F.conv2d(x, w, _twice(b), s, p),
            "the bias was added twice."),
)

CONV2D_BY_HAND = FunctionCheck(
    cases=tuple(_CONV_CASES), make_inputs=_draw, seed=2024,
    reference=lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p),
    names=("x", "weight", "bias", "stride", "padding"), by_name=("stride", "padding"),
    in_place="Work on new tensors (e.g. `F.pad(x, ...)` or `out = out + ...`) instead.",
    read=_read, same=_close, mistakes=_MISTAKES, describe=_describe, differs=_differs,
    success=f"matches F.conv2d on all {len(_CONV_CASES)} test cases "
            "(batches, several channels, bias, stride and padding).")


declare_function("ch01-conv2d-by-hand", CONV2D_BY_HAND, "conv2d_by_hand", "Conv2d by hand",
                 rules=Rules(
                     forbidden=("torch.nn.functional.conv", "torch.conv", "torch.nn.Conv",
                                "torch.nn.modules.conv", "torch.nn.functional.unfold",
                                "torch.nn.Unfold", "torch.nn.grad", "torch.nn.LazyConv",
                                "torch.mkldnn_", "torch.cudnn_", "torch.miopen_"),
                     why="Do not call `F.conv2d`, `nn.Conv2d` or another convolution of PyTorch: "
                         "compute the convolution yourself."))
