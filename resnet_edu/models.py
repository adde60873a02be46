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
- ``preact_resnet20/32/44/56/110``: the same depths with the pre-activation
  blocks of He et al. (2016), "Identity Mappings in Deep Residual Networks".

Both network classes stack any block class of the block protocol
(:mod:`resnet_edu.blocks`) and ask each block to zero-initialise itself.
A depth differs from another by one list in ``IMAGENET_CONFIGS``: depths are
data, not subclasses.
"""
from __future__ import annotations

import inspect
from typing import Callable, Dict, List, Optional, Sequence, Type

import torch
from torch import nn

from .blocks import (
    SHORTCUT_OPTIONS,
    STRIDE_PLACEMENTS,
    BasicBlock,
    Bottleneck,
    PlainBlock,
    PreActBlock,
    _check_option,
    check_block_class,
    conv3x3,
)

# PlainBlock and PreActBlock are imported here too, so `from resnet_edu.models import
# PlainBlock` keeps working from the time PlainBlock lived in this module.

Block = Type[nn.Module]  # any class that follows the block protocol of resnet_edu.blocks

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


def _block_arguments(block: Block, options: dict, block_kwargs: Optional[dict]) -> dict:
    """The network-wide options the block's constructor takes, then ``block_kwargs``.

    A network option a block does not accept (``stride_on`` for a basic block,
    ``shortcut`` for a plain block) is not passed to it; ``block_kwargs`` always is.
    """
    params = inspect.signature(block.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    chosen = {k: v for k, v in options.items() if takes_any or k in params}
    return {**chosen, **(block_kwargs or {})}


def _zero_init_branches(stages: Sequence[nn.Sequential]) -> None:
    """Ask every block to silence its own branch (the block knows where its branch ends)."""
    for stage in stages:
        for block in stage:
            block.zero_init_residual_()


def _check_input(x: torch.Tensor, in_channels: int) -> None:
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected an input of shape (N, {in_channels}, H, W), "
                         f"got {tuple(x.shape)}")


class ResNet(nn.Module):
    """An ImageNet-style ResNet: stem, four stages, global average pooling, fc.

    Args:
        block: any block class of the block protocol (:mod:`resnet_edu.blocks`):
            :class:`~resnet_edu.blocks.BasicBlock`, :class:`~resnet_edu.blocks.Bottleneck`,
            :class:`~resnet_edu.blocks.PreActBlock` (then a final BN -> ReLU is
            added before pooling, as ``final_bn``) or your own.
        layers: blocks per stage, e.g. ``[3, 4, 6, 3]`` for ResNet-34 and -50.
        num_classes: outputs of the final fully connected layer.
        zero_init_residual: ask every block to start with its branch at zero, so
            each block begins as (nearly) the identity (Goyal et al., 2017,
            report +0.2-0.3% top-1 for ResNet-50 on ImageNet).
        stride_on: ``"3x3"`` (torchvision, default) or ``"1x1"`` (the paper) for
            bottleneck blocks; not passed to blocks that do not take it.
        shortcut: ``"B"`` (paper's default for ImageNet, and torchvision's),
            ``"A"`` or ``"C"``.
        in_channels: channels of the input image.
        block_kwargs: further keyword arguments for every block.
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, stride_on: str = "3x3",
                 shortcut: str = "B", in_channels: int = 3,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None,
                 block_kwargs: Optional[dict] = None):
        super().__init__()
        check_block_class(block)
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be four positive block counts, got {list(layers)}")
        _check_option("stride_on", stride_on, STRIDE_PLACEMENTS)
        _check_option("shortcut", shortcut, SHORTCUT_OPTIONS)
        if num_classes < 1 or in_channels < 1:
            raise ValueError("num_classes and in_channels must be positive")
        self.in_channels = in_channels
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self._block_kwargs = _block_arguments(
            block, {"shortcut": shortcut, "norm_layer": self._norm_layer, "stride_on": stride_on},
            block_kwargs)

        # stem: 7x7/2 conv -> BN -> ReLU -> 3x3/2 *max* pooling       (N, 64, H/4, W/4)
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU(inplace=True)  # as torchvision; it acts on bn1's fresh output
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        # four stages; each after the first halves H, W and doubles the width
        self._channels = 64
        self.layer1 = self._make_stage(block, 64, layers[0], stride=1)   # (N, 64e,  H/4,  W/4)
        self.layer2 = self._make_stage(block, 128, layers[1], stride=2)  # (N, 128e, H/8,  W/8)
        self.layer3 = self._make_stage(block, 256, layers[2], stride=2)  # (N, 256e, H/16, W/16)
        self.layer4 = self._make_stage(block, 512, layers[3], stride=2)  # (N, 512e, H/32, W/32)
        # pre-activation blocks end with a bare addition: activate once before pooling
        self.pre_activation = bool(getattr(block, "pre_activation", False))
        if self.pre_activation:
            self.final_bn = self._norm_layer(self._channels)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))                      # (N, 512e, 1, 1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        _init_weights(self)
        if zero_init_residual:
            _zero_init_branches([self.layer1, self.layer2, self.layer3, self.layer4])

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
        if self.pre_activation:
            x = self.relu(self.final_bn(x))
        x = torch.flatten(self.avgpool(x), 1)                            # (N, 512e)
        return self.fc(x)                                                # (N, num_classes)


