"""The checks of chapters 6, 7 and 8's coding exercises: the book's solution passes, typical
mistakes fail with a helpful message, and an unsolved stub reads "not solved yet"."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu.blocks import BasicBlock, Bottleneck
from resnet_edu.exercises import check
from resnet_edu.exercises.ch08 import _PARAM_CASES, _meta_resnet, formula_param_count
from resnet_edu.stats import count_parameters


def stub(*args, **kwargs):
    raise NotImplementedError("write your solution here")


def assert_fails(feedback, *phrases):
    assert not feedback.passed, feedback
    assert feedback.solved
    text = str(feedback).lower()
    for phrase in phrases:
        assert phrase.lower() in text, f"{phrase!r} not in: {feedback}"


# ---------------------------------------------------------------- ch06-shortcut-a
def shortcut_a(x, out_channels, stride):                      # the book's solution
    x = x[:, :, ::stride, ::stride]                                   # (N, C_in, H/s, W/s)
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))       # (N, C_out, H/s, W/s)


def zeros_first(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, out_channels - x.shape[1], 0))


def zeros_both_ends(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, extra // 2, extra - extra // 2))


def averaged(x, out_channels, stride):
    x = F.avg_pool2d(x, stride) if stride > 1 else x
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def offset_one(x, out_channels, stride):
    start = 1 if stride > 1 else 0
    x = x[:, :, start::stride, start::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def not_subsampled(x, out_channels, stride):
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def floor_size(x, out_channels, stride):             # crops an odd last row away
    h, w = x.shape[2] // stride * stride, x.shape[3] // stride * stride
    x = x[:, :, :h:stride, :w:stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def max_pooled(x, out_channels, stride):
    x = F.max_pool2d(x, stride) if stride > 1 else x
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]))


def ones_padding(x, out_channels, stride):
    x = x[:, :, ::stride, ::stride]
    return F.pad(x, (0, 0, 0, 0, 0, out_channels - x.shape[1]), value=1.0)


def detached(x, out_channels, stride):
    out = x.new_zeros(x.shape[0], out_channels, *x[:, :, ::stride, ::stride].shape[2:])
    out[:, :x.shape[1]] = x.detach()[:, :, ::stride, ::stride]
    return out


def in_place(x, out_channels, stride):
    with torch.no_grad():
        x.mul_(1.0)
        x[0, 0, 0, 0] += 1.0
    return shortcut_a(x, out_channels, stride)


def test_shortcut_a_solution_passes(book_solution):
    feedback = check("ch06-shortcut-a", book_solution("06_shortcuts.ipynb", "shortcut_a"))
    assert feedback.passed, feedback
    assert str(feedback).startswith("✓ ch06-shortcut-a")


@pytest.mark.parametrize("wrong, phrases", [
    (zeros_first, ["zero channels come first"]),
    (zeros_both_ends, ["both ends"]),
    (averaged, ["averaged"]),
    (offset_one, ["start at 0"]),
    (not_subsampled, ["subsample", "still"]),
    (floor_size, ["round up"]),
    (max_pooled, ["maximum"]),
    (ones_padding, ["not all zero"]),
    (detached, ["gradient"]),
    (in_place, ["in place"]),
])
def test_shortcut_a_mistakes_are_explained(wrong, phrases):
    assert_fails(check("ch06-shortcut-a", wrong), *phrases)


def test_shortcut_a_stub_is_not_solved_yet():
    feedback = check("ch06-shortcut-a", stub)
    assert not feedback.passed and not feedback.solved
    assert "not solved yet" in str(feedback)


# ---------------------------------------------------------------- ch07-bottleneck-block
class MyBottleneck(nn.Module):                                # the book's solution
    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        out_channels = 4 * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.downsample = nn.Identity()

    def forward(self, x):
        identity = self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _variant(forward=None, **init_changes):
    """A subclass of the solution with one mistake."""
    class Wrong(MyBottleneck):
        def __init__(self, in_channels, width, stride=1):
            super().__init__(in_channels, width, stride)
            for name, make in init_changes.items():
                setattr(self, name, make(in_channels, width, stride))

    if forward is not None:
        Wrong.forward = forward
    return Wrong


def _no_final_relu(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.bn3(self.conv3(out)) + self.downsample(x)


def _relu_before_add(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out))) + self.downsample(x)


def _no_shortcut(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    return self.relu(self.bn3(self.conv3(out)))


def _bn2_twice(self, x):
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.bn2(self.conv2(out))))
    return self.relu(self.bn3(self.conv3(out)) + self.downsample(x))


StrideOn1x1 = _variant(
    conv1=lambda c, w, s: nn.Conv2d(c, w, 1, stride=s, bias=False),
    conv2=lambda c, w, s: nn.Conv2d(w, w, 3, padding=1, bias=False))
WithBias = _variant(conv1=lambda c, w, s: nn.Conv2d(c, w, 1))
AlwaysIdentity = _variant(downsample=lambda c, w, s: nn.Identity())
AlwaysProjection = _variant(downsample=lambda c, w, s: nn.Sequential(
    nn.Conv2d(c, 4 * w, 1, stride=s, bias=False), nn.BatchNorm2d(4 * w)))
Expansion2 = _variant(conv3=lambda c, w, s: nn.Conv2d(w, 2 * w, 1, bias=False))
NoPadding = _variant(conv2=lambda c, w, s: nn.Conv2d(w, w, 3, stride=s, bias=False))


def test_bottleneck_solution_passes(book_solution):
    ours = book_solution("07_bottleneck.ipynb", "MyBottleneck")
    feedback = check("ch07-bottleneck-block", ours)
    assert feedback.passed, feedback


@pytest.mark.parametrize("wrong, phrases", [
    (StrideOn1x1, ["first 1x1", "v1.5"]),
    (_variant(_no_final_relu), ["no relu after the addition"]),
    (_variant(_relu_before_add), ["before the addition"]),
    (_variant(_no_shortcut), ["ignores the shortcut"]),
    (_variant(_bn2_twice), ["check the order"]),
    (WithBias, ["bias=false"]),
    (AlwaysIdentity, ["projection"]),
    (AlwaysProjection, ["nn.identity"]),
    (Expansion2, ["conv3", "4 * width"]),
    (NoPadding, ["padding 1"]),
])
def test_bottleneck_mistakes_are_explained(wrong, phrases):
    assert_fails(check("ch07-bottleneck-block", wrong), *phrases)


def test_bottleneck_stub_is_not_solved_yet():
    class Stub(nn.Module):
        def __init__(self, in_channels, width, stride=1):
            raise NotImplementedError("write your solution here")

    feedback = check("ch07-bottleneck-block", Stub)
    assert not feedback.passed and not feedback.solved


def test_bottleneck_check_keeps_the_global_random_stream():
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    check("ch07-bottleneck-block", MyBottleneck)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- ch08-param-count
def resnet_param_count(block, layers, num_classes=1000):     # the book's solution
    expansion = block.expansion
    total = 3 * 64 * 7 * 7 + 2 * 64                  # stem: 7x7 conv (no bias) + BatchNorm
    channels = 64
    for stage, num_blocks in enumerate(layers):
        width = 64 * 2 ** stage
        out = width * expansion
        for i in range(num_blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            if expansion == 1:   # basic block: two 3x3 convs, two BNs
                total += 9 * channels * width + 9 * width * width + 2 * (2 * width)
            else:                # bottleneck: 1x1, 3x3, 1x1 and three BNs
                total += channels * width + 9 * width * width + width * out
                total += 2 * (width + width + out)
            if stride != 1 or channels != out:   # projection shortcut: 1x1 conv + BN
                total += channels * out + 2 * out
            channels = out
    return total + channels * num_classes + num_classes      # fc weight and bias


@pytest.mark.parametrize("block, layers, num_classes", _PARAM_CASES)
def test_formula_of_the_hints_is_right(block, layers, num_classes):
    # the hints compare with formula_param_count's variants, so its default must be exact
    expected = count_parameters(_meta_resnet(block, layers, num_classes))
    assert formula_param_count(block, layers, num_classes) == expected
    assert resnet_param_count(block, layers, num_classes) == expected


def test_param_count_solution_passes(book_solution):
    ours = book_solution("08_full_resnet.ipynb", "resnet_param_count",
                         exercise="ch08-param-count")
    assert check("ch08-param-count", ours).passed


def _from_formula(**variant):
    return lambda block, layers, num_classes=1000: formula_param_count(
        block, layers, num_classes, **variant)


@pytest.mark.parametrize("wrong, phrases", [
    (_from_formula(bn_per_channel=0), ["batchnorm layers are missing"]),
    (_from_formula(bn_per_channel=4), ["buffers"]),
    (_from_formula(fc_bias=False), ["bias"]),
    (_from_formula(projections="strided"), ["64 -> 256"]),
    (_from_formula(projections="never"), ["projection shortcuts are missing"]),
    (lambda block, layers, num_classes=1000: resnet_param_count(block, layers, num_classes) + 1,
     ["off by +1", "fc layer 513,000"]),
    (lambda block, layers, num_classes=1000: 11_689_512.5, ["whole number"]),
    (lambda block, layers, num_classes=1000: str(resnet_param_count(block, layers, num_classes)),
     ["whole number"]),
])
def test_param_count_mistakes_are_explained(wrong, phrases):
    assert_fails(check("ch08-param-count", wrong), *phrases)


def test_param_count_accepts_numpy_integers():
    np = pytest.importorskip("numpy")
    assert check("ch08-param-count", lambda b, l, num_classes=1000:
                 np.int64(resnet_param_count(b, l, num_classes))).passed


def test_param_count_stub_is_not_solved_yet():
    feedback = check("ch08-param-count", stub)
    assert not feedback.solved and "not solved yet" in str(feedback)


# ---------------------------------------------------------------- ch08-stage-shapes
def stage_output_shapes(block, height, width):               # the book's solution
    def down(size, kernel, stride, padding):
        return (size + 2 * padding - kernel) // stride + 1

    h, w = down(height, 7, 2, 3), down(width, 7, 2, 3)        # 7x7/2 convolution
    h, w = down(h, 3, 2, 1), down(w, 3, 2, 1)                 # 3x3/2 max pooling
    shapes = [(64, h, w)]
    for stage in range(4):
        if stage > 0:                                         # 3x3/2 conv of the first block
            h, w = down(h, 3, 2, 1), down(w, 3, 2, 1)
        shapes.append((64 * 2 ** stage * block.expansion, h, w))
    return shapes


def test_stage_shapes_solution_passes(book_solution):
    ours = book_solution("08_full_resnet.ipynb", "stage_output_shapes",
                         exercise="ch08-stage-shapes")
    assert check("ch08-stage-shapes", ours).passed


def _floor_halving(block, height, width):
    shapes, h, w = [], height // 4, width // 4
    shapes.append((64, h, w))
    for stage in range(4):
        h, w = (h // 2, w // 2) if stage else (h, w)
        shapes.append((64 * 2 ** stage * block.expansion, h, w))
    return shapes


@pytest.mark.parametrize("wrong, phrases", [
    (_floor_halving, ["rounds *up*"]),
    (lambda b, h, w: [(c, h2 * 2, w2 * 2) for c, h2, w2 in stage_output_shapes(b, h, w)],
     ["halves twice"]),
    (lambda b, h, w: [(64 * 2 ** max(i - 1, 0), *s[1:])
                      for i, s in enumerate(stage_output_shapes(b, h, w))], ["expansion"]),
    (lambda b, h, w: stage_output_shapes(b, h, w)[1:], ["five shapes"]),
    (lambda b, h, w: [(1, *s) for s in stage_output_shapes(b, h, w)], ["without the batch"]),
    (lambda b, h, w: None, ["list of five"]),
])
def test_stage_shapes_mistakes_are_explained(wrong, phrases):
    assert_fails(check("ch08-stage-shapes", wrong), *phrases)


def test_stage_shapes_stub_is_not_solved_yet():
    assert not check("ch08-stage-shapes", stub).solved


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_meta_reference_matches_a_real_forward(block):
    # the check's reference runs on the meta device; a real forward must agree
    from resnet_edu.exercises.ch08 import _reference_shapes
    from resnet_edu.models import ResNet

    model = ResNet(block, [1, 1, 1, 1]).eval()
    shapes = []
    for m in (model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4):
        m.register_forward_hook(lambda mod, i, out: shapes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 45, 38))
    assert shapes == _reference_shapes(block, 45, 38)
