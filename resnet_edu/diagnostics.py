"""``check_block``: find the bugs a residual block can have, in plain words.

A residual block computes ``out = F(x) + shortcut(x)`` (usually followed by a
ReLU). Most bugs in hand-written blocks do not crash: the block trains, only
worse. ``check_block(block, input_shape)`` runs a block a few times on
deterministic random inputs and reports, one sentence each:

* a forward (or backward) pass that **crashes**, with the layer and the cause
  (``conv2 expects 16 input channels but got 3``);
* **parameters that never receive a gradient** (a layer whose output is
  overwritten, detached, or a layer that is never called), and parameters that
  only ever receive zero gradients;
* a block whose **output ignores its residual branch** (it equals ``relu(x)``
  or ``x`` whatever the weights are);
* a **missing skip connection** (every path from ``x`` to the output runs
  through the branch's layers), or a skip that passes values but no gradient
  (``x.detach()``);
* a block that **modifies its input tensor in place**;
* **BatchNorm running statistics updated by a layer whose output is thrown
  away**, and a BatchNorm shared by two layers;
* results of layers that are computed and thrown away, layers created inside
  ``forward`` (never trained), outputs that change between two identical
  eval-mode calls, and outputs of the wrong kind (not a tensor, wrong batch
  size, NaN).

How: every check runs on a deep copy of the block (in float64 where the block
allows it), so checking leaves the block exactly as it was - parameters,
buffers (BatchNorm running statistics included), modes and ``requires_grad``
flags - and never touches the global random number generator. Parameters that
are all zero (a zero-initialised last BatchNorm gamma, a ReZero gate) are
replaced by random values on the copy before the numerical checks, so a
correctly zero-initialised block, whose upstream gradients are exactly zero at
initialisation, is not mistaken for a broken one: "not connected to the output"
is decided by the autograd graph, never by a gradient's value.

Command line, for students::

    python -m resnet_edu check my_block.py:MyBlock --args 16 32 stride=2 --input-shape 2,16,8,8

References: He et al., "Deep Residual Learning for Image Recognition" (2015);
He et al., "Identity Mappings in Deep Residual Networks" (2016).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import importlib
import importlib.util
import io
import re
import sys
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm, _NormBase
from torch.nn.modules.conv import _ConvNd

__all__ = ["Problem", "BlockReport", "check_block", "cli_check", "PROBLEM_KINDS"]

#: every ``Problem.kind`` check_block can report, in the order reports list them
PROBLEM_KINDS = (
    "bad_arguments",         # the block could not even be built (CLI only)
    "crash",                 # forward or backward pass raised an exception
    "bad_output",            # output is not a tensor, has the wrong batch size, or NaN/inf
    "no_input_dependence",   # output does not depend on x at all
    "ignores_branch",        # output equals relu(x) / x / does not depend on any parameter
    "no_skip",               # no path from x to the output that avoids the branch's layers
    "detached_skip",         # the skip path carries x but no gradient (.detach(), no_grad)
    "no_parameters",         # nothing to learn
    "no_gradient",           # parameters not connected to the output
    "zero_gradient",         # connected, but the gradient is always exactly zero
    "discarded_output",      # a layer's result is computed and thrown away
    "discarded_bn_update",   # BatchNorm statistics updated by a layer whose output is discarded
    "reused_norm",           # one normalisation layer used for two different layers
    "modifies_input",        # the block changes its input tensor in place
    "layer_in_forward",      # a layer with weights created in forward / not registered
    "nondeterministic",      # two identical eval-mode calls give different outputs
)
_ORDER = {kind: i for i, kind in enumerate(PROBLEM_KINDS)}

# not-yet-initialised parameters and buffers of lazy layers (nn.LazyConv2d, ...)
_LAZY = (torch.nn.parameter.UninitializedParameter, torch.nn.parameter.UninitializedBuffer)


# --------------------------------------------------------------------------- report objects
@dataclass(frozen=True)
class Problem:
    """One defect: ``kind`` (see :data:`PROBLEM_KINDS`), a one-sentence ``message``
    and the ``names`` of the parameters or layers involved."""

    kind: str
    message: str
    names: Tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


@dataclass
class BlockReport:
    """What :func:`check_block` found. ``ok`` is True when ``problems`` is empty;
    ``notes`` are advice (a redundant bias, a shared layer) that does not make a
    block wrong."""

    block_name: str
    input_shape: Tuple[int, ...]
    output_shape: Optional[Tuple[int, ...]] = None
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def kinds(self) -> List[str]:
        """The kinds of the problems found, in report order."""
        return [p.kind for p in self.problems]

    #: text width of ``str(report)``: fits a book page, a notebook and a terminal
    WIDTH = 86

    def __str__(self) -> str:
        shape = f"input {self.input_shape}"
        if self.output_shape is not None:
            shape += f" -> output {self.output_shape}"
        if self.ok:
            lines = [f"✓ {self.block_name} on {shape}: no problems found."]
        else:
            n = len(self.problems)
            lines = [f"✗ {self.block_name} on {shape}: {n} problem{'s' if n > 1 else ''}"]
            for i, p in enumerate(self.problems, 1):
                lines.append(textwrap.fill(str(p), self.WIDTH, initial_indent=f"  {i}. ",
                                           subsequent_indent="     ", break_long_words=False,
                                           break_on_hyphens=False))
        for note in self.notes:
            lines.append(textwrap.fill(note, self.WIDTH, initial_indent="  note: ",
                                       subsequent_indent="        ", break_long_words=False,
                                       break_on_hyphens=False))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"BlockReport(block_name={self.block_name!r}, ok={self.ok}, "
                f"problems={[p.kind for p in self.problems]!r})")

    def _repr_pretty_(self, p, cycle):  # IPython/Jupyter show the readable text
        p.text(str(self))


# --------------------------------------------------------------------------- small helpers
def _join(names: Sequence[str], limit: int = 8) -> str:
    """'a', 'a and b', 'a, b and c'; long lists end with 'and N more'."""
    names = list(dict.fromkeys(names))
    if len(names) > limit:
        shown, rest = names[:limit - 1], len(names) - (limit - 1)
        return ", ".join(shown) + f" and {rest} more"
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


def _tensors(obj) -> List[torch.Tensor]:
    """The tensors inside a module's input or output (tensor, tuple, list, dict)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _tensors(item)]
    return []


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _has_params(module: nn.Module, recurse: bool = True) -> bool:
    return any(True for _ in module.parameters(recurse=recurse))


def _native(block: nn.Module) -> Tuple[torch.dtype, torch.device]:
    """The floating dtype and the device the block's own tensors use."""
    for t in list(block.parameters()) + list(block.buffers()):
        if isinstance(t, _LAZY):
            continue
        if t.is_floating_point():
            return t.dtype, t.device
    for t in list(block.parameters()) + list(block.buffers()):
        return torch.get_default_dtype(), t.device
    return torch.get_default_dtype(), torch.device("cpu")


