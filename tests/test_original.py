"""The original post's listings behave exactly as chapter 5 says they do.

Every claim is checked against an independent reference computation
(``torch.relu``, autograd, module hooks), never against stored numbers.
"""
import inspect

import pytest
import torch
from torch import nn

import resnet_edu.original as original
from resnet_edu.original import (
    LISTINGS,
    ResidualBlockListing1,
    ResidualBlockListing2,
    listing_source,
)

BOTH = pytest.mark.parametrize("number", [1, 2])


def make(number, in_channels, out_channels):
    torch.manual_seed(number)
    return LISTINGS[number](in_channels, out_channels)


def test_the_post_class_name_and_aliases_are_kept():
    assert ResidualBlockListing1.__name__ == "Residual_Blcok"
    assert ResidualBlockListing2.__name__ == "Residual_Blcok"
    assert ResidualBlockListing1 is not ResidualBlockListing2
    assert {1: ResidualBlockListing1, 2: ResidualBlockListing2} == LISTINGS


def test_docstring_says_broken_and_attributes_the_post():
    doc = original.__doc__
    assert "broken" in doc.lower() and "original post" in doc
    for module in (original.listing1, original.listing2):
        assert "original post" in module.__doc__ and "verbatim" in module.__doc__


@BOTH
def test_listing_source_is_the_module_code(number):
    text = listing_source(number)
    assert text.startswith("import torch.nn as nn\n")
    assert "class Residual_Blcok(nn.Module):" in text
    # the class source in the module is exactly the stored listing's class
    cls_source = inspect.getsource(LISTINGS[number])
    assert cls_source in text
    # the defining bug: layers are applied to x
    assert "out = self.conv2(x)" in text and "out = self.relu(x)" in text


def test_listing_source_rejects_unknown_numbers():
    with pytest.raises(ValueError, match="listings 1 and 2"):
        listing_source(3)


def test_listing2_has_batchnorm_listing1_does_not():
    b1, b2 = make(1, 4, 4), make(2, 4, 4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in b1.modules())
    assert {n for n, m in b2.named_modules() if isinstance(m, nn.BatchNorm2d)} == {"bn1", "bn2"}
    # the post's convolutions keep nn.Conv2d's default bias, redundant in front of BN
    assert b2.conv1.bias is not None and b2.conv2.bias is not None


@BOTH
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("channels,size", [(1, 3), (4, 5), (16, 8)])
def test_block_is_exactly_relu(number, mode, channels, size):
    block = make(number, channels, channels)
    getattr(block, mode)()
    x = torch.randn(3, channels, size, size)
    assert torch.equal(block(x), torch.relu(x))  # bit for bit


@BOTH
def test_no_parameter_ever_gets_a_gradient(number):
    block = make(number, 8, 8)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    out = block(x)
    out.sum().backward()
    params = dict(block.named_parameters())
    assert params  # the block does have weights...
    assert all(p.grad is None for p in params.values())  # ...that never learn
    # the gradient that does flow is relu's, straight to x
    assert torch.equal(x.grad, (x > 0).to(x.dtype))


def first_failing_module(block, x):
    """The innermost module that was entered but did not finish when forward raised."""
    open_calls, entered = [], []
    handles = []

    def enter(name):
        def hook(module, args):  # returns None: the arguments are left alone
            open_calls.append(name)
            entered.append(name)
        return hook

    def leave(name):
        def hook(module, args, output):
            open_calls.remove(name)
        return hook

    for name, m in block.named_modules():
        if name:
            handles.append(m.register_forward_pre_hook(enter(name)))
            handles.append(m.register_forward_hook(leave(name)))
    try:
        with pytest.raises(RuntimeError) as info:
            block(x)
    finally:
        for h in handles:
            h.remove()
    return open_calls[-1], entered, str(info.value)


def test_listing1_crashes_in_conv2_when_channels_differ():
    failing, entered, message = first_failing_module(make(1, 3, 16), torch.randn(2, 3, 8, 8))
    assert failing == "conv2"
    assert entered == ["conv1", "relu", "conv2"]  # conv1(x) and relu(x) still ran
    assert "16" in message and "3" in message


def test_listing2_crashes_in_bn1_when_channels_differ():
    failing, entered, _message = first_failing_module(make(2, 3, 16), torch.randn(2, 3, 8, 8))
    assert failing == "bn1"
    assert entered == ["conv1", "bn1"]


def test_listing2_updates_running_stats_from_x_in_training_mode():
    block = make(2, 4, 4).train()
    x = torch.randn(8, 4, 5, 5) * 3 + 2
    before = {k: v.clone() for k, v in block.state_dict().items()}
    out = block(x)
    assert torch.equal(out, torch.relu(x))  # the BN outputs were discarded ...
    for bn in ("bn1", "bn2"):               # ... but their statistics moved, towards x's
        assert int(block.state_dict()[f"{bn}.num_batches_tracked"]) == 1
        expected = nn.BatchNorm2d(4).train()
        expected(x)
        assert torch.allclose(getattr(block, bn).running_mean, expected.running_mean)
        assert torch.allclose(getattr(block, bn).running_var, expected.running_var)
        assert not torch.equal(block.state_dict()[f"{bn}.running_mean"],
                               before[f"{bn}.running_mean"])


def test_listing2_leaves_running_stats_alone_in_eval_mode():
    block = make(2, 4, 4).eval()
    before = {k: v.clone() for k, v in block.state_dict().items()}
    block(torch.randn(2, 4, 5, 5))
    assert all(torch.equal(v, before[k]) for k, v in block.state_dict().items())


@BOTH
def test_conv1_is_computed_and_thrown_away(number):
    """conv1 does real work (its output is non-trivial) that never reaches the output."""
    block = make(number, 4, 4)
    seen = {}
    block.conv1.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    out = block(x)
    conv_out = seen["out"]
    assert conv_out.shape == (2, 4, 5, 5) and conv_out.abs().sum() > 0
    grad = torch.autograd.grad(out.sum(), [conv_out], allow_unused=True)[0]
    assert grad is None
