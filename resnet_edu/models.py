"""ResNets built from a table of depths.

Scope:

- :class:`ResNet` and ``resnet18/34/50/101/152``: the ImageNet networks of
  He et al. (2015), Table 1. Their ``state_dict`` is torchvision's key-for-key
  and shape-for-shape, so ``model.load_state_dict(tv_model.state_dict())``
  works and the eval-mode logits match.
- :class:`CifarResNet` and ``resnet20/32/44/56/110``: the CIFAR-10 networks of
  section 4.2 (three stages of 16/32/64 channels, ``n`` basic blocks each,
  depth ``6n + 2``, option-A shortcuts), and their plain counterparts
  ``plain20 ...`` (same layers, no skip connections) used to measure the
  degradation problem.

A depth differs from another by one list in ``IMAGENET_CONFIGS``: depths are
data, not subclasses.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Type, Union

import torch
from torch import nn

from .blocks import (SHORTCUT_OPTIONS, STRIDE_PLACEMENTS, BasicBlock, Bottleneck,
                     _check_option, conv3x3)

Block = Union[Type[BasicBlock], Type[Bottleneck]]

# depth -> (block, blocks per stage): He et al. (2015), Table 1
IMAGENET_CONFIGS: Dict[int, tuple] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}

# the CIFAR depths the paper trains (section 4.2, Table 6)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def _check_input(x: torch.Tensor, in_channels: int) -> None:
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected an input of shape (N, {in_channels}, H, W), "
                         f"got {tuple(x.shape)}")


class ResNet(nn.Module):
    """An ImageNet-style ResNet: stem, four stages, global average pooling, fc.

    Args:
        block: :class:`~resnet_edu.blocks.BasicBlock` or :class:`~resnet_edu.blocks.Bottleneck`.
        layers: blocks per stage, e.g. ``[3, 4, 6, 3]`` for ResNet-34 and -50.
        num_classes: outputs of the final fully connected layer.
        zero_init_residual: start every block with its last BN gamma at zero, so
            each block begins as (nearly) the identity (Goyal et al., 2017,
            report +0.2-0.3% top-1 for ResNet-50 on ImageNet).
        stride_on: ``"3x3"`` (torchvision, default) or ``"1x1"`` (the paper) for
            bottleneck blocks; ignored by basic blocks.
        shortcut: ``"B"`` (paper's default for ImageNet, and torchvision's),
            ``"A"`` or ``"C"``.
        in_channels: channels of the input image.
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, stride_on: str = "3x3",
                 shortcut: str = "B", in_channels: int = 3,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None):
        super().__init__()
        if block not in (BasicBlock, Bottleneck):
            raise ValueError(f"block must be BasicBlock or Bottleneck, got {block!r}")
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {list(layers)}")
        _check_option("stride_on", stride_on, STRIDE_PLACEMENTS)
        _check_option("shortcut", shortcut, SHORTCUT_OPTIONS)
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")
        self.in_channels = in_channels
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self._block_kwargs = {"shortcut": shortcut, "norm_layer": self._norm_layer}
        if block is Bottleneck:
            self._block_kwargs["stride_on"] = stride_on

        # stem: 7x7/2 conv -> BN -> ReLU -> 3x3/2 *max* pooling       (N, 64, H/4, W/4)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        # four stages; each after the first halves H, W and doubles the width
        self._channels = 64
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1)   # (N, 64e,  H/4,  W/4)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)  # (N, 128e, H/8,  W/8)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)  # (N, 256e, H/16, W/16)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)  # (N, 512e, H/32, W/32)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))                      # (N, 512e, 1, 1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        _init_weights(self, zero_init_residual)

    def _make_stage(self, block: Block, width: int, num_blocks: int, stride: int) -> nn.Sequential:
        blocks = [block(self._channels, width, stride, **self._block_kwargs)]
        self._channels = width * block.expansion
        for _ in range(1, num_blocks):
            blocks.append(block(self._channels, width, 1, **self._block_kwargs))
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)                            # (N, 512e)
        return self.fc(x)                                                # (N, num_classes)


