"""Checks for chapter 6, "Shortcuts when shapes change".

- ``ch06-shortcut-a``: ``shortcut_a(x, out_channels, stride)`` must compute the
  option-A shortcut of :class:`resnet_edu.blocks.ShortcutA`: keep every
  ``stride``-th pixel (starting at the first) and append zero channels.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..blocks import ShortcutA
from . import declare_function
from ._kit import FunctionCheck, Mistake, Rules, WrongForm

# (N, C_in, H, W, out_channels, stride): identity first, then growing difficulty
_SHORTCUT_CASES = [
    (2, 4, 6, 6, 4, 1),
    (2, 4, 8, 8, 8, 2),
    (1, 16, 32, 32, 32, 2),
    (3, 3, 7, 9, 6, 2),        # odd sizes: the output keeps positions 0, 2, 4, 6 (rounds up)
    (2, 5, 9, 9, 12, 3),
    (1, 6, 5, 5, 6, 2),        # stride 2 without new channels
]


def _draw(case, g: torch.Generator) -> tuple:
    """The arguments of one case: ``(x, out_channels, stride)``, x requiring grad."""
    n, c, h, w, out_channels, stride = case
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64, requires_grad=True)
    return x, out_channels, stride


def _describe(case, args) -> str:
    n, c, h, w, out_channels, stride = case
    return (f"On x of shape ({n}, {c}, {h}, {w}) with out_channels={out_channels}, "
            f"stride={stride}")


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


def _read(got, expected: torch.Tensor, case) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise WrongForm(f"expected a torch.Tensor, got {type(got).__name__}. Return the "
                        "shortcut's output.")
    if got.shape != expected.shape:
        raise WrongForm(f"the output shape is {tuple(got.shape)}, expected "
                        f"{tuple(expected.shape)}; {_shape_hint(got, expected, case)}")
    return got.detach().to(expected.dtype)


def _shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    return ShortcutA(x.shape[1], out_channels, stride)(x.detach())


def _starts_at_one(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """The pixels at ``1, 1 + stride, ...``, zero channels appended."""
    if stride == 1:
        raise ValueError("with stride 1 every pixel is kept")
    return _pad_channels(x.detach()[:, :, 1::stride, 1::stride], 0, out_channels - x.shape[1])


def _zeros_first(x, out_channels, stride):
    return _pad_channels(x.detach()[:, :, ::stride, ::stride], out_channels - x.shape[1], 0)


def _zeros_both_ends(x, out_channels, stride):
    extra = out_channels - x.shape[1]
    return _pad_channels(x.detach()[:, :, ::stride, ::stride], extra // 2, extra - extra // 2)


def _pooled(pool):
    """The mistake of pooling each stride x stride window (sizes divisible by the stride)."""
    def expected(x, out_channels, stride):
        if stride == 1 or x.shape[2] % stride or x.shape[3] % stride:
            raise ValueError("pooling changes nothing here, or rounds the size down")
        return _pad_channels(pool(x.detach(), stride), 0, out_channels - x.shape[1])
    return expected


_MISTAKES = (
    Mistake(_zeros_first, "your zero channels come first. Option A here (and ShortcutA) "
            "keeps the input channels as channels 0..C_in-1 and puts the zeros after them."),
    Mistake(_zeros_both_ends, "you split the zeros between both ends. That works in a "
            "network too, but ShortcutA (and this exercise) appends all of them after the "
            "input channels."),
    Mistake(_pooled(F.avg_pool2d), lambda x, out_channels, s: (
        f"you averaged {s}x{s} windows. Option A has no arithmetic at all: it keeps the "
        f"top-left pixel of each {s}x{s} window (x[:, :, ::{s}, ::{s}]), as a 1x1 "
        f"convolution with stride {s} does."), same=torch.allclose),
    Mistake(_pooled(F.max_pool2d), lambda x, out_channels, s: (
        f"you took the maximum of each {s}x{s} window. Option A keeps the top-left pixel of "
        f"each window (x[:, :, ::{s}, ::{s}]), whatever its value, as a strided 1x1 "
        "convolution does.")),
    Mistake(_starts_at_one, lambda x, out_channels, s: (
        f"you kept the pixels at positions 1, {1 + s}, ...; start at 0 (x[:, :, ::{s}, "
        f"::{s}]), which is where a padded strided convolution centres its outputs.")),
)


def _differs(got: torch.Tensor, expected: torch.Tensor, args) -> str:
    c = args[0].shape[1]
    if torch.equal(got[:, :c], expected[:, :c]):
        return (f"the first {c} channels are right, but the added channels are not all "
                "zero. Option A pads with zeros, which is why it has no parameters.")
    return ("the shape is right but the values differ from ShortcutA (largest difference "
            f"{float((got - expected).abs().max()):.3g}). Keep every stride-th pixel of "
            "every channel and append zero channels.")


def _gradient_problem(got: torch.Tensor, args, case) -> Optional[str]:
    """Right values: does the gradient reach x, each kept pixel exactly once?"""
    x, _, stride = args
    if not got.requires_grad:
        return ("the values are right, but no gradient can flow back to x (the output does "
                "not require grad). Build it from x with differentiable operations (slicing, "
                "F.pad, torch.cat), not under torch.no_grad() or through .detach()/.numpy().")
    got.sum().backward()
    grad_expected = torch.zeros_like(x.detach())
    grad_expected[:, :, ::stride, ::stride] = 1
    if x.grad is None or not torch.equal(x.grad, grad_expected):
        return ("the values are right, but the gradient reaching x is wrong: each kept pixel "
                "should receive exactly the gradient of its output pixel, every other pixel "
                "none.")
    return None


SHORTCUT_A = FunctionCheck(
    cases=tuple(_SHORTCUT_CASES), make_inputs=_draw, seed=606, reference=_shortcut,
    names=("x", "out_channels", "stride"),
    in_place="Build a new tensor (slicing and F.pad or torch.cat do).",
    read=_read, same=torch.equal, mistakes=_MISTAKES, describe=_describe, differs=_differs,
    then=_gradient_problem,
    success=f"matches ShortcutA on all {len(_SHORTCUT_CASES)} cases "
            "(identity, strides 2 and 3, odd sizes) and passes gradients back to x.")


declare_function("ch06-shortcut-a", SHORTCUT_A, "shortcut_a", "Option A by hand",
                 rules=Rules(forbidden=("resnet_edu",), forbidden_imports=("resnet_edu",),
                             why="Use only tensor operations (no `ShortcutA`)."))
