"""A zoo of residual blocks for testing ``check_block``: realistic student mistakes
and correct blocks written in several styles.

Every faulty block carries the set of problem kinds a careful reader would
expect from it (worked out from the code, by hand); every correct block must
pass with no problems. The blocks are deliberately written the way students
write them (plain ``nn.Module`` subclasses, names like ``conv1``/``bn1``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, FrozenSet, Tuple

import torch
import torch.nn.functional as F
import torchvision.models.resnet as tv
from torch import nn
from torchvision.ops import StochasticDepth

from resnet_edu import blocks
from resnet_edu.original import ResidualBlockListing1, ResidualBlockListing2


def conv3x3(cin, cout, stride=1, bias=False):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


# ----------------------------------------------------------------------------- correct blocks
class FixedListing(nn.Module):
    """The original post's listing 2 with its data flow fixed (and a projection shortcut)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride,
                                                    bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return self.relu(out)


class FunctionalBlock(nn.Module):
    """Uses F.relu and an in-place addition, torchvision-style."""

    def __init__(self, channels):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(channels, channels), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = conv3x3(channels, channels), nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out += x
        return F.relu(out)


class PadShortcutBlock(nn.Module):
    """Option A written the popular CIFAR way: a lambda that subsamples and zero-pads."""

    class Lambda(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        pad = (out_channels - in_channels) // 2
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = self.Lambda(
            lambda x: F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad, pad)))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class HandPreAct(nn.Module):
    """Pre-activation block; the projection (if any) sees the raw input x."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = (nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
                         if stride != 1 or in_channels != out_channels else None)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        identity = x if self.shortcut is None else self.shortcut(x)
        return out + identity


class ReZeroBlock(nn.Module):
    """x + alpha * F(x) with a learnable gate alpha that starts at exactly zero."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels, bias=True)
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + self.alpha * self.conv2(F.relu(self.conv1(x)))


class FixupBlock(nn.Module):
    """Fixup (no normalisation): scalar biases at zero, a scale at one, last conv zeroed."""

    def __init__(self, channels):
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (
            nn.Parameter(torch.zeros(1)) for _ in range(4))
        self.scale = nn.Parameter(torch.ones(1))
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        nn.init.zeros_(self.conv2.weight)

    def forward(self, x):
        out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return F.relu(out + x)


class BiasBeforeBN(FixedListing):
    """Correct, but with the post's conv biases kept in front of BatchNorm (a note only)."""

    def __init__(self, channels):
        super().__init__(channels, channels)
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels, bias=True)


class DropoutBlock(nn.Module):
    def __init__(self, channels, p=0.3):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(channels, channels), nn.BatchNorm2d(channels)
        self.drop = nn.Dropout(p)
        self.conv2, self.bn2 = conv3x3(channels, channels), nn.BatchNorm2d(channels)

    def forward(self, x):
        out = self.drop(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.bn2(self.conv2(out)) + x)