def _init_weights(model: nn.Module) -> None:
    """He (Kaiming) normal init for convs, BN gamma=1/beta=0, as torchvision does."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


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


class CifarResNet(nn.Module):
    """The CIFAR-10 ResNet of He et al. (2015), section 4.2: depth ``6n + 2``.

    A 3x3 conv with 16 filters, then three stages of ``n`` basic blocks with
    16, 32 and 64 filters (feature maps 32, 16, 8 for a 32x32 input), global
    average pooling and a fully connected layer. With ``plain=True`` the
    blocks have no skip connections (the paper's plain baselines).

    With a pre-activation block (``block=PreActBlock``, He et al. 2016) the stem
    is the bare convolution (each block normalises its own input) and a final
    BN -> ReLU (``final_bn``) comes before the pooling.

    Args:
        depth: total number of weighted layers, ``6n + 2`` (20, 32, 44, 56, 110, ...).
        num_classes: outputs of the final layer.
        shortcut: ``"A"`` (the paper's choice on CIFAR: zero-padding, no
            parameters), ``"B"`` or ``"C"``; not passed to blocks that do not take it.
        plain: drop the skip connections (stack :class:`~resnet_edu.blocks.PlainBlock`).
        in_channels: 3 for CIFAR, 1 for the embedded 8x8 digits.
        base_width: channels of the first stage (16 in the paper).
        zero_init_residual: ask each block to start with its branch at zero.
        block: any block class of the block protocol (default: ``BasicBlock``).
        block_kwargs: further keyword arguments for every block.
    """

    def __init__(self, depth: int, num_classes: int = 10, shortcut: str = "A",
                 plain: bool = False, in_channels: int = 3, base_width: int = 16,
                 zero_init_residual: bool = False, block: Optional[Block] = None,
                 block_kwargs: Optional[dict] = None):
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
        if plain and block is not None:
            raise ValueError("give either plain=True or a block class, not both")
        block = block or (PlainBlock if plain else BasicBlock)
        check_block_class(block)
        self.depth, self.plain, self.in_channels = depth, plain, in_channels
        self.pre_activation = bool(getattr(block, "pre_activation", False))
        n = (depth - 2) // 6
        widths = (base_width, 2 * base_width, 4 * base_width)
        kwargs = _block_arguments(block, {"shortcut": shortcut}, block_kwargs)

        self.conv1 = conv3x3(in_channels, widths[0])                      # (N, 16, 32, 32)
        if not self.pre_activation:
            self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self._channels = widths[0]
        self.layer1 = self._make_stage(block, widths[0], n, 1, kwargs)    # (N, 16, 32, 32)
        self.layer2 = self._make_stage(block, widths[1], n, 2, kwargs)    # (N, 32, 16, 16)
        self.layer3 = self._make_stage(block, widths[2], n, 2, kwargs)    # (N, 64,  8,  8)
        if self.pre_activation:
            self.final_bn = nn.BatchNorm2d(self._channels)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))                       # (N, 64,  1,  1)
        self.fc = nn.Linear(self._channels, num_classes)

        _init_weights(self)
        if zero_init_residual:
            _zero_init_branches([self.layer1, self.layer2, self.layer3])

    def _make_stage(self, block: Block, width: int, num_blocks: int, stride: int,
                    kwargs: dict) -> nn.Sequential:
        blocks = []
        for i in range(num_blocks):
            blocks.append(block(self._channels, width, stride if i == 0 else 1, **kwargs))
            self._channels = width * block.expansion
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels)
        x = self.conv1(x)
        if not self.pre_activation:
            x = self.relu(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.pre_activation:
            x = self.relu(self.final_bn(x))                               # the last activation
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


def _preact_builder(depth: int) -> Callable[..., CifarResNet]:
    def build(num_classes: int = 10, **kwargs) -> CifarResNet:
        kwargs.setdefault("shortcut", "B")
        return CifarResNet(depth, num_classes=num_classes, block=PreActBlock, **kwargs)

    build.__name__ = build.__qualname__ = f"preact_resnet{depth}"
    build.__doc__ = (f"Pre-activation ResNet-{depth} for CIFAR-10 (He et al. 2016): "
                     f"n = {(depth - 2) // 6} blocks per stage, BN -> ReLU -> conv twice, "
                     f"no ReLU after the addition, a bare 1x1 projection of the "
                     f"pre-activated input where the shape changes (the paper's code), "
                     f"and a final BN -> ReLU before pooling.")
    return build


preact_resnet20 = _preact_builder(20)
preact_resnet32 = _preact_builder(32)
preact_resnet44 = _preact_builder(44)
preact_resnet56 = _preact_builder(56)
preact_resnet110 = _preact_builder(110)

IMAGENET_MODELS: Dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "resnet101": resnet101, "resnet152": resnet152,
}
CIFAR_MODELS: Dict[str, Callable[..., nn.Module]] = {
    "resnet20": resnet20, "resnet32": resnet32, "resnet44": resnet44,
    "resnet56": resnet56, "resnet110": resnet110,
    "plain20": plain20, "plain32": plain32, "plain44": plain44,
    "plain56": plain56, "plain110": plain110,
    "preact_resnet20": preact_resnet20, "preact_resnet32": preact_resnet32,
    "preact_resnet44": preact_resnet44, "preact_resnet56": preact_resnet56,
    "preact_resnet110": preact_resnet110,
}
MODELS: Dict[str, Callable[..., nn.Module]] = {**IMAGENET_MODELS, **CIFAR_MODELS}
MODEL_NAMES: List[str] = list(MODELS)
#: the named models built from bottleneck blocks, the ones that take ``stride_on``
BOTTLENECK_MODELS: List[str] = [f"resnet{depth}" for depth, (block, _) in IMAGENET_CONFIGS.items()
                                if block is Bottleneck]


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
