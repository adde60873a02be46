"""The record of one gradient run: what ``gradients.gradient_run`` saw, frozen.

Its own module, below ``gradients``, ``dataflow`` and ``wiring``, which all read it: the
experiments import the record, never each other for its sake.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Optional, Tuple

import torch
from torch import nn

from .recorder import Call

Grads = Mapping[str, Optional[torch.Tensor]]  # parameter name -> gradient (None: unconnected)


def _empty() -> Mapping:
    """A read-only empty mapping: the default of a run's mapping fields."""
    return MappingProxyType({})


@dataclass(frozen=True, eq=False)
class GradientRun:
    """One training-mode forward and backward pass on a copy in ``dtype``."""

    dtype: torch.dtype
    crash: Optional[str]                   # the forward pass crashed (nothing else is set)
    backward_crash: Optional[str] = None   # autograd raised; connectivity read off the graph
    calls: Tuple[Call, ...] = ()           # the block's own call first
    modules: Mapping[str, nn.Module] = field(default_factory=_empty)
    grads: Grads = field(default_factory=_empty)    # every floating-point parameter, in order
    x_grad: Optional[torch.Tensor] = None
    reaches: Mapping[int, bool] = field(default_factory=_empty)  # id(tensor seen by a call) -> reaches
    output: Optional[torch.Tensor] = None  # detached
    x: Optional[torch.Tensor] = None       # detached
    bn_before: Mapping[str, Tuple[torch.Tensor, ...]] = field(default_factory=_empty)
    bn_after: Mapping[str, Tuple[torch.Tensor, ...]] = field(default_factory=_empty)
    eval_grads: Optional[Grads] = None     # the same in eval mode (no dropout); None: failed
    eval_output: Optional[torch.Tensor] = None
    eval_x: Optional[torch.Tensor] = None
    moved_grads: Optional[Grads] = None    # with every parameter moved; None: failed
    influences: Mapping[str, bool] = field(default_factory=_empty)  # discarded layer -> changes output

    @property
    def inner(self) -> Tuple[Call, ...]:
        return self.calls[1:]