class SEBlock(nn.Module):
    """Squeeze-and-excitation residual block."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(channels, channels), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = conv3x3(channels, channels), nn.BatchNorm2d(channels)
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(out.mean((2, 3))))))
        return F.relu(out * w[:, :, None, None] + x)


class GroupNormBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1, self.gn1 = conv3x3(channels, channels), nn.GroupNorm(2, channels)
        self.conv2, self.gn2 = conv3x3(channels, channels), nn.GroupNorm(2, channels)
        nn.init.zeros_(self.gn2.weight)

    def forward(self, x):
        out = F.relu(self.gn1(self.conv1(x)))
        return F.relu(self.gn2(self.conv2(out)) + x)


class StochasticDepthBlock(FixedListing):
    """Drops the whole residual branch at random in training mode (stochastic depth)."""

    def __init__(self, channels, p=0.5):
        super().__init__(channels, channels)
        self.drop_path = StochasticDepth(p, mode="batch")

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.drop_path(self.bn2(self.conv2(out)))
        return self.relu(out + x)


class LazyBlock(nn.Module):
    """Lazy layers infer their input channels at the first call."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, 3, padding=1, bias=False)
        self.conv2 = nn.LazyConv2d(channels, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


class MLPResidual(nn.Module):
    """A residual block on vectors (N, C): checks that nothing assumes images."""

    def __init__(self, features):
        super().__init__()
        self.norm = nn.LayerNorm(features)
        self.fc1 = nn.Linear(features, 2 * features)
        self.fc2 = nn.Linear(2 * features, features)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class FrozenBNBlock(FixedListing):
    """BatchNorm frozen (requires_grad=False, eval mode) as in fine-tuning."""

    def __init__(self, channels):
        super().__init__(channels, channels)
        for bn in (self.bn1, self.bn2):
            bn.eval()
            bn.weight.requires_grad_(False)
            bn.bias.requires_grad_(False)


# ----------------------------------------------------------------------------- faulty blocks
class _Base(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(channels, channels), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = conv3x3(channels, channels), nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()


class NoSkip(_Base):
    """Forgot the addition: a plain two-layer stack."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out)


class SkipFromWrongPlace(_Base):
    """Saves the 'identity' after the first layer instead of at the block's input."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        identity = out
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class AddsBranchToItself(_Base):
    """Adds the wrong variable: out + out."""

    def forward(self, x):
        identity = x  # noqa: F841  (computed, then the wrong name is added)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + out)


class UnassignedReLU(_Base):
    """Calls self.relu(out) without assigning the result: the ReLU is never applied."""

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        self.relu(out)
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class InplaceAddIntoInput(_Base):
    """`x += out`: adds into the caller's tensor."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        x += out
        return self.relu(x)


class InplaceReLUOnInput(nn.Module):
    """A pre-activation block without BN whose in-place ReLU overwrites its input."""

    def __init__(self, channels):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(channels, channels, bias=True)
        self.conv2 = conv3x3(channels, channels, bias=True)

    def forward(self, x):
        out = self.conv1(self.relu(x))
        out = self.conv2(F.relu(out))
        return out + x


class UnusedDownsample(_Base):
    """Builds a projection shortcut but forgets to call it."""

    def __init__(self, channels):
        super().__init__(channels)
        self.downsample = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False),
                                        nn.BatchNorm2d(channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class StrideWithoutShortcut(nn.Module):
    """Downsamples in conv1 but adds the full-size x."""

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class SharedBN(nn.Module):
    """One BatchNorm used after both convolutions."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn(self.conv1(x)))
        out = self.bn(self.conv2(out))
        return F.relu(out + x)


class ConvInForward(nn.Module):
    """Creates its second convolution inside forward()."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.conv1 = conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = nn.Conv2d(self.channels, self.channels, 3, padding=1)(out)
        return F.relu(out + x)


class LayersInPlainList(nn.Module):
    """Keeps its layers in a Python list: nothing is registered."""

    def __init__(self, channels):
        super().__init__()
        self.layers = [conv3x3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU(),
                       conv3x3(channels, channels), nn.BatchNorm2d(channels)]

    def forward(self, x):
        out = x
        for layer in self.layers:
            out = layer(out)
        return F.relu(out + x)


class NoGradShortcut(nn.Module):
    """Computes the projection shortcut under torch.no_grad() ("it is only a shortcut")."""

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride,
                                                bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        with torch.no_grad():
            identity = self.shortcut(x)
        return F.relu(out + identity)


class DetachedSkip(_Base):
    """Adds x.detach(): the values pass, the gradient does not."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x.detach())


class DropoutAlwaysOn(_Base):
    """F.dropout without training=self.training stays on in eval mode."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = F.dropout(out, 0.2)
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class ReturnsTuple(_Base):
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x), out


class HalfFixedListing(_Base):
    """The post's bug fixed in the first layer only: conv2 still reads x."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(x))
        out = out + x
        return self.relu(out)


class ZeroGateBuffer(_Base):
    """A ReZero gate stored as a buffer: it stays zero forever, so the branch is muted."""

    def __init__(self, channels):
        super().__init__(channels)
        self.register_buffer("gate", torch.zeros(1))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(x + self.gate * out)


class TanhInplace(_Base):
    """Squashes the branch with tanh, then adds in place: breaks the backward pass."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = torch.tanh(self.bn2(self.conv2(out)))
        out += x
        return out


class WrongArgumentName(_Base):
    def forward(self, inputs):
        out = self.relu(self.bn1(self.conv1(x)))  # noqa: F821  (the bug: x is undefined)
        return self.relu(self.bn2(self.conv2(out)) + inputs)


class NormalisesInputAndForgets(_Base):
    """Normalises the input with an extra BN, then uses the raw x anyway."""

    def __init__(self, channels):
        super().__init__(channels)
        self.bn0 = nn.BatchNorm2d(channels)

    def forward(self, x):
        x_norm = self.bn0(x)  # noqa: F841
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class FlattensOutput(_Base):
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x).flatten(1)


class ConvUsedTwice(_Base):
    """Calls conv1 where conv2 was meant; conv2 is never used."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv1(out))
        return self.relu(out + x)


class BN1UsedTwice(_Base):
    """Calls bn1 where bn2 was meant."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn1(self.conv2(out))
        return self.relu(out + x)


class ReturnsInput(_Base):
    """Returns x by mistake (the usual `return x` instead of `return out`)."""

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.relu(out + identity)
        return x


class NaNBlock(_Base):
    """Normalises by the standard deviation without an epsilon... of a constant channel."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        scale = (out - out).std(dim=(2, 3), keepdim=True)
        return self.relu(out / scale + x)


class UsesOnlyTheShapeOfX(_Base):
    """Feeds the branch torch.ones_like(x) (meant: x): x only sets the shape, so the
    output never depends on the input's values, and there is no skip connection either."""

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(torch.ones_like(x))))
        return self.bn2(self.conv2(out))


