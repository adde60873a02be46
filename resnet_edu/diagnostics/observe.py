"""Observe: run the block once per experiment and record what it does.

The result is an :class:`Observation`, a frozen record (calls, outputs, gradients,
BatchNorm statistics before and after, dtypes, the skip-connection probe, two eval-mode
calls). The rules in ``rules/`` judge that record; they never run the block. An
experiment that cannot run (the block crashes, returns no tensor) ends the observation
there, and the fields after it stay None.

Order of the experiments (each on its own prepared copy, see ``prepared.py``):

1. the block's own dtype, training mode, twice (does it run; what does it do to x;
   are layers created inside ``forward``);
2. gradients, in float64 when the block allows it (``gradients.py``);
3. the skip-connection probe, eval mode (``wiring.py``);
4. eval mode, twice (does it run; is it deterministic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import nn

from ..compat import tensor_version
from . import explain
from .gradients import gradient_run
from .prepared import native, prepared, randn
from .recorder import Call, Recorder, has_params
from .runs import GradientRun
from .usercode import UserCodeError, call_user
from .wiring import SkipProbe, probe_skip


@dataclass(frozen=True)
class FirstRun:
    """The block in its own dtype, training mode, called twice on the same input."""

    crash: Optional[str]          # the explained crash, if either call raised
    output: object                # what the first call returned (None after a crash)
    calls: Tuple[Call, ...]       # the first call's record, the block's own call first
    x_changed: bool               # x's version or values changed during the first call
    # modules with weights that are not submodules of the block, seen in each call
    unregistered: Tuple[Tuple[nn.Module, ...], Tuple[nn.Module, ...]] = ((), ())

    @property
    def finite(self) -> bool:
        out = self.output
        return not (isinstance(out, torch.Tensor) and out.is_floating_point()) or \
            bool(torch.isfinite(out).all())


@dataclass(frozen=True)
class EvalRun:
    """The block in eval mode, called twice on the same input, without gradients."""

    crash: Optional[str]
    outputs: Tuple[object, ...]   # what the two calls returned
    calls: Tuple[Call, ...]       # the second call's record
    x_changed: bool               # the second call changed x's values


@dataclass(frozen=True)
class Observation:
    """Everything check_block saw; the fields after a failed experiment are None."""

    input_shape: Tuple[int, ...]
    first: FirstRun
    gradients: Optional[GradientRun] = None
    skip: Optional[SkipProbe] = None
    eval: Optional[EvalRun] = None


def _first_run(block: nn.Module, shape, seed: int) -> FirstRun:
    dtype, device = native(block)
    x0 = randn(shape, seed, dtype, device)
    unregistered, first = [], None
    with prepared(block, dtype=None, training=True) as work:
        for _ in range(2):  # twice: a layer created in forward() is new each time
            x_in = x0.clone()
            version = tensor_version(x_in)
            try:
                with Recorder(work, x_in) as rec:
                    out = call_user(work, x_in)
            except UserCodeError as err:
                crash = explain.forward_crash(err.original, rec.calls, x_in, "training")
                return FirstRun(crash, None, rec.calls, False)
            unregistered.append(tuple(c.module for c in rec.inner
                                      if not c.registered and has_params(c.module)))
            if first is None:
                changed = tensor_version(x_in) != version or not torch.equal(x_in, x0)
                first = (out, rec.calls, changed)
    out, calls, changed = first
    return FirstRun(None, out, calls, changed, tuple(unregistered))


def _eval_run(block: nn.Module, shape, seed: int, dtype: torch.dtype) -> EvalRun:
    x0 = randn(shape, seed, dtype, native(block)[1])
    outputs = []
    with prepared(block, dtype=dtype, training=False) as work:
        for _ in range(2):
            x_in = x0.clone()
            try:
                with torch.no_grad(), Recorder(work, x_in) as rec:
                    outputs.append(call_user(work, x_in))
            except UserCodeError as err:
                crash = explain.forward_crash(err.original, rec.calls, x_in, "eval")
                return EvalRun(crash, tuple(outputs), rec.calls, False)
    return EvalRun(None, tuple(outputs), rec.calls, not torch.equal(x_in, x0))


def usable(output, shape) -> bool:
    """A tensor with the input's number of dimensions and batch size: the later
    experiments can compare it with x."""
    return isinstance(output, torch.Tensor) and output.dim() == len(shape) and \
        output.shape[0] == shape[0]


def observe(block: nn.Module, shape: Tuple[int, ...], seed: int) -> Observation:
    """Run every experiment on prepared copies of ``block``; see the module docstring."""
    first = _first_run(block, shape, seed)
    if first.crash is not None or not usable(first.output, shape):
        return Observation(shape, first)
    grads = gradient_run(block, shape, seed, input_modified=first.x_changed)
    if grads is None or grads.crash is not None:
        return Observation(shape, first, grads)
    skip = probe_skip(block, shape, seed, grads) if first.finite else None
    return Observation(shape, first, grads, skip, _eval_run(block, shape, seed, grads.dtype))
