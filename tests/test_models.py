"""resnet_edu.models against the references: torchvision and the paper."""
import pytest
import torch
import torchvision

from resnet_edu import models
from resnet_edu.blocks import BasicBlock, Bottleneck

IMAGENET_DEPTHS = [18, 34, 50, 101, 152]
CIFAR_NAMES = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


def _randomize_bn(model, seed=0):
    """Give every BatchNorm non-trivial statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.num_batches_tracked.fill_(7)


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_torchvision_weights_load_strictly_and_logits_match(depth):
    torch.manual_seed(depth)
    tv = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    _randomize_bn(tv, seed=depth)
    ours = models.get_model(f"resnet{depth}")
    tv_sd = tv.state_dict()
    # key-for-key, in the same order, shape-for-shape
    assert list(ours.state_dict()) == list(tv_sd)
    assert all(ours.state_dict()[k].shape == v.shape for k, v in tv_sd.items())
    ours.load_state_dict(tv_sd, strict=True)
    # and the other way round
    tv.load_state_dict(ours.state_dict(), strict=True)
    ours.eval(); tv.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = tv(x), ours(x)
    assert got.shape == (2, 1000)
    assert expected.abs().max() > 1e-3  # non-trivial logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_imagenet_parameter_count_equals_torchvision(depth):
    tv = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    for num_classes in (1000, 10):
        ours = models.get_model(f"resnet{depth}", num_classes=num_classes)
        tv = getattr(torchvision.models, f"resnet{depth}")(weights=None, num_classes=num_classes)
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())


@pytest.mark.parametrize("name,expected", zip(CIFAR_NAMES, [269_722, 464_154, 658_586, 853_018, 1_727_962]))
def test_cifar_parameter_counts_are_exact(name, expected):
    # the figures of the design contract (paper Table 6 rounds them to 0.27M ... 1.7M)
    model = models.get_model(name)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_cifar_parameter_count_formula(depth):
    """The count derived another way: by hand from the architecture of section 4.2."""
    n = (depth - 2) // 6
    conv = lambda cin, cout: 9 * cin * cout
    bn = lambda c: 2 * c
    total = conv(3, 16) + bn(16)
    cin = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv(cin, width) + bn(width) + conv(width, width) + bn(width)
            cin = width
    total += 64 * 10 + 10
    assert sum(p.numel() for p in models.get_model(f"resnet{depth}").parameters()) == total
    # option A shortcuts have no parameters, so the plain net has the same count
    assert sum(p.numel() for p in models.get_model(f"plain{depth}").parameters()) == total


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_gradient_reaches_every_parameter(name):
    torch.manual_seed(0)
    model = models.get_model(name, num_classes=10)
    size = 64 if name in models.IMAGENET_MODELS else 32
    x = torch.randn(2, 3, size, size)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 7]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} got no gradient"
        assert p.grad.abs().sum() > 0, f"{name}: {pname} got an all-zero gradient"


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "resnet56"])
def test_zero_init_makes_every_residual_branch_zero(name):
    torch.manual_seed(0)
    model = models.get_model(name, zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert blocks
    branch_outputs, checked = [], []

    def block_is_relu_of_shortcut(block, inputs, output):
        torch.testing.assert_close(output, torch.relu(block.downsample(inputs[0])), rtol=0, atol=0)
        checked.append(block)

    handles = [b.register_forward_hook(block_is_relu_of_shortcut) for b in blocks]
    handles += [b.last_bn.register_forward_hook(lambda m, i, o: branch_outputs.append(o))
                for b in blocks]
    size = 64 if name in models.IMAGENET_MODELS else 32
    with torch.no_grad():
        model(torch.randn(2, 3, size, size))
    for h in handles:
        h.remove()
    assert len(checked) == len(branch_outputs) == len(blocks)
    assert all(torch.count_nonzero(o) == 0 for o in branch_outputs)
    # without the flag, the branches are not zero
    model = models.get_model(name, zero_init_residual=False)
    assert all(b.last_bn.weight.abs().sum() > 0 for b in model.modules()
               if isinstance(b, (BasicBlock, Bottleneck)))


def test_paper_stride_placement_moves_the_stride_and_keeps_the_keys():
    v15 = models.resnet50()
    v1 = models.resnet50(stride_on="1x1")
    assert list(v1.state_dict()) == list(v15.state_dict())
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    v1.load_state_dict(torchvision.models.resnet50(weights=None).state_dict(), strict=True)


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_plain_counterpart_has_no_skip_connections(name):
    plain = models.get_model(name.replace("resnet", "plain"))
    assert not any(isinstance(m, BasicBlock) for m in plain.modules())
    assert isinstance(plain.layer1[0], models.PlainBlock)
    # the output of a plain block is relu(bn2(conv2(relu(bn1(conv1(x)))))) and nothing else
    block = plain.layer2[0]
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        expected = torch.relu(block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x))))))
        torch.testing.assert_close(block(x), expected)


def test_cifar_shapes_and_digits_input():
    model = models.cifar_resnet(8, in_channels=1)
    assert model(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert models.resnet110()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_from_a_table():
    """The generic ResNet builds any depth from a list of block counts."""
    model = models.ResNet(BasicBlock, [1, 1, 1, 1], num_classes=5)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]


@pytest.mark.parametrize("call,fragment", [
    (lambda: models.get_model("resnet19"), "supported models: resnet18"),
    (lambda: models.cifar_resnet(21), "6n + 2"),
    (lambda: models.cifar_resnet(20, shortcut="D"), "'A', 'B', 'C'"),
    (lambda: models.resnet50(stride_on="2x2"), "'3x3', '1x1'"),
    (lambda: models.resnet18(shortcut="Z"), "shortcut='Z' is not supported"),
    (lambda: models.ResNet(BasicBlock, [2, 2, 2]), "four positive block counts"),
    (lambda: models.resnet18()(torch.randn(1, 1, 64, 64)), "(N, 3, H, W)"),
    (lambda: models.resnet20()(torch.randn(3, 32, 32)), "(N, 3, H, W)"),
    (lambda: models.plain_net(20, zero_init_residual=True), "skip connections"),
])
def test_bad_arguments_raise_clear_value_errors(call, fragment):
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)
