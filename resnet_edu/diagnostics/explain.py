"""Crash explanations: one sentence that says where a block crashed and why.

PyTorch's messages name an operator ("size of tensor a (16) must match the size of
tensor b (8)"); a student needs the layer and the usual cause ("the branch changes the
number of channels but the shortcut does not"). These functions read the record of the
failed pass (the calls that were open when the exception flew) to write that sentence.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import torch
from torch import nn

from ..compat import CONV_TYPES, STATS_NORM_TYPES
from .recorder import Call, has_params
from .words import first_line, join

_SIZE_MISMATCH = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b "
                            r"\((\d+)\) at non-singleton dimension (\d+)")


def _expected_channels(module: nn.Module):
    """(how many channels the layer expects, what to call them), or (None, None)."""
    if isinstance(module, CONV_TYPES):
        return module.in_channels, "input channels"
    if isinstance(module, STATS_NORM_TYPES):
        return module.num_features, "channels"
    if isinstance(module, nn.GroupNorm):
        return module.num_channels, "channels"
    return None, None


def _channel_reason(call: Call, inner: Sequence[Call]) -> Optional[str]:
    """'conv2 expects 16 input channels but got 3 because ...', or None."""
    expected, what = _expected_channels(call.module)
    inp = call.inputs[0] if call.inputs else None
    got = int(inp.shape[1]) if inp is not None and inp.dim() >= 2 else None
    if expected is None or got is None or got == expected:
        return None
    reason = f"{call.name} expects {expected} {what} but got {got}"
    # did a layer with weights read x successfully before this one?
    earlier = [c for c in inner[:inner.index(call)]
               if c.receives_x and c.outputs is not None and has_params(c.module)]
    if call.receives_x and not earlier:
        return reason + (", and that is the block's input itself: check that the input's "
                         "channel count (input_shape[1]) equals the block's in_channels")
    if call.receives_x:
        return reason + (f" because it is applied to the block's input x instead of to the "
                         f"previous layer's output (write e.g. out = self.{call.name}(out))")
    return reason + (", so the layers' channel counts do not chain: each layer's "
                     "in_channels must equal the previous layer's out_channels")


def _size_mismatch(text: str, ndim: int) -> Optional[str]:
    """The generic reading of 'size of tensor a (.) must match ... dimension d'."""
    m = _SIZE_MISMATCH.search(text)
    if not m:
        return None
    a, b, dim = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if dim == 1 and ndim >= 3:
        return (f"two tensors with different numbers of channels ({a} and {b}) are added, "
                f"usually the residual branch and the shortcut: when the number of channels "
                f"changes, the shortcut needs a projection (a 1x1 convolution) or zero-padding")
    if dim >= 2 and ndim >= 3:
        return (f"two feature maps of different sizes ({a} and {b} along dimension {dim}) are "
                f"added, usually the residual branch and the shortcut: when the branch uses "
                f"stride 2 the shortcut must downsample too (e.g. a 1x1 convolution with "
                f"stride 2)")
    return f"two tensors of different sizes ({a} and {b} along dimension {dim}) are combined"


def _spatial_causes(convs: Sequence[Call]):
    """The convolutions that shrink the feature map: (strided names, unpadded names)."""
    strided = [c.name for c in convs if any(s > 1 for s in c.module.stride)]
    unpadded = [c.name for c in convs if not isinstance(c.module.padding, str) and
                any(p < (k - 1) // 2 for p, k in zip(c.module.padding, c.module.kernel_size))]
    return strided, unpadded


def _add_mismatch(text: str, calls: Sequence[Call], call: Optional[Call],
                  x: torch.Tensor) -> Optional[str]:
    """Name the two shapes when the last finished layer's output and the block's input
    (the usual branch and identity shortcut) are the tensors that do not fit."""
    m = _SIZE_MISMATCH.search(text)
    a, b, dim = int(m.group(1)), int(m.group(2)), int(m.group(3))
    inner = [c for c in calls if c is not calls[0]]
    done = [c for c in inner if c.outputs and c.parent is (call or calls[0])]
    if not done:
        return None
    branch = done[-1].outputs[0]
    if branch.dim() != x.dim() or dim >= x.dim() or \
            {int(branch.shape[dim]), int(x.shape[dim])} != {a, b}:
        return None
    changes = []
    if branch.shape[1] != x.shape[1]:
        changes.append(f"changes the number of channels ({x.shape[1]} -> {branch.shape[1]})")
    strided, unpadded = [], []
    if tuple(branch.shape[2:]) != tuple(x.shape[2:]):
        strided, unpadded = _spatial_causes([c for c in inner
                                             if isinstance(c.module, CONV_TYPES)])
        causes = []
        if strided:
            causes.append(f"{join(strided)} {'has' if len(strided) == 1 else 'have'} a stride")
        if unpadded:
            causes.append(f"{join(unpadded)} {'has' if len(unpadded) == 1 else 'have'} too "
                          f"little padding (a 3x3 convolution needs padding=1)")
        why = f": {' and '.join(causes)}" if causes else ""
        changes.append(f"changes the spatial size ({tuple(x.shape[2:])} -> "
                       f"{tuple(branch.shape[2:])}{why})")
    shapes = (f"the residual branch's output, shape {tuple(branch.shape)}, cannot be added "
              f"to the input x, shape {tuple(x.shape)}: the branch {' and '.join(changes)}")
    if unpadded and not strided:
        return shapes
    return (shapes + " but the shortcut does not; give the shortcut a 1x1 convolution with "
            "the same stride and output channels (plus BatchNorm), or zero-pad and "
            "subsample x")


def forward_crash(exc: BaseException, calls: Sequence[Call], x: torch.Tensor,
                  mode: str) -> str:
    """One sentence: where the forward pass crashed and the likely cause.

    ``calls`` is the record of the failed pass (the block's own call first), ``x`` the
    block's input and ``mode`` "training" or "eval"."""
    text, full = first_line(exc), str(exc)
    inner = [c for c in calls if calls and c is not calls[0]]
    unfinished = [c for c in inner if c.outputs is None]
    call = unfinished[-1] if unfinished else None
    reason = _channel_reason(call, inner) if call is not None else None
    if reason is None and calls and _SIZE_MISMATCH.search(full):
        reason = _add_mismatch(full, calls, call, x)
    if reason is None:
        reason = _size_mismatch(full, x.dim()) or f"{type(exc).__name__}: {text}"
    if "Expected more than 1 value per channel when training" in full:
        reason = ("BatchNorm in training mode needs more than one value per channel: use a "
                  "batch of at least 2 (input_shape[0] >= 2) or a larger feature map")
    where = f" in {call.name}" if call is not None else ""
    return f"The block crashed{where} during the forward pass in {mode} mode: {reason}."


def backward_crash(exc: BaseException, input_modified: bool) -> str:
    """One sentence for a crash in autograd's backward pass."""
    if "modified by an inplace operation" in str(exc) and input_modified:
        return ("The backward pass crashed: autograd needs the block's input x to compute "
                "the weight gradient of the layer that read it, but the block overwrote x in "
                "place; compute a new tensor instead, e.g. out = out + x.")
    if "modified by an inplace operation" in str(exc):
        return ("The backward pass crashed: a tensor that autograd needs was modified in place "
                "(for example by `out += identity`, `x.relu_()` or ReLU(inplace=True) right "
                "after a layer that needs its output); compute a new tensor instead, "
                "e.g. out = out + identity.")
    return f"The backward pass crashed: {type(exc).__name__}: {first_line(exc)}."