class _Snapshot:
    """Everything checking could change on a module, to put back afterwards.

    Only used when a block cannot be deep-copied; normally every check runs on
    a copy and the block itself is never touched."""

    def __init__(self, block: nn.Module):
        self.modes = [(m, m.training) for m in block.modules()]
        self.params = [(p, p.data.clone(), p.requires_grad,
                        None if p.grad is None else p.grad.clone())
                       for p in block.parameters()]
        self.buffers = [(m, name, None if b is None else b.clone())
                        for m in block.modules() for name, b in m._buffers.items()]

    def restore(self) -> None:
        with torch.no_grad():
            for p, data, requires_grad, grad in self.params:
                p.data = data
                p.requires_grad_(requires_grad)
                p.grad = grad
            for m, name, value in self.buffers:
                m._buffers[name] = value
        for m, mode in self.modes:
            m.training = mode


def _deepcopy(block: nn.Module) -> nn.Module:
    """copy.deepcopy that also copies not-yet-initialised lazy parameters (nn.LazyConv2d):
    they hold no values, so each gets a fresh uninitialised twin."""
    memo = {}
    for t in list(block.parameters()) + list(block.buffers()):
        if isinstance(t, _LAZY):
            memo[id(t)] = type(t)(requires_grad=t.requires_grad, device=t.device, dtype=t.dtype)
    return copy.deepcopy(block, memo)


@contextlib.contextmanager
def _scratch(block: nn.Module):
    """A module to experiment on: a deep copy, or the block itself restored afterwards."""
    try:
        work = _deepcopy(block)
    except Exception:  # e.g. a module holding something that cannot be copied
        snapshot = _Snapshot(block)
        try:
            yield block
        finally:
            snapshot.restore()
    else:
        yield work


