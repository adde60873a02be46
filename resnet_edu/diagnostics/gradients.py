"""The gradient experiments: which parameters, inputs and layer results reach the output.

"Not connected to the output" is decided by the autograd graph (``allow_unused``),
never by a gradient's value, so a correctly zero-initialised block (whose upstream
gradients are exactly zero at initialisation) is not mistaken for a broken one. All-zero
parameters are perturbed on the copy before the numbers are compared.
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from ..compat import BATCHNORM_TYPES, accumulated_variable
from . import dataflow, explain
from .prepared import native, prepared, randn, trainable
from .recorder import Call, Recorder
from .runs import GradientRun, Grads
from .usercode import UserCodeError, call_user
from .wiring import influences


def graph_connectivity(root: torch.Tensor, tensors: Sequence[torch.Tensor]) -> list:
    """Which ``tensors`` the autograd graph of ``root`` reaches, without running backward.

    Returns, like ``autograd.grad(..., allow_unused=True)``, None for a tensor that does not
    reach ``root``; a reached tensor gets a placeholder of ones (its gradient is unknown, so
    no "zero gradient" can be claimed for it)."""
    nodes, leaves, stack = set(), set(), [root.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in nodes:
            continue
        nodes.add(fn)
        variable = accumulated_variable(fn)
        if variable is not None:
            leaves.add(id(variable))
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return [torch.ones_like(t) if (t.grad_fn in nodes if t.grad_fn is not None
                                   else id(t) in leaves) else None for t in tensors]


def _bn_state(module: nn.Module) -> Mapping[str, Tuple[torch.Tensor, ...]]:
    return MappingProxyType({
        name: (m.running_mean.clone(), m.running_var.clone())
        for name, m in module.named_modules()
        if isinstance(m, BATCHNORM_TYPES) and m.track_running_stats
        and m.running_mean is not None})


def _tracked(calls: Sequence[Call]) -> List[torch.Tensor]:
    """What each layer received and produced, once each, where autograd tracks it."""
    seen: List[torch.Tensor] = []
    for c in calls:
        for t in list(c.outputs or ()) + list(c.inputs):
            if t.requires_grad and all(t is not u for u in seen):
                seen.append(t)
    return seen


def _param_grads(work: nn.Module, x: torch.Tensor, seed: int, dtype):
    """(gradients of a random projection of the output, the detached output); (None, None)
    when the block returns no tensor. Raises UserCodeError when the block raises."""
    named = trainable(work)
    out = call_user(work, x)
    if not isinstance(out, torch.Tensor):
        return None, None
    if not out.requires_grad:
        return MappingProxyType({n: None for n, _ in named}), out.detach()
    s = (out * randn(out.shape, seed, dtype, out.device)).sum()
    grads = call_user(torch.autograd.grad, s, [p for _, p in named], allow_unused=True)
    return MappingProxyType(dict(zip([n for n, _ in named], grads))), out.detach()


def _eval_gradients(block, shape, seed, dtype):
    """The gradients in eval mode, so that randomness in training mode (dropout,
    stochastic depth dropping a whole branch) cannot fake a defect: (grads, out, x)."""
    x = randn(shape, seed, dtype, native(block)[1])
    try:
        with prepared(block, dtype=dtype, training=False, perturb_seed=seed + 1,
                      grad=True) as work:
            x_leaf = x.clone().requires_grad_(True)
            grads, out = _param_grads(work, x_leaf.clone(), seed + 2, dtype)
    except UserCodeError:
        return None, None, None
    return (grads, out, x) if grads is not None else (None, None, None)


def _moved_gradients(block, shape, seed, dtype) -> Optional[Grads]:
    """The gradients with every parameter moved to other random values and another input:
    a zero that survives this is built into the block (a constant zero factor, a
    non-differentiable step), not an accident of the initialisation (a dead ReLU)."""
    g = torch.Generator().manual_seed(seed + 5)
    try:
        with prepared(block, dtype=dtype, training=True, grad=True) as work:
            with torch.no_grad():
                for _, p in trainable(work):
                    noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
                    scale = float(p.detach().abs().mean()) + 0.1 if p.numel() else 0.1
                    p.add_((noise * scale).to(dtype=p.dtype, device=p.device))
            x = randn(shape, seed + 3, dtype, native(block)[1])
            return _param_grads(work, x, seed + 4, dtype)[0]
    except UserCodeError:
        return None


def _backward(out, x_leaf, named, calls, seed, dtype, input_modified):
    """(parameter gradients, x's gradient, reaches, backward crash) of one output."""
    if not out.requires_grad:
        return [None] * len(named), None, {}, None
    s = (out * randn(out.shape, seed + 2, dtype, out.device)).sum()
    tracked = _tracked(calls)
    inputs = [p for _, p in named] + [x_leaf] + tracked
    crash = None
    try:
        grads = call_user(torch.autograd.grad, s, inputs, allow_unused=True)
    except UserCodeError as err:
        crash = explain.backward_crash(err.original, input_modified)
        # keep diagnosing: which tensors reach the output is in the graph itself
        grads = graph_connectivity(s, inputs)
    reaches = {id(t): g is not None for t, g in zip(tracked, grads[len(named) + 1:])}
    return list(grads[:len(named)]), grads[len(named)], reaches, crash


def _attempt(block, shape, seed, dtype, last: bool, input_modified: bool):
    """A GradientRun in ``dtype``; None when this dtype does not work for the block
    (it cannot be cast, crashes, or returns no floating tensor) and another may."""
    try:
        with prepared(block, dtype=dtype, training=True, perturb_seed=seed + 1,
                      grad=True) as work:
            named = trainable(work)
            bn_before = _bn_state(work)
            x_leaf = randn(shape, seed, dtype, native(block)[1]).requires_grad_(True)
            x_in = x_leaf.clone()
            try:
                with Recorder(work, x_in) as rec:
                    out = call_user(work, x_in)
            except UserCodeError as err:
                crash = explain.forward_crash(err.original, rec.calls, x_in, "training")
                return GradientRun(dtype, crash) if last else None
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                return None
            grads, x_grad, reaches, crash = _backward(out, x_leaf, named, rec.calls, seed,
                                                      dtype, input_modified)
            return GradientRun(
                dtype, None, crash, rec.calls, MappingProxyType(dict(work.named_modules())),
                MappingProxyType(dict(zip([n for n, _ in named], grads))), x_grad,
                MappingProxyType(reaches), out.detach(), x_leaf.detach(), bn_before,
                _bn_state(work))
    except UserCodeError:  # the block refuses this dtype (.to raised)
        return None


def gradient_run(block: nn.Module, shape, seed: int,
                 input_modified: bool) -> Optional[GradientRun]:
    """The gradient experiments, in float64 where the block allows it (exact zeros and
    exact equalities), else in the block's own dtype. None when neither works."""
    own = native(block)[0]
    dtypes = ([torch.float64] if own != torch.float64 else []) + [own]
    for dtype in dtypes:
        run = _attempt(block, shape, seed, dtype, dtype is dtypes[-1], input_modified)
        if run is not None:
            break
    else:
        return None
    if run.crash is not None:
        return run
    eval_grads, eval_out, eval_x = _eval_gradients(block, shape, seed, dtype)
    return dataclasses.replace(
        run, eval_grads=eval_grads, eval_output=eval_out, eval_x=eval_x,
        moved_grads=_moved_gradients(block, shape, seed, dtype),
        influences=MappingProxyType(influences(block, shape, seed, dtype,
                                               dataflow.discarded_modules(run))))
