"""resnet_edu.blocks: shortcut options, stride placement, identities at init."""
import pytest
import torch
import torchvision

from resnet_edu import blocks
from resnet_edu.blocks import BasicBlock, Bottleneck, PreActBlock, ShortcutA, ShortcutProjection


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_option_a_pads_with_zeros_and_has_no_parameters():
    sc = blocks.make_shortcut("A", 16, 32, stride=2)
    assert isinstance(sc, ShortcutA) and n_params(sc) == 0
    x = torch.randn(2, 16, 8, 8)
    # computed another way: subsample with max-pool of size 1 and concatenate zeros
    expected = torch.cat([torch.nn.functional.max_pool2d(x, 1, 2), torch.zeros(2, 16, 4, 4)], 1)
    torch.testing.assert_close(sc(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("option", ["A", "B"])
def test_options_a_and_b_use_the_identity_when_shapes_match(option):
    sc = blocks.make_shortcut(option, 64, 64, stride=1)
    assert isinstance(sc, torch.nn.Identity)


@pytest.mark.parametrize("cin,cout,stride", [(64, 128, 2), (64, 64, 2), (64, 256, 1)])
def test_option_b_projects_where_shapes_change(cin, cout, stride):
    sc = blocks.make_shortcut("B", cin, cout, stride)
    assert isinstance(sc, ShortcutProjection)
    assert n_params(sc) == cin * cout + 2 * cout
    assert sc(torch.randn(1, cin, 8, 8)).shape == (1, cout, 8 // stride, 8 // stride)


def test_option_c_projects_everywhere():
    assert isinstance(blocks.make_shortcut("C", 64, 64, 1), ShortcutProjection)


def test_option_a_cannot_reduce_channels():
    with pytest.raises(ValueError, match="option 'B' or 'C'"):
        blocks.make_shortcut("A", 64, 32, 1)


@pytest.mark.parametrize("option", ["A", "B", "C"])
def test_parameter_count_of_options_orders_a_b_c(option):
    from resnet_edu.models import cifar_resnet
    counts = {o: n_params(cifar_resnet(20, shortcut=o)) for o in "ABC"}
    assert counts["A"] < counts["B"] < counts["C"]
    # B adds exactly the two stage-entry projections: 16->32 and 32->64, each conv + BN
    assert counts["B"] - counts["A"] == (16 * 32 + 64) + (32 * 64 + 128)


@pytest.mark.parametrize("stride,downsample", [(1, False), (2, True)])
def test_basic_block_equals_torchvision(stride, downsample):
    torch.manual_seed(0)
    cin, cout = (64, 128) if downsample else (64, 64)
    ours = BasicBlock(cin, cout, stride)
    ds = None
    if downsample:
        ds = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                 torch.nn.BatchNorm2d(cout))
    ref = torchvision.models.resnet.BasicBlock(cin, cout, stride, ds)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, cin, 16, 16)
    torch.testing.assert_close(ours(x), ref(x))  # training mode: batch statistics


def test_bottleneck_equals_torchvision_and_counts_macs():
    torch.manual_seed(0)
    ours = Bottleneck(256, 128, stride=2)
    ds = torch.nn.Sequential(torch.nn.Conv2d(256, 512, 1, 2, bias=False), torch.nn.BatchNorm2d(512))
    ref = torchvision.models.resnet.Bottleneck(256, 128, 2, ds)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 256, 8, 8)
    torch.testing.assert_close(ours(x), ref(x))


def test_paper_placement_spends_fewer_macs():
    from resnet_edu.stats import count_macs
    v15 = count_macs(Bottleneck(256, 128, 2, stride_on="3x3"), (1, 256, 56, 56))
    v1 = count_macs(Bottleneck(256, 128, 2, stride_on="1x1"), (1, 256, 56, 56))
    # the reduce 1x1 runs on all 56x56 positions in v1.5, on 28x28 in the paper
    assert v15 - v1 == 256 * 128 * (56 * 56 - 28 * 28)


@pytest.mark.parametrize("block", [BasicBlock(32, 32), Bottleneck(128, 32), BasicBlock(16, 32, 2, "A")])
def test_zero_init_residual_gives_relu_of_shortcut(block):
    block.zero_init_residual_()
    x = torch.randn(2, block.conv1.in_channels, 8, 8)
    torch.testing.assert_close(block(x), torch.relu(block.downsample(x)), rtol=0, atol=0)


def test_preact_block_is_the_exact_identity_when_its_branch_is_zero():
    block = PreActBlock(32, 32).zero_init_residual_()
    x = torch.randn(2, 32, 8, 8)  # negative values survive: no ReLU after the addition
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    assert (x < 0).any()


def test_preact_block_downsamples_with_a_bare_projection():
    block = PreActBlock(16, 32, stride=2)
    assert isinstance(block.downsample, torch.nn.Conv2d)
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    block_a = PreActBlock(16, 32, stride=2, shortcut="A")
    assert isinstance(block_a.downsample, ShortcutA)
    assert block_a(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_forward_does_not_modify_its_input():
    for block in (BasicBlock(8, 8), Bottleneck(32, 8), PreActBlock(8, 8)):
        x = torch.randn(2, block.conv1.in_channels, 6, 6)
        before = x.clone()
        block(x)
        torch.testing.assert_close(x, before, rtol=0, atol=0)


@pytest.mark.parametrize("call,fragment", [
    (lambda: BasicBlock(16, 16, shortcut="D"), "shortcut='D'"),
    (lambda: Bottleneck(16, 16, stride_on="3x1"), "stride_on='3x1'"),
    (lambda: BasicBlock(0, 16), "in_channels must be a positive integer"),
    (lambda: BasicBlock(16, 16, stride=1.5), "stride must be a positive integer"),
])
def test_block_arguments_are_checked(call, fragment):
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)


@pytest.mark.parametrize("cls", [BasicBlock, Bottleneck, PreActBlock])
def test_every_residual_block_follows_the_protocol(cls):
    assert issubclass(cls, blocks.ResidualBlock)
    blocks.check_block_class(cls)  # raises if anything is missing
    block = cls(16, 16)
    assert block.zero_init_residual_() is block


def test_a_block_that_forgets_last_bn_says_so():
    class Incomplete(blocks.ResidualBlock):
        pass

    with pytest.raises(NotImplementedError, match="must define the property `last_bn`"):
        Incomplete().zero_init_residual_()


def test_only_preact_blocks_ask_for_a_final_activation():
    assert PreActBlock.pre_activation
    assert not any(c.pre_activation for c in (BasicBlock, Bottleneck, blocks.PlainBlock))