class ParameterFree(nn.Module):
    """A "residual block" made of parameter-free operations only (an average-pooling
    branch): it runs and keeps the shape, but there is nothing to learn."""

    def forward(self, x):
        return F.relu(x + F.avg_pool2d(x, 3, stride=1, padding=1))


# ----------------------------------------------------------------------------- the catalogue
@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], nn.Module]
    input_shape: Tuple[int, ...]
    kinds: FrozenSet[str] = frozenset()   # for faulty blocks: exactly the kinds expected
    has_note: bool = False                # a correct block that deserves a note

    @property
    def ok(self) -> bool:
        return not self.kinds


def _zero_last_bn(block):
    block.zero_init_residual_() if hasattr(block, "zero_init_residual_") else \
        nn.init.zeros_((block.bn3 if hasattr(block, "bn3") else block.bn2).weight)
    return block


def _tv_downsample(cin, cout, stride):
    return nn.Sequential(tv.conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))


S = (2, 8, 6, 6)   # the default input: 2 samples, 8 channels, 6x6

CORRECT = [
    Case("resnet_edu-basic", lambda: blocks.BasicBlock(8, 8), S),
    Case("resnet_edu-basic-B-stride2", lambda: blocks.BasicBlock(8, 16, 2), S),
    Case("resnet_edu-basic-A-stride2", lambda: blocks.BasicBlock(8, 16, 2, shortcut="A"), S),
    Case("resnet_edu-basic-C", lambda: blocks.BasicBlock(8, 8, shortcut="C"), S),
    Case("resnet_edu-basic-zero-init", lambda: _zero_last_bn(blocks.BasicBlock(8, 8)), S),
    Case("resnet_edu-bottleneck", lambda: blocks.Bottleneck(32, 8), (2, 32, 6, 6)),
    Case("resnet_edu-bottleneck-stride2", lambda: blocks.Bottleneck(8, 4, 2), S),
    Case("resnet_edu-bottleneck-1x1-stride",
         lambda: blocks.Bottleneck(8, 4, 2, stride_on="1x1"), S),
    Case("resnet_edu-bottleneck-zero-init",
         lambda: _zero_last_bn(blocks.Bottleneck(8, 4, 2)), S),
    Case("resnet_edu-preact", lambda: blocks.PreActBlock(8, 8), S),
    Case("resnet_edu-preact-stride2", lambda: blocks.PreActBlock(8, 16, 2), S),
    Case("resnet_edu-preact-A", lambda: blocks.PreActBlock(8, 16, 2, shortcut="A"), S),
    Case("resnet_edu-preact-zero-init",
         lambda: blocks.PreActBlock(8, 16, 2).zero_init_residual_(), S),
    Case("torchvision-basic", lambda: tv.BasicBlock(8, 8), S),
    Case("torchvision-basic-downsample",
         lambda: tv.BasicBlock(8, 16, 2, downsample=_tv_downsample(8, 16, 2)), S),
    Case("torchvision-basic-zero-init", lambda: _zero_last_bn(tv.BasicBlock(8, 8)), S),
    Case("torchvision-bottleneck", lambda: tv.Bottleneck(32, 8), (2, 32, 6, 6)),
    Case("torchvision-bottleneck-downsample",
         lambda: tv.Bottleneck(8, 4, 2, downsample=_tv_downsample(8, 16, 2)), S),
    Case("torchvision-bottleneck-zero-init",
         lambda: _zero_last_bn(tv.Bottleneck(8, 4, 2, downsample=_tv_downsample(8, 16, 2))), S),
    Case("fixed-listing", lambda: FixedListing(8, 8), S),
    Case("fixed-listing-projection", lambda: FixedListing(8, 16, 2), S),
    Case("functional-inplace-add", lambda: FunctionalBlock(8), S),
    Case("option-A-lambda", lambda: PadShortcutBlock(8, 16), S),
    Case("preact-by-hand", lambda: HandPreAct(8, 8), S),
    Case("preact-by-hand-projection", lambda: HandPreAct(8, 16, 2), S),
    Case("rezero", lambda: ReZeroBlock(8), S),
    Case("fixup", lambda: FixupBlock(8), S),
    Case("bias-before-bn", lambda: BiasBeforeBN(8), S, has_note=True),
    Case("dropout", lambda: DropoutBlock(8), S),
    Case("squeeze-excite", lambda: SEBlock(8), S),
    Case("groupnorm-zero-init", lambda: GroupNormBlock(8), S),
    Case("stochastic-depth", lambda: StochasticDepthBlock(8), S),
    Case("mlp-on-vectors", lambda: MLPResidual(16), (4, 16)),
    Case("lazy-layers", lambda: LazyBlock(8), S),
    Case("frozen-bn", lambda: FrozenBNBlock(8), S),
    Case("eval-mode-block", lambda: FixedListing(8, 8).eval(), S),
]

