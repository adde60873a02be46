"""The wiring experiments: what happens to the output when one layer's result is zeroed.

A skip connection is a path from x to the output that avoids the branch. The branch's
first weight layers (convolutions or linear layers reached from x without passing
through another weight layer) are found by zeroing every weight layer and seeing whose
input still changes with x. Then each of them is zeroed on its own: in a residual block
the output still changes with x through the shortcut (identity or projection); in a
plain stack, or one whose "shortcut" starts after the first layer, it does not.

Every run is in eval mode (no dropout, no batch statistics: only the wiring matters), on
a prepared copy whose all-zero parameters are perturbed, so a gate that starts at zero
(on the branch or on the skip) cannot hide a path.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import dataflow
from .prepared import native, prepared, randn
from .recorder import tensors_in
from .runs import GradientRun
from .usercode import UserCodeError, call_user

Captured = Dict[Tuple[str, int], torch.Tensor]  # (layer, call index) -> the input it got


@dataclass(frozen=True)
class SkipProbe:
    """The layers zeroed one at a time, and what zeroing the first one x went around did."""

    tried: Tuple[str, ...]                 # the layers zeroed, in order
    bypassed: Optional[str]                # the first one x still reached the output around
    bypass_has_gradient: Optional[bool]    # with it zeroed, autograd still connects x


def _zero_output(module, args, output):
    return torch.zeros_like(output) if isinstance(output, torch.Tensor) else output


@contextlib.contextmanager
def _hooks(work: nn.Module, zero: Sequence[str], capture: Sequence[str],
           captured: Captured) -> Iterator[None]:
    """Replace the outputs of the ``zero`` layers by zeros; keep the first input tensor
    each call of a ``capture`` layer receives."""
    handles = []
    try:
        for name in zero:
            handles.append(work.get_submodule(name).register_forward_hook(_zero_output))
        for name in capture:
            def keep(module, args, name=name):
                ts = tensors_in(args)
                if ts:
                    n = sum(1 for key in captured if key[0] == name)
                    captured[(name, n)] = ts[0].detach().clone()
            handles.append(work.get_submodule(name).register_forward_pre_hook(keep))
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_zeroed(block, dtype, seed: int, x: torch.Tensor, zero: Sequence[str] = (),
               capture: Sequence[str] = ()) -> Tuple[object, Captured]:
    """Eval-mode output with the ``zero`` layers' outputs zeroed, and the inputs the
    ``capture`` layers received. Raises UserCodeError when the block raises."""
    captured: Captured = {}
    with prepared(block, dtype=dtype, training=False, perturb_seed=seed + 1) as work, \
            _hooks(work, zero, capture, captured), torch.no_grad():
        out = call_user(work, x.clone())
    return out, captured


def differ(a, b) -> bool:
    """Two tensors that are not exactly equal (NaN equals NaN here)."""
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return False
    return a.shape != b.shape or not torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)


def influences(block, shape, seed: int, dtype, names: Sequence[str]) -> Dict[str, bool]:
    """For each layer: does zeroing its output change the block's output (eval mode)?"""
    if not names:
        return {}
    x = randn(shape, seed + 10, dtype, native(block)[1])
    try:
        plain, _ = run_zeroed(block, dtype, seed, x)
    except UserCodeError:
        return {name: False for name in names}
    result = {}
    for name in names:
        try:
            result[name] = differ(plain, run_zeroed(block, dtype, seed, x, [name])[0])
        except UserCodeError:
            result[name] = False
    return result


def _carries_gradient(block, dtype, seed: int, name: str, x: torch.Tensor) -> bool:
    """With ``name``'s output zeroed, does autograd connect the output to x?"""
    x_leaf = x.clone().requires_grad_(True)
    try:
        with prepared(block, dtype=dtype, training=False, perturb_seed=seed + 1) as work:
            with _hooks(work, [name], (), {}):
                out = call_user(work, x_leaf.clone())
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                return False
            grad = call_user(torch.autograd.grad, out.sum(), [x_leaf], allow_unused=True)[0]
    except UserCodeError:
        return True  # cannot tell: say nothing
    return grad is not None


def _first_layers(block, dtype, seed, layers: List[str], x1, x2) -> List[str]:
    """The weight layers whose input still changes with x when every weight layer's
    output is zeroed: the first layers of every path from x."""
    if not layers:
        return []
    _, c1 = run_zeroed(block, dtype, seed, x1, layers, capture=layers)
    _, c2 = run_zeroed(block, dtype, seed, x2, layers, capture=layers)
    return [n for n in layers if any(differ(c1[k], c2.get(k)) for k in c1 if k[0] == n)]


def probe_skip(block, shape, seed: int, run: GradientRun) -> Optional[SkipProbe]:
    """Zero the branch's first layers one at a time until x reaches the output around
    one of them. None when there is nothing to probe or the block cannot be probed."""
    used = dataflow.used_weight_holders(run)
    if not used or run.x_grad is None:
        return None
    weights = [n for n in used if n in dataflow.weight_layers(run)]
    device = native(block)[1]
    x1, x2 = (randn(shape, seed + k, run.dtype, device) for k in (10, 11))
    tried: List[str] = []
    try:
        for name in _first_layers(block, run.dtype, seed, weights, x1, x2) or used:
            tried.append(name)
            if differ(run_zeroed(block, run.dtype, seed, x1, [name])[0],
                      run_zeroed(block, run.dtype, seed, x2, [name])[0]):
                return SkipProbe(tuple(tried), name, _carries_gradient(
                    block, run.dtype, seed, name, x1))
    except UserCodeError:
        return None  # the wiring cannot be probed this way; say nothing rather than guess
    return SkipProbe(tuple(tried), None, None)