@contextlib.contextmanager
def _quiet():
    """Keep the block's own prints and warnings out of the student's output."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- call recorder
@dataclass(eq=False)
class _Call:
    module: nn.Module
    name: str                  # "conv1", or "a Conv2d created in forward()" for unregistered ones
    registered: bool
    index: int                 # 1 for the module's first call, 2 for its second, ...
    parent: Optional["_Call"]  # the call this one happened inside (None for the block itself)
    inputs: List[torch.Tensor]
    input_versions: List[int]
    receives_x: bool           # the block's input tensor itself was passed in
    x_version_before: int
    x_version_after: Optional[int] = None
    outputs: Optional[List[torch.Tensor]] = None   # None: the call did not finish
    output_versions: List[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        n = self.total if hasattr(self, "total") else 1
        if n > 1:
            return f"{self.name} ({_ordinal(self.index)} of its {n} calls)"
        return self.name


class _Recorder:
    """Records every module call (registered or not) during one forward pass,
    with global forward hooks, so a crash can be located and data flow judged."""

    def __init__(self, root: nn.Module, x_in: torch.Tensor):
        self.root = root
        self.x_in = x_in
        self.names = {id(m): name for name, m in root.named_modules()}
        self.calls: List[_Call] = []
        self.stack: List[_Call] = []
        self._counts: Dict[int, int] = {}
        self._handles = []

    def __enter__(self):
        reg = torch.nn.modules.module
        self._handles = [reg.register_module_forward_pre_hook(self._pre),
                         reg.register_module_forward_hook(self._post)]
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        for call in self.calls:
            call.total = self._counts[id(call.module)]
        return False

    def _pre(self, module, args):
        registered = id(module) in self.names
        name = (self.names[id(module)] if registered
                else f"a {type(module).__name__} created in forward()")
        self._counts[id(module)] = self._counts.get(id(module), 0) + 1
        inputs = _tensors(args)
        call = _Call(module=module, name=name, registered=registered,
                     index=self._counts[id(module)],
                     parent=self.stack[-1] if self.stack else None,
                     inputs=inputs, input_versions=[t._version for t in inputs],
                     receives_x=any(t is self.x_in for t in inputs),
                     x_version_before=self.x_in._version)
        self.calls.append(call)
        self.stack.append(call)

    def _post(self, module, args, output):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].module is module:
                call = self.stack.pop(i)
                call.outputs = _tensors(output)
                call.output_versions = [t._version for t in call.outputs]
                call.x_version_after = self.x_in._version
                break

    # the calls below the block itself
    def inner(self) -> List[_Call]:
        return [c for c in self.calls if c.module is not self.root]


# --------------------------------------------------------------------------- crash explanations
_SIZE_MISMATCH = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b "
                            r"\((\d+)\) at non-singleton dimension (\d+)")


def _explain_size_mismatch(text: str, ndim: int) -> Optional[str]:
    m = _SIZE_MISMATCH.search(text)
    if not m:
        return None
    a, b, dim = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if dim == 1 and ndim >= 3:
        return (f"two tensors with different numbers of channels ({a} and {b}) are added, "
                f"usually the residual branch and the shortcut: when the number of channels "
                f"changes, the shortcut needs a projection (a 1x1 convolution) or zero-padding")
    if dim >= 2 and ndim >= 3:
        return (f"two feature maps of different sizes ({a} and {b} along dimension {dim}) are "
                f"added, usually the residual branch and the shortcut: when the branch uses "
                f"stride 2 the shortcut must downsample too (e.g. a 1x1 convolution with "
                f"stride 2)")
    return f"two tensors of different sizes ({a} and {b} along dimension {dim}) are combined"


def _explain_add_mismatch(text: str, rec: "_Recorder", call: Optional["_Call"]) -> Optional[str]:
    """Name the two shapes when the last finished layer's output and the block's input
    (the usual branch and identity shortcut) are the tensors that do not fit."""
    m = _SIZE_MISMATCH.search(text)
    a, b, dim = int(m.group(1)), int(m.group(2)), int(m.group(3))
    done = [c for c in rec.inner() if c.outputs and c.parent is (call if call is not None
                                                                    else rec.calls[0])]
    if not done or not done[-1].outputs:
        return None
    branch, x = done[-1].outputs[0], rec.x_in
    if branch.dim() != x.dim() or dim >= x.dim() or \
            {int(branch.shape[dim]), int(x.shape[dim])} != {a, b}:
        return None
    changes = []
    if branch.shape[1] != x.shape[1]:
        changes.append(f"changes the number of channels ({x.shape[1]} -> {branch.shape[1]})")
    if tuple(branch.shape[2:]) != tuple(x.shape[2:]):
        convs = [c for c in rec.inner() if isinstance(c.module, _ConvNd)]
        strided = [c.name for c in convs if any(s > 1 for s in c.module.stride)]
        unpadded = [c.name for c in convs if not isinstance(c.module.padding, str) and
                    any(p < (k - 1) // 2 for p, k in zip(c.module.padding, c.module.kernel_size))]
        causes = []
        if strided:
            causes.append(f"{_join(strided)} {'has' if len(strided) == 1 else 'have'} a stride")
        if unpadded:
            causes.append(f"{_join(unpadded)} {'has' if len(unpadded) == 1 else 'have'} too "
                          f"little padding (a 3x3 convolution needs padding=1)")
        why = f": {' and '.join(causes)}" if causes else ""
        changes.append(f"changes the spatial size ({tuple(x.shape[2:])} -> "
                       f"{tuple(branch.shape[2:])}{why})")
        if unpadded and not strided:
            return (f"the residual branch's output, shape {tuple(branch.shape)}, cannot be added "
                    f"to the input x, shape {tuple(x.shape)}: the branch "
                    f"{' and '.join(changes)}")
    return (f"the residual branch's output, shape {tuple(branch.shape)}, cannot be added to the "
            f"input x, shape {tuple(x.shape)}: the branch {' and '.join(changes)} but the "
            f"shortcut does not; give the shortcut a 1x1 convolution with the same stride and "
            f"output channels (plus BatchNorm), or zero-pad and subsample x")


def _explain_crash(exc: BaseException, rec: Optional[_Recorder], ndim: int,
                   mode: str) -> str:
    """One sentence: where the forward pass crashed and the likely cause."""
    text = _first_line(exc)
    where = ""
    reason = None
    call = None
    if rec is not None:
        open_calls = [c for c in rec.stack if c.module is not rec.root]
        call = open_calls[-1] if open_calls else None
    if call is not None:
        where = f" in {call.name}"
        module = call.module
        inp = call.inputs[0] if call.inputs else None
        got = int(inp.shape[1]) if inp is not None and inp.dim() >= 2 else None
        expected = None
        if isinstance(module, _ConvNd):
            expected, what = module.in_channels, "input channels"
        elif isinstance(module, _NormBase):
            expected, what = module.num_features, "channels"
        elif isinstance(module, nn.GroupNorm):
            expected, what = module.num_channels, "channels"
        if expected is not None and got is not None and got != expected:
            reason = f"{call.name} expects {expected} {what} but got {got}"
            # did a layer with weights read x successfully before this one?
            earlier = [c for c in rec.inner()[:rec.inner().index(call)]
                       if c.receives_x and c.outputs is not None and _has_params(c.module)]
            if call.receives_x and not earlier:
                reason += (f", and that is the block's input itself: check that the input's "
                           f"channel count (input_shape[1]) equals the block's in_channels")
            elif call.receives_x:
                reason += (f" because it is applied to the block's input x instead of to the "
                           f"previous layer's output (write e.g. out = self.{call.name}(out))")
            else:
                reason += (", so the layers' channel counts do not chain: each layer's "
                           "in_channels must equal the previous layer's out_channels")
    if reason is None and rec is not None and _SIZE_MISMATCH.search(str(exc)):
        reason = _explain_add_mismatch(str(exc), rec, call)
    if reason is None:
        explained = _explain_size_mismatch(str(exc), ndim)
        if explained is not None:
            reason = explained
        else:
            reason = f"{type(exc).__name__}: {text}"
    if "Expected more than 1 value per channel when training" in str(exc):
        reason = ("BatchNorm in training mode needs more than one value per channel: use a "
                  "batch of at least 2 (input_shape[0] >= 2) or a larger feature map")
    return f"The block crashed{where} during the forward pass in {mode} mode: {reason}."


def _explain_backward_crash(exc: BaseException, input_modified: bool = False) -> str:
    text = _first_line(exc)
    if "modified by an inplace operation" in str(exc) and input_modified:
        return ("The backward pass crashed: autograd needs the block's input x to compute "
                "the weight gradient of the layer that read it, but the block overwrote x in "
                "place; compute a new tensor instead, e.g. out = out + x.")
    if "modified by an inplace operation" in str(exc):
        return ("The backward pass crashed: a tensor that autograd needs was modified in place "
                "(for example by `out += identity`, `x.relu_()` or ReLU(inplace=True) right "
                "after a layer that needs its output); compute a new tensor instead, "
                "e.g. out = out + identity.")
    return f"The backward pass crashed: {type(exc).__name__}: {text}."


# --------------------------------------------------------------------------- the checks
def _graph_connectivity(root: torch.Tensor, tensors: Sequence[torch.Tensor]) -> list:
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
        variable = getattr(fn, "variable", None)
        if variable is not None:
            leaves.add(id(variable))
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    result = []
    for t in tensors:
        reached = t.grad_fn in nodes if t.grad_fn is not None else id(t) in leaves
        result.append(torch.ones_like(t) if reached else None)
    return result


def _perturb_zero_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """Give every all-zero parameter (zero-init gamma, ReZero gate, BN beta) random
    values in [0.5, 1.5], so numbers that are zero only because of the initialisation
    do not hide or fake a defect."""
    with torch.no_grad():
        for p in module.parameters():
            if p.is_floating_point() and p.numel() and not p.any():
                values = torch.rand(p.shape, generator=generator, dtype=torch.float64) + 0.5
                p.copy_(values.to(dtype=p.dtype, device=p.device))


def _is_norm(module: nn.Module) -> bool:
    rms = getattr(nn, "RMSNorm", ())
    return isinstance(module, (_NormBase, nn.GroupNorm, nn.LayerNorm) + ((rms,) if rms else ()))


def _bn_state(module: nn.Module) -> Dict[str, List[torch.Tensor]]:
    state = {}
    for name, m in module.named_modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.running_mean is not None:
            state[name] = [m.running_mean.clone(), m.running_var.clone()]
    return state


class _Checker:
    def __init__(self, block: nn.Module, input_shape: Tuple[int, ...], seed: int):
        self.block = block
        self.shape = input_shape
        self.seed = seed
        self.native_dtype, self.device = _native(block)
        self.problems: List[Problem] = []
        self.notes: List[str] = []
        self.output_shape: Optional[Tuple[int, ...]] = None

    # deterministic tensors from a local generator (never the global RNG)
    def randn(self, shape, dtype, offset: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed + offset)
        return torch.randn(tuple(shape), generator=g, dtype=torch.float64).to(
            dtype=dtype, device=self.device)

    def add(self, kind: str, message: str, names=()) -> None:
        self.problems.append(Problem(kind, message, tuple(names)))

    # ---- stage A: does it run, in the block's own dtype, and what does it do to x?
    def stage_run(self) -> bool:
        x0 = self.randn(self.shape, self.native_dtype)
        unregistered = []
        with _scratch(self.block) as work:
            work.train()
            for attempt in range(2):  # twice: a layer created in forward() is new each time
                x_in = x0.clone()
                version = x_in._version
                with _Recorder(work, x_in) as rec:
                    try:
                        out = work(x_in)
                    except Exception as exc:
                        self.add("crash", _explain_crash(exc, rec, len(self.shape), "training"))
                        return False
                unregistered.append([c.module for c in rec.inner()
                                     if not c.registered and _has_params(c.module)])
                if attempt == 0:
                    if not self._check_output(out):
                        return False
                    self._check_input_unchanged(x_in, x0, version, rec)
        if unregistered[0]:
            same = all(any(m is n for n in unregistered[1]) for m in unregistered[0])
            kinds = _join([type(m).__name__ for m in unregistered[0]])
            many = len({id(m) for m in unregistered[0]}) > 1
            if same:
                self.add("layer_in_forward",
                         f"The block uses {'layers' if many else 'a layer'} ({kinds}) that "
                         f"{'are' if many else 'is'} not registered as a submodule (kept in a "
                         f"plain Python list or dict?), so {'their' if many else 'its'} weights "
                         f"are missing from block.parameters() and are never trained: use "
                         f"nn.ModuleList/nn.ModuleDict or assign each layer to self in __init__.")
            else:
                self.add("layer_in_forward",
                         f"The block creates {'layers' if many else 'a layer'} ({kinds}) inside "
                         f"forward(), so {'they get' if many else 'it gets'} fresh random weights "
                         f"at every call and {'are' if many else 'is'} never trained: create "
                         f"each layer once in __init__ (self.conv = nn.Conv2d(...)) and only "
                         f"call it in forward().")
        return True

    def _check_output(self, out) -> bool:
        if out is None:
            self.add("bad_output", "The block returns None instead of a tensor: forward() "
                                   "is missing its `return out`.")
            return False
        if not isinstance(out, torch.Tensor):
            self.add("bad_output", f"The block returns a {type(out).__name__} instead of a "
                                   f"tensor: forward() should end with `return out`.")
            return False
        self.output_shape = tuple(out.shape)
        if out.dim() != len(self.shape):
            self.add("bad_output", f"The block's output has shape {self.output_shape} but a "
                                   f"residual block keeps the layout of its input "
                                   f"{self.shape} ({len(self.shape)} dimensions).")
            return False
        if out.shape[0] != self.shape[0]:
            self.add("bad_output", f"The block's output has batch size {out.shape[0]} but its "
                                   f"input has {self.shape[0]}: a residual block must not mix "
                                   f"or drop samples (check reshapes and reductions).")
            return False
        self._finite = not out.is_floating_point() or bool(torch.isfinite(out).all())
        if not self._finite:
            self.add("bad_output", "The block's output contains NaN or infinite values on a "
                                   "normal random input (look for divisions, logs or sqrt "
                                   "without an epsilon).")
        return True

    def _check_input_unchanged(self, x_in, x0, version, rec: _Recorder) -> None:
        if x_in._version == version and torch.equal(x_in, x0):
            return
        bumped = [c for c in rec.inner() if c.x_version_after is not None
                  and c.x_version_after > c.x_version_before]
        # the innermost calls that changed x (not the containers around them)
        culprits = list(dict.fromkeys(c.name for c in bumped
                                      if not any(d.parent is c for d in bumped)))
        if culprits:
            who = _join(culprits)
            inplace = [c.name for c in bumped if getattr(c.module, "inplace", False)]
            hint = (" (it is built with inplace=True and applied directly to x)"
                    if inplace else "")
            self.add("modifies_input",
                     f"The block changes its input tensor in place: {who} overwrites x"
                     f"{hint}, so the caller's tensor (and any shortcut that still needs x) "
                     f"is silently altered; apply in-place layers only to tensors the block "
                     f"created itself.", names=culprits)
        else:
            self.add("modifies_input",
                     "The block changes its input tensor in place (e.g. `x += ...`, "
                     "`x.relu_()` or `x[...] = ...` in forward), so the caller's tensor and "
                     "any shortcut that still needs x are silently altered; compute into a "
                     "new tensor instead (out = x + ...).")

    # ---- stage B: gradients and data flow, on a copy with all-zero parameters perturbed
    def stage_gradients(self) -> Optional[torch.dtype]:
        dtypes = [torch.float64] if self.native_dtype != torch.float64 else []
        dtypes.append(self.native_dtype)
        for dtype in dtypes:
            result = self._gradients_in(dtype, last=dtype is dtypes[-1])
            if result is not None:
                return dtype if result else None
        return None

    def _gradients_in(self, dtype: torch.dtype, last: bool) -> Optional[bool]:
        """True: checked; False: a crash was reported; None: this dtype does not work."""
        with _scratch(self.block) as work:
            try:
                work.to(dtype)
            except Exception:
                return None
            work.train()
            _perturb_zero_parameters(work, torch.Generator().manual_seed(self.seed + 1))
            named = [(n, p) for n, p in work.named_parameters() if p.is_floating_point()]
            for _, p in named:
                p.requires_grad_(True)
            bn_before = _bn_state(work)
            x_leaf = self.randn(self.shape, dtype).requires_grad_(True)
            x_in = x_leaf.clone()
            with _Recorder(work, x_in) as rec:
                try:
                    out = work(x_in)
                except Exception as exc:
                    if not last:
                        return None
                    self.add("crash", _explain_crash(exc, rec, len(self.shape), "training"))
                    return False
            if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                return None if not last else False
            if not out.requires_grad:
                grads_params = [None] * len(named)
                x_grad = None
                out_grads = {}
            else:
                weights = self.randn(out.shape, dtype, offset=2)
                s = (out * weights).sum()
                call_outputs = []
                for c in rec.inner():  # what each layer received and produced
                    for t in list(c.outputs or []) + c.inputs:
                        if t.requires_grad and all(t is not u for u in call_outputs):
                            call_outputs.append(t)
                inputs = [p for _, p in named] + [x_leaf] + call_outputs
                try:
                    grads = torch.autograd.grad(s, inputs, allow_unused=True)
                except Exception as exc:
                    self.add("crash", _explain_backward_crash(
                        exc, "modifies_input" in self.kinds()))
                    # keep diagnosing: which tensors reach the output is in the graph itself
                    grads = _graph_connectivity(s, inputs)
                grads_params = list(grads[:len(named)])
                x_grad = grads[len(named)]
                out_grads = {id(t): g for t, g in zip(call_outputs, grads[len(named) + 1:])}
            bn_after = _bn_state(work)
            eval_view = self._eval_connectivity(dtype)
            self._analyse(work, rec, named, grads_params, x_grad, out_grads, out,
                          x_leaf.detach(), dtype, bn_before, bn_after, eval_view)
            return True

    def _eval_connectivity(self, dtype: torch.dtype):
        """The same gradient check in eval mode, so that randomness in training mode
        (dropout, stochastic depth dropping a whole branch) cannot fake a defect.

        Returns {parameter name: gradient or None}, the output and the input, or None."""
        with _scratch(self.block) as work:
            try:
                work.to(dtype)
                work.eval()
                _perturb_zero_parameters(work, torch.Generator().manual_seed(self.seed + 1))
                named = [(n, p) for n, p in work.named_parameters() if p.is_floating_point()]
                for _, p in named:
                    p.requires_grad_(True)
                x_leaf = self.randn(self.shape, dtype).requires_grad_(True)
                out = work(x_leaf.clone())
                if not isinstance(out, torch.Tensor) or not out.requires_grad:
                    grads = [None] * len(named)
                else:
                    s = (out * self.randn(out.shape, dtype, offset=2)).sum()
                    grads = torch.autograd.grad(s, [p for _, p in named], allow_unused=True)
                return dict(zip([n for n, _ in named], grads)), out.detach(), x_leaf.detach()
            except Exception:
                return None  # stage_eval reports an eval-mode crash

    def _still_zero(self, dtype: torch.dtype, names: List[str], rel: float) -> List[str]:
        """Of ``names``, those whose gradient is still zero with every parameter moved
        to other random values and another input: a zero that survives this is built
        into the block (a constant zero factor, a non-differentiable step), not an
        accident of the initialisation (a ReLU that happens to be dead)."""
        with _scratch(self.block) as work:
            try:
                work.to(dtype)
                work.train()
                g = torch.Generator().manual_seed(self.seed + 5)
                named = [(n, p) for n, p in work.named_parameters() if p.is_floating_point()]
                with torch.no_grad():
                    for _, p in named:
                        noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
                        scale = float(p.detach().abs().mean()) + 0.1 if p.numel() else 0.1
                        p.add_((noise * scale).to(dtype=p.dtype, device=p.device))
                for _, p in named:
                    p.requires_grad_(True)
                out = work(self.randn(self.shape, dtype, offset=3))
                s = (out * self.randn(out.shape, dtype, offset=4)).sum()
                grads = torch.autograd.grad(s, [p for _, p in named], allow_unused=True)
            except Exception:
                return names
        by_name = {n: gr for (n, _), gr in zip(named, grads)}
        gmax = max([float(gr.abs().max()) for gr in grads if gr is not None and gr.numel()]
                   + [0.0])
        return [n for n in names if by_name.get(n) is None or
                float(by_name[n].abs().max()) <= rel * gmax]

    def _analyse(self, work, rec, named, grads, x_grad, out_grads, out, x, dtype,
                 bn_before, bn_after, eval_view) -> None:
        calls = rec.inner()
        self._dtype = dtype
        eval_grads, eval_out, eval_x = eval_view if eval_view is not None else ({}, None, None)

        def used(call: _Call) -> Optional[bool]:
            """Does this call's result reach the output? None: cannot tell (no autograd)."""
            outs = [t for t in (call.outputs or []) if t.requires_grad]
            if not outs:
                return None
            return any(out_grads.get(id(t)) is not None for t in outs)

        usage = {c: used(c) for c in calls}

        def top_discarded(c: _Call) -> bool:  # discarded, and not inside a discarded call
            if usage[c] is not False:
                return False
            p = c.parent
            while p is not None and p.module is not rec.root:
                if usage.get(p) is False:
                    return False
                p = p.parent
            return True

        discarded = [c for c in calls if top_discarded(c)]
        module_of = dict(work.named_modules())
        calls_by_name: Dict[str, List[_Call]] = {}
        for c in calls:
            if c.registered:
                calls_by_name.setdefault(c.name, []).append(c)

        # 1. does the output depend on x at all?
        x_dependent = x_grad is not None
        if not x_dependent:
            self.add("no_input_dependence",
                     "The block's output does not depend on its input x at all: x is "
                     "overwritten or discarded before it reaches the output (check which "
                     "variable the first layer and the skip connection receive).")

        # 2. which parameters are connected to the output?
        connected = [(n, p, g) for (n, p), g in zip(named, grads) if g is not None]
        # a parameter counts as unconnected only if it is unconnected in eval mode too
        unconnected = [n for (n, _), g in zip(named, grads)
                       if g is None and eval_grads.get(n) is None]
        if not named and not any(not c.registered for c in calls):
            self.add("no_parameters",
                     "The block has no trainable parameters, so there is no residual branch "
                     "to learn: were the layers assigned to self in __init__?")

        # 3. the residual branch is ignored
        same_shape = tuple(out.shape) == tuple(x.shape)
        tol = 1e-10 if dtype == torch.float64 else 1e-5
        scale = float(x.abs().max()) if x.numel() else 1.0
        out_d = out.detach()

        def close(a, b) -> bool:
            return bool(torch.allclose(a, b, rtol=0.0, atol=tol * max(scale, 1.0)))

        equals = None
        if same_shape:
            if close(out_d, torch.relu(x)):
                equals = "relu(x)"
            elif close(out_d, x):
                equals = "x"
        eval_connected = any(g is not None for g in eval_grads.values())
        if equals is not None and eval_out is not None:  # must hold in eval mode too
            if tuple(eval_out.shape) != tuple(eval_x.shape) or not close(
                    eval_out, torch.relu(eval_x) if equals == "relu(x)" else eval_x):
                equals = None
        if named and x_dependent and not connected and not eval_connected:
            if equals == "relu(x)":
                msg = ("The block ignores its residual branch: its output is exactly relu(x) "
                       "whatever its weights are, so the whole block is just a ReLU.")
            elif equals == "x":
                msg = ("The block ignores its residual branch: its output is exactly its "
                       "input x whatever its weights are, so the block does nothing (does "
                       "forward() return the right variable?).")
            else:
                msg = ("The block's residual branch cannot learn: no parameter of the block "
                       "receives a gradient from its output.")
            self.add("ignores_branch", msg)
        elif named and connected and equals is not None:
            self.add("ignores_branch",
                     f"The block ignores its residual branch: even with all weights non-zero "
                     f"its output is exactly {equals}, so the branch's result is cancelled "
                     f"or multiplied by zero before the addition.")

        # 4. parameters that never receive a gradient, grouped by cause
        if unconnected:
            self._report_unconnected(unconnected, calls, calls_by_name, usage)

        # 5. connected, but numerically always zero (after perturbing all-zero parameters)
        bias_before_norm = self._bias_before_norm(calls, module_of)
        for note in bias_before_norm.values():
            self.notes.append(note)
        if connected:
            gmax = max([float(g.abs().max()) for _, _, g in connected if g.numel()] +
                       ([float(x_grad.abs().max())] if x_grad is not None and x_grad.numel()
                        else []) + [0.0])
            rel = 1e-9 if dtype == torch.float64 else 1e-5
            eval_max = max([float(g.abs().max()) for g in eval_grads.values()
                            if g is not None and g.numel()] + [0.0])

            def zero_in_eval(n) -> bool:
                g = eval_grads.get(n)
                return g is None or float(g.abs().max()) <= rel * eval_max

            zero = [n for n, _, g in connected if g.numel() and
                    float(g.abs().max()) <= rel * gmax and zero_in_eval(n)
                    and n not in bias_before_norm]
            if zero and gmax > 0:
                zero = self._still_zero(dtype, zero, rel)
            if zero and gmax > 0:
                self.add("zero_gradient",
                         f"{_join(zero)} {'is' if len(zero) == 1 else 'are'} connected to the "
                         f"output but always receive{'s' if len(zero) == 1 else ''} a zero "
                         f"gradient: {'its' if len(zero) == 1 else 'their'} effect cancels out "
                         f"or passes through an operation without a gradient (rounding, "
                         f"argmax, multiplication by zero).", names=zero)

        # 6. results computed and thrown away (beyond the unconnected layers above)
        wasted = []
        for c in discarded:
            all_calls = calls_by_name.get(c.name, [c])
            params_unconnected = (_has_params(c.module) and
                                  all(usage.get(o) is False for o in all_calls))
            # a link in a longer dead chain (its input is itself thrown away) is already
            # explained by the layers above; report where a live tensor goes to waste
            live_inputs = [out_grads.get(id(t)) is not None for t in c.inputs if t.requires_grad]
            if not params_unconnected and c.registered and (not live_inputs or any(live_inputs)):
                wasted.append(c)
        if wasted:
            labels = [c.label for c in wasted]
            self.add("discarded_output",
                     f"The result of {_join(labels)} is computed and then thrown away: did you "
                     f"forget to assign it (out = self.{wasted[0].name}(out)) or pass the wrong "
                     f"variable to the next layer?", names=[c.name for c in wasted])

        # 7. BatchNorm statistics updated by layers whose output is discarded
        bad_bn = []
        for name, before in bn_before.items():
            bn_calls = calls_by_name.get(name, [])
            if any(usage.get(c) is False for c in bn_calls):
                after = bn_after.get(name)
                if after is not None and not all(torch.equal(a, b)
                                                 for a, b in zip(before, after)):
                    bad_bn.append(name)
        if bad_bn:
            self.add("discarded_bn_update",
                     f"{_join(bad_bn)} still update{'s' if len(bad_bn) == 1 else ''} "
                     f"{'its' if len(bad_bn) == 1 else 'their'} running statistics "
                     f"(running_mean, running_var) in training mode although "
                     f"{'its output is' if len(bad_bn) == 1 else 'their outputs are'} thrown "
                     f"away, so in eval mode the block normalises with statistics of the "
                     f"wrong tensor.", names=bad_bn)

        # 8. one normalisation layer used for several layers; other shared layers
        for name, cs in calls_by_name.items():
            m = module_of.get(name)
            if len(cs) < 2 or m is None:
                continue
            is_norm = isinstance(m, (_NormBase, nn.GroupNorm, nn.LayerNorm))
            if is_norm and (_has_params(m) or getattr(m, "track_running_stats", False)):
                self.add("reused_norm",
                         f"{name} is called {len(cs)} times in one forward pass: those layers "
                         f"share one scale/shift and one set of running statistics that mixes "
                         f"their activations; give each convolution its own normalisation "
                         f"layer.", names=[name])
            elif _has_params(m, recurse=False):
                self.notes.append(f"{name} is called {len(cs)} times, so its weights are "
                                  f"shared between those calls; create separate layers if "
                                  f"that is not intended.")

        # remember for the skip test
        self._used_layers = list(dict.fromkeys(
            c.name for c in calls if c.registered and usage[c] and
            _has_params(c.module, recurse=False)))
        self._weight_layers = {c.name for c in calls if c.registered and
                               _has_params(c.module, recurse=False) and not _is_norm(c.module)}
        self._x_dependent = x_dependent

    def _influences(self, name: str) -> bool:
        """Does zeroing this layer's output change the block's output (in eval mode)?"""
        cache = self.__dict__.setdefault("_influence_cache", {})
        if name not in cache:
            try:
                x = self.randn(self.shape, self._dtype, offset=10)
                plain, _ = self._run_zeroed(self._dtype, [], x)
                zeroed, _ = self._run_zeroed(self._dtype, [name], x)
                cache[name] = self._differ(plain, zeroed)
            except Exception:
                cache[name] = False
        return cache[name]

    def _report_unconnected(self, unconnected, calls, calls_by_name, usage):
        """One problem per cause: layers never called, outputs thrown away, outputs
        cut off from autograd, or no influence for another reason."""

        def state(name: str) -> Optional[str]:
            cs = calls_by_name.get(name)
            if not cs:
                return None
            states = [usage.get(c) for c in cs]
            if all(s is False for s in states):
                return "discarded"
            if all(s is None for s in states):
                return "detached"
            return "used"

        def chain(name: str) -> List[str]:  # the module and its ancestors, below the block
            out = []
            while name:
                out.append(name)
                name = name.rpartition(".")[0]
            return out

        def subtree_called(name: str) -> bool:
            return any(k == name or k.startswith(name + ".") for k in calls_by_name)

        groups: Dict[str, Tuple[List[str], List[str]]] = {
            k: ([], []) for k in ("discarded", "never_called", "detached", "other")}
        for pname in unconnected:
            ancestors = chain(pname.rpartition(".")[0])
            called = [n for n in ancestors if state(n) is not None]
            if not ancestors:                     # a parameter of the block itself
                cause, label = "other", None
            elif not called:
                cause = "never_called"
                label = [n for n in ancestors if not subtree_called(n)][-1]
            else:
                cause = state(called[0])
                label = called[0]
                if cause in ("discarded", "detached"):
                    for n in ancestors[ancestors.index(called[0]) + 1:]:
                        if state(n) == cause:
                            label = n
                        elif state(n) is not None:
                            break
                else:
                    cause = "other"
            if cause == "discarded" and label is not None and self._influences(label):
                cause = "detached"  # it does change the output: the gradient path is cut
            params, modules = groups[cause]
            params.append(pname)
            if label is not None and label not in modules:
                modules.append(label)

        def subject(names):
            verb = "never receives" if len(names) == 1 else "never receive"
            return f"{_join(names)} {verb} a gradient"

        def are(mods):
            return "are" if len(mods) > 1 else "is"

        params, mods = groups["discarded"]
        if params:
            # the post's bug: after a thrown-away layer that read x, later layers read x too
            leaves = [c for c in calls
                      if c.registered and not any(True for _ in c.module.children())]
            dead_x = [i for i, c in enumerate(calls) if c.receives_x and usage.get(c) is False]
            later = []
            if dead_x:
                later = list(dict.fromkeys(c.name for c in calls[dead_x[0] + 1:]
                                           if c in leaves and c.receives_x))
            hint = ""
            if later:
                hint = (f" ({_join(later)} {'take' if len(later) > 1 else 'takes'} the input x "
                        f"rather than the previous layer's output: was "
                        f"out = self.{later[0]}(out) meant?)")
            self.add("no_gradient",
                     f"{subject(params)}: the output{'s' if len(mods) > 1 else ''} of "
                     f"{_join(mods)} {are(mods)} computed but overwritten or thrown away before "
                     f"reaching the block's output{hint}.", names=params)
        params, mods = groups["never_called"]
        if params:
            self.add("no_gradient",
                     f"{subject(params)}: {_join(mods)} {are(mods)} created in __init__ but never "
                     f"called in forward().", names=params)
        params, mods = groups["detached"]
        if params:
            self.add("no_gradient",
                     f"{subject(params)}: the output{'s' if len(mods) > 1 else ''} of "
                     f"{_join(mods)} {are(mods)} cut off from autograd (.detach(), .data or "
                     f"torch.no_grad() in forward).", names=params)
        params, mods = groups["other"]
        if params:
            self.add("no_gradient",
                     f"{subject(params)}: {'it has' if len(params) == 1 else 'they have'} no "
                     f"influence on the block's output (unused, detached, or overwritten).",
                     names=params)

    def _bias_before_norm(self, calls, module_of) -> Dict[str, str]:
        """Biases of layers whose every output goes straight into a per-channel
        normalisation (BatchNorm/InstanceNorm), which cancels them."""
        consumers: Dict[int, List[Tuple[_Call, int]]] = {}
        for c in calls:
            for t, v in zip(c.inputs, c.input_versions):
                consumers.setdefault(id(t), []).append((c, v))
        notes = {}
        for name, m in module_of.items():
            bias = getattr(m, "bias", None)
            if not name or not isinstance(bias, nn.Parameter) or not isinstance(m, _ConvNd):
                continue
            cs = [c for c in calls if c.registered and c.name == name and c.outputs]
            norms = []
            for c in cs:
                t, v = c.outputs[0], c.output_versions[0]
                direct = [cc for cc, vv in consumers.get(id(t), [])
                          if vv == v and isinstance(cc.module, _NormBase)]
                if not direct:
                    break
                norms.append(direct[0].name)
            else:
                if cs:
                    notes[f"{name}.bias"] = (
                        f"{name}.bias is redundant: {name} feeds straight into "
                        f"{_join(list(dict.fromkeys(norms)))}, whose mean subtraction cancels "
                        f"any per-channel bias (in training mode its gradient is zero); build "
                        f"{name} with bias=False.")
        return notes

    # ---- stage C: is there a path from x to the output that avoids the branch's layers?
    def _run_zeroed(self, dtype, zero: Sequence[str], x: torch.Tensor,
                    capture: Sequence[str] = ()):
        """Eval-mode forward on a fresh copy with the outputs of the ``zero`` layers
        replaced by zeros; returns the output and the inputs the ``capture`` layers got."""
        captured: Dict[Tuple[str, int], torch.Tensor] = {}
        with _scratch(self.block) as work:
            work.to(dtype)
            work.eval()  # no dropout, no batch statistics: only the wiring matters
            # a gate that starts at zero (on the branch or on the skip) must not hide a path
            _perturb_zero_parameters(work, torch.Generator().manual_seed(self.seed + 1))
            handles = []
            try:
                for name in zero:
                    handles.append(work.get_submodule(name).register_forward_hook(
                        lambda mod, args, output: torch.zeros_like(output)
                        if isinstance(output, torch.Tensor) else output))
                for name in capture:
                    def keep(mod, args, name=name):
                        ts = _tensors(args)
                        if ts:
                            n = sum(1 for key in captured if key[0] == name)
                            captured[(name, n)] = ts[0].detach().clone()
                    handles.append(work.get_submodule(name).register_forward_pre_hook(keep))
                with torch.no_grad():
                    out = work(x.clone())
            finally:
                for h in handles:
                    h.remove()
        return out, captured

    @staticmethod
    def _differ(a, b) -> bool:
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        return a.shape != b.shape or not torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)

    def _skip_carries_gradient(self, dtype, name: str, x: torch.Tensor) -> bool:
        """With ``name``'s output zeroed, does autograd connect the output to x?"""
        with _scratch(self.block) as work:
            work.to(dtype)
            work.eval()
            _perturb_zero_parameters(work, torch.Generator().manual_seed(self.seed + 1))
            handle = work.get_submodule(name).register_forward_hook(
                lambda mod, args, output: torch.zeros_like(output)
                if isinstance(output, torch.Tensor) else output)
            try:
                x_leaf = x.clone().requires_grad_(True)
                out = work(x_leaf.clone())
                if not isinstance(out, torch.Tensor) or not out.requires_grad:
                    return False
                return torch.autograd.grad(out.sum(), [x_leaf], allow_unused=True)[0] is not None
            except Exception:
                return True  # cannot tell: say nothing
            finally:
                handle.remove()

    def stage_skip(self, dtype: torch.dtype) -> None:
        """A skip connection is a path from x to the output that avoids the branch.

        The branch's first weight layers (convolutions or linear layers reached from x
        without passing through another weight layer) are found by zeroing every weight
        layer and seeing whose input still changes with x. Then each of them is zeroed on
        its own: in a residual block the output still changes with x through the
        shortcut (identity or projection); in a plain stack, or one whose "shortcut"
        starts after the first layer, it does not."""
        used = getattr(self, "_used_layers", [])
        if not used or not getattr(self, "_x_dependent", False) or \
                not getattr(self, "_finite", True):
            return  # nothing to probe, or NaN outputs that make every comparison moot
        weight_layers = [n for n in used if n in self._weight_layers]
        x1 = self.randn(self.shape, dtype, offset=10)
        x2 = self.randn(self.shape, dtype, offset=11)
        try:
            if weight_layers:
                _, c1 = self._run_zeroed(dtype, weight_layers, x1, capture=weight_layers)
                _, c2 = self._run_zeroed(dtype, weight_layers, x2, capture=weight_layers)
                first = [n for n in weight_layers
                         if any(self._differ(c1[k], c2.get(k)) for k in c1 if k[0] == n)]
            else:
                first = []
            candidates = first or used
            tried = []
            for name in candidates:
                out1, _ = self._run_zeroed(dtype, [name], x1)
                out2, _ = self._run_zeroed(dtype, [name], x2)
                tried.append(name)
                if self._differ(out1, out2):
                    # x reaches the output around this layer: there is a skip path; does
                    # the gradient travel back along it too?
                    if not self._skip_carries_gradient(dtype, name, x1):
                        self.add("detached_skip",
                                 "The skip connection carries x forward but not its gradient: "
                                 "the shortcut is cut off from autograd (x.detach(), .data or "
                                 "torch.no_grad()), so the gradient cannot flow back along it, "
                                 "which is the point of a skip connection; add x itself: "
                                 "out = out + identity.")
                    return
        except Exception:
            return  # the wiring cannot be probed this way; say nothing rather than guess
        if tried:
            self.add("no_skip",
                     f"The block has no skip connection from its input: every path from x to "
                     f"the output runs through {_join(tried)} (zero "
                     f"{'it' if len(tried) == 1 else 'any one of them'} and the output no "
                     f"longer depends on x); keep identity = x (or a projection of x) before "
                     f"the first layer and add it at the end: out = out + identity.",
                     names=tried)

    # ---- stage D: eval mode runs and is deterministic; input untouched there too
    def stage_eval(self, dtype: torch.dtype) -> None:
        x0 = self.randn(self.shape, dtype)
        with _scratch(self.block) as work:
            work.to(dtype)
            work.eval()
            outs = []
            for _ in range(2):
                x_in = x0.clone()
                with torch.no_grad(), _Recorder(work, x_in) as rec:
                    try:
                        outs.append(work(x_in))
                    except Exception as exc:
                        self.add("crash", _explain_crash(exc, rec, len(self.shape), "eval"))
                        return
            if "modifies_input" not in self.kinds() and not torch.equal(x_in, x0):
                self._check_input_unchanged(x_in, x0, -1, rec)
        a, b = outs
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and \
                "layer_in_forward" not in self.kinds():
            if a.shape != b.shape or not torch.equal(a, b):
                self.add("nondeterministic",
                         "Two identical calls in eval mode give different outputs: forward() "
                         "uses randomness that eval mode does not switch off (e.g. "
                         "F.dropout(out, p) without training=self.training, or torch.randn).")

    def kinds(self) -> List[str]:
        return [p.kind for p in self.problems]

    def run(self) -> None:
        if not self.stage_run():
            return
        dtype = self.stage_gradients()
        if dtype is None:
            return
        self.stage_skip(dtype)
        self.stage_eval(dtype)