def _init_weights(model: nn.Module, zero_init_residual: bool) -> None:
    """He (Kaiming) normal init for convs, BN gamma=1/beta=0, as torchvision does."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                m.zero_init_residual_()


def _imagenet_resnet(depth: int, num_classes: int, zero_init_residual: bool, **kwargs) -> ResNet:
    block, layers = IMAGENET_CONFIGS[depth]
    return ResNet(block, layers, num_classes=num_classes,
                  zero_init_residual=zero_init_residual, **kwargs)


def resnet18(num_classes: int = 1000, zero_init_residual: bool = False, **kwargs) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]; 11,689,512 parameters for 1000 classes."""
    return _imagenet_resnet(18, num_classes, zero_init_residual, **kwargs)


def resnet34(num_classes: int = 1000, zero_init_residual: bool = False, **kwargs) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return _imagenet_resnet(34, num_classes, zero_init_residual, **kwargs)


def resnet50(num_classes: int = 1000, zero_init_residual: bool = False, **kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]."""
    return _imagenet_resnet(50, num_classes, zero_init_residual, **kwargs)


def resnet101(num_classes: int = 1000, zero_init_residual: bool = False, **kwargs) -> ResNet:
    """ResNet-101: bottleneck blocks [3, 4, 23, 3]."""
    return _imagenet_resnet(101, num_classes, zero_init_residual, **kwargs)


def resnet152(num_classes: int = 1000, zero_init_residual: bool = False, **kwargs) -> ResNet:
    """ResNet-152: bottleneck blocks [3, 8, 36, 3]."""
    return _imagenet_resnet(152, num_classes, zero_init_residual, **kwargs)


class PlainBlock(nn.Module):
    """A :class:`~resnet_edu.blocks.BasicBlock` without its skip connection.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))))``: the same layers, so a plain net
    and a residual net of the same depth have the same parameters except the
    projections of options B/C.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None):
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


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. (2015), section 4.2: depth ``6n + 2``.

    A 3x3 conv with 16 filters, then three stages of ``n`` basic blocks with
    16, 32 and 64 filters (feature maps 32, 16, 8 for a 32x32 input), global
    average pooling and a fully connected layer. With ``plain=True`` the
    blocks have no skip connections (the paper's plain baselines).

    Args:
        depth: total number of weighted layers, ``6n + 2`` (20, 32, 44, 56, 110, ...).
        num_classes: outputs of the final layer.
        shortcut: ``"A"`` (the paper's choice on CIFAR: zero-padding, no
            parameters), ``"B"`` or ``"C"``.
        plain: drop the skip connections.
        in_channels: 3 for CIFAR, 1 for the embedded 8x8 digits.
        base_width: channels of the first stage (16 in the paper).
        zero_init_residual: start each block with its last BN gamma at zero.
    """

    def __init__(self, depth: int, num_classes: int = 10, shortcut: str = "A",
                 plain: bool = False, in_channels: int = 3, base_width: int = 16,
                 zero_init_residual: bool = False):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1 "
                             f"(8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}")
        _check_option("shortcut", shortcut, SHORTCUT_OPTIONS)
        if num_classes < 1 or in_channels < 1 or base_width < 1:
            raise ValueError("num_classes, in_channels and base_width must be positive")
        if plain and zero_init_residual:
            raise ValueError("zero_init_residual needs skip connections; a plain net "
                             "whose blocks output zero cannot learn")
        self.depth, self.plain, self.in_channels = depth, plain, in_channels
        n = (depth - 2) // 6
        widths = (base_width, 2 * base_width, 4 * base_width)

        self.conv1 = conv3x3(in_channels, widths[0])                      # (N, 16, 32, 32)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self._channels = widths[0]
        self.layer1 = self._make_stage(widths[0], n, 1, shortcut)          # (N, 16, 32, 32)
        self.layer2 = self._make_stage(widths[1], n, 2, shortcut)          # (N, 32, 16, 16)
        self.layer3 = self._make_stage(widths[2], n, 2, shortcut)          # (N, 64,  8,  8)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))                       # (N, 64,  1,  1)
        self.fc = nn.Linear(widths[2], num_classes)

        _init_weights(self, zero_init_residual)

    def _make_stage(self, width: int, num_blocks: int, stride: int, shortcut: str) -> nn.Sequential:
        blocks = []
        for i in range(num_blocks):
            s = stride if i == 0 else 1
            if self.plain:
                blocks.append(PlainBlock(self._channels, width, s))
            else:
                blocks.append(BasicBlock(self._channels, width, s, shortcut=shortcut))
            self._channels = width
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.avgpool(x), 1)                             # (N, 64)
        return self.fc(x)                                                 # (N, num_classes)


def cifar_resnet(depth: int, num_classes: int = 10, **kwargs) -> CifarResNet:
    """A CIFAR-style ResNet of any depth ``6n + 2`` (option-A shortcuts by default)."""
    return CifarResNet(depth, num_classes=num_classes, **kwargs)


def plain_net(depth: int, num_classes: int = 10, **kwargs) -> CifarResNet:
    """The plain counterpart of :func:`cifar_resnet`: same layers, no skip connections."""
    return CifarResNet(depth, num_classes=num_classes, plain=True, **kwargs)


def _cifar_builder(depth: int, plain: bool) -> Callable[..., CifarResNet]:
    def build(num_classes: int = 10, **kwargs) -> CifarResNet:
        return CifarResNet(depth, num_classes=num_classes, plain=plain, **kwargs)

    kind = "Plain net" if plain else "ResNet"
    build.__name__ = f"{'plain' if plain else 'resnet'}{depth}"
    build.__qualname__ = build.__name__
    build.__doc__ = (f"{kind}-{depth} for CIFAR-10 (He et al. 2015, section 4.2): "
                     f"n = {(depth - 2) // 6} blocks per stage"
                     + ("" if plain else ", option-A shortcuts") + ".")
    return build


resnet20 = _cifar_builder(20, plain=False)
resnet32 = _cifar_builder(32, plain=False)
resnet44 = _cifar_builder(44, plain=False)
resnet56 = _cifar_builder(56, plain=False)
resnet110 = _cifar_builder(110, plain=False)
plain20 = _cifar_builder(20, plain=True)
plain32 = _cifar_builder(32, plain=True)
plain44 = _cifar_builder(44, plain=True)
plain56 = _cifar_builder(56, plain=True)
plain110 = _cifar_builder(110, plain=True)

IMAGENET_MODELS: Dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "resnet101": resnet101, "resnet152": resnet152,
}
CIFAR_MODELS: Dict[str, Callable[..., nn.Module]] = {
    "resnet20": resnet20, "resnet32": resnet32, "resnet44": resnet44,
    "resnet56": resnet56, "resnet110": resnet110,
    "plain20": plain20, "plain32": plain32, "plain44": plain44,
    "plain56": plain56, "plain110": plain110,
}
MODELS: Dict[str, Callable[..., nn.Module]] = {**IMAGENET_MODELS, **CIFAR_MODELS}
MODEL_NAMES: List[str] = list(MODELS)


def get_model(name: str, **kwargs) -> nn.Module:
    """Build a model by name, e.g. ``get_model("resnet56", num_classes=10)``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; supported models: {', '.join(MODEL_NAMES)}")
    return MODELS[name](**kwargs)


def default_input_size(name_or_model) -> tuple:
    """The input size a model is meant for: (1, 3, 224, 224) ImageNet, (1, C, 32, 32) CIFAR."""
    model = name_or_model
    if isinstance(name_or_model, str):
        if name_or_model not in MODELS:
            raise ValueError(f"unknown model {name_or_model!r}; supported models: "
                             f"{', '.join(MODEL_NAMES)}")
        return (1, 3, 224, 224) if name_or_model in IMAGENET_MODELS else (1, 3, 32, 32)
    if isinstance(model, CifarResNet):
        return (1, model.in_channels, 32, 32)
    return (1, getattr(model, "in_channels", 3), 224, 224)
