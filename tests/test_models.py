"""resnet_edu.models against the references: torchvision and the paper."""
import pytest
import torch
import torchvision

from resnet_edu import blocks as blocks_mod
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
    ours.eval()
    tv.eval()
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


@pytest.mark.parametrize("name,expected", list(zip(CIFAR_NAMES, [269_722, 464_154, 658_586, 853_018,
                                                                   1_727_962])))
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


# --- the block protocol: any block class can be stacked ------------------------------------

class ScaledShortcutBlock(blocks_mod.ResidualBlock):
    """A block the package does not know: ``relu(bn(conv(x)) + scale * x)``, one conv only."""

    expansion = 1
    zero_init_calls = 0

    def __init__(self, in_channels, width, stride=1, scale=1.0):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(width)
        self.shortcut = blocks_mod.make_shortcut("A", in_channels, width, stride)
        self.scale = scale

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)) + self.scale * self.shortcut(x))

    @property
    def last_bn(self):
        return self.bn

    def zero_init_residual_(self):
        type(self).zero_init_calls += 1
        return super().zero_init_residual_()


def test_networks_stack_a_new_block_class_with_its_keyword_arguments():
    ScaledShortcutBlock.zero_init_calls = 0
    model = models.CifarResNet(20, block=ScaledShortcutBlock, block_kwargs={"scale": 0.5},
                               zero_init_residual=True)
    stacked = [m for m in model.modules() if isinstance(m, ScaledShortcutBlock)]
    assert len(stacked) == 9 and all(b.scale == 0.5 for b in stacked)
    # zero-init asked every block, and each silenced its own branch
    assert ScaledShortcutBlock.zero_init_calls == 9
    assert all(torch.count_nonzero(b.bn.weight) == 0 for b in stacked)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    imagenet = models.ResNet(ScaledShortcutBlock, [1, 1, 1, 1], num_classes=4,
                             block_kwargs={"scale": 2.0})
    assert [b.scale for b in imagenet.modules() if isinstance(b, ScaledShortcutBlock)] == [2.0] * 4
    assert imagenet(torch.randn(1, 3, 64, 64)).shape == (1, 4)


def test_plain_block_lives_in_blocks_and_is_still_importable_from_models():
    from resnet_edu.models import PlainBlock
    assert PlainBlock is blocks_mod.PlainBlock
    with pytest.raises(ValueError, match="skip connections"):
        PlainBlock(8, 8).zero_init_residual_()


class NoProtocol(torch.nn.Module):
    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, width, 3, stride, 1)


class BadExpansion(blocks_mod.ResidualBlock):
    expansion = 0


@pytest.mark.parametrize("call,fragment", [
    (lambda: models.CifarResNet(20, block=NoProtocol), "missing or invalid: expansion, last_bn"),
    (lambda: models.ResNet(NoProtocol, [1, 1, 1, 1]), "zero_init_residual_()"),
    (lambda: models.ResNet(BadExpansion, [1, 1, 1, 1]), "expansion=0"),
    (lambda: models.ResNet(BasicBlock(8, 8), [1, 1, 1, 1]), "must be an nn.Module class"),
    (lambda: models.ResNet("BasicBlock", [1, 1, 1, 1]), "must be an nn.Module class"),
])
def test_a_block_class_without_the_protocol_is_refused_clearly(call, fragment):
    with pytest.raises(TypeError) as info:
        call()
    assert fragment in str(info.value)


def test_plain_and_a_block_class_together_are_refused():
    with pytest.raises(ValueError, match="either plain=True or a block class"):
        models.CifarResNet(20, plain=True, block=BasicBlock)


# --- pre-activation networks (He et al. 2016) -----------------------------------------------

PREACT_DEPTHS = [20, 32, 44, 56, 110]


def _bn(x, sd, prefix, training):
    """BatchNorm written with tensor operations, from a state_dict."""
    if training:
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
    else:
        mean, var = sd[prefix + "running_mean"], sd[prefix + "running_var"]
    shape = (1, -1, 1, 1)
    x = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + 1e-5)
    return x * sd[prefix + "weight"].view(shape) + sd[prefix + "bias"].view(shape)