def _validate(block, input_shape) -> Tuple[int, ...]:
    if isinstance(block, type) and issubclass(block, nn.Module):
        raise TypeError(f"check_block expects a block instance such as "
                        f"{block.__name__}(16, 16), not the class {block.__name__} itself")
    if not isinstance(block, nn.Module):
        raise TypeError(f"check_block expects an nn.Module (a residual block), "
                        f"got {type(block).__name__}")
    try:
        shape = tuple(int(s) for s in input_shape)
        if any(s != t for s, t in zip(shape, input_shape)):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a sequence of integers such as (2, 16, 8, 8) "
                         f"(N, C, H, W); got {input_shape!r}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be the full input shape (N, C, H, W) with positive "
                         f"sizes, e.g. (2, 16, 8, 8); got {input_shape!r}")
    return shape


def _materialized(block: nn.Module, shape: Tuple[int, ...], seed: int) -> nn.Module:
    """A copy of a block with lazy layers (nn.LazyConv2d, ...) initialised by one forward
    pass; the block itself when it has none (or when that pass fails: then the checks
    report the crash)."""
    if not any(isinstance(t, _LAZY) for t in list(block.parameters()) + list(block.buffers())):
        return block
    try:
        work = _deepcopy(block)
        dtype, device = _native(work)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
        with torch.random.fork_rng(devices=[]), torch.no_grad(), _quiet():
            work.eval()(x)
        work.train(block.training)
        for a, b in zip(work.modules(), block.modules()):
            a.training = b.training
        return work
    except Exception:
        return block


