"""Checks for chapter 6, "Shortcuts when shapes change".

- ``ch06-shortcut-a``: ``shortcut_a(x, out_channels, stride)`` must compute the
  option-A shortcut of :class:`resnet_edu.blocks.ShortcutA`: keep every
  ``stride``-th pixel (starting at the first) and append zero channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..blocks import ShortcutA
from . import Feedback, register
from ._kit import Rules, generator

# (N, C_in, H, W, out_channels, stride): identity first, then growing difficulty
_SHORTCUT_CASES = [
    (2, 4, 6, 6, 4, 1),
    (2, 4, 8, 8, 8, 2),
    (1, 16, 32, 32, 32, 2),
    (3, 3, 7, 9, 6, 2),        # odd sizes: the output keeps positions 0, 2, 4, 6 (rounds up)
    (2, 5, 9, 9, 12, 3),
    (1, 6, 5, 5, 6, 2),        # stride 2 without new channels
]


def _describe(case) -> str:
    n, c, h, w, out_channels, stride = case
    return f"x of shape ({n}, {c}, {h}, {w}) with out_channels={out_channels}, stride={stride}"


def _pad_channels(x: torch.Tensor, front: int, back: int) -> torch.Tensor:
    return F.pad(x, (0, 0, 0, 0, front, back))


def _shape_hint(got: torch.Tensor, expected: torch.Tensor, case) -> str:
    """What a wrong output shape of the shortcut tells about the mistake."""
    _, c, h, w, out_channels, stride = case
    e_c, e_h = expected.shape[1:3]
    if got.dim() == 4 and got.shape[2:] == (h, w) and stride > 1:
        hint = (f"the spatial size is still {h}x{w}: subsample with "
                f"x[:, :, ::{stride}, ::{stride}] so the shortcut matches the strided "
                "convolution of the residual branch.")
    elif got.dim() == 4 and got.shape[2:] == (h // stride, w // stride):
        hint = ("odd sizes must round up, like a strided convolution with padding "
                f"({h} -> {e_h}): keep positions 0, {stride}, {2 * stride}, ... with "
                "x[:, :, ::stride, ::stride] instead of pooling or cropping.")
    elif got.dim() == 4 and got.shape[1] != e_c:
        hint = (f"the output must have out_channels={out_channels} channels: append "
                f"{out_channels - c} zero channels to the {c} input channels.")
    else:
        hint = "the output is (N, out_channels, ceil(H / stride), ceil(W / stride))."
    return hint


def _value_mistake(got_values: torch.Tensor, x: torch.Tensor, expected: torch.Tensor,
                   case) -> str:
    """Which known mistake explains wrong values of the right shape (or what differs)."""
    _, c, h, w, out_channels, stride = case
    extra = out_channels - c
    sub = x.detach()[:, :, ::stride, ::stride]
    if extra and torch.equal(got_values, _pad_channels(sub, extra, 0)):
        return ("your zero channels come first. "
                "Option A here (and ShortcutA) keeps the input channels as "
                "channels 0..C_in-1 and puts the zeros after them.")
    if extra and torch.equal(got_values, _pad_channels(sub, extra // 2,
                                                        extra - extra // 2)):
        return ("you split the zeros between "
                "both ends. That works in a network too, but ShortcutA (and this "
                "exercise) appends all of them after the input channels.")
    if stride > 1 and h % stride == 0 and w % stride == 0 and torch.allclose(
            got_values, _pad_channels(F.avg_pool2d(x.detach(), stride), 0, extra)):
        return (f"you averaged {stride}x{stride} "
                "windows. Option A has no arithmetic at all: it keeps the "
                f"top-left pixel of each {stride}x{stride} window (x[:, :, "
                f"::{stride}, ::{stride}]), as a 1x1 convolution with stride "
                f"{stride} does.")
    if stride > 1 and h % stride == 0 and w % stride == 0 and torch.equal(
            got_values, _pad_channels(F.max_pool2d(x.detach(), stride), 0, extra)):
        return (f"you took the maximum of each "
                f"{stride}x{stride} window. Option A keeps the top-left pixel "
                f"of each window (x[:, :, ::{stride}, ::{stride}]), whatever its "
                "value, as a strided 1x1 convolution does.")
    if stride > 1:
        shifted = x.detach()[:, :, 1::stride, 1::stride]
        if shifted.shape == sub.shape and torch.equal(
                got_values, _pad_channels(shifted, 0, extra)):
            return ("you kept the pixels at "
                    f"positions 1, {1 + stride}, ...; start at 0 "
                    f"(x[:, :, ::{stride}, ::{stride}]), which is where a "
                    "padded strided convolution centres its outputs.")
    if torch.equal(got_values[:, :c], expected[:, :c]):
        return (f"the first {c} channels are right, "
                "but the added channels are not all zero. Option A pads with "
                "zeros, which is why it has no parameters.")
    return ("the shape is right but the values "
            "differ from ShortcutA (largest difference "
            f"{float((got_values - expected).abs().max()):.3g}). Keep every "
            f"stride-th pixel of every channel and append zero channels.")


@register("ch06-shortcut-a", names=["shortcut_a"], title="Option A by hand", observe=True,
          rules=Rules(forbidden=("resnet_edu",), forbidden_imports=("resnet_edu",),
                      why="Use only tensor operations (no `ShortcutA`)."))
def _check_shortcut_a(shortcut_a) -> Feedback:
    exercise = "ch06-shortcut-a"
    g = generator(606)
    for case in _SHORTCUT_CASES:
        n, c, h, w, out_channels, stride = case
        where = f"On {_describe(case)}"
        x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
        before = x.detach().clone()
        expected = ShortcutA(c, out_channels, stride)(x.detach())
        got = shortcut_a(x, out_channels, stride)
        if not isinstance(got, torch.Tensor):
            return Feedback(exercise, False, f"{where}: expected a torch.Tensor, got "
                            f"{type(got).__name__}. Return the shortcut's output.")
        if not torch.equal(x.detach(), before):
            return Feedback(exercise, False, f"{where}: your function changed `x` in place. "
                            "Build a new tensor (slicing and F.pad or torch.cat do).")
        if got.shape != expected.shape:
            return Feedback(exercise, False, f"{where}: the output shape is "
                            f"{tuple(got.shape)}, expected {tuple(expected.shape)}; "
                            f"{_shape_hint(got, expected, case)}")
        got_values = got.detach().to(expected.dtype)
        if not torch.equal(got_values, expected):
            mistake = _value_mistake(got_values, x, expected, case)
            return Feedback(exercise, False, f"{where}: {mistake}")
        if not got.requires_grad:
            return Feedback(exercise, False, f"{where}: the values are right, but no gradient "
                            "can flow back to x (the output does not require grad). Build it from "
                            "x with differentiable operations (slicing, F.pad, torch.cat), not "
                            "under torch.no_grad() or through .detach()/.numpy().")
        got.sum().backward()
        grad_expected = torch.zeros_like(before)
        grad_expected[:, :, ::stride, ::stride] = 1
        if x.grad is None or not torch.equal(x.grad, grad_expected):
            return Feedback(exercise, False, f"{where}: the values are right, but the gradient "
                            "reaching x is wrong: each kept pixel should receive exactly the "
                            "gradient of its output pixel, every other pixel none.")
    return Feedback(exercise, True, f"matches ShortcutA on all {len(_SHORTCUT_CASES)} cases "
                    "(identity, strides 2 and 3, odd sizes) and passes gradients back to x.")
