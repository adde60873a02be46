"""Every use of a private or undocumented PyTorch internal in ``resnet_edu``, in one place.

PyTorch does not promise that these stay the same between releases; tests/test_compat.py
checks each of them, so a release that changes one fails there, loudly and by name,
instead of somewhere deep inside a check. Everything else in the package uses public
APIs; where a public replacement exists (the BatchNorm and convolution classes below),
it is used and the test only checks that the public list is complete.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["BATCHNORM_TYPES", "STATS_NORM_TYPES", "CONV_TYPES", "tensor_version",
           "forward_hook_count", "accumulated_variable"]

#: every BatchNorm layer of torch.nn, lazy and synchronised ones included (the public
#: classes behind the private base ``torch.nn.modules.batchnorm._BatchNorm``)
BATCHNORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,
                   nn.LazyBatchNorm1d, nn.LazyBatchNorm2d, nn.LazyBatchNorm3d)

#: every per-channel normalisation with ``num_features`` (BatchNorm and InstanceNorm):
#: the public classes behind the private base ``torch.nn.modules.batchnorm._NormBase``
STATS_NORM_TYPES = BATCHNORM_TYPES + (
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.LazyInstanceNorm1d, nn.LazyInstanceNorm2d, nn.LazyInstanceNorm3d)

#: every convolution of torch.nn (the public classes behind ``torch.nn.modules.conv._ConvNd``);
#: the lazy ones subclass these
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d,
              nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def tensor_version(tensor: torch.Tensor) -> int:
    """The tensor's in-place modification counter (``Tensor._version``, private).

    Every in-place operation (``x += 1``, ``relu_()``, ``ReLU(inplace=True)``) bumps it;
    autograd uses it to refuse gradients through overwritten tensors. There is no public
    way to ask "was this tensor modified in place?", which is what the block checker needs
    to name the layer that overwrote the block's input."""
    return tensor._version


def forward_hook_count(module: nn.Module) -> int:
    """How many forward and forward-pre hooks are registered on ``module`` itself
    (``_forward_hooks``/``_forward_pre_hooks``, private: torch has no public listing)."""
    return len(module._forward_hooks) + len(module._forward_pre_hooks)


def accumulated_variable(node) -> Optional[torch.Tensor]:
    """The leaf tensor an autograd graph node accumulates into (``AccumulateGrad.variable``,
    undocumented), or None for any other node. The public ``torch.autograd.graph.Node``
    gives ``next_functions`` but no way to reach the leaf tensor itself."""
    return getattr(node, "variable", None)
