"""Residual blocks and the shortcut options of He et al. (2015).

Scope: the building blocks of every ResNet in this package.

- :class:`ResidualBlock`: the block protocol. A network builder needs three
  things from a block class: ``expansion`` (output channels per unit of
  width), ``last_bn`` (the BatchNorm that scales the branch) and
  ``zero_init_residual_()`` (start the branch at zero). Any class that has
  them can be stacked by :class:`~resnet_edu.models.ResNet` and
  :class:`~resnet_edu.models.CifarResNet`; :func:`check_block_class` says
  what is missing otherwise.
- :class:`BasicBlock`: two 3x3 convolutions (ResNet-18/34 and the CIFAR nets).
- :class:`Bottleneck`: 1x1 -> 3x3 -> 1x1 with expansion 4 (ResNet-50/101/152).
  The stride sits on the 3x3 as in torchvision ("ResNet v1.5"); the paper's
  placement on the first 1x1 is ``stride_on="1x1"``.
- :class:`PreActBlock`: BN -> ReLU -> conv, twice, then the addition, with no
  ReLU after it (He et al., 2016, "Identity Mappings in Deep Residual Networks").
- :class:`PlainBlock`: a basic block without its skip connection (the
  paper's plain baselines).
- Shortcuts (paper, section 3.3 and Table 3): option **A** pads the identity
  with zero channels (no parameters), option **B** projects with a 1x1 conv only
  where the shape changes, option **C** projects in every block.

Attribute names follow torchvision (``conv1``, ``bn1``, ..., ``downsample``) so
that a torchvision ``state_dict`` loads key-for-key. Tensor shapes are written
beside the code as ``(N, C, H, W)``.

References: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016 (arXiv:1512.03385); He et al., "Identity Mappings in
Deep Residual Networks", ECCV 2016 (arXiv:1603.05027).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

NormLayer = Callable[[int], nn.Module]

SHORTCUT_OPTIONS = ("A", "B", "C")
STRIDE_PLACEMENTS = ("3x3", "1x1")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1. No bias: the BatchNorm after it has one."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride,
                     padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution (a per-pixel linear map across channels). No bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def _check_option(name: str, value: str, supported: tuple) -> str:
    if value not in supported:
        raise ValueError(f"{name}={value!r} is not supported; choose one of "
                         f"{', '.join(repr(s) for s in supported)}")
    return value


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class ShortcutA(nn.Module):
    """Option A: identity, subsampled by ``stride``, padded with zero channels.

    It has no parameters: the extra ``out_channels - in_channels`` channels
    are zeros. This is the shortcut of the paper's CIFAR-10 networks.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"shortcut option A can only add channels "
                             f"(in_channels={in_channels} > out_channels={out_channels}); "
                             f"use option 'B' or 'C' (a projection) to reduce them")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]           # (N, C_in, H/s, W/s)
        extra = self.out_channels - self.in_channels
        # pad the channel dimension at the end: (last dim pads, ..., channel pads)
        return F.pad(x, (0, 0, 0, 0, 0, extra))             # (N, C_out, H/s, W/s)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class ShortcutProjection(nn.Sequential):
    """Options B and C: a strided 1x1 convolution followed by BatchNorm.

    A ``Sequential`` so that its keys are ``downsample.0.weight`` and
    ``downsample.1.*``, exactly as torchvision's.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 norm_layer: Optional[NormLayer] = None):
        norm_layer = norm_layer or nn.BatchNorm2d
        super().__init__(conv1x1(in_channels, out_channels, stride), norm_layer(out_channels))


def make_shortcut(option: str, in_channels: int, out_channels: int, stride: int = 1,
                  norm_layer: Optional[NormLayer] = None) -> nn.Module:
    """The shortcut of a block: ``nn.Identity``, :class:`ShortcutA` or :class:`ShortcutProjection`.

    Options A and B use the identity wherever the shape is unchanged; only
    option C projects every time.
    """
    _check_option("shortcut", option, SHORTCUT_OPTIONS)
    same_shape = stride == 1 and in_channels == out_channels
    if option == "C" or (option == "B" and not same_shape):
        return ShortcutProjection(in_channels, out_channels, stride, norm_layer)
    if same_shape:
        return nn.Identity()
    return ShortcutA(in_channels, out_channels, stride)


BLOCK_PROTOCOL = ("expansion", "last_bn", "zero_init_residual_")


class ResidualBlock(nn.Module):
    """The block protocol: what a network builder asks of a block class.

    Subclasses define ``__init__(in_channels, width, stride=1, **block_kwargs)``,
    ``forward`` and ``last_bn``; they output ``width * expansion`` channels.
    ``pre_activation = True`` tells the network that the block starts with
    BN -> ReLU and ends with a bare addition, so the network must add a final
    BN -> ReLU before pooling (He et al., 2016).
    """

    expansion: int = 1
    pre_activation: bool = False

    @property
    def last_bn(self) -> nn.Module:
        raise NotImplementedError(f"{type(self).__name__} must define the property `last_bn`: "
                                  f"the BatchNorm whose gamma scales the residual branch")

    def zero_init_residual_(self) -> ResidualBlock:
        """Zero the last BN's gamma: the branch outputs ``beta = 0`` and the block
        starts as its shortcut (``relu(shortcut(x))`` when a ReLU follows the addition)."""
        nn.init.zeros_(self.last_bn.weight)
        return self


def check_block_class(block) -> None:
    """Raise a ``TypeError`` naming what ``block`` lacks to be stacked by a network."""
    if not (isinstance(block, type) and issubclass(block, nn.Module)):
        raise TypeError(f"block must be an nn.Module class such as BasicBlock, got {block!r}")
    missing = [name for name in BLOCK_PROTOCOL if not hasattr(block, name)]
    expansion = getattr(block, "expansion", None)
    if missing or not isinstance(expansion, int) or isinstance(expansion, bool) or expansion < 1:
        raise TypeError(
            f"{block.__name__} does not follow the block protocol: a block class needs "
            f"an integer class attribute `expansion` >= 1, a property `last_bn` and a "
            f"method `zero_init_residual_()` (subclass resnet_edu.blocks.ResidualBlock "
            f"to get the last two); missing or invalid: "
            f"{', '.join(missing) or f'expansion={expansion!r}'}")


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions and a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``stride=2`` halves the spatial size in ``conv1``; the shortcut then
    subsamples (option A) or projects (B/C) so the two paths can be added.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = "B", norm_layer: Optional[NormLayer] = None):
        super().__init__()
        _check_positive(in_channels=in_channels, out_channels=out_channels, stride=stride)
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = norm_layer(out_channels)
        # in place, as torchvision: it only ever overwrites a tensor the block created
        # (a BN output or the sum), never x; it saves one allocation per ReLU
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = norm_layer(out_channels)
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.downsample(x)       # (N, C_out, H/s, W/s)

        out = self.conv1(x)                 # (N, C_out, H/s, W/s)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)               # (N, C_out, H/s, W/s)
        out = self.bn2(out)                 # F(x): the residual branch

        out = out + identity                # F(x) + x, not in place (hooks may hold `out`)
        return self.relu(out)

    @property
    def last_bn(self) -> nn.Module:
        return self.bn2


class Bottleneck(ResidualBlock):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand by 4), plus a shortcut.

    ``width`` is the number of channels of the 3x3; the block outputs
    ``4 * width``. ``stride_on`` chooses where a stride of 2 is applied:
    ``"3x3"`` (torchvision, "v1.5", slightly more accurate and more MACs) or
    ``"1x1"`` (the paper: the first 1x1 convolution discards 3/4 of positions).
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, shortcut: str = "B",
                 stride_on: str = "3x3", norm_layer: Optional[NormLayer] = None):
        super().__init__()
        _check_positive(in_channels=in_channels, width=width, stride=stride)
        _check_option("stride_on", stride_on, STRIDE_PLACEMENTS)
        norm_layer = norm_layer or nn.BatchNorm2d
        out_channels = width * self.expansion
        stride_1x1, stride_3x3 = (stride, 1) if stride_on == "1x1" else (1, stride)
        self.conv1 = conv1x1(in_channels, width, stride_1x1)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride_3x3)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)  # on tensors the block created, as in BasicBlock
        self.downsample = make_shortcut(shortcut, in_channels, out_channels, stride, norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.downsample(x)       # (N, 4w, H/s, W/s)

        out = self.relu(self.bn1(self.conv1(x)))     # (N, w, H or H/s, ...)  reduce
        out = self.relu(self.bn2(self.conv2(out)))   # (N, w, H/s, W/s)       3x3
        out = self.bn3(self.conv3(out))              # (N, 4w, H/s, W/s)      expand

        out = out + identity
        return self.relu(out)

    @property
    def last_bn(self) -> nn.Module:
        return self.bn3


class PreActBlock(ResidualBlock):
    """Pre-activation basic block (He et al., 2016): ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``.

    Nothing follows the addition, so with the last conv's weights at zero the
    block is exactly the identity. Where the shape changes, the shortcut is
    applied to the pre-activated input, as in the paper's code.
    """

    expansion = 1
    pre_activation = True

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = "B", norm_layer: Optional[NormLayer] = None):
        super().__init__()
        _check_positive(in_channels=in_channels, out_channels=out_channels, stride=stride)
        norm_layer = norm_layer or nn.BatchNorm2d
        self.bn1 = norm_layer(in_channels)
        self.relu = nn.ReLU()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = norm_layer(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        shortcut_module = make_shortcut(shortcut, in_channels, out_channels, stride)
        if isinstance(shortcut_module, ShortcutProjection):
            # the BN of a projection would normalise twice; pre-activation uses a bare conv
            shortcut_module = conv1x1(in_channels, out_channels, stride)
        self.downsample = shortcut_module
        self._project_preactivated = not isinstance(shortcut_module, nn.Identity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))                          # (N, C_in, H, W)
        identity = self.downsample(pre if self._project_preactivated else x)

        out = self.conv1(pre)                                 # (N, C_out, H/s, W/s)
        out = self.conv2(self.relu(self.bn2(out)))            # (N, C_out, H/s, W/s)
        return out + identity                                 # no ReLU after the addition

    @property
    def last_bn(self) -> nn.Module:
        # the branch ends in a convolution; zeroing bn2's gamma silences it as well
        return self.bn2

    def zero_init_residual_(self) -> PreActBlock:
        """Zero the last conv so the block starts as the exact identity (or shortcut)."""
        nn.init.zeros_(self.conv2.weight)
        return self


class PlainBlock(nn.Module):
    """A :class:`BasicBlock` without its skip connection.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))))``: the same layers, so a plain net
    and a residual net of the same depth have the same parameters except the
    projections of options B/C. It follows the block protocol so the network
    builders can stack it, but it has no branch to silence.
    """

    expansion = 1
    pre_activation = False

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 norm_layer: Optional[NormLayer] = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = norm_layer(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = norm_layer(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))

    @property
    def last_bn(self) -> nn.Module:
        return self.bn2

    def zero_init_residual_(self) -> PlainBlock:
        raise ValueError("zero_init_residual needs skip connections; a plain net "
                         "whose blocks output zero cannot learn")