def check_block(block: nn.Module, input_shape: Sequence[int], *, seed: int = 0) -> BlockReport:
    """Check a residual block for the usual bugs; never raises because the block is faulty.

    Args:
        block: the block instance, e.g. ``BasicBlock(16, 32, stride=2)``.
        input_shape: the full input shape ``(N, C, H, W)``; use N >= 2 for BatchNorm.
        seed: seed of the local generator that makes the random inputs.

    Returns:
        a :class:`BlockReport`: ``report.ok``, ``report.problems`` (each ``str()`` is one
        sentence), ``report.notes``; print it or show it in a notebook.

    The block itself is left exactly as it was: every check runs on a deep copy.
    """
    shape = _validate(block, input_shape)
    name = type(block).__name__
    block = _materialized(block, shape, seed)
    checker = _Checker(block, shape, seed)
    devices = [checker.device] if checker.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _quiet():
        torch.manual_seed(seed)  # the block's own randomness (dropout) is reproducible too
        try:
            checker.run()
        except Exception as exc:  # a defect of the checker, not of the block: say so plainly
            checker.add("crash", f"check_block could not finish ({type(exc).__name__}: "
                                 f"{_first_line(exc)}); the block may use a feature it does "
                                 f"not support.")
    problems = sorted(checker.problems, key=lambda p: _ORDER.get(p.kind, len(_ORDER)))
    return BlockReport(block_name=name, input_shape=shape,
                       output_shape=checker.output_shape, problems=problems,
                       notes=list(dict.fromkeys(checker.notes)))


