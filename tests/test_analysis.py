"""Tests of resnet_edu.analysis (chapter 11): each function against a computation done another way."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu import analysis as A
from resnet_edu.models import cifar_resnet, plain_net


def _randomise_bn(model, seed=0):
    """Non-trivial BatchNorm parameters and statistics, so eval mode is not the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = _randomise_bn(cifar_resnet(8, in_channels=1).double())   # 3 blocks: 8 paths
    x = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    return model, x, y


def test_stacked_blocks_in_order():
    model = cifar_resnet(20, in_channels=1)
    blocks = A.stacked_blocks(model)
    assert blocks == [*model.layer1, *model.layer2, *model.layer3]
    with pytest.raises(ValueError, match="layer1"):
        A.stacked_blocks(nn.Linear(2, 2))


@pytest.mark.parametrize("n", [0, 1, 5, 27])
def test_path_length_counts_are_binomial(n):
    counts = A.path_length_counts(n)
    assert len(counts) == n + 1 and sum(counts) == 2 ** n
    # Pascal's rule, an independent recurrence
    if n:
        previous = A.path_length_counts(n - 1)
        assert counts == [(previous[k - 1] if k else 0) + (previous[k] if k < n else 0)
                          for k in range(n + 1)]


def test_path_length_counts_rejects_bad_input():
    with pytest.raises(ValueError, match="non-negative integer"):
        A.path_length_counts(-1)


def test_path_gradients_add_up_to_the_full_gradient(tiny):
    model, x, y = tiny
    n = len(A.stacked_blocks(model))
    total = sum(A.path_gradient(model, x, y, [i for i in range(n) if mask[i]])
                for mask in itertools.product((0, 1), repeat=n))
    # the full gradient at the first block's input, computed without any hooks
    stem = model.relu(model.bn1(model.conv1(x))).detach().requires_grad_(True)
    out = model.fc(torch.flatten(model.avgpool(model.layer3(model.layer2(model.layer1(stem)))), 1))
    (full,) = torch.autograd.grad(F.cross_entropy(out, y), stem)
    assert torch.allclose(total, full, atol=1e-12, rtol=1e-9)
    # and the paths really differ: the all-skip path is not the full gradient
    assert not torch.allclose(A.path_gradient(model, x, y, []), full, atol=1e-6)


def test_path_gradient_leaves_the_model_as_it_was(tiny):
    model, x, y = tiny
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = model(x)
    model.train()
    A.path_gradient_norm(model, x, y, [0, 2])
    assert model.training
    model.eval()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    x_grad = x.clone().requires_grad_(True)
    after = model(x_grad)                                    # no hook detaches anything now
    assert torch.equal(after.detach(), before)
    (g,) = torch.autograd.grad(after.sum(), x_grad)
    assert g.abs().sum() > 0
    with pytest.raises(ValueError, match=r"0..2"):
        A.path_gradient(model, x, y, [3])


def test_path_gradient_needs_shortcuts():
    model = plain_net(8, in_channels=1).eval()
    with pytest.raises(ValueError, match="shortcut"):
        A.path_gradient(model, torch.randn(2, 1, 8, 8), torch.tensor([0, 1]), [0])


def test_lesioned_residual_block_outputs_its_shortcut(tiny):
    model, x, _ = tiny
    block = model.layer2[0]                                  # option A, stride 2
    with torch.no_grad():
        inp = model.layer1(model.relu(model.bn1(model.conv1(x))))
        by_hand = model.fc(torch.flatten(model.avgpool(
            model.layer3(F.relu(block.downsample(inp)))), 1))
        intact = model(x)
        with A.lesioned(model, [1]):
            deleted = model(x)
        after = model(x)
    assert torch.allclose(deleted, by_hand, atol=1e-12)
    assert torch.equal(after, intact)                        # the hooks are gone
    assert not torch.allclose(deleted, intact)


