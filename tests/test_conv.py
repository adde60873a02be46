"""resnet_edu.conv against PyTorch: shapes, values, parameter counts, receptive fields."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu.conv import (
    conv2d_num_parameters,
    conv2d_unfold,
    conv_output_size,
    measure_receptive_field,
    receptive_field,
)

CASES = [  # (N, C_in, H, W, C_out, kH, kW, stride, padding, dilation)
    (1, 1, 5, 5, 1, 3, 3, 1, 0, 1),
    (2, 3, 8, 7, 4, 3, 3, 1, 1, 1),
    (2, 3, 9, 11, 5, 3, 2, 2, 1, 1),
    (1, 4, 10, 10, 2, 5, 5, 3, 2, 1),
    (3, 2, 12, 9, 6, 3, 3, 1, 2, 2),
    (2, 2, 13, 10, 3, 3, 1, (2, 1), (1, 0), (1, 3)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d_unfold_equals_conv2d(case, with_bias):
    n, c_in, h, w, c_out, kh, kw, stride, padding, dilation = case
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64) if with_bias else None
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    got = conv2d_unfold(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_conv2d_unfold_is_differentiable_like_conv2d():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 6, 6, generator=g, dtype=torch.float64)
    w1 = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w2 = w1.detach().clone().requires_grad_(True)
    conv2d_unfold(x, w1, stride=2, padding=1).square().sum().backward()
    F.conv2d(x, w2, stride=2, padding=1).square().sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad)


def test_conv2d_unfold_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="input channels"):
        conv2d_unfold(torch.zeros(1, 3, 5, 5), torch.zeros(2, 4, 3, 3))


@pytest.mark.parametrize("size,k,s,p,d", [
    c for c in itertools.product([5, 8, 11], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2])
    if c[0] + 2 * c[3] >= c[4] * (c[1] - 1) + 1
])
def test_conv_output_size_matches_pytorch(size, k, s, p, d):
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    with torch.no_grad():
        out = conv(torch.zeros(1, 1, size, size + 1))
    assert conv_output_size(size, k, s, p, d) == out.shape[2]
    assert conv_output_size(size + 1, k, s, p, d) == out.shape[3]


@pytest.mark.parametrize("size,k,s,p", [(8, 3, 2, 1), (9, 2, 2, 0), (112, 3, 2, 1), (7, 3, 1, 1)])
def test_conv_output_size_holds_for_pooling(size, k, s, p):
    out = nn.MaxPool2d(k, s, p)(torch.zeros(1, 1, size, size))
    assert conv_output_size(size, k, s, p) == out.shape[2]


def test_conv_output_size_errors():
    with pytest.raises(ValueError, match="kernel spans 5"):
        conv_output_size(3, 3, dilation=2)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(8, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        conv_output_size(8, 3, padding=-1)


@pytest.mark.parametrize("c_in,c_out,k,bias,groups", [
    (3, 64, 7, False, 1), (3, 8, 3, True, 1), (16, 32, (3, 1), True, 1),
    (8, 8, 3, False, 8), (12, 6, 5, True, 3),
])
def test_conv2d_num_parameters(c_in, c_out, k, bias, groups):
    conv = nn.Conv2d(c_in, c_out, k, bias=bias, groups=groups)
    assert conv2d_num_parameters(c_in, c_out, k, bias, groups) == sum(
        p.numel() for p in conv.parameters())


def test_conv2d_num_parameters_rejects_bad_groups():
    with pytest.raises(ValueError, match="groups"):
        conv2d_num_parameters(6, 4, 3, groups=4)


def _stack(specs, channels=8):
    """Conv -> BN -> ReLU for each (kernel, stride, dilation); BN in eval mode."""
    layers, c_in = [], 1
    for k, s, d in specs:
        layers += [nn.Conv2d(c_in, channels, k, stride=s, padding=d * (k - 1) // 2,
                             dilation=d, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
        c_in = channels
    return nn.Sequential(*layers).double().eval()


@pytest.mark.parametrize("specs", [
    [(3, 1, 1)],
    [(3, 1, 1)] * 4,
    [(3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 1)],
    [(7, 2, 1), (3, 2, 1), (3, 1, 1)],
    [(3, 1, 1), (3, 1, 2), (3, 1, 4)],
    [(5, 1, 1), (1, 1, 1), (3, 3, 1), (3, 1, 1)],
])
def test_receptive_field_matches_gradient_measurement(specs):
    torch.manual_seed(0)
    model = _stack(specs)
    computed = receptive_field([(k, s, d) for k, s, d in specs])
    measured = measure_receptive_field(model, (1, 1, 65, 65))
    assert measured == (computed[-1], computed[-1])


def test_receptive_field_accepts_modules_and_grows_per_layer():
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 7, stride=2, padding=3), nn.AvgPool2d(3, stride=2, padding=1),
              nn.Conv2d(4, 4, 3, padding=1)]
    fields = receptive_field(layers)
    assert fields == receptive_field([(7, 2), (3, 2), (3, 1)])
    assert fields[0] < fields[1] < fields[2]
    # linear layers only: the gradient measurement sees the whole field
    model = nn.Sequential(*layers).double()
    assert measure_receptive_field(model, (1, 1, 64, 64)) == (fields[-1], fields[-1])


def test_receptive_field_errors():
    with pytest.raises(ValueError, match="kernel_size"):
        receptive_field([nn.ReLU()])
    with pytest.raises(ValueError, match="stride"):
        receptive_field([(3, 0)])
    with pytest.raises(ValueError, match="not square"):
        receptive_field([nn.Conv2d(1, 1, (3, 1))])
    with pytest.raises(ValueError, match="input_size"):
        measure_receptive_field(nn.Conv2d(1, 1, 3), (1, 5, 5))