FAULTY = [
    Case("post-listing1", lambda: ResidualBlockListing1(8, 8), S,
         frozenset({"ignores_branch", "no_gradient", "discarded_output"})),
    Case("post-listing2", lambda: ResidualBlockListing2(8, 8), S,
         frozenset({"ignores_branch", "no_gradient", "discarded_output",
                    "discarded_bn_update"})),
    Case("post-listing1-3-to-16", lambda: ResidualBlockListing1(3, 16), (2, 3, 6, 6),
         frozenset({"crash"})),
    Case("post-listing2-3-to-16", lambda: ResidualBlockListing2(3, 16), (2, 3, 6, 6),
         frozenset({"crash"})),
    Case("no-skip", lambda: NoSkip(8), S, frozenset({"no_skip"})),
    Case("skip-from-wrong-place", lambda: SkipFromWrongPlace(8), S, frozenset({"no_skip"})),
    Case("adds-branch-to-itself", lambda: AddsBranchToItself(8), S, frozenset({"no_skip"})),
    Case("unassigned-relu", lambda: UnassignedReLU(8), S, frozenset({"discarded_output"})),
    # in a network x is the previous block's output, which conv1 needs for its weight
    # gradient: overwriting it also breaks the backward pass
    Case("inplace-add-into-input", lambda: InplaceAddIntoInput(8), S,
         frozenset({"modifies_input", "crash"})),
    Case("inplace-relu-on-input", lambda: InplaceReLUOnInput(8), S,
         frozenset({"modifies_input"})),
    Case("unused-downsample", lambda: UnusedDownsample(8), S, frozenset({"no_gradient"})),
    Case("stride-without-shortcut", lambda: StrideWithoutShortcut(8, 8), S,
         frozenset({"crash"})),
    Case("channels-without-projection", lambda: StrideWithoutShortcut(8, 16, stride=1), S,
         frozenset({"crash"})),
    Case("torchvision-basic-missing-downsample", lambda: tv.BasicBlock(8, 16, 2), S,
         frozenset({"crash"})),
    Case("shared-bn", lambda: SharedBN(8), S, frozenset({"reused_norm"})),
    Case("conv-in-forward", lambda: ConvInForward(8), S, frozenset({"layer_in_forward"})),
    Case("layers-in-plain-list", lambda: LayersInPlainList(8), S,
         frozenset({"layer_in_forward"})),
    Case("no-grad-shortcut", lambda: NoGradShortcut(8, 16), S,
         frozenset({"no_gradient", "detached_skip"})),
    Case("detached-skip", lambda: DetachedSkip(8), S, frozenset({"detached_skip"})),
    Case("dropout-always-on", lambda: DropoutAlwaysOn(8), S, frozenset({"nondeterministic"})),
    Case("returns-tuple", lambda: ReturnsTuple(8), S, frozenset({"bad_output"})),
    Case("half-fixed-listing", lambda: HalfFixedListing(8), S,
         frozenset({"no_gradient", "discarded_bn_update"})),
    Case("zero-gate-buffer", lambda: ZeroGateBuffer(8), S,
         frozenset({"ignores_branch", "zero_gradient"})),
    Case("tanh-then-inplace-add", lambda: TanhInplace(8), S, frozenset({"crash"})),
    Case("wrong-argument-name", lambda: WrongArgumentName(8), S, frozenset({"crash"})),
    Case("normalises-input-and-forgets", lambda: NormalisesInputAndForgets(8), S,
         frozenset({"no_gradient", "discarded_bn_update"})),
    Case("flattens-output", lambda: FlattensOutput(8), S, frozenset({"bad_output"})),
    Case("conv-used-twice", lambda: ConvUsedTwice(8), S, frozenset({"no_gradient"})),
    Case("bn1-used-twice", lambda: BN1UsedTwice(8), S,
         frozenset({"no_gradient", "reused_norm"})),
    Case("returns-input", lambda: ReturnsInput(8), S,
         frozenset({"ignores_branch", "no_gradient", "discarded_bn_update"})),
    Case("nan-output", lambda: NaNBlock(8), S, frozenset({"bad_output"})),
    Case("uses-only-the-shape-of-x", lambda: UsesOnlyTheShapeOfX(8), S,
         frozenset({"no_input_dependence"})),
    Case("parameter-free", lambda: ParameterFree(), S, frozenset({"no_parameters"})),
]
