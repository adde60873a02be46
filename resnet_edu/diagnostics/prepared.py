"""The prepared copy of a block that every experiment runs on.

Checking must leave the block exactly as it was (parameters, buffers, modes,
``requires_grad`` flags, gradients) and must not depend on how the block was
initialised. So every experiment runs inside :func:`prepared`: a deep copy of the
block (or, for a block that cannot be copied, the block itself, restored afterwards),
cast to the experiment's dtype, put in training or eval mode, with every all-zero
parameter replaced by random values.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator, List, Optional, Tuple

import torch
from torch import nn

from .usercode import UserCodeError, call_user, quiet

# not-yet-initialised parameters and buffers of lazy layers (nn.LazyConv2d, ...)
_LAZY = (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)


def _tensors_of(block: nn.Module) -> List[torch.Tensor]:
    return list(block.parameters()) + list(block.buffers())


def native(block: nn.Module) -> Tuple[torch.dtype, torch.device]:
    """The floating dtype and the device the block's own tensors use."""
    tensors = [t for t in _tensors_of(block) if not isinstance(t, _LAZY)]
    for t in tensors:
        if t.is_floating_point():
            return t.dtype, t.device
    device = tensors[0].device if tensors else torch.device("cpu")
    return torch.get_default_dtype(), device


def has_lazy(block: nn.Module) -> bool:
    return any(isinstance(t, _LAZY) for t in _tensors_of(block))


def _deepcopy(block: nn.Module) -> nn.Module:
    """copy.deepcopy that also copies not-yet-initialised lazy parameters (nn.LazyConv2d):
    they hold no values, so each gets a fresh uninitialised twin."""
    memo = {id(t): type(t)(requires_grad=t.requires_grad, device=t.device, dtype=t.dtype)
            for t in _tensors_of(block) if isinstance(t, _LAZY)}
    return call_user(copy.deepcopy, block, memo)


class _Snapshot:
    """Everything an experiment could change on a module, to put back afterwards.

    Only used when a block cannot be deep-copied. The original tensor objects are put
    back (``.to(dtype)`` on the block replaces its buffers), with their values restored."""

    def __init__(self, block: nn.Module):
        self.modes = [(m, m.training) for m in block.modules()]
        self.params = [(p, p.data, p.data.clone(), p.requires_grad,
                        None if p.grad is None else p.grad.clone())
                       for p in block.parameters()]
        self.buffers = [(m, name, b, b.clone()) for m in block.modules()
                        for name, b in m.named_buffers(recurse=False)]

    def restore(self) -> None:
        with torch.no_grad():
            for p, data, values, requires_grad, grad in self.params:
                data.copy_(values)
                p.data = data
                p.requires_grad_(requires_grad)
                p.grad = grad
            for m, name, buffer, values in self.buffers:
                buffer.copy_(values)
                setattr(m, name, buffer)  # Module.__setattr__ puts a buffer back in place
        for m, mode in self.modes:
            m.training = mode


@contextlib.contextmanager
def scratch(block: nn.Module) -> Iterator[nn.Module]:
    """A module to experiment on: a deep copy, or the block itself restored afterwards."""
    try:
        work = _deepcopy(block)
    except UserCodeError:  # e.g. a module holding a lock, which cannot be copied
        snapshot = _Snapshot(block)
        try:
            yield block
        finally:
            snapshot.restore()
    else:
        yield work


def perturb_zero_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Give every all-zero parameter (zero-init gamma, ReZero gate, BN beta) random
    values in [0.5, 1.5], so numbers that are zero only because of the initialisation
    do not hide or fake a defect."""
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point() and p.numel() and not p.any():
                values = torch.rand(p.shape, generator=generator, dtype=torch.float64) + 0.5
                p.copy_(values.to(dtype=p.dtype, device=p.device))


def trainable(module: nn.Module) -> List[Tuple[str, nn.Parameter]]:
    """The floating-point parameters, by name: the ones a gradient can reach."""
    return [(n, p) for n, p in module.named_parameters() if p.is_floating_point()]


@contextlib.contextmanager
def prepared(block: nn.Module, *, dtype: Optional[torch.dtype], training: bool,
             perturb_seed: Optional[int] = None, grad: bool = False) -> Iterator[nn.Module]:
    """The copy of ``block`` one experiment runs on (see the module docstring).

    Args:
        dtype: cast the copy to it (None: keep the block's own dtype). A block that
            refuses the cast raises UserCodeError.
        training: the mode of every submodule.
        perturb_seed: when given, all-zero parameters get random values from this seed.
        grad: make every floating-point parameter require a gradient (a frozen
            parameter is still checked for being connected to the output).
    """
    with scratch(block) as work:
        if dtype is not None:
            call_user(work.to, dtype)
        work.train(training)
        if perturb_seed is not None:
            perturb_zero_parameters(work, torch.Generator().manual_seed(perturb_seed))
        if grad:
            for _, p in trainable(work):
                p.requires_grad_(True)
        yield work


def materialized(block: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of a block with lazy layers (nn.LazyConv2d, ...) initialised by one forward
    pass on ``x``; the block itself when it has none, or when that pass fails (the checks
    then report the crash)."""
    if not has_lazy(block):
        return block
    try:
        work = _deepcopy(block)
        dtype, device = native(work)
        with torch.random.fork_rng(devices=[]), torch.no_grad(), quiet():
            call_user(work.eval(), x.to(dtype=dtype, device=device))
    except UserCodeError:
        return block
    for copied, original in zip(work.modules(), block.modules()):
        copied.training = original.training
    return work


def randn(shape, seed: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Deterministic normal values from a local generator (never the global RNG),
    drawn in float64 so that every dtype sees the same numbers."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64).to(
        dtype=dtype, device=device)
