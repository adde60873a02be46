"""One convolution, taken apart: the helpers of chapters 1 and 2.

Scope: what ``nn.Conv2d`` computes and how far it sees.

- :func:`conv_output_size`: the output length of a convolution or pooling
  along one axis (kernel, stride, padding, dilation).
- :func:`conv2d_unfold`: ``F.conv2d`` rebuilt from ``F.unfold`` and one matrix
  product, so every multiply-add is visible.
- :func:`conv2d_num_parameters`: the parameter count of a ``Conv2d`` from its
  hyper-parameters.
- :func:`receptive_field`: how many input pixels one output pixel depends on,
  layer by layer, from the recurrence ``r_l = r_{l-1} + (k_l - 1) * j_{l-1}``
  with the jump ``j_l = j_{l-1} * s_l``.
- :func:`measure_receptive_field`: the same quantity measured with autograd:
  back-propagate from one output pixel and see which input pixels get a
  gradient.

Like PyTorch, "convolution" here means cross-correlation: the kernel is not
flipped.

References: Dumoulin and Visin, "A guide to convolution arithmetic for deep
learning" (arXiv:1603.07285); Luo, Li, Urtasun, Zemel, "Understanding the
Effective Receptive Field in Deep Convolutional Neural Networks", NIPS 2016.
"""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

IntOrPair = Union[int, Tuple[int, int]]


def _pair(value: IntOrPair, name: str) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return (value[0], value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length along one axis: ``floor((size + 2p - d(k-1) - 1) / s) + 1``.

    The same formula holds for ``nn.MaxPool2d``/``nn.AvgPool2d`` (with their
    default ``ceil_mode=False``). Raises ``ValueError`` when the (dilated)
    kernel does not fit into the padded input.
    """
    for name, value in (("size", size), ("kernel_size", kernel_size), ("stride", stride),
                        ("dilation", dilation)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
    span = dilation * (kernel_size - 1) + 1      # the dilated kernel's extent
    if size + 2 * padding < span:
        raise ValueError(f"the kernel spans {span} pixels but the padded input has only "
                         f"{size + 2 * padding}")
    return (size + 2 * padding - span) // stride + 1


def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None,
                  stride: IntOrPair = 1, padding: IntOrPair = 0,
                  dilation: IntOrPair = 1) -> torch.Tensor:
    """``F.conv2d`` (groups=1) as unfold + matrix product.

    ``x`` is ``(N, C_in, H, W)`` and ``weight`` is ``(C_out, C_in, kH, kW)``.
    Every output pixel is the dot product of the weight with the input patch
    under it; ``F.unfold`` lays those patches out as columns.
    """
    n, c_in, h, w = x.shape
    c_out, c_in_w, kh, kw = weight.shape
    if c_in_w != c_in:
        raise ValueError(f"weight expects {c_in_w} input channels but x has {c_in}")
    stride, padding, dilation = (_pair(stride, "stride"), _pair(padding, "padding"),
                                 _pair(dilation, "dilation"))
    h_out = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    w_out = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    patches = F.unfold(x, (kh, kw), dilation=dilation, padding=padding,
                       stride=stride)                      # (N, C_in*kH*kW, H_out*W_out)
    out = weight.reshape(c_out, -1) @ patches              # (N, C_out, H_out*W_out)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1)
    return out.reshape(n, c_out, h_out, w_out)


def conv2d_num_parameters(in_channels: int, out_channels: int, kernel_size: IntOrPair,
                          bias: bool = True, groups: int = 1) -> int:
    """Parameters of ``nn.Conv2d``: ``C_out * (C_in / groups) * kH * kW`` (+ ``C_out``)."""
    kh, kw = _pair(kernel_size, "kernel_size")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} "
                         f"and out_channels={out_channels}")
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)


# A layer for receptive_field: (kernel_size, stride), (kernel_size, stride, dilation),
# or a module with those attributes (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d).
Layer = Union[Tuple[int, ...], nn.Module]


def _kernel_stride_dilation(layer: Layer) -> Tuple[int, int, int]:
    if isinstance(layer, nn.Module):
        if not hasattr(layer, "kernel_size"):
            raise ValueError(f"{type(layer).__name__} has no kernel_size; pass only the "
                             "layers that change the receptive field (convolutions, poolings)")
        k = _pair(layer.kernel_size, "kernel_size")
        s = _pair(layer.stride, "stride")
        d = _pair(getattr(layer, "dilation", 1), "dilation")
        if k[0] != k[1] or s[0] != s[1] or d[0] != d[1]:
            raise ValueError(f"{layer} is not square; receptive_field handles square "
                             "kernels, strides and dilations only")
        return k[0], s[0], d[0]
    if isinstance(layer, (tuple, list)) and len(layer) in (2, 3):
        k, s, d = (tuple(layer) + (1,))[:3]
        for name, value in (("kernel_size", k), ("stride", s), ("dilation", d)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return k, s, d
    raise ValueError(f"a layer must be (kernel_size, stride), (kernel_size, stride, dilation) "
                     f"or a conv/pool module, got {layer!r}")


def receptive_field(layers: Iterable[Layer]) -> List[int]:
    """Receptive field (in input pixels, along one axis) after each layer.

    ``r_0 = 1`` and ``j_0 = 1`` (one input pixel, unit spacing); each layer
    with kernel ``k``, stride ``s`` and dilation ``d`` adds ``(d(k-1)) * j``
    pixels, where the jump ``j`` is the product of the strides before it.
    """
    r, jump = 1, 1
    fields = []
    for layer in layers:
        k, s, d = _kernel_stride_dilation(layer)
        r = r + d * (k - 1) * jump
        jump = jump * s
        fields.append(r)
    return fields


def measure_receptive_field(model: nn.Module, input_size: Sequence[int],
                            position: Optional[Tuple[int, int]] = None) -> Tuple[int, int]:
    """Height and width of the input region that one output pixel depends on.

    Back-propagates from output pixel ``position`` (default: the centre),
    summed over channels, of ``model(x)`` for a random ``x`` of shape
    ``input_size`` = ``(N, C, H, W)`` and returns the bounding box of the
    input pixels with a non-zero gradient. Put BatchNorm layers in eval mode
    first: in training mode the batch statistics connect every pixel to every
    other one. Max pooling passes the gradient to one pixel per window only,
    so with it the measured box can come out smaller than the computed field.
    """
    if len(input_size) != 4:
        raise ValueError(f"input_size must be (N, C, H, W), got {tuple(input_size)}")
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(*input_size, generator=generator, dtype=torch.float64, requires_grad=True)
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float64
    out = model(x.to(dtype))
    if out.dim() != 4:
        raise ValueError(f"the model must return (N, C, H, W); got shape {tuple(out.shape)}")
    i, j = position if position is not None else (out.shape[2] // 2, out.shape[3] // 2)
    out[0, :, i, j].sum().backward()
    touched = x.grad[0].abs().sum(dim=0) != 0               # (H, W)
    rows = touched.any(dim=1).nonzero()
    cols = touched.any(dim=0).nonzero()
    if len(rows) == 0:
        return (0, 0)
    return (int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1)