def _reference_preact_forward(sd, x, n, training):
    """He et al. (2016), Fig. 1(b) and Appendix, from the state_dict and functional ops only."""
    conv = torch.nn.functional.conv2d
    x = conv(x, sd["conv1.weight"], padding=1)
    for stage in (1, 2, 3):
        for i in range(n):
            p = f"layer{stage}.{i}."
            stride = 2 if (stage > 1 and i == 0) else 1
            pre = torch.relu(_bn(x, sd, p + "bn1.", training))
            # where the shape changes the shortcut is a bare 1x1 conv of the pre-activation
            short = conv(pre, sd[p + "downsample.weight"], stride=stride) \
                if p + "downsample.weight" in sd else x
            out = conv(pre, sd[p + "conv1.weight"], stride=stride, padding=1)
            out = conv(torch.relu(_bn(out, sd, p + "bn2.", training)), sd[p + "conv2.weight"],
                       padding=1)
            x = out + short                                   # no ReLU after the addition
    x = torch.relu(_bn(x, sd, "final_bn.", training)).mean(dim=(2, 3))
    return x @ sd["fc.weight"].T + sd["fc.bias"]


@pytest.mark.parametrize("depth", [20, 32])
@pytest.mark.parametrize("training", [False, True])
def test_preact_forward_equals_a_hand_written_preact_net(depth, training):
    torch.manual_seed(depth)
    model = models.get_model(f"preact_resnet{depth}")
    _randomize_bn(model, seed=depth)
    model.train(training)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        got, expected = model(x), _reference_preact_forward(sd, x, (depth - 2) // 6, training)
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("depth", PREACT_DEPTHS)
def test_preact_parameter_count_formula(depth):
    """Counted by hand: bare-conv stem, per block BN(cin) conv BN conv, 1x1 projections, final BN."""
    n = (depth - 2) // 6
    total, cin = 9 * 3 * 16, 16                                   # the stem has no BatchNorm
    for width in (16, 32, 64):
        for _ in range(n):
            total += 2 * cin + 9 * cin * width + 2 * width + 9 * width * width
            total += cin * width if cin != width else 0           # 1x1 projection, no BN
            cin = width
    total += 2 * 64 + 64 * 10 + 10                                # final BN, fc
    assert sum(p.numel() for p in models.get_model(f"preact_resnet{depth}").parameters()) == total


def test_preact_models_are_registered_and_documented():
    for depth in PREACT_DEPTHS:
        build = models.MODELS[f"preact_resnet{depth}"]
        assert build.__name__ == f"preact_resnet{depth}" and "He et al. 2016" in build.__doc__
    assert models.default_input_size("preact_resnet20") == (1, 3, 32, 32)


def test_preact_net_is_the_identity_where_its_branches_end_at_zero():
    torch.manual_seed(0)
    model = models.preact_resnet20(zero_init_residual=True).eval()
    _randomize_bn(model, seed=1)
    seen = {}
    names = ["conv1", "layer1", "layer3.0", "final_bn"]
    handles = [model.get_submodule(n).register_forward_hook(
        lambda m, i, o, n=n: seen.update({n: (i[0], o)})) for n in names]
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    for h in handles:
        h.remove()
    # stage 1 keeps the shape, so its three blocks together are the identity, negatives included
    conv_out = seen["conv1"][1]
    torch.testing.assert_close(seen["layer1"][1], conv_out, rtol=0, atol=0)
    assert (conv_out < 0).any()
    # after the last change of shape, every block passes its input on: the head gets what
    # the first block of stage 3 produced
    torch.testing.assert_close(seen["final_bn"][0], seen["layer3.0"][1], rtol=0, atol=0)
    # the post-activation net with zero-init is not the identity: its ReLU removes negatives
    post = models.resnet20(zero_init_residual=True).eval()
    x = torch.randn(2, 16, 32, 32)
    with torch.no_grad():
        assert not torch.equal(post.layer1(x), x)
