"""resnet_edu.compat: each private PyTorch internal the package relies on, checked by name.

When a PyTorch release changes one of them, the test named after it fails here (not
somewhere deep inside check_block): update resnet_edu/compat.py and nothing else.
"""
import inspect

import pytest
import torch
from torch import nn

from resnet_edu import compat


def _classes_of_torch_nn():
    return [c for c in vars(nn).values() if inspect.isclass(c) and issubclass(c, nn.Module)]


# ---------------------------------------------------------------- public lists of private bases
@pytest.mark.parametrize("public,private_base", [
    ("BATCHNORM_TYPES", "torch.nn.modules.batchnorm._BatchNorm"),
    ("STATS_NORM_TYPES", "torch.nn.modules.batchnorm._NormBase"),
    ("CONV_TYPES", "torch.nn.modules.conv._ConvNd"),
])
def test_public_class_lists_cover_every_subclass_of_the_private_base(public, private_base):
    """The package tests isinstance against public classes; a new BatchNorm or conv class
    in a torch release must be added to the list (this test names it)."""
    module_name, _, name = private_base.rpartition(".")
    base = getattr(__import__(module_name, fromlist=[name]), name)
    listed = getattr(compat, public)
    missing = [c.__name__ for c in _classes_of_torch_nn()
               if issubclass(c, base) and not issubclass(c, listed)]
    assert not missing, f"add {missing} to resnet_edu.compat.{public}"
    assert all(issubclass(c, base) for c in listed)  # and nothing else is listed


def test_the_attributes_read_from_those_layers_exist():
    for cls in (nn.BatchNorm2d, nn.SyncBatchNorm, nn.InstanceNorm2d):
        m = cls(4)
        assert m.num_features == 4 and hasattr(m, "track_running_stats")
    bn = nn.BatchNorm2d(4)
    assert bn.running_mean.shape == bn.running_var.shape == (4,)
    for conv in (nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ConvTranspose1d(3, 4, 3)):
        assert conv.in_channels == 3
        assert len(conv.stride) == len(conv.kernel_size) == len(conv.padding)


# ---------------------------------------------------------------- Tensor._version
def test_tensor_version_counts_in_place_changes_only():
    x = torch.zeros(3)
    v0 = compat.tensor_version(x)
    assert isinstance(v0, int)
    y = x + 1                               # out of place: x untouched
    assert compat.tensor_version(x) == v0
    x += 1
    assert compat.tensor_version(x) == v0 + 1
    nn.ReLU(inplace=True)(x)
    x.relu_()
    assert compat.tensor_version(x) == v0 + 3
    assert compat.tensor_version(y) == 0


# ---------------------------------------------------------------- Module._forward_hooks
def test_forward_hook_count_sees_registration_and_removal():
    m = nn.Linear(2, 2)
    assert compat.forward_hook_count(m) == 0
    handles = [m.register_forward_hook(lambda *a: None),
               m.register_forward_pre_hook(lambda *a: None)]
    assert compat.forward_hook_count(m) == 2
    for handle in handles:
        handle.remove()
    assert compat.forward_hook_count(m) == 0


# ---------------------------------------------------------------- AccumulateGrad.variable
def test_accumulated_variable_reaches_the_leaf_through_the_graph():
    w, other = torch.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    out = (w * 2).sum()
    stack, seen = [out.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None:
            continue
        leaf = compat.accumulated_variable(node)
        if leaf is not None:
            seen.append(leaf)
        stack.extend(n for n, _ in node.next_functions)
    assert len(seen) == 1 and seen[0] is w and all(t is not other for t in seen)
    assert compat.accumulated_variable(out.grad_fn) is None  # not a leaf's node