def test_lesioned_plain_block_is_the_identity():
    torch.manual_seed(0)
    model = _randomise_bn(plain_net(14, in_channels=1))          # 2 blocks per stage
    x = torch.randn(3, 1, 8, 8)
    assert A.deletable_blocks(model) == [0, 1, 3, 5]              # not the downsampling blocks
    with torch.no_grad():
        stem = model.relu(model.bn1(model.conv1(x)))
        by_hand = model.fc(torch.flatten(model.avgpool(
            model.layer3(model.layer2(model.layer1[0](stem)))), 1))
        with A.lesioned(model, [1]):
            deleted = model(x)
    assert torch.allclose(deleted, by_hand, atol=1e-6)
    with pytest.raises(ValueError, match="changes the shape"), A.lesioned(model, [2]):
        pass
    with pytest.raises(ValueError, match=r"0..5"), A.lesioned(model, [6]):
        pass


def test_filter_normalised_direction():
    torch.manual_seed(0)
    model = cifar_resnet(8, in_channels=1)
    d = A.filter_normalised_direction(model, torch.Generator().manual_seed(1))
    for name, p in model.named_parameters():
        if p.dim() <= 1:
            assert torch.count_nonzero(d[name]) == 0, name
        else:
            for i in range(p.shape[0]):                      # filter by filter, by a loop
                assert math.isclose(d[name][i].norm().item(), p[i].norm().item(), rel_tol=1e-4)
    again = A.filter_normalised_direction(model, torch.Generator().manual_seed(1))
    assert all(torch.equal(d[k], again[k]) for k in d)       # seeded


def test_interpolate_state_endpoints_and_midpoint():
    a, b = nn.BatchNorm2d(3).state_dict(), nn.BatchNorm2d(3).state_dict()
    b = {k: (v + 2 if v.is_floating_point() else v + 5) for k, v in b.items()}
    mid = A.interpolate_state(a, b, 0.5)
    assert torch.allclose(mid["weight"], a["weight"] + 1)
    assert torch.equal(mid["num_batches_tracked"], b["num_batches_tracked"])
    assert all(torch.equal(A.interpolate_state(a, b, 1.0)[k], b[k]) for k in b)
    with pytest.raises(ValueError, match="same architecture"):
        A.interpolate_state(a, {"weight": a["weight"]}, 0.5)


def test_loss_surface_values_and_restoration():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0]]))
    d1 = {"0.weight": torch.tensor([[1.0, 0.0]]), "1.weight": torch.zeros(1), "1.bias": torch.zeros(1)}
    d2 = {"0.weight": torch.tensor([[0.0, 1.0]]), "1.weight": torch.zeros(1), "1.bias": torch.zeros(1)}
    x = torch.randn(8, 2)

    def loss_fn(m):
        m.train()                                            # updates BN running statistics
        m(x)
        return float(m[0].weight.sum())

    buffers = {k: v.clone() for k, v in model.named_buffers()}
    surface = A.loss_surface(model, [d1, d2], [[-1.0, 0.0, 2.0], [0.0, 3.0]], loss_fn)
    expected = torch.tensor([[a + b - 1.0 for b in (0.0, 3.0)] for a in (-1.0, 0.0, 2.0)])
    assert surface.shape == (3, 2) and torch.allclose(surface, expected)
    assert torch.equal(model[0].weight, torch.tensor([[1.0, -2.0]]))
    assert all(torch.equal(buffers[k], v) for k, v in model.named_buffers())
    with pytest.raises(ValueError, match="one sequence of coordinates per direction"):
        A.loss_surface(model, [d1], [[0.0], [1.0]], loss_fn)


def test_branch_responses():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    model = cifar_resnet(20, in_channels=1, zero_init_residual=True)
    _randomise_bn(model)
    for block in A.stacked_blocks(model):                    # branches output exactly zero
        with torch.no_grad():
            block.last_bn.weight.zero_()
            block.last_bn.bias.zero_()
    assert A.branch_to_shortcut_ratios(model, x) == [0.0] * 9
    assert A.branch_response_stds(model, x) == [0.0] * 9
    plain = plain_net(20, in_channels=1)
    stds = A.branch_response_stds(plain, x)
    assert len(stds) == 9 and all(s > 0 for s in stds)
    with pytest.raises(ValueError, match="shortcut"):
        A.branch_to_shortcut_ratios(plain, x)