# --------------------------------------------------------------------------- command line
def _parse_call_args(tokens: Sequence[str]) -> Tuple[list, dict]:
    """'16 32 stride=2' or '16, 32, stride=2' -> ([16, 32], {'stride': 2}).

    Values are Python literals; a bare word (shortcut=B) is taken as a string."""
    text = ", ".join(t.strip().strip(",") for t in tokens if t.strip().strip(","))
    if not text:
        return [], {}
    try:
        call = ast.parse(f"f({text})", mode="eval").body
    except SyntaxError:
        raise ValueError(f"cannot read --args {text!r}: write e.g. --args 16 32 stride=2")

    def value(node):
        try:
            return ast.literal_eval(node)
        except ValueError:
            if isinstance(node, ast.Name):
                return node.id
            raise ValueError(f"--args: {ast.unparse(node)!r} is not a literal value")

    args = [value(a) for a in call.args]
    kwargs = {k.arg: value(k.value) for k in call.keywords}
    return args, kwargs


def _parse_shape(text: str) -> Tuple[int, ...]:
    parts = [p for p in re.split(r"[,x\s]+", text.strip().strip("()[]")) if p]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--input-shape must be integers like 2,16,8,8; got {text!r}") from None


def _load_class(target: str):
    """'path/to/file.py:ClassName', 'file.py' (its only block) or 'package.module:ClassName'."""
    path_part, _, cls_name = target.partition(":")
    if path_part.endswith(".py") or Path(path_part).is_file():
        path = Path(path_part)
        if not path.is_file():
            raise ValueError(f"file not found: {path_part}")
        spec = importlib.util.spec_from_file_location(f"_checked_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
    else:
        module = importlib.import_module(path_part)
    if not cls_name:
        blocks = [v for v in vars(module).values() if isinstance(v, type) and
                  issubclass(v, nn.Module) and v.__module__ == module.__name__]
        if len(blocks) != 1:
            names = ", ".join(b.__name__ for b in blocks) or "none"
            raise ValueError(f"name the class to check as FILE.py:ClassName "
                             f"(nn.Module classes in {path_part}: {names})")
        return blocks[0]
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        names = ", ".join(sorted(k for k, v in vars(module).items()
                                 if isinstance(v, type) and issubclass(v, nn.Module))) or "none"
        raise ValueError(f"{path_part} has no nn.Module class named {cls_name!r} "
                         f"(found: {names})")
    return cls


def cli_check(argv: List[str], prog: str = "python -m resnet_edu check") -> int:
    """``python -m resnet_edu check FILE.py:ClassName --args ... --input-shape N,C,H,W``.

    Exit status: 0 when the block passes, 1 when problems were found, 2 when the
    block could not be loaded or built."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check a residual block for the usual bugs (see resnet_edu.diagnostics).",
        epilog="example: %(prog)s my_block.py:MyBlock --args 16 32 stride=2 "
               "--input-shape 2,16,8,8")
    parser.add_argument("target", help="FILE.py:ClassName (or package.module:ClassName)")
    parser.add_argument("--args", nargs="*", default=[], metavar="ARG",
                        help="constructor arguments as Python literals, e.g. 16 32 stride=2")
    parser.add_argument("--input-shape", required=True, metavar="N,C,H,W",
                        help="the full input shape, e.g. 2,16,8,8")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    options = parser.parse_args(argv)
    try:
        shape = _parse_shape(options.input_shape)
        args, kwargs = _parse_call_args(options.args)
        with _quiet():
            cls = _load_class(options.target)
    except Exception as exc:
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 2
    try:
        with _quiet():
            block = cls(*args, **kwargs)
    except Exception as exc:
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        print(f"error: {cls.__name__}({shown}) failed: {type(exc).__name__}: "
              f"{_first_line(exc)}", file=sys.stderr)
        return 2
    try:
        report = check_block(block, shape, seed=options.seed)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1
